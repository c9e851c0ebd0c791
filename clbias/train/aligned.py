"""`clbias models build multilingual-e5-small-aligned`: the default recipe trained and exported in one command,
from data the package fetches itself.

Steps (each skipped when its output is already there, so an interrupted build resumes):
1. the base, `clbias models build multilingual-e5-small` (models/ and exported/multilingual-e5-small);
2. the man-page probe set of the training languages (`apt-get download` + groff, as `clbias probes build
   manpages`), into CACHE/aligned/manpages: its train.jsonl only is used;
3. training triplets (`clbias train data`, seed 0) and `clbias train` with the default recipe (`ALIGNED_RECIPE`)
   into models/multilingual-e5-small-aligned;
4. `clbias export` (fp32 + int8) into exported/multilingual-e5-small-aligned; the manifest's source names the
   recipe, the data and the time each step took, so `clbias models list` shows them.

What the recipe costs out of its training domain is measured in benchmarks/results/alignment-ood.md.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError
from .config import DEFAULT_RECIPE, RECIPES, TrainConfig

ALIGNED_NAME = "multilingual-e5-small-aligned"
BASE_NAME = "multilingual-e5-small"
TRAIN_LANGS = ("de", "es", "fr", "ja", "pl", "ru")  # the man-page languages with training units
TRIPLETS = 2800


def aligned_recipe(**overrides: Any) -> TrainConfig:
    """The default recipe (`clbias train` defaults with --recipe DEFAULT_RECIPE)."""
    return TrainConfig(**{**RECIPES[DEFAULT_RECIPE], **overrides})


def recipe_text(config: TrainConfig, steps: int) -> str:
    weights = ", ".join(f"{k} {v:g}" for k, v in config.weights().items())
    return (f"clbias train --recipe {DEFAULT_RECIPE} (loss {config.loss}: {weights}), {steps} steps x batch "
            f"{config.batch_size}, lr {config.lr:g}, max length {config.max_length}, seed {config.seed}")


def build_aligned(hf_root: Path, out_root: Path, cache_root: Path, *, log: Callable[[str], None] = print,
                  probe: Path | None = None, base_hf: Path | None = None, config: TrainConfig | None = None,
                  name: str = ALIGNED_NAME, export_int8: bool = True) -> Path:
    """Build exported/NAME (see the module doc). `probe`, `base_hf` and `config` replace steps 1-2 and the
    recipe (tests use the tiny model and a small vendored probe set)."""
    from ..export.onnx import export_model
    from ..runtime.manifest import Prefixes
    from .base import resolve_base
    from .data import build_triplets, write_triplets
    from .trainer import train

    timings: dict[str, float] = {}
    started = time.perf_counter()
    if base_hf is None:
        from ..models.build import build_model

        t0 = time.perf_counter()
        if not (hf_root / BASE_NAME / "config.json").is_file() or not (out_root / BASE_NAME / "clbias.json").is_file():
            build_model(BASE_NAME, out_root)
        base_hf = hf_root / BASE_NAME
        timings["base"] = time.perf_counter() - t0
    if probe is None:
        from ..probes.manpages.build import build_from_debian

        probe = cache_root / "aligned" / "manpages"
        if not (probe / "train.jsonl").is_file():
            t0 = time.perf_counter()
            log(f"building the man-page probe set ({', '.join(TRAIN_LANGS)}) into {probe}: apt-get download + groff")
            build_from_debian(probe, TRAIN_LANGS, cache_root=cache_root, name="manpages", log=log)
            timings["data"] = time.perf_counter() - t0
    if not (probe / "train.jsonl").is_file():
        raise InputError("no train.jsonl of training units", probe)
    work = cache_root / "aligned"
    work.mkdir(parents=True, exist_ok=True)
    triplets = work / f"{name}.triplets.jsonl"
    rows, summary = build_triplets(probe, "train", None, TRIPLETS, 0)
    write_triplets(triplets, rows)
    config = config or aligned_recipe()
    base = resolve_base(base_hf, "query: ", "passage: ")
    model_dir = hf_root / name
    t0 = time.perf_counter()
    resume = (model_dir / "training" / "state.pt").is_file()
    result = train(triplets, model_dir, base, config, resume=resume)
    timings["train"] = time.perf_counter() - t0
    recipe = recipe_text(config, result.total_steps)
    t0 = time.perf_counter()
    source = {"description": f"{BASE_NAME} aligned across languages: {recipe}; {summary['written']} man-page "
                             f"triplets ({', '.join(summary['per_lang'])})",
              "model": "intfloat/multilingual-e5-small", "hf_dir": str(model_dir),
              "recipe": {"name": DEFAULT_RECIPE, "config": asdict(config), "steps": result.total_steps},
              "training_data": {"probe": str(probe), "triplets": summary["written"], "per_lang": summary["per_lang"]},
              "out_of_domain_cost": "benchmarks/results/alignment-ood.md"}
    out = export_model(model_dir, name, out_root, int8=export_int8, prefixes=Prefixes("query: ", "passage: "),
                       pooling="mean", normalize=True, max_length=512,
                       source={**source, "build_seconds": {k: round(v) for k, v in timings.items()}})
    timings["export"] = time.perf_counter() - t0
    log(f"built {out} in {(time.perf_counter() - started) / 60:.1f} min ("
        + ", ".join(f"{k} {v / 60:.1f} min" for k, v in timings.items()) + f"); recipe: {recipe}")
    return out

"""WiSE-FT (Wortsman et al. 2022): the trained weights interpolated with the base model's.

theta(r) = (1 - r) * theta_base + r * theta_tuned, tensor by tensor (r = 1: the trained model, r = 0: the
base). A ratio between them trades the alignment gain against what the base knew (here: monolingual
retrieval outside the training domain). `choose_ratio` measures validation triplets at several ratios and
keeps one by the rule of `clbias train --select neutral`: among the ratios whose validation Mono-Same
nDCG@10 is at least the base's minus `margin`, the one whose twin preference is closest to 50 (ties and
missing twin figures: the larger Multi Max@R_norm).
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError, ModelError
from ..io import atomic_dir
from ..runtime.manifest import MANIFEST_NAME
from .base import BaseModel
from .checkpoint import TOKENIZER_FILES, read_note
from .data import Triplet, check_tokenizable
from .validation import MONO, MULTI, TWIN_DEV, Validation

DEFAULT_RATIOS = (0.25, 0.5, 0.75, 1.0)


def mix_state(base: dict[str, Any], tuned: dict[str, Any], ratio: float) -> dict[str, Any]:
    """(1 - ratio) * base + ratio * tuned for every floating tensor; others (ids, buffers) from `tuned`."""
    if set(base) != set(tuned):
        missing = sorted(set(base) ^ set(tuned))[:3]
        raise ModelError(f"the base and the trained model have different parameters (e.g. {', '.join(missing)})")
    out = {}
    for key, value in tuned.items():
        other = base[key]
        if value.shape != other.shape:
            raise ModelError(f"parameter {key}: shape {tuple(other.shape)} in the base, {tuple(value.shape)} trained")
        out[key] = (1 - ratio) * other + ratio * value if value.is_floating_point() else value
    return out


def _load(hf_dir: Path) -> Any:
    from .trainer import load_hf_model

    return load_hf_model(hf_dir).eval()


def choose_ratio(base: BaseModel, tuned_dir: Path, val: Sequence[Triplet], ratios: Sequence[float] = DEFAULT_RATIOS,
                 margin: float = 1.0, max_length: int = 256) -> tuple[float | None, list[dict[str, float]]]:
    """(chosen ratio or None when none is non-inferior, validation rows {"ratio", metric: value}; ratio 0 =
    the base)."""
    import torch

    from .embedding import Embedder
    from .trainer import encode_triplets

    encoded = encode_triplets(val, base, max_length)
    base_model, tuned_model = _load(base.hf_dir), _load(tuned_dir)
    base_state = {k: v.detach().clone() for k, v in base_model.state_dict().items()}
    tuned_state = tuned_model.state_dict()
    validation = Validation(encoded, 0)
    rows = []
    for ratio in (0.0, *ratios):
        with torch.no_grad():
            base_model.load_state_dict(mix_state(base_state, tuned_state, ratio))
        embedder = Embedder(base_model, encoded.pad_id, torch.device("cpu"), base.pooling, bucket=True)
        rows.append({"ratio": ratio, **validation.measure(embedder)})
    return pick(rows, margin), rows


def pick(rows: Sequence[dict[str, float]], margin: float) -> float | None:
    """The rule of the module doc over validation rows; rows[0] is the base (ratio 0)."""
    floor = rows[0][MONO] - margin
    eligible = [r for r in rows[1:] if r[MONO] >= floor]
    if not eligible:
        return None

    def key(r: dict[str, float]) -> tuple[float, float]:
        dev = r.get(TWIN_DEV, math.nan)
        return (math.inf if math.isnan(dev) else round(dev, 6), -r[MULTI])

    return min(eligible, key=key)["ratio"]


def interpolate(base: BaseModel, tuned_dir: str | Path, ratio: float, out: str | Path,
                chosen: dict[str, Any] | None = None) -> Path:
    """Write the interpolated model to `out` (atomically): weights, the tuned dir's tokenizer and its note
    with an `interpolation` record, so `clbias export OUT` takes it like a training output."""
    tuned_dir, out = Path(tuned_dir), Path(out)
    if not 0 <= ratio <= 1:
        raise InputError(f"must be between 0 and 1, got {ratio}", field="ratio")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("exists and is not an empty directory; refusing to replace it", out, field="out")
    if out.resolve() in (tuned_dir.resolve(), base.hf_dir.resolve()):
        raise InputError("must differ from the base and the trained model", out, field="out")
    note = read_note(tuned_dir)
    base_model, tuned_model = _load(base.hf_dir), _load(tuned_dir)
    import torch

    with torch.no_grad():
        base_model.load_state_dict(mix_state(base_model.state_dict(), tuned_model.state_dict(), ratio))
    note = {**note, "interpolation": {"method": "WiSE-FT: (1 - ratio) * base + ratio * trained", "ratio": ratio,
                                      "base": str(base.hf_dir.resolve()), "trained": str(tuned_dir.resolve()),
                                      **({"chosen_on_validation": chosen} if chosen else {})}}
    with atomic_dir(out) as tmp:
        base_model.save_pretrained(str(tmp), safe_serialization=True)
        for name in TOKENIZER_FILES:
            if (tuned_dir / name).is_file():
                shutil.copyfile(tuned_dir / name, tmp / name)
        (tmp / MANIFEST_NAME).write_text(json.dumps(note, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def check_val(val: Sequence[Triplet], base: BaseModel, path: Path) -> None:
    check_tokenizable(val, base.tokenizer_file, path)

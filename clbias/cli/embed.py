"""`clbias embed TEXTS.jsonl --model M --kind query|passage --out vectors.npy`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rich.console import Console

from ..corpus import passage_text, read_records
from ..errors import InputError
from ..io import StagedOutputs, check_output_paths
from ..runtime.cache import default_cache_dir, prepare_cache_dir
from ..runtime.embed import embed_texts
from .common import add_model_options, check_model_options, load_encoders, model_input_files
from .engine import add_engine_options, ray_options
from .progress import RichProgress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="embed a JSONL file of texts with an exported model",
                       description="Rows of the output follow the input; ids are written to OUT.ids.json.")
    p.add_argument("texts", type=Path, help="JSONL with _id and text (title and lang optional), validated like a corpus file")
    add_model_options(p)
    p.add_argument("--kind", choices=("query", "passage"), default="passage", help="which prefix to apply")
    p.add_argument("--out", type=Path, required=True, help="output .npy (float32, [n, dim])")
    p.add_argument("--no-cache", action="store_true")
    add_engine_options(p)
    p.set_defaults(run=run)


def read_texts(path: Path, kind: str = "passage") -> tuple[list[str], list[str]]:
    """Ids and the texts the model reads, through the same reader and validation as `clbias audit`."""
    records = read_records(path, "text", require_lang=False)
    if not records:
        raise InputError("no texts", path)
    return [r.id for r in records], [passage_text(r) if kind == "passage" else r.text for r in records]


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    out = args.out if args.out.suffix == ".npy" else args.out.with_suffix(".npy")
    ids_out = out.with_suffix(".ids.json")
    check_model_options(args)
    check_output_paths({"--out": out, "--out (ids)": ids_out}, inputs=[args.texts, *model_input_files(args)])
    ids, texts = read_texts(args.texts, args.kind)
    ray = ray_options(args)
    cache = None if args.no_cache else prepare_cache_dir(default_cache_dir())
    encoder = load_encoders(args, console)[0]
    progress = RichProgress(console)
    progress.start(f"embedding {len(texts)} texts", len(texts))
    if ray is None:
        vectors, stats = embed_texts(encoder, texts, args.kind, cache, progress=progress.advance)
    else:
        from ..engine.ray_engine import RaySession, embed_texts_ray

        with RaySession(ray) as session:
            vectors, stats = embed_texts_ray(session, encoder, texts, args.kind, cache, progress=progress.advance)
    progress.finish()
    with StagedOutputs({"--out": out, "--out (ids)": ids_out}) as outputs:
        with open(outputs.file(out), "wb") as fh:
            np.save(fh, vectors, allow_pickle=False)
        outputs.text(ids_out, json.dumps(ids, ensure_ascii=False) + "\n")
    console.print(f"wrote {out} {vectors.shape} ({int(stats.truncated.sum())} truncated to "
                  f"{encoder.max_length} tokens) and {ids_out}")
    return 0

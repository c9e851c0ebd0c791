"""`clbias` command line: a thin layer over the library API. Heavy extras load only in their commands."""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import traceback
from typing import Sequence

from .. import __version__
from ..errors import ClbiasError, first_line
from ..io import DISK_ERRNOS
from ..text import inert, one_line
from . import audit, compare, embed, export, models, probes, report, shift, train

COMMANDS = (audit, embed, export, models, probes, train, shift, report, compare)

# The exit status of every command; docs/exit-codes.md says the same.
EXIT_OK, EXIT_GATE, EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = """exit status:
  0    success
  1    a --fail-if bias gate was broken (every requested output was still written)
  2    bad input, usage or environment: one line naming the file, line and field, or the option; nothing written
  3    internal error in clbias: one line and the file holding the traceback (--debug prints it instead)
  130  interrupted (Ctrl-C)"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clbias", description="Audit multilingual retrievers for English bias.",
                                epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"clbias {__version__}")
    p.add_argument("--debug", action="store_true", help="on an internal error, print the traceback")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    _add_debug_everywhere(p)
    return p


def _add_debug_everywhere(p: argparse.ArgumentParser) -> None:
    """`--debug` after the command name works too (SUPPRESS keeps a subcommand from resetting it)."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action.choices.values()):
                if "--debug" not in child._option_string_actions:
                    child.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                       help="on an internal error, print the traceback")
                _add_debug_everywhere(child)


def _write_traceback(exc: BaseException, argv: Sequence[str]) -> str | None:
    """Write the traceback of an internal error to a private temporary file; its path, or None."""
    try:
        fd, path = tempfile.mkstemp(prefix=f"clbias-traceback-{time.strftime('%Y%m%d-%H%M%S')}-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(f"clbias {__version__}, Python {platform.python_version()}, {platform.platform()}\n")
            fh.write(f"argv: {list(argv)!r}\n\n")
            fh.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        return path
    except OSError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)  # usage errors: argparse prints them and exits 2
    debug = bool(getattr(args, "debug", False)) or bool(os.environ.get("CLBIAS_DEBUG"))
    try:
        return int(args.run(args) or 0)
    except ClbiasError as exc:
        print(f"clbias: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("clbias: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        if exc.errno in DISK_ERRNOS:  # the disk or the file system said no: not a bug in clbias
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"clbias: error: {one_line(where)}{exc.strerror or first_line(exc)}", file=sys.stderr)
            return EXIT_INPUT
        return _internal(exc, argv, debug)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a bug, reported as one
        return _internal(exc, argv, debug)


def _internal(exc: BaseException, argv: Sequence[str], debug: bool) -> int:
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        return EXIT_INTERNAL
    path = _write_traceback(exc, argv)
    where = f"traceback in {path}" if path else "the traceback could not be written"
    print(f"clbias: internal error: {type(exc).__name__}: {inert(first_line(exc))} ({where}; --debug prints it; "
          f"please report it)", file=sys.stderr)
    return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())

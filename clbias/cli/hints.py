"""Usage errors with a hint instead of the whole usage text: a comma-joined value for an option that is
repeated (`--scenario multi,mono-same`), a misspelt option (`--jsn` -> `--json`)."""
from __future__ import annotations

import argparse
import difflib
import re
import sys
from typing import NoReturn, Sequence

_INVALID_CHOICE = re.compile(r"argument (?P<option>[-\w/]+): invalid choice: '(?P<value>[^']*)'")
_UNRECOGNIZED = re.compile(r"unrecognized arguments: (?P<args>.*)")
_REQUIRED = re.compile(r"the following arguments are required: (?P<args>.*)")


class HintingParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line plus a hint (exit code 2), never the full usage dump."""

    def error(self, message: str) -> NoReturn:
        hint = self.hint(message)
        sys.stderr.write(f"{self.prog}: error: {message}\n" + (f"hint: {hint}\n" if hint else "")
                         + f"`{self.prog} --help` lists every option\n")
        sys.exit(2)

    _argv: list[str] | None = None

    def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]  # typeshed overloads it
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def option_strings(self) -> list[str]:
        """This parser's long options, and those of the subcommand the arguments name (argparse reports an
        unknown option of a subcommand from the top-level parser)."""
        options = [s for action in self._actions for s in action.option_strings if s.startswith("--")]
        parser: argparse.ArgumentParser = self
        for word in self._argv or []:
            commands = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
            if not isinstance(commands, dict) or word not in commands:
                continue
            parser = commands[word]
            options += [s for action in parser._actions for s in action.option_strings if s.startswith("--")]
        return options

    def hint(self, message: str) -> str | None:
        choice = _INVALID_CHOICE.search(message)
        if choice and "," in choice.group("value"):
            option = choice.group("option").split("/")[-1]
            values = [v.strip() for v in choice.group("value").split(",") if v.strip()]
            return ("give one value per option and repeat it: "
                    + " ".join(f"{option} {value}" for value in values))
        required = _REQUIRED.search(message)
        if required:  # a misspelt required option (`--ot x.npy`) shows up as the option missing
            missing = [a.strip() for a in required.group("args").split(",") if a.strip().startswith("--")]
            known = set(self.option_strings())
            hints = []
            for arg in self._argv or []:
                name = arg.split("=", 1)[0]
                if name.startswith("--") and name not in known:
                    close = difflib.get_close_matches(name, missing, n=1, cutoff=0.5)
                    if close:
                        hints.append(f"{name}: did you mean {close[0]}?")
            return "; ".join(hints) or None
        unknown = _UNRECOGNIZED.search(message)
        if unknown:
            options = self.option_strings()
            hints = []
            for arg in unknown.group("args").split():
                name = arg.split("=", 1)[0]
                if not name.startswith("-"):
                    continue
                close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
                if close:
                    hints.append(f"{name}: did you mean {close[0]}?")
            return "; ".join(hints) or None
        return None

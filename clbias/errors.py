"""Errors that the CLI turns into one clean line and exit code 2."""
from __future__ import annotations

from pathlib import Path


class ClbiasError(Exception):
    """A problem with the user's input or environment, reported without a traceback."""

    exit_code = 2


class InputError(ClbiasError):
    """Bad input data, located by file, line and field where those are known."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.reason = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where += f":{self.line}"
        if self.field:
            where += f": field '{self.field}'" if where else f"field '{self.field}'"
        return f"{where}: {self.reason}" if where else self.reason


class OutputError(InputError, OSError):
    """An output the disk or file system would not take (full, read-only, a name too long): a one-line
    InputError for the CLI, and still an OSError for code that treats a failed write as one."""

    def __init__(self, message: str, path: str | Path | None = None, field: str | None = None,
                 errno: int | None = None) -> None:
        super().__init__(message, path, field=field)
        self.errno = errno


class ModelError(ClbiasError):
    """A model directory that is missing, incomplete or does not match its manifest."""


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an exception's message, for one-line errors; never raises (an empty
    message, or a `__str__` that itself fails, gives the exception's type name)."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the original error
        text = ""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__

"""Untrusted text made inert: ids, names, metadata and model names come from files anyone can write."""
from __future__ import annotations

import re
from dataclasses import fields, is_dataclass, replace
from typing import Any, TypeVar

# C0 and C1 controls (ESC starts terminal sequences; CR and BS overprint; NUL and BEL misbehave), and the
# bidirectional overrides and isolates that reorder what a terminal or an editor shows ("Trojan Source").
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile("\r\n|[\n\r\x0b\x0c\x85\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: object) -> str:
    """`text` with every control and bidi-override character written as a visible escape (\\x1b, \\u202e)."""
    return _UNSAFE.sub(_escape, str(text))


def one_line(text: object) -> str:
    """`inert`, with line breaks turned into spaces first (a table cell, a line of a list)."""
    return inert(_LINE_BREAKS.sub(" ", str(text)))


T = TypeVar("T")
_PLAIN = (int, float, bool, type(None))


def inert_copy(obj: T) -> T:
    """A copy of a report (dataclasses, lists, dicts) whose strings, keys included, are `inert`; the
    numbers are shared, not copied."""
    return _inert(obj)  # _inert keeps the type of what it is given


def _inert(obj: Any) -> Any:
    if isinstance(obj, str):
        return inert(obj) if _UNSAFE.search(obj) else obj
    if isinstance(obj, _PLAIN):
        return obj
    if is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _inert(getattr(obj, f.name)) for f in fields(obj) if f.init and f.name != "run"}
        return replace(obj, **changes)
    if isinstance(obj, list):
        if all(type(x) in _PLAIN for x in obj):
            return obj
        return [_inert(x) for x in obj]
    if isinstance(obj, tuple):
        return tuple(_inert(x) for x in obj)
    if isinstance(obj, dict):
        return {_inert(k): _inert(v) for k, v in obj.items()}
    return obj

"""Reading `Report.truncation` for the renderers: counts per model, text kind and language, and (when the
audit recorded them) the first truncated ids per language, under `passage_ids`/`query_ids` either at the top
level or inside a model's entry. Any other shape is ignored, never a crash."""
from __future__ import annotations

from typing import Any

from .model import Report

ID_KEYS = {"passage_ids": "passage", "query_ids": "query"}


def _is_ids(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, list) for v in value.values())


def truncation_counts(report: Report) -> list[tuple[str, str, dict[str, int]]]:
    """(model, text kind, {lang: n > 0}) for every model and kind, zero counts dropped."""
    out = []
    for model, kinds in report.truncation.items():
        if model in ID_KEYS or not isinstance(kinds, dict):
            continue
        for kind, langs in kinds.items():
            if kind in ID_KEYS or not isinstance(langs, dict):
                continue
            out.append((model, kind, {l: int(n) for l, n in langs.items() if isinstance(n, (int, float)) and n}))
    return out


def truncation_ids(report: Report) -> dict[str, dict[str, list[str]]]:
    """text kind -> lang -> truncated ids (as recorded; the audit keeps the first few)."""
    out: dict[str, dict[str, list[str]]] = {}

    def add(key: str, value: Any) -> None:
        if key in ID_KEYS and _is_ids(value):
            for lang, ids in value.items():
                merged = out.setdefault(ID_KEYS[key], {}).setdefault(lang, [])
                merged += [str(i) for i in ids if str(i) not in merged]

    for key, value in report.truncation.items():
        add(key, value)
        if isinstance(value, dict):
            for inner, ids in value.items():
                add(inner, ids)
    return out


def truncation_line(report: Report, budget: int | None = None) -> str:
    """`truncated texts: m passage: de 2` and, when ids were recorded, a second line naming the first ones;
    with `budget`, that line stops near `budget` characters and says how many ids it left out."""
    lines = [f"{m} {kind}: " + ", ".join(f"{l} {n}" for l, n in langs.items())
             for m, kind, langs in truncation_counts(report) if langs]
    text = "truncated texts: " + ("; ".join(lines) if lines else "none")
    ids = [(f"{kind} {lang}", i) for kind, langs in truncation_ids(report).items() for lang, v in langs.items() for i in v]
    if not ids:
        return text
    head, shown = "  first truncated ids: ", 0
    groups: list[tuple[str, str]] = []
    for group, i in ids:
        piece = f"{group}: {i}" if not groups or groups[-1][0] != group else i
        if budget is not None and len(head) + sum(len(p) + 2 for _, p in groups) + len(piece) > budget - 24:
            break
        groups.append((group, piece))
        shown += 1
    joined = ""
    for n, (group, piece) in enumerate(groups):
        joined += ("" if n == 0 else ", " if groups[n - 1][0] == group else "; ") + piece
    rest = len(ids) - shown
    return text + "\n" + head + joined + (f" … {rest} more (--detail)" if rest else "")

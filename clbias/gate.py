"""`--fail-if` bias gates for CI: `eir>20`, `multi:max_r_norm<60`, `multi:zh:eir>=25`, comma-separated.

A gate is broken when the metric of any matching scenario (of the first model) satisfies the condition.
"""
from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Callable

from .errors import InputError
from .metrics import registry
from .report.model import Report

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt,
}
_GATE = re.compile(r"^\s*(?:(?P<kind>[a-z-]+):)?(?:(?P<lang>[A-Za-z-]+):)?(?P<metric>[a-z0-9_@]+)\s*"
                   r"(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class Gate:
    text: str
    metric: str
    op: str
    value: float
    kind: str | None = None
    lang: str | None = None

    def broken_by(self, report: Report) -> list[str]:
        hits = []
        for r in report.scenarios:
            if self.kind and r.kind != self.kind or self.lang and r.query_lang != self.lang:
                continue
            value = r.metrics.get(self.metric)
            if value is not None and _OPS[self.op](value, self.value):
                hits.append(f"{r.name}: {self.metric}={value:g} ({self.text})")
        return hits


def parse_gates(expr: str) -> list[Gate]:
    gates = []
    for part in expr.split(","):
        match = _GATE.match(part)
        if not match:
            raise InputError(f"cannot parse {part.strip()!r}: expected [scenario:][lang:]METRIC OP NUMBER, e.g. eir>20",
                             field="--fail-if")
        metric = match["metric"]
        try:
            registry.get_metric(metric)
        except InputError:
            raise InputError(f"unknown metric {metric!r} in {part.strip()!r}", field="--fail-if") from None
        gates.append(Gate(part.strip(), metric, match["op"], float(match["value"]), match["kind"], match["lang"]))
    return gates


def broken_gates(gates: list[Gate], report: Report) -> list[str]:
    return [hit for gate in gates for hit in gate.broken_by(report)]

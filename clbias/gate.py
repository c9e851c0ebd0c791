"""`--fail-if` bias gates for CI: `eir>20`, `zh:eir>20`, `multi:zh:max_r_norm<60`, `eir.low>20`, comma-separated.

Grammar: `[scenario:][lang:]metric[.low|.high] OP number`, OP one of > >= < <= == !=. `scenario` is a scenario
kind (multi, mono-same, ...), `lang` a query language, normalised like `--langs`; `.low`/`.high` gate on the
bound of the metric's 95% CI instead of its value (`eir.low>20`: fail only on significant inclination).
A gate is broken when the value of any matching scenario (of the first model) satisfies the condition.
A gate that can match nothing (unknown kind, a language the corpus lacks, a metric the audit does not compute,
no scenario where the metric is defined) is an InputError, never a silent pass.
"""
from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from .errors import InputError
from .langs import normalize_lang
from .metrics import registry
from .report.model import Report
from .scenarios import SCENARIO_KINDS

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt,
}
_GATE = re.compile(r"^\s*(?P<target>[^<>=!]*?)\s*(?P<op>>=|<=|==|!=|>|<)\s*"
                   r"(?P<value>[-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*$")
_METRIC = re.compile(r"^(?P<metric>[a-z0-9_@]+)(?:\.(?P<bound>low|high))?$")
_SYNTAX = "expected [scenario:][lang:]METRIC[.low|.high] OP NUMBER, e.g. eir>20, zh:eir>20, multi:de:eir.low>10"
FIELD = "--fail-if"


@dataclass(frozen=True)
class Gate:
    text: str
    metric: str
    op: str
    value: float
    kind: str | None = None
    lang: str | None = None
    bound: str | None = None  # None: the point estimate; "low"/"high": that bound of its CI

    def selects(self, kind: str, query_lang: str) -> bool:
        return (self.kind is None or kind == self.kind) and (self.lang is None or query_lang == self.lang)

    def value_of(self, metrics: dict[str, float | None], ci: dict[str, list[float] | None]) -> float | None:
        if self.bound is None:
            return metrics.get(self.metric)
        pair = ci.get(self.metric)
        return None if pair is None else pair[0 if self.bound == "low" else 1]

    @property
    def label(self) -> str:
        return self.metric if self.bound is None else f"{self.metric}.{self.bound}"


@dataclass(frozen=True)
class GateTarget:
    """What a gate can match: a scenario, planned (before embedding) or scored."""

    name: str
    kind: str
    query_lang: str


def _error(gate_text: str, reason: str) -> InputError:
    return InputError(f"gate {gate_text!r}: {reason}", field=FIELD)


def parse_gate(text: str) -> Gate:
    text = text.strip()
    match = _GATE.match(text)
    if not match:
        raise _error(text, f"cannot parse: {_SYNTAX}")
    *scope, metric_text = match["target"].split(":")
    if len(scope) > 2 or not metric_text.strip():
        raise _error(text, f"cannot parse: {_SYNTAX}")
    scope = [part.strip() for part in scope]
    kind_text = scope[0] if len(scope) == 2 or (scope and scope[0].lower() in SCENARIO_KINDS) else None
    lang_text = scope[-1] if scope and (len(scope) == 2 or kind_text is None) else None
    if kind_text is not None and kind_text.lower() not in SCENARIO_KINDS:
        raise _error(text, f"unknown scenario kind {kind_text!r} (known: {', '.join(SCENARIO_KINDS)})")
    lang = normalize_lang(lang_text) if lang_text is not None else None
    if lang_text is not None and lang is None:
        if len(scope) == 2:
            raise _error(text, f"unknown language code {lang_text!r}")
        raise _error(text, f"{lang_text!r} is neither a scenario kind ({', '.join(SCENARIO_KINDS)}) nor a language code")
    kind = kind_text.lower() if kind_text is not None else None
    metric_match = _METRIC.match(metric_text.strip().lower())
    if not metric_match:
        raise _error(text, f"cannot parse metric {metric_text.strip()!r}: {_SYNTAX}")
    try:
        metric = registry.get_metric(metric_match["metric"]).name
    except InputError as exc:
        raise _error(text, exc.reason) from None
    return Gate(text, metric, match["op"], float(match["value"]), kind, lang, metric_match["bound"])


def parse_gates(expr: str) -> list[Gate]:
    """Parse a comma-separated list of gates (syntax, scenario kinds, language codes, metric names)."""
    parts = expr.split(",")
    if not expr.strip() or any(not p.strip() for p in parts):
        raise InputError(f"empty gate in {expr!r}: {_SYNTAX}", field=FIELD)
    return [parse_gate(p) for p in parts]


def check_gates(gates: Iterable[Gate], targets: Sequence[GateTarget], metrics: Iterable[str],
                langs: Iterable[str], k: int | None = None) -> None:
    """Raise an InputError for the first gate that can match nothing: its language is not in the corpus, its
    metric is not one the audit computes (k-dependent names must use the audit's k), or no target matches."""
    computed = set(metrics)
    corpus_langs = sorted(set(langs))
    for gate in gates:
        if gate.lang is not None and gate.lang not in corpus_langs:
            raise _error(gate.text, f"language {gate.lang!r} is not in the corpus ({', '.join(corpus_langs)})")
        if gate.metric not in computed:
            family, at, cutoff = gate.metric.partition("@")
            hint = f" (it runs with k={k}: use {family}@{k}, or --k {cutoff})" if at and k is not None else ""
            raise _error(gate.text, f"metric {gate.metric!r} is not computed by this audit{hint}")
        if not any(gate.selects(t.kind, t.query_lang) for t in targets):
            where = " ".join(x for x in (gate.kind and f"{gate.kind} scenario", gate.lang and f"with {gate.lang} "
                                                                                             "queries") if x)
            raise _error(gate.text, f"matches no scenario of this audit (no {where or 'scenario at all'})")


def _report_langs(report: Report) -> set[str]:
    langs = set(report.corpus.get("doc_langs") or []) | set(report.corpus.get("query_langs") or [])
    for r in report.scenarios:
        langs.update(r.pool_langs)
        langs.add(r.query_lang)
    return langs


def broken_gates(gates: Sequence[Gate], report: Report) -> list[str]:
    """One line per (gate, scenario) that breaks a bound; an InputError if a gate matches nothing in `report`."""
    targets = [GateTarget(r.name, r.kind, r.query_lang) for r in report.scenarios]
    metrics = {name for r in report.scenarios for name in r.metrics}
    check_gates(gates, targets, metrics, _report_langs(report), report.settings.get("k"))
    hits = []
    for gate in gates:
        matched = False
        for r in report.scenarios:
            if not gate.selects(r.kind, r.query_lang):
                continue
            value = gate.value_of(r.metrics, r.ci)
            bound = r.by_model[report.models[0].name].bounds.get(gate.metric) if r.by_model else None
            if value is None and bound is not None:  # censored: the end of the bounds (or of their CI) that
                pair = bound.get("ci") if gate.bound else [bound.get("low"), bound.get("high")]  # breaks first
                value = None if not pair else pair[1 if gate.op.startswith(">") else 0]
            if value is None:
                continue
            matched = True
            if _OPS[gate.op](value, gate.value):
                hits.append(f"{r.name}: {gate.label}={value:g}{' (a bound: censored)' if bound else ''} ({gate.text})")
        if not matched:
            raise _error(gate.text, f"{gate.label} is undefined in every scenario it selects (e.g. EIR has no value "
                                    "for English queries, a CI needs at least two queries)")
    return hits

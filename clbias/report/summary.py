"""The summary table every renderer leads with: one row per non-English language X, one column per scenario
with its headline metric (value and CI in the same cell)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .display import at_k
from .model import Report, ScenarioResult

from ..langs import ENGLISH


@dataclass(frozen=True)
class SummaryColumn:
    scenario: str  # header: "multi", "mono-same", "X→en", "en→X", "full"
    kind: str
    metric: str  # registry key
    with_ci: bool = True

    def matches(self, r: ScenarioResult, lang: str) -> bool:
        if r.kind != self.kind:
            return False
        if self.scenario == "X→en":
            return r.query_lang == lang and list(r.pool_langs) == [ENGLISH]
        if self.scenario == "en→X":
            return r.query_lang == ENGLISH and list(r.pool_langs) == [lang]
        if self.kind == "mono-same":
            return r.query_lang == lang and list(r.pool_langs) == [lang]
        return r.query_lang == lang


def _has(report: Report, kind: str, metric: str) -> bool:
    return any(r.kind == kind and any(s.metrics.get(metric) is not None or metric in s.bounds for s in r.by_model.values())
               for r in report.scenarios)


def summary_columns(report: Report) -> list[SummaryColumn]:
    k = int(report.settings.get("k", 10))
    ndcg, complete = at_k("ndcg@{k}", k), at_k("complete@{k}", k)
    wanted = [SummaryColumn("multi", "multi", "twin_pref"), SummaryColumn("multi", "multi", "eir"),
              SummaryColumn("multi", "multi", "eir_neutral", with_ci=False),
              SummaryColumn("multi", "multi", "max_r_norm"), SummaryColumn("multi", "multi", complete),
              SummaryColumn("mono-same", "mono-same", ndcg), SummaryColumn("X→en", "mono-cross", ndcg),
              SummaryColumn("en→X", "mono-cross", ndcg), SummaryColumn("full", "full", "max_r_norm")]
    return [c for c in wanted if _has(report, c.kind, c.metric)]


def summary_langs(report: Report) -> list[str]:
    langs = [l for l in report.corpus.get("doc_langs", []) if l != ENGLISH and not l.startswith(ENGLISH + "-")]
    used = {r.query_lang for r in report.scenarios if r.kind != "matrix"} | {
        p for r in report.scenarios if r.kind != "matrix" for p in r.pool_langs}
    return [l for l in langs if l in used]


def summary_cell(report: Report, column: SummaryColumn, lang: str, model: str
                 ) -> tuple[float | None, list[float] | None] | None:
    """(value, CI or None) of `column` for language `lang` and `model`; None when the report has no such scenario."""
    for r in report.scenarios:
        if column.matches(r, lang) and model in r.by_model:
            s = r.by_model[model]
            return s.metrics.get(column.metric), s.ci.get(column.metric) if column.with_ci else None
    return None


def summary_bound(report: Report, column: SummaryColumn, lang: str, model: str) -> dict[str, Any] | None:
    """The bounds of `column` where the system's rankings leave it open (ModelScores.bounds), else None."""
    for r in report.scenarios:
        if column.matches(r, lang) and model in r.by_model:
            return r.by_model[model].bounds.get(column.metric)
    return None

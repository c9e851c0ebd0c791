"""The summary table every renderer leads with: an English row, then one row per non-English language X; one
column per scenario with its headline metric (value and CI in the same cell).

Columns carry a `drop` rank: a renderer short of width drops the highest first (neutral EIR, then the
cross-lingual and full-pool columns), and the Mono-Same control is kept until only the evidence is left.
The English row fills only the columns that have one English-query value (Mono-Same en→en, full); the Multi
pools have one English-query value per language X, so those cells stay empty there."""
from __future__ import annotations

from dataclasses import dataclass

from .display import at_k
from .model import Report, ScenarioResult

from ..langs import ENGLISH


@dataclass(frozen=True)
class SummaryColumn:
    scenario: str  # header: "multi", "mono-same", "X→en", "en→X", "full"
    kind: str
    metric: str  # registry key
    with_ci: bool = True
    drop: int = 0  # a renderer short of width drops the highest rank first; 0 is never dropped

    def matches(self, r: ScenarioResult, lang: str) -> bool:
        if r.kind != self.kind:
            return False
        if _is_en(lang) and self.kind not in ("mono-same", "full"):
            return False
        if self.scenario == "X→en":
            return r.query_lang == lang and list(r.pool_langs) == [ENGLISH]
        if self.scenario == "en→X":
            return r.query_lang == ENGLISH and list(r.pool_langs) == [lang]
        if self.kind == "mono-same":
            return r.query_lang == lang and list(r.pool_langs) == [lang]
        return r.query_lang == lang


def _has(report: Report, kind: str, metric: str) -> bool:
    return any(r.kind == kind and any(s.metrics.get(metric) is not None for s in r.by_model.values())
               for r in report.scenarios)


def summary_columns(report: Report) -> list[SummaryColumn]:
    k = int(report.settings.get("k", 10))
    ndcg, complete = at_k("ndcg@{k}", k), at_k("complete@{k}", k)
    wanted = [SummaryColumn("multi", "multi", "twin_pref", drop=0), SummaryColumn("multi", "multi", "eir", drop=4),
              SummaryColumn("multi", "multi", "eir_neutral", with_ci=False, drop=8),
              SummaryColumn("multi", "multi", "max_r_norm", drop=2), SummaryColumn("multi", "multi", complete, drop=3),
              SummaryColumn("mono-same", "mono-same", ndcg, drop=1), SummaryColumn("X→en", "mono-cross", ndcg, drop=5),
              SummaryColumn("en→X", "mono-cross", ndcg, drop=6), SummaryColumn("full", "full", "max_r_norm", drop=7)]
    return [c for c in wanted if _has(report, c.kind, c.metric)]


def drop_one(columns: list[SummaryColumn]) -> list[SummaryColumn]:
    """`columns` without the one a narrow renderer gives up first (the highest `drop` rank)."""
    if len(columns) <= 1:
        return columns
    last = max(range(len(columns)), key=lambda i: (columns[i].drop, i))
    return columns[:last] + columns[last + 1:]


def _is_en(lang: str) -> bool:
    return lang == ENGLISH or lang.startswith(ENGLISH + "-")


def summary_langs(report: Report, columns: list[SummaryColumn] | None = None) -> list[str]:
    """The rows: English first (when one of `columns`, default all, has an English-query value), then the
    other languages."""
    langs = [l for l in report.corpus.get("doc_langs", []) if not _is_en(l)]
    used = {r.query_lang for r in report.scenarios if r.kind != "matrix"} | {
        p for r in report.scenarios if r.kind != "matrix" for p in r.pool_langs}
    rows = [l for l in langs if l in used]
    columns = summary_columns(report) if columns is None else columns
    english = [l for l in report.corpus.get("doc_langs", []) if _is_en(l)][:1]
    if rows and english and any(summary_cell(report, c, english[0], m.name) is not None
                                for c in columns for m in report.models):
        rows.insert(0, english[0])
    return rows


def summary_cell(report: Report, column: SummaryColumn, lang: str, model: str
                 ) -> tuple[float | None, list[float] | None] | None:
    """(value, CI or None) of `column` for language `lang` and `model`; None when the report has no such scenario."""
    for r in report.scenarios:
        if column.matches(r, lang) and model in r.by_model:
            s = r.by_model[model]
            return s.metrics.get(column.metric), s.ci.get(column.metric) if column.with_ci else None
    return None

"""The views of a report that every renderer shows, computed once per render and handed to each renderer.

`report_views(report)` derives the verdict, the summary (columns, rows and cells), the scenario groups, the
language matrices and the metric columns of each table; the terminal, Markdown and HTML renderers read these
instead of re-deriving them, so a report renders the same verdict and the same columns everywhere and the
verdict is computed once however many files are written. Columns and their order come from the metric
registry (`display.registry_order`): a metric added there appears in every table that has values for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..text import inert_copy
from .display import FIELD_COLUMNS, is_ranking_metric, registry_order
from .matrix import MATRIX_METRICS, LanguageMatrix, language_matrix
from .model import Report, ScenarioResult
from .summary import SummaryColumn, summary_cell, summary_columns, summary_langs
from .verdict import Leaning, Verdict, verdict

TOP1_PREFIX = "top1_"
# The field's metrics have their own table in every renderer (docs/field-metrics.md); not scenario columns.
FIELD_PREFIXES = frozenset(template.partition("@")[0] for template in FIELD_COLUMNS)
PAIR_GAP_METRICS = ("twin_rank_gap", "twin_score_gap")  # detail columns: HTML and Markdown, not the terminal

Cell = tuple[float | None, list[float] | None]


@dataclass(frozen=True)
class SummaryRow:
    lang: str
    model: str
    first: bool  # the first row of its language (the language is printed once)
    leaning: Leaning
    cells: list[Cell | None]  # aligned with ReportViews.summary_columns; None: no such scenario


@dataclass(frozen=True)
class ReportViews:
    verdict: Verdict
    summary_columns: list[SummaryColumn]
    summary_rows: list[SummaryRow]
    scenario_columns: list[str]  # registry keys, registry order, top-1 decomposition apart
    top1_columns: list[str]
    gap_columns: list[str]
    comparison_columns: list[str]  # metrics with a paired difference, registry order, top-1 decomposition apart
    by_kind: dict[str, list[ScenarioResult]]
    matrices: list[LanguageMatrix] = field(default_factory=list)  # per model, per MATRIX_METRICS entry
    many_models: bool = False

    def summary_rows_for(self, columns: list[SummaryColumn]) -> list[SummaryRow]:
        """The rows restricted to `columns` (a subset of `summary_columns`, e.g. what fits a terminal)."""
        index = [self.summary_columns.index(c) for c in columns]
        return [SummaryRow(r.lang, r.model, r.first, r.leaning, [r.cells[i] for i in index]) for r in self.summary_rows]

    @property
    def terminal_scenario_columns(self) -> list[str]:
        return [key for key in self.scenario_columns if key not in PAIR_GAP_METRICS]


def _own_table(key: str) -> bool:
    return key.startswith(TOP1_PREFIX) or key.partition("@")[0] in FIELD_PREFIXES


def _present(report: Report) -> list[str]:
    keys = {key for r in report.scenarios for s in r.by_model.values() for key, v in s.metrics.items()
            if v is not None and not key.partition("@")[0] in FIELD_PREFIXES}
    return registry_order(keys)


def _gap_keys(report: Report) -> list[str]:
    return registry_order({key for g in report.gaps for key, v in g.metrics.items()
                           if v is not None and is_ranking_metric(key)})


def _compared(report: Report) -> list[str]:
    return registry_order({key for r in report.scenarios for c in r.comparisons for key, change in c.metrics.items()
                           if change and change.get("diff") is not None and not _own_table(key)})


def report_views(report: Report) -> ReportViews:
    """The views of `report`, derived from its inert copy: ids, names and metadata are untrusted, so no control
    or escape character reaches a renderer through a view (the renderers inert the report the same way)."""
    report = inert_copy(report)
    found = verdict(report)
    columns = summary_columns(report)
    rows = []
    for lang in summary_langs(report, columns):
        for i, model in enumerate(m.name for m in report.models):
            rows.append(SummaryRow(lang, model, i == 0, found.leaning(lang, model),
                                   [summary_cell(report, c, lang, model) for c in columns]))
    present = _present(report)
    by_kind: dict[str, list[ScenarioResult]] = {}
    for r in report.scenarios:
        by_kind.setdefault(r.kind, []).append(r)
    matrices = [m for name in (m.name for m in report.models) for metric in MATRIX_METRICS
                if (m := language_matrix(report, name, metric)) is not None]
    return ReportViews(
        verdict=found, summary_columns=columns, summary_rows=rows,
        scenario_columns=[k for k in present if not k.startswith(TOP1_PREFIX)],
        top1_columns=[k for k in present if k.startswith(TOP1_PREFIX)],
        gap_columns=_gap_keys(report), comparison_columns=_compared(report), by_kind=by_kind, matrices=matrices, many_models=len(report.models) > 1)

"""The whole HTML page: CSS, the order of its sections (verdict first), and the plots section."""
from __future__ import annotations

from pathlib import Path

from ...io import write_text_atomic
from ...text import inert_copy
from ..matrix import MATRIX_METRICS, language_matrix
from ..model import Report, ScenarioResult
from ..verdict import verdict
from .cards import _cards, _title
from .plot_comparison import plot_model_comparison
from .plot_matrix import plot_language_matrix
from .plot_metric_bars import plot_metric_bars
from .plot_topk_mix import plot_topk_mix
from .plot_twins import plot_rank_of_twins
from .svg import BETTER, EN_COLOUR, FONT, GRID, INK, MUTED, SAME_COLOUR, WORSE, _e, _figure, _k
from .tables import (field_table, gap_table, glossary, matrix_table, neighbour_table, notes_html, scenario_table,
                     summary_table, top1_table, truncation_table, verdict_html)

CSS = f"""
:root {{ --ink: {INK}; --muted: {MUTED}; --grid: {GRID}; --en: {EN_COLOUR}; --same: {SAME_COLOUR}; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; background: #f4f6f8; color: var(--ink); font: 14px/1.45 {FONT};
       -webkit-font-smoothing: antialiased; }}
main {{ max-width: 1260px; margin: 0 auto; padding: 28px 28px 60px; }}
h1 {{ font-size: 24px; font-weight: 650; margin: 0 0 4px; letter-spacing: -0.01em; }}
h2 {{ font-size: 18px; font-weight: 620; margin: 34px 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--grid); }}
h3 {{ font-size: 15px; font-weight: 600; margin: 18px 0 8px; }}
p.lede {{ color: var(--muted); margin: 0 0 18px; }}
.card {{ background: #fff; border: 1px solid var(--grid); border-radius: 8px; padding: 14px 18px; margin: 0 0 14px; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 14px; }}
.grid .card {{ margin: 0; }}
.card h3 {{ margin-top: 0; font-size: 13px; text-transform: uppercase; letter-spacing: 0.06em; color: var(--muted); }}
dl {{ display: grid; grid-template-columns: max-content 1fr; gap: 3px 14px; margin: 0; }}
dt {{ color: var(--muted); }}
dd {{ margin: 0; overflow-wrap: anywhere; }}
code, .mono {{ font-family: "JetBrains Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }}
.sha {{ font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 11.5px; color: #3a4653;
        background: #f1f3f5; padding: 1px 5px; border-radius: 4px; overflow-wrap: anywhere; }}
.en {{ color: var(--en); font-weight: 600; }}
.tablewrap {{ overflow-x: auto; background: #fff; border: 1px solid var(--grid); border-radius: 8px; margin: 0 0 14px; }}
table {{ border-collapse: collapse; width: 100%; font-size: 12.5px; font-variant-numeric: tabular-nums; }}
caption {{ text-align: left; padding: 10px 12px 6px; font-weight: 600; color: var(--ink); }}
th {{ text-align: right; font-weight: 600; color: var(--muted); padding: 6px 10px; border-bottom: 1px solid var(--grid);
      background: #fafbfc; white-space: nowrap; }}
td {{ text-align: right; padding: 5px 10px; border-bottom: 1px solid #eef1f4; vertical-align: top; white-space: nowrap; }}
th.l, td.l {{ text-align: left; }}
tr.first td {{ border-top: 1px solid #d9dee4; }}
tr.delta td {{ background: #fbfaf6; }}
tr.qen td.lang {{ color: var(--en); font-weight: 600; }}
.ci {{ display: block; color: #8a95a1; font-size: 11px; }}
.better {{ color: {BETTER}; font-weight: 600; }}
.worse {{ color: {WORSE}; font-weight: 600; }}
.wtl {{ display: block; color: #8a95a1; font-size: 11px; }}
figure {{ background: #fff; border: 1px solid var(--grid); border-radius: 8px; margin: 0 0 18px; padding: 14px 16px 10px; }}
figure svg {{ display: block; max-width: 100%; height: auto; font-family: {FONT}; }}
figcaption {{ color: var(--muted); font-size: 12.5px; margin-top: 8px; max-width: 1100px; }}
figcaption b {{ color: var(--ink); }}
.note {{ background: #fff8ec; border: 1px solid #f0dcb8; border-left: 4px solid var(--en); border-radius: 6px;
         padding: 8px 12px; margin: 6px 0; }}
.muted {{ color: var(--muted); }}
details > summary {{ cursor: pointer; font-weight: 600; margin: 8px 0; }}
dd details > summary {{ font-weight: 400; font-size: 12px; margin: 2px 0; }}
.verdict {{ background: #fff; border: 1px solid var(--grid); border-left: 4px solid var(--same); border-radius: 8px;
            padding: 4px 18px 8px; margin: 18px 0 14px; }}
.verdict h2 {{ border: 0; margin: 10px 0 4px; }}
.verdict li {{ margin: 4px 0; }}
td.lean-english {{ color: var(--en); font-weight: 650; }}
td.lean-own {{ color: var(--same); font-weight: 650; }}
td.diag {{ font-weight: 650; }}
footer {{ color: var(--muted); font-size: 12px; margin-top: 30px; }}
"""


def _plots(report: Report) -> str:
    k = _k(report)
    out = []
    names = [m.name for m in report.models]
    for name in names:
        if len(names) > 1:
            out.append(f"<h3>model {_e(name)}</h3>")
        out.append(_figure("rank-of-twins", plot_rank_of_twins(report, name), (
            "<b>Where the two relevant language versions land.</b> Multi scenarios (pool = English + X documents): "
            "one row of dots per query; the <span class=\"en\">amber</span> dot is the rank of the relevant English "
            "version, the blue dot the rank of the relevant version in X, joined by a line. Ranks are derived from "
            "each query's Max@R and twin rank gap: exact with one relevant twin pair per query, approximate (≈ in "
            "the tooltip) with several. The grey tick marks the pool size, the dashed line the cutoff k; the bar on "
            "the right counts the queries whose English version ranks higher; the tall ticks are the median ranks."), name))
        out.append(_figure("topk-language-mix", plot_topk_mix(report, name), (
            "<b>Language mix of the results.</b> Left: what each query's top-1 result is — relevant or irrelevant, "
            f"in the query's language (blue), in <span class=\"en\">English</span> (amber) or in a third language "
            "(grey); for English queries the query's language is English, so those segments are amber too. "
            f"Right: English exposure@{k}, the English share of the top {k} divided by its share of the "
            "pool, with its 95% CI; right of the dashed parity line English is over-exposed."), name))
        out.append(_figure("metric-bars", plot_metric_bars(report, name), (
            "<b>Per-language metrics, Multi scenario.</b> For each language X, the pool holds the English and X "
            "documents; blue bars are X queries, <span class=\"en\">amber</span> bars English queries (EIR applies "
            "to non-English queries only). Max@R_norm: 100 = every relevant version at the top; Complete@k: % of "
            "queries with both versions in the top k; EIR: % of X queries where an irrelevant English document "
            "outranks the best relevant X document (lower is better)."), name))
    for base in names[:1]:
        for other in names[1:]:
            out.append(_figure("model-comparison", plot_model_comparison(report, base, other), (
                f"<b>{_e(other)} versus {_e(base)}.</b> Per scenario, the mean per-query difference "
                f"({_e(other)} − {_e(base)}) with its paired 95% bootstrap CI; green when the CI excludes 0 in "
                f"{_e(other)}'s favour, red against it, by each metric's direction (EIR: lower is better; English "
                "exposure: closer to 1 is better). Right: per-query wins, ties and losses on Max@R_norm."),
                f"{other} vs {base}"))
    return "".join(out)


def _matrix_section(report: Report) -> str:
    out = []
    for name in (m.name for m in report.models):
        for metric in MATRIX_METRICS:
            m = language_matrix(report, name, metric)
            if m is None:
                continue
            out.append(_figure("language-matrix", plot_language_matrix(m), (
                f"<b>Language matrix, {_e(m.metric)}, {_e(name)}.</b> Every query language (rows) searching a pool "
                "of one language (columns); the diagonal is monolingual retrieval. Darker = higher. Margins: the "
                "mean cross-lingual penalty S(X,Y) − S(X,X) per query language (right) and per pool language "
                "(bottom); each cell's tooltip gives its CI, penalty and direction asymmetry S(X,Y) − S(Y,X)."), name))
            out.append(matrix_table(m))
    return "".join(out)


def to_html(report: Report) -> str:
    """The whole report as one self-contained HTML page (no scripts, no external resources)."""
    report = inert_copy(report)  # control characters shown as escapes; HTML is escaped where it is written
    found = verdict(report)
    kinds: dict[str, list[ScenarioResult]] = {}
    for r in report.scenarios:
        kinds.setdefault(r.kind, []).append(r)
    tables = "".join(f"<details {'open' if kind != 'matrix' else ''}><summary>{_e(kind)} · {len(results)} "
                     f"scenarios</summary>{scenario_table(report, kind, results)}</details>"
                     for kind, results in kinds.items())
    body = [_title(report), verdict_html(found), summary_table(report, found), _cards(report)]
    if report.notes:
        body.append(f"<h2>Notes</h2>{notes_html(report)}")
    matrix = _matrix_section(report)
    if matrix:
        body.append(f"<h2>Language matrix</h2>{matrix}")
    body.append(f"<h2>Plots</h2>{_plots(report)}")
    body.append("<h2>Scenarios</h2><p class=\"lede\">Each cell: mean over queries and its 95% CI. "
                "Δ rows: paired difference to the first model, * and colour when its 95% CI excludes 0 (green: better, "
                "red: worse, by the metric's direction), with per-query wins/ties/losses. Rows with English queries are "
                "in amber.</p>" + (tables or '<p class="muted">no scenario</p>'))
    extra = gap_table(report) + top1_table(report)
    if extra:
        body.append(f"<h2>Language gap and top-1 decomposition</h2>{extra}")
    field = field_table(report)
    if field:
        body.append(f"<h2>The field's metrics</h2>{field}")
    truncation = truncation_table(report) or '<p class="muted">no truncation recorded</p>'
    body.append(f"<h2>Truncation</h2>{truncation}")
    if report.neighbours:
        body.append(f"<h2>Label-free view</h2>{neighbour_table(report)}")
    metrics = glossary(report)
    if metrics:
        body.append(f"<h2>Metrics</h2>{metrics}")
    timings = ", ".join(f"{_e(k)} {_e(v)}" for k, v in report.timings.items())
    body.append(f"<footer>schema {_e(report.schema)} · clbias {_e(report.environment.get('clbias'))}"
                + (f" · timings: {timings}" if timings else "") + "</footer>")
    title = f"clbias audit · {report.corpus.get('name')}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>{''.join(body)}</main></body></html>\n")


def write_html(report: Report, path: str | Path) -> None:
    write_text_atomic(path, to_html(report))

"""The HTML tables of the report, and its verdict."""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from ..display import at_k, change_class, display, field_keys, gap_pairs, significant
from ..matrix import LanguageMatrix
from ..model import LanguageGap, Report, ScenarioResult
from ..summary import summary_cell, summary_columns, summary_langs
from ..truncation import truncation_counts, truncation_ids
from ..verdict import LEANING_SHORT, Verdict
from .cards import _langs_html
from .svg import TOP1_COLOURS, _cell, _e, _is_en, _k

SCENARIO_COLUMNS = ("max_r", "max_r_norm", "complete@{k}", "ndcg@{k}", "recall@{k}", "mrr@{k}", "eir",
                    "en_exposure@{k}")
OPTIONAL_COLUMNS = ("twin_pref", "eir_neutral")
GAP_COLUMNS = ("max_r_norm", "complete@{k}", "ndcg@{k}", "mrr@{k}")


def _th(key: str) -> tuple[str, bool, str]:
    d = display(key)
    return d.title, False, d.description


def _table(caption: str, head: Sequence[tuple[str, bool] | tuple[str, bool, str]], rows: Iterable[str],
           data: str) -> str:
    """`head`: (title, left-aligned[, tooltip]) per column; rows are HTML already."""
    ths = []
    for h in head:
        title = f' title="{_e(h[2])}"' if len(h) > 2 and h[2] else ""
        label = _e(h[0]).replace("\n", "<br>")  # a title may break onto two lines
        ths.append(f'<th class="l"{title}>{label}</th>' if h[1] else f"<th{title}>{label}</th>")
    return (f'<div class="tablewrap"><table data-table="{_e(data)}"><caption>{_e(caption)}</caption>'
            f"<thead><tr>{''.join(ths)}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def verdict_html(found: Verdict) -> str:
    items = "".join(f"<li>{_e(s)}</li>" for s in found.sentences)
    return f'<section class="verdict" data-section="verdict"><h2>Verdict</h2><ul>{items}</ul></section>'


def summary_table(report: Report, found: Verdict) -> str:
    columns = summary_columns(report)
    langs = summary_langs(report)
    if not columns or not langs:
        return ""
    many = len(report.models) > 1
    head: list[Any] = [("lang", True)] + ([("model", True)] if many else []) + [("verdict", True)]
    head += [(f"{c.scenario}\n{display(c.metric).title}", False, display(c.metric).description) for c in columns]
    rows = []
    for lang in langs:
        for i, m in enumerate(report.models):
            cells = "".join(f"<td>{_cell(c.metric, *cell)}</td>" if (cell := summary_cell(report, c, lang, m.name))
                            else "<td></td>" for c in columns)
            leaning = found.leaning(lang, m.name)
            lead = f'<td class="l">{_e(lang) if i == 0 else ""}</td>' + (f'<td class="l">{_e(m.name)}</td>' if many else "")
            rows.append(f'<tr class="{"summary-first" if i == 0 else ""}">{lead}<td class="l lean-{_e(leaning)}">'
                        f"{_e(LEANING_SHORT[leaning] or '–')}</td>{cells}</tr>")
    return _table("summary by language: value and 95% CI (X = the row's language)", head, rows, "summary")


def matrix_table(m: LanguageMatrix) -> str:
    d = display(m.metric)
    head: list[Any] = [("q \\ pool", True)] + [(l, False) for l in m.langs] + [("mean penalty", False)]
    rows = []
    for q in m.langs:
        cells = "".join(f'<td class="{"diag" if p == q else ""}">{_e(d.value(m.score(q, p)))}</td>' for p in m.langs)
        penalty = m.mean_penalty(query=q)
        rows.append(f'<tr><td class="l">{_langs_html([q])}</td>{cells}<td>{_signed(penalty)}</td></tr>')
    rows.append('<tr><td class="l muted">mean penalty</td>' + "".join(
        f"<td>{_signed(m.mean_penalty(pool=p))}</td>" for p in m.langs) + "<td></td></tr>")
    return _table(f"language matrix {d.label} ({m.model}): rows = query language, columns = pool language; penalty = "
                  "S(X,Y) − S(X,X)", head, rows, f"matrix-{m.metric}")


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f}"


def _columns(report: Report) -> list[str]:
    k = _k(report)
    present = [key for key in OPTIONAL_COLUMNS if any(s.metrics.get(key) is not None for r in report.scenarios
                                                       for s in r.by_model.values())]
    return [at_k(t, k) for t in SCENARIO_COLUMNS] + present


def scenario_table(report: Report, kind: str, results: Sequence[ScenarioResult]) -> str:
    keys = _columns(report)
    many = len(report.models) > 1
    head: list[Any] = [("pool", True), ("query", True), ("n", False)] + ([("model", True)] if many else [])
    head += [_th(key) for key in keys]
    rows = []
    for r in results:
        for i, (name, s) in enumerate(r.by_model.items()):
            lead = (f'<td class="l">{_langs_html(r.pool_langs)}</td><td class="l lang">{_e(r.query_lang)}</td>'
                    f"<td>{_e(r.n_queries)}</td>") if i == 0 else '<td></td><td></td><td></td>'
            cells = "".join(f"<td>{_cell(key, s.metrics.get(key), s.ci.get(key))}</td>" for key in keys)
            cls = " ".join(c for c in ("first" if i == 0 else "", "qen" if _is_en(r.query_lang) else "") if c)
            rows.append(f'<tr class="{cls}">{lead}' + (f'<td class="l">{_e(name)}</td>' if many else "") + cells + "</tr>")
        for comp in r.comparisons:
            cells = "".join(f"<td>{_delta_cell(key, comp.metrics.get(key) or {})}</td>" for key in keys)
            rows.append(f'<tr class="delta"><td></td><td></td><td></td><td class="l">Δ {_e(comp.other)} − '
                        f"{_e(comp.base)}</td>{cells}</tr>")
    return _table(f"{kind} scenarios", head, rows, f"scenarios-{kind}")


def _delta_cell(key: str, change: dict[str, Any]) -> str:
    """A paired difference: starred and coloured by the one rule (CI excludes 0; better/worse by direction)."""
    if change.get("diff") is None:
        return "–"
    d = display(key)
    value = _e(d.value(change["diff"], sign=True))
    outcome = change_class(key, change)
    text = f'<span class="{outcome}">{value}*</span>' if significant(change) else value
    ci = change.get("ci")
    if ci:
        text += f'<span class="ci">{_e(d.ci(ci, sign=True))}</span>'
    return text + (f'<span class="wtl">w/t/l {_e(change.get("wins", 0))}/{_e(change.get("ties", 0))}/'
                   f'{_e(change.get("losses", 0))}</span>')


def gap_table(report: Report) -> str:
    if not report.gaps:
        return ""
    keys = [at_k(t, _k(report)) for t in GAP_COLUMNS]
    head: list[Any] = [("scenario", True), ("X", True), ("model", True), ("pairs", True)]
    head += [(display(key).label, False, display(key).description) for key in keys]
    rows = [_gap_row(g, keys) for g in report.gaps]
    return _table("language gap: metric(English queries) − metric(X queries), points (> 0: English queries do better)",
                  head, rows, "gaps")


def _gap_row(g: LanguageGap, keys: Sequence[str]) -> str:
    cells = "".join(f"<td>{_cell(key, g.metrics.get(key), g.ci.get(key))}</td>" for key in keys)
    return (f'<tr><td class="l">{_e(g.kind)} [{_langs_html(g.pool_langs)}]</td><td class="l">{_e(g.lang)}</td>'
            f'<td class="l">{_e(g.model)}</td><td class="l">{_e(gap_pairs(g))}</td>{cells}</tr>')


def top1_table(report: Report) -> str:
    chosen = [r for r in report.scenarios if r.kind in ("multi", "multi-all", "full")]
    if not chosen:
        return ""
    keys = [key for key, _ in TOP1_COLOURS]
    head: list[Any] = [("scenario", True), ("model", True)] + [_th(key) for key in keys]
    rows = []
    for r in chosen:
        for name, s in r.by_model.items():
            cells = "".join(f"<td>{_cell(key, s.metrics.get(key), s.ci.get(key))}</td>" for key in keys)
            cls = "qen" if _is_en(r.query_lang) else ""
            rows.append(f'<tr class="{cls}"><td class="l lang">{_e(r.name)}</td><td class="l">{_e(name)}</td>{cells}</tr>')
    return _table("top-1 decomposition (% of queries): relevant / irrelevant × query language / English / other", head,
                  rows, "top1")


def field_table(report: Report) -> str:
    """The field's metrics (docs/field-metrics.md), one row per scenario and model that has them."""
    present = {key for r in report.scenarios for s in r.by_model.values() for key, v in s.metrics.items()
               if v is not None}
    keys = field_keys(_k(report), present)
    rows = []
    for r in report.scenarios:
        for name, s in r.by_model.items():
            if any(s.metrics.get(key) is not None for key in keys):
                cells = "".join(f"<td>{_cell(key, s.metrics.get(key), s.ci.get(key))}</td>" for key in keys)
                cls = "qen" if _is_en(r.query_lang) else ""
                rows.append(f'<tr class="{cls}"><td class="l lang">{_e(r.name)}</td><td class="l">{_e(name)}</td>'
                            f"{cells}</tr>")
    if not rows:
        return ""
    head: list[Any] = [("scenario", True), ("model", True)] + [_th(key) for key in keys]
    return _table("the field's metrics: PEER@k, MLAIRE's LPR and Lang-nDCG@k, Shift's TLR@k, calibrated language "
                  "preference (value and 95% CI)", head, rows, "field")


def truncation_table(report: Report) -> str:
    rows = []
    for model, kind, cut in truncation_counts(report):
        text = ", ".join(f"{_langs_html([l])} {_e(n)}" for l, n in cut.items()) if cut else '<span class="muted">none</span>'
        rows.append(f'<tr><td class="l">{_e(model)}</td><td class="l">{_e(kind)}</td><td class="l" '
                    f'style="white-space:normal">{text}</td><td>{_e(sum(cut.values()))}</td></tr>')
    for kind, langs in truncation_ids(report).items():
        for lang, ids in langs.items():
            rows.append(f'<tr><td class="l muted">ids</td><td class="l">{_e(kind)}</td><td class="l" '
                        f'style="white-space:normal">{_langs_html([lang])}: '
                        + ", ".join(f"<code>{_e(i)}</code>" for i in ids) + f"</td><td>{len(ids)}</td></tr>")
    if not rows:
        return ""
    return _table("texts truncated at the model's max length (count by language; the first ids when recorded)",
                  [("model", True), ("texts", True), ("by language", True), ("total", False)], rows, "truncation")


def neighbour_table(report: Report) -> str:
    n = report.neighbours or {}
    if not n:
        return ""
    langs = list(n.get("langs", []))
    exposure = display(f"en_exposure@{n.get('k', 10)}")
    head: list[Any] = [("doc lang", True)] + [(l, False) for l in langs] + [("EN exposure", False)]
    rows = [f'<tr><td class="l">{_langs_html([lang])}</td>'
            + "".join(f"<td>{row.get(l, 0.0):.1f}</td>" for l in langs)
            + f"<td>{_e(exposure.value(n.get('en_exposure', {}).get(lang)))}</td></tr>"
            for lang, row in n.get("mix", {}).items()]
    return _table(f"label-free view: language of the top-{n.get('k')} neighbours of each document (% of neighbours)",
                  head, rows, "neighbours")


def glossary(report: Report) -> str:
    keys = sorted({key for r in report.scenarios for s in r.by_model.values() for key, v in s.metrics.items()
                   if v is not None})
    if not keys:
        return ""
    rows = [f'<tr><td class="l"><code>{_e(key)}</code></td><td class="l">{_e(display(key).title)}</td>'
            f'<td class="l">{_e(display(key).unit)}</td><td class="l" style="white-space:normal">'
            f"{_e(display(key).description)}</td></tr>" for key in keys]
    return _table("metrics in this report (from the metric registry)",
                  [("key", True), ("label", True), ("unit", True), ("meaning", True)], rows, "metrics")


def notes_html(report: Report) -> str:
    return "".join(f'<div class="note">{_e(note)}</div>' for note in report.notes)

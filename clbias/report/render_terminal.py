"""Rich terminal rendering of a Report.

Compact (the default): two header lines, the verdict, one summary table (and the language matrix when the
report has one); fits a 120x40 screen for a 12-language corpus. `detail=True`: the full header panel, the
verdict, the summary, and every table."""
from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ..text import inert_copy
from .display import at_k, change_class, display, field_keys, gap_pairs, parallel_text, significant
from .matrix import MATRIX_METRICS, LanguageMatrix, language_matrix
from .model import Report, ScenarioResult
from .summary import SummaryColumn, summary_cell, summary_columns, summary_langs
from .truncation import truncation_line
from .verdict import LEANING_SHORT, Verdict, verdict

SCENARIO_COLUMNS = ("max_r", "max_r_norm", "complete@{k}", "ndcg@{k}", "mrr@{k}", "eir", "en_exposure@{k}")
OPTIONAL_COLUMNS = ("twin_pref", "eir_neutral")  # shown when the report has them
TOP1 = ("top1_rel_same", "top1_rel_en", "top1_rel_other", "top1_irr_same", "top1_irr_en", "top1_irr_other")
GAP_COLUMNS = ("max_r_norm", "complete@{k}", "ndcg@{k}")
COMPACT_NOTES = 2


def _k(report: Report) -> int:
    return int(report.settings.get("k", 10))


def _title(key: str) -> str:
    d = display(key)
    head, at, k = d.short.partition("@")
    return f"{head}\n@{k} {d.arrow}".rstrip() if at else f"{d.short}\n{d.arrow}".rstrip()


def _fmt(key: str, value: float | None, ci: list[float] | None = None) -> str:
    d = display(key)
    text = d.value(value)
    return f"{text}\n[dim]{d.ci(ci)}[/dim]" if value is not None and ci else text


def _present(report: Report, keys: tuple[str, ...]) -> list[str]:
    return [key for key in keys if any(s.metrics.get(key) is not None for r in report.scenarios
                                       for s in r.by_model.values())]


def _columns(report: Report) -> list[str]:
    k = _k(report)
    return [at_k(t, k) for t in SCENARIO_COLUMNS] + _present(report, OPTIONAL_COLUMNS)


def _corpus_line(report: Report) -> str:
    c = report.corpus
    parallel = parallel_text(c.get("parallel"))
    return (f"corpus [bold]{escape(str(c.get('name')))}[/bold]: {c.get('n_docs')} docs, {c.get('n_queries')} queries, "
            f"{len(c.get('doc_langs', []))} languages"
            + (f", parallel: {escape(parallel)}" if parallel else ""))


def compact_header(report: Report) -> Text:
    models = ", ".join(f"[bold]{escape(m.name)}[/bold] {m.sha256[:12]} {escape(m.onnx)}" for m in report.models)
    s, env, idx = report.settings, report.environment, report.index
    recall = idx.get("recall_vs_exact")
    second = (f"[dim]k={s.get('k')}  {idx.get('kind')} index" + (f" (recall {recall:.3f})" if recall is not None else "")
              + f"  bootstrap {s.get('bootstrap')} seed {s.get('seed')}, 95% CI  clbias {env.get('clbias')}  "
              f"onnxruntime {env.get('onnxruntime')}  threads {env.get('threads')}[/dim]")
    return Text.from_markup(f"{models} · {_corpus_line(report)}\n{second}")


def header(report: Report) -> Panel:
    lines = []
    for m in report.models:
        lines.append(f"[bold]{escape(m.name)}[/bold]  sha256 {m.sha256[:12]}  {escape(m.onnx)}  pooling={m.pooling}"
                     f"{'+l2' if m.normalize else ''}  max_len={m.max_length}  "
                     f"prefixes query={escape(repr(m.prefixes['query']))} passage={escape(repr(m.prefixes['passage']))}")
        src = m.source.get("description") or m.source.get("model")
        if src:
            lines.append(f"  [dim]source: {escape(str(src))}[/dim]")
    c = report.corpus
    parallel = parallel_text(c.get("parallel"))
    lines.append(f"corpus [bold]{escape(str(c['name']))}[/bold]: {c['n_docs']} documents ({', '.join(c['doc_langs'])}), "
                 f"{c['n_queries']} queries" + (f", parallel={escape(parallel)}" if parallel else ""))
    if c.get("query_derivation"):
        lines.append(f"  [dim]queries: {escape(str(c['query_derivation']))}[/dim]")
    idx = report.index
    recall = idx.get("recall_vs_exact")
    lines.append(f"index {idx.get('kind')} {escape(str(idx.get('params')))}" +
                 (f"  recall@{report.settings['k']} vs exact {recall:.3f}" if recall is not None else ""))
    env = report.environment
    lines.append(f"[dim]clbias {env['clbias']}  onnxruntime {env['onnxruntime']}  threads {env['threads']}  "
                 f"bootstrap {report.settings['bootstrap']} (seed {report.settings['seed']}), 95% CI[/dim]")
    return Panel("\n".join(lines), title="clbias audit", expand=False)


def verdict_text(report: Report) -> Text:
    sentences = verdict(report).sentences
    return Text.from_markup("[bold]Verdict[/bold]\n" + "\n".join(f"• {escape(s)}" for s in sentences))


def summary_table(report: Report, width: int | None = None) -> Table | None:
    """The summary; with `width`, the least important columns (the last) are dropped until it fits."""
    columns = summary_columns(report)
    langs = summary_langs(report)
    if not columns or not langs:
        return None
    found = verdict(report)
    table = _summary(report, columns, langs, found)
    while width is not None and len(columns) > 1 and _natural_width(table) > width:
        columns = columns[:-1]
        table = _summary(report, columns, langs, found)
    return table


def _natural_width(table: Table) -> int:
    console = Console(width=10_000)
    return Measurement.get(console, console.options, table).maximum


def _summary(report: Report, columns: list[SummaryColumn], langs: list[str], found: Verdict) -> Table:
    many = len(report.models) > 1
    table = Table(title="summary by language: value and 95% CI (X = the row's language)", title_justify="left",
                  box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False)
    table.add_column("lang", no_wrap=True)
    if many:
        table.add_column("model", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for c in columns:
        table.add_column(f"{c.scenario}\n{display(c.metric).short} {display(c.metric).arrow}".rstrip(), justify="right",
                         no_wrap=True)
    for lang in langs:
        for i, model in enumerate(m.name for m in report.models):
            cells = ["" if (cell := summary_cell(report, c, lang, model)) is None else display(c.metric).cell(*cell)
                     for c in columns]
            lead = [lang if i == 0 else ""] + ([escape(model)] if many else [])
            table.add_row(*lead, LEANING_SHORT[found.leaning(lang, model)], *cells)
    return table


def matrix_table(m: LanguageMatrix, title_note: str = "") -> Table:
    label = display(m.metric).label
    table = Table(title=f"language matrix {label}{title_note} (rows: query language X, columns: pool language Y, "
                        "penalty: mean S(X,Y) − S(X,X))", title_justify="left",
                  box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, show_edge=False)
    table.add_column("q \\ pool")
    for lang in m.langs:
        table.add_column(lang, justify="right", no_wrap=True)
    table.add_column("penalty", justify="right", no_wrap=True)
    for q in m.langs:
        cells = []
        for p in m.langs:
            value = display(m.metric).value(m.score(q, p))
            cells.append(f"[bold]{value}[/bold]" if p == q else value)
        penalty = m.mean_penalty(query=q)
        table.add_row(q, *cells, "–" if penalty is None else f"{penalty:+.1f}")
    pools = [m.mean_penalty(pool=p) for p in m.langs]
    table.add_row("[dim]penalty[/dim]", *["–" if v is None else f"[dim]{v:+.1f}[/dim]" for v in pools], "")
    return table


def scenario_table(report: Report, kind: str, results: list[ScenarioResult]) -> Table:
    keys = _columns(report)
    table = Table(title=f"{kind}  (value, 95% CI below)", title_justify="left", show_lines=True)
    table.add_column("pool")
    table.add_column("query")
    table.add_column("n", justify="right")
    many = len(report.models) > 1
    if many:
        table.add_column("model")
    for key in keys:
        table.add_column(_title(key), justify="right")
    for r in results:
        for i, (name, scores) in enumerate(r.by_model.items()):
            cells = [_fmt(key, scores.metrics.get(key), scores.ci.get(key)) for key in keys]
            lead = ["+".join(r.pool_langs), r.query_lang, str(r.n_queries)] if i == 0 else ["", "", ""]
            table.add_row(*map(escape, lead), *([escape(name)] if many else []), *cells)
        for comp in r.comparisons:
            table.add_row("", "", "", escape(f"Δ {comp.other}"), *[_delta(key, comp.metrics.get(key) or {}) for key in keys])
    return table


def _delta(key: str, change: dict) -> str:
    if change.get("diff") is None:
        return "–"
    text = display(key).value(change["diff"], sign=True) + ("*" if significant(change) else "")
    style = {"better": "green", "worse": "red"}.get(change_class(key, change))
    if style:
        text = f"[{style}]{text}[/{style}]"
    return f"{text}\n[dim]{change.get('wins', 0)}/{change.get('ties', 0)}/{change.get('losses', 0)}[/dim]"


def gap_table(report: Report) -> Table | None:
    if not report.gaps:
        return None
    keys = [at_k(t, _k(report)) for t in GAP_COLUMNS]
    table = Table(title="language gap: metric(en queries) − metric(X queries), points", title_justify="left")
    for col in ("scenario", "X", "model", "pairs"):
        table.add_column(col)
    for key in keys:
        table.add_column(display(key).label, justify="right")
    for g in report.gaps:
        table.add_row(escape(f"{g.kind} [{'+'.join(g.pool_langs)}]"), g.lang, escape(g.model), gap_pairs(g),
                      *[_fmt(key, g.metrics.get(key), g.ci.get(key)) for key in keys])
    return table


def top1_table(report: Report) -> Table:
    table = Table(title="top-1 decomposition (% of queries): relevant/irrelevant × query language/English/other",
                  title_justify="left")
    for col in ("scenario", "model"):
        table.add_column(col)
    for key in TOP1:
        table.add_column(display(key).label, justify="right")
    for r in report.scenarios:
        if r.kind not in ("multi", "multi-all", "full"):
            continue
        for name, scores in r.by_model.items():
            table.add_row(escape(r.name), escape(name), *[display(key).value(scores.metrics.get(key)) for key in TOP1])
    return table


def _present_values(report: Report) -> set[str]:
    return {key for r in report.scenarios for s in r.by_model.values() for key, v in s.metrics.items() if v is not None}


def field_table(report: Report) -> Table | None:
    """The field's metrics (PEER, MLAIRE's LPR and Lang-nDCG, Shift's TLR, calibrated language preference)."""
    keys = field_keys(_k(report), _present_values(report))
    if not keys:
        return None
    table = Table(title="the field's metrics (value, 95% CI below; docs/field-metrics.md)", title_justify="left",
                  show_lines=True)
    for col in ("scenario", "model"):
        table.add_column(col)
    for key in keys:
        table.add_column(_title(key), justify="right")
    for r in report.scenarios:
        for name, scores in r.by_model.items():
            if any(scores.metrics.get(key) is not None for key in keys):
                table.add_row(escape(r.name), escape(name),
                              *[_fmt(key, scores.metrics.get(key), scores.ci.get(key)) for key in keys])
    return table


def neighbour_table(report: Report) -> Table:
    n = report.neighbours or {}
    table = Table(title=f"label-free view: language of the top-{n.get('k')} neighbours of each document, by its language "
                        "(% of neighbours)", title_justify="left")
    langs = n.get("langs", [])
    table.add_column("doc lang")
    for lang in langs:
        table.add_column(lang, justify="right")
    table.add_column("EN exposure", justify="right")
    exposure = display(f"en_exposure@{n.get('k', 10)}")
    for lang, row in n.get("mix", {}).items():
        table.add_row(lang, *[f"{row.get(l, 0.0):.1f}" for l in langs], exposure.value(n.get("en_exposure", {}).get(lang)))
    return table


def render(report: Report, console: Console | None = None, detail: bool = False) -> None:
    console = console or Console()
    report = inert_copy(report)  # ids, names and metadata are untrusted: no escape sequence reaches the terminal
    console.print(header(report) if detail else compact_header(report))
    console.print()
    console.print(verdict_text(report))
    summary = summary_table(report, console.width)
    if summary is not None:
        console.print()
        console.print(summary)
    metrics = MATRIX_METRICS if detail else MATRIX_METRICS[:1]
    for model, metric in ((m.name, metric) for m in report.models for metric in metrics):
        matrix = language_matrix(report, model, metric)
        if matrix is not None:
            console.print()
            console.print(matrix_table(matrix, f" ({model})" if len(report.models) > 1 else ""))
    if detail:
        _render_detail(report, console)
    console.print()
    console.print(Text(truncation_line(report, None if detail else console.width), style="dim"))
    if report.neighbours:
        console.print(neighbour_table(report))
    notes = report.notes if detail else report.notes[:COMPACT_NOTES]
    for note in notes:
        console.print(Text(f"note: {note}", style="yellow"))
    if not detail:
        more = len(report.notes) - len(notes)
        console.print(Text(("" if not more else f"{more} more note{'s' * (more > 1)}; ") +
                           "--detail prints every scenario table, the language gaps and the top-1 decomposition",
                           style="dim"))


def _render_detail(report: Report, console: Console) -> None:
    kinds: dict[str, list[ScenarioResult]] = {}
    for r in report.scenarios:
        kinds.setdefault(r.kind, []).append(r)
    for kind, results in kinds.items():
        console.print(scenario_table(report, kind, results))
    gaps = gap_table(report)
    if gaps is not None:
        console.print(gaps)
    if any(r.kind in ("multi", "multi-all", "full") for r in report.scenarios):
        console.print(top1_table(report))
    field = field_table(report)
    if field is not None:
        console.print(field)


__all__ = ["render"]

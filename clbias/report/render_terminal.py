"""Rich terminal rendering of a Report."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .model import Report, ScenarioResult

COLUMNS = (("max_r", "Max@R↓"), ("max_r_norm", "MaxR\nnorm"), ("complete@{k}", "Compl\n@{k}"),
           ("ndcg@{k}", "nDCG\n@{k}"), ("mrr@{k}", "MRR\n@{k}"), ("eir", "EIR%↓"), ("en_exposure@{k}", "EN exp\n@{k}"))
TOP1 = (("top1_rel_same", "rel·same"), ("top1_rel_en", "rel·en"), ("top1_rel_other", "rel·other"),
        ("top1_irr_same", "irr·same"), ("top1_irr_en", "irr·en"), ("top1_irr_other", "irr·other"))


def _fmt(value: float | None, ci: list[float] | None = None, digits: int = 1) -> str:
    if value is None:
        return "–"
    text = f"{value:.{digits}f}"
    if ci is not None:
        ci_digits = max(0, digits - 1)
        text += f"\n[dim]{ci[0]:.{ci_digits}f}–{ci[1]:.{ci_digits}f}[/dim]"
    return text


def _columns(k: int) -> list[tuple[str, str]]:
    return [(key.format(k=k), title.format(k=k)) for key, title in COLUMNS]


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
    lines.append(f"corpus [bold]{escape(str(c['name']))}[/bold]: {c['n_docs']} documents ({', '.join(c['doc_langs'])}), "
                 f"{c['n_queries']} queries" + (f", parallel={c['parallel']}" if c.get("parallel") else ""))
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


def scenario_table(report: Report, kind: str, results: list[ScenarioResult]) -> Table:
    k = report.settings["k"]
    table = Table(title=f"{kind}  (value, 95% CI below)", title_justify="left", show_lines=True)
    table.add_column("pool")
    table.add_column("query")
    table.add_column("n", justify="right")
    many = len(report.models) > 1
    if many:
        table.add_column("model")
    for _, title in _columns(k):
        table.add_column(title, justify="right")
    for r in results:
        for i, (name, scores) in enumerate(r.by_model.items()):
            digits = {"en_exposure@%d" % k: 2}
            cells = [_fmt(scores.metrics.get(key), scores.ci.get(key), digits.get(key, 1)) for key, _ in _columns(k)]
            lead = ["+".join(r.pool_langs), r.query_lang, str(r.n_queries)] if i == 0 else ["", "", ""]
            table.add_row(*map(escape, lead), *([escape(name)] if many else []), *cells)
        for comp in r.comparisons:
            cells = []
            for key, _ in _columns(k):
                d = comp.metrics.get(key) or {}
                if d.get("diff") is None:
                    cells.append("–")
                    continue
                mark = "*" if (d.get("p_value") is not None and d["p_value"] < 0.05) else ""
                cells.append(f"{d['diff']:+.1f}{mark}\n[dim]{d.get('wins', 0)}/{d.get('ties', 0)}/{d.get('losses', 0)}[/dim]")
            table.add_row("", "", "", escape(f"Δ {comp.other}"), *cells)
    return table


def gap_table(report: Report) -> Table | None:
    if not report.gaps:
        return None
    k = report.settings["k"]
    keys = [("max_r_norm", "Max@R_norm"), (f"complete@{k}", f"Complete@{k}"), (f"ndcg@{k}", f"nDCG@{k}")]
    table = Table(title="language gap: metric(en queries) − metric(X queries), points", title_justify="left")
    for col in ("scenario", "X", "model"):
        table.add_column(col)
    for _, title in keys:
        table.add_column(title, justify="right")
    for g in report.gaps:
        table.add_row(escape(f"{g.kind} [{'+'.join(g.pool_langs)}]"), g.lang, escape(g.model),
                      *[_fmt(g.metrics.get(key), g.ci.get(key)) for key, _ in keys])
    return table


def top1_table(report: Report) -> Table:
    table = Table(title="top-1 decomposition (% of queries): relevant/irrelevant × query language/English/other",
                  title_justify="left")
    for col in ("scenario", "model"):
        table.add_column(col)
    for _, title in TOP1:
        table.add_column(title, justify="right")
    for r in report.scenarios:
        if r.kind not in ("multi", "full"):
            continue
        for name, scores in r.by_model.items():
            table.add_row(escape(r.name), escape(name), *[_fmt(scores.metrics.get(key)) for key, _ in TOP1])
    return table


def render(report: Report, console: Console | None = None) -> None:
    console = console or Console()
    console.print(header(report))
    kinds: dict[str, list[ScenarioResult]] = {}
    for r in report.scenarios:
        kinds.setdefault(r.kind, []).append(r)
    for kind, results in kinds.items():
        console.print(scenario_table(report, kind, results))
    gaps = gap_table(report)
    if gaps is not None:
        console.print(gaps)
    if any(r.kind in ("multi", "full") for r in report.scenarios):
        console.print(top1_table(report))
    truncated = {m: {kind: {l: n for l, n in langs.items() if n} for kind, langs in kinds_.items()
                     if not kind.endswith("_ids")} for m, kinds_ in report.truncation.items()}
    lines = [f"{m} {kind}: " + ", ".join(f"{l} {n}" for l, n in langs.items())
             for m, kinds_ in truncated.items() for kind, langs in kinds_.items() if langs]
    console.print(Text("truncated texts: " + ("; ".join(lines) if lines else "none"), style="dim"))
    first = dict.fromkeys(f"{kind.removesuffix('_ids')} {l}: {', '.join(ids)}" for kinds_ in report.truncation.values()
                          for kind, by_lang in kinds_.items() if kind.endswith("_ids") for l, ids in by_lang.items())
    if first:
        console.print(Text("  first truncated ids: " + "; ".join(first), style="dim"))
    if report.neighbours:
        console.print(neighbour_table(report))
    for note in report.notes:
        console.print(Text(f"note: {note}", style="yellow"))


def neighbour_table(report: Report) -> Table:
    n = report.neighbours or {}
    table = Table(title=f"label-free view: language of the top-{n.get('k')} neighbours of each document, by its language "
                        "(% of neighbours)", title_justify="left")
    langs = n.get("langs", [])
    table.add_column("doc lang")
    for lang in langs:
        table.add_column(lang, justify="right")
    table.add_column("EN exposure", justify="right")
    for lang, row in n.get("mix", {}).items():
        table.add_row(lang, *[f"{row.get(l, 0.0):.1f}" for l in langs], _fmt(n.get("en_exposure", {}).get(lang), digits=2))
    return table


__all__ = ["render"]

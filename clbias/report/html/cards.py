"""The page header: model, corpus and run cards."""
from __future__ import annotations

from typing import Any, Iterable

from ..display import parallel_text, params_text
from ..model import ModelInfo, Report
from .svg import _e, _is_en, _json, _k


def _dl(items: Iterable[tuple[str, str]]) -> str:
    """A definition list; values are HTML already (escape before calling)."""
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in items if v not in (None, "")) + "</dl>"


def _model_card(m: ModelInfo) -> str:
    source = m.source.get("description") or m.source.get("model") or m.source.get("note")
    items = [("sha256", f'<span class="sha">{_e(m.sha256)}</span>'), ("ONNX file", f"<code>{_e(m.onnx)}</code>"),
             ("pooling", _e(m.pooling + (" + L2 normalisation" if m.normalize else ""))),
             ("query prefix", f"<code>{_e(repr(m.prefixes.get('query', '')))}</code>"),
             ("passage prefix", f"<code>{_e(repr(m.prefixes.get('passage', '')))}</code>"),
             ("max length", _e(m.max_length)), ("dimension", _e(m.dim)), ("source", _e(source) if source else "")]
    if m.quantization:
        items.append(("quantisation", _quantization_html(m.quantization)))
    if m.shift:
        items.append(("shift", f"<code>{_e(_json(m.shift))}</code>"))
    return f'<div class="card"><h3>model</h3><div style="font-weight:620;margin-bottom:6px">{_e(m.name)}</div>{_dl(items)}</div>'


def _quantization_html(q: dict[str, Any]) -> str:
    """One readable line (type, drift against the fp32 graph) and the full record folded away."""
    parts = [str(q[k]) for k in ("weight_type", "method") if q.get(k)][:1]
    if q.get("per_channel") is not None:
        parts.append("per-channel" if q["per_channel"] else "per-tensor")
    if isinstance(q.get("min_cosine"), (int, float)):
        parts.append(f"min cosine vs {q.get('drift_vs', 'fp32')} {q['min_cosine']:.4f}")
    if isinstance(q.get("median_cosine"), (int, float)):
        parts.append(f"median {q['median_cosine']:.4f}")
    return (_e(", ".join(parts) or "yes") + f'<details><summary class="muted">full record</summary>'
            f'<code>{_e(_json(q))}</code></details>')


def _langs_html(langs: Iterable[str]) -> str:
    return ", ".join(f'<span class="en">{_e(l)}</span>' if _is_en(l) else _e(l) for l in langs)


def _corpus_card(report: Report) -> str:
    c = report.corpus
    source = c.get("source")
    if isinstance(source, dict):
        source = " ".join(str(source[k]) for k in ("package", "version") if source.get(k)) or _json(source)
    items = [("name", f"<b>{_e(c.get('name'))}</b>"), ("path", f"<code>{_e(c.get('path'))}</code>"),
             ("documents", f"{_e(c.get('n_docs'))} in {_langs_html(c.get('doc_langs', []))}"),
             ("queries", f"{_e(c.get('n_queries'))} in {_langs_html(c.get('query_langs', []))}"),
             ("split", _e(c.get("split"))), ("parallel", _e(parallel_text(c.get("parallel")) or "not stated")),
             ("query derivation", _e(c.get("query_derivation"))), ("source", _e(source)), ("licence", _e(c.get("license")))]
    return f'<div class="card"><h3>corpus</h3>{_dl(items)}</div>'


def _run_card(report: Report) -> str:
    idx, s, env = report.index, report.settings, report.environment
    recall = idx.get("recall_vs_exact")
    params = params_text(idx.get("params"))
    items = [("index", _e(idx.get("kind")) + (f" ({_e(params)})" if params else "")),
             (f"recall@{_k(report)} vs exact", _e(f"{recall:.3f}") if isinstance(recall, (int, float)) else "exact search"),
             ("cutoff k / depth", f"{_e(s.get('k'))} / {_e(s.get('depth'))}"),
             ("bootstrap", f"{_e(s.get('bootstrap'))} resamples, seed {_e(s.get('seed'))}, "
                           f"{_e(round(100 * float(s.get('ci_level', 0.95))))}% CI"),
             ("translations relevant", "yes" if s.get("expand_translations") else "no"),
             ("threads", _e(env.get("threads"))),
             ("versions", _e(", ".join(f"{k} {v}" for k, v in env.items()
                                       if k not in ("threads", "platform", "cpu_count") and v is not None))),
             ("platform", _e(env.get("platform")))]
    if report.run_files:
        items.append(("TREC run files", f"{len(report.run_files)}: " + ", ".join(
            f"<code>{_e(p)}</code>" for p in report.run_files[:3]) + (" …" if len(report.run_files) > 3 else "")))
    return f'<div class="card"><h3>index, settings, environment</h3>{_dl(items)}</div>'


def _title(report: Report) -> str:
    names = ", ".join(m.name for m in report.models)
    return (f"<h1>clbias audit · {_e(report.corpus.get('name'))}</h1>"
            f'<p class="lede">English-bias audit of {_e(names)}. <span class="en">English</span> is drawn in amber '
            f"throughout; every aggregate carries a seeded 95% bootstrap confidence interval over queries.</p>")


def _cards(report: Report) -> str:
    cards = "".join(_model_card(m) for m in report.models) + _corpus_card(report) + _run_card(report)
    return f'<h2>Model, corpus and run</h2><div class="grid">{cards}</div>'

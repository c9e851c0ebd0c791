"""File renderers of a Report: JSON, Markdown, and TREC run files."""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..io import write_text_atomic
from .model import HEADLINE_METRICS, Report


def to_json_text(report: Report, per_query: bool = True) -> str:
    return json.dumps(report.to_json(per_query), indent=2, ensure_ascii=False) + "\n"


def write_json(report: Report, path: str | Path, per_query: bool = True) -> None:
    write_text_atomic(path, to_json_text(report, per_query))


def _cell(value: float | None, ci: list[float] | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else f"{value:.1f}"


def to_markdown(report: Report) -> str:
    k = report.settings["k"]
    keys = [key.replace("@10", f"@{k}") for key in HEADLINE_METRICS]
    lines = [f"# clbias audit: {report.corpus['name']}", ""]
    for m in report.models:
        lines.append(f"- model `{m.name}` sha256 `{m.sha256}` ({m.onnx}, {m.pooling} pooling, "
                     f"prefixes {m.prefixes['query']!r}/{m.prefixes['passage']!r}, max length {m.max_length})")
    env = report.environment
    lines.append(f"- index {report.index.get('kind')} {report.index.get('params')}, recall vs exact "
                 f"{report.index.get('recall_vs_exact')}")
    lines.append(f"- clbias {env['clbias']}, onnxruntime {env['onnxruntime']}, tokenizers {env['tokenizers']}, "
                 f"numpy {env['numpy']}, threads {env['threads']}; bootstrap {report.settings['bootstrap']} "
                 f"(seed {report.settings['seed']}), 95% CI in brackets")
    if report.corpus.get("query_derivation"):
        lines.append(f"- queries: {report.corpus['query_derivation']}")
    lines += ["", "| scenario | model | n | " + " | ".join(keys) + " |", "|---|---|---|" + "---|" * len(keys)]
    for r in report.scenarios:
        for name, s in r.by_model.items():
            lines.append(f"| {r.name} | {name} | {r.n_queries} | " +
                         " | ".join(_cell(s.metrics.get(key), s.ci.get(key)) for key in keys) + " |")
    if report.gaps:
        lines += ["", "Language gap (en queries − X queries, points):", "",
                  "| scenario | X | model | Max@R_norm | Complete@%d | nDCG@%d |" % (k, k), "|---|---|---|---|---|---|"]
        for g in report.gaps:
            lines.append(f"| {g.kind} [{'+'.join(g.pool_langs)}] | {g.lang} | {g.model} | " + " | ".join(
                _cell(g.metrics.get(key), g.ci.get(key)) for key in ("max_r_norm", f"complete@{k}", f"ndcg@{k}")) + " |")
    for note in report.notes:
        lines.append(f"\n> note: {note}")
    return "\n".join(lines) + "\n"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_")


def write_trec_runs(report: Report, directory: str | Path) -> list[Path]:
    """One TREC run file per scenario and model: `qid Q0 docid rank score tag`."""
    directory = Path(directory)
    written: list[Path] = []
    for r in report.scenarios:
        for model, scores in r.by_model.items():
            tag = _safe(model)
            path = directory / f"{_safe(r.name)}.{tag}.run"
            rows = [f"{qid} Q0 {doc} {rank} {score:.6f} {tag}"
                    for qid, docs, scs in scores.run for rank, (doc, score) in enumerate(zip(docs, scs), start=1)]
            write_text_atomic(path, "\n".join(rows) + "\n")
            written.append(path)
    return written

"""File renderers of a Report: JSON, Markdown, and TREC run files."""
from __future__ import annotations

import json
import hashlib
import re
from pathlib import Path

from ..io import write_text_atomic
from ..text import one_line
from .display import at_k, change_class, display, field_keys, gap_pairs, parallel_text, significant
from .matrix import MATRIX_METRICS, language_matrix, matrix_sentence
from .model import Report
from .summary import summary_cell, summary_columns, summary_langs
from .truncation import truncation_counts, truncation_ids
from .verdict import LEANING_SHORT, verdict

SCENARIO_KEYS = ("max_r", "max_r_norm", "complete@{k}", "ndcg@{k}", "recall@{k}", "mrr@{k}", "eir", "en_exposure@{k}")


def to_json_text(report: Report, per_query: bool = True) -> str:
    """Indented JSON, with each list of plain values (per-query values, query ids) on one line: readable,
    and a large audit's ~300k per-query numbers are written by the C encoder instead of one line each."""
    flat: list[str] = []

    def mark(obj: object) -> object:
        if isinstance(obj, dict):
            return {k: mark(v) for k, v in obj.items()}
        if isinstance(obj, list):
            if len(obj) > _INLINE_LIST and all(isinstance(x, (str, int, float, bool)) or x is None for x in obj):
                flat.append(json.dumps(obj, ensure_ascii=False))
                return f"{_SLOT}{len(flat) - 1}{_SLOT}"
            return [mark(x) for x in obj]
        return obj

    data = report.to_json(per_query)
    text = json.dumps(mark(data), indent=2, ensure_ascii=False)
    slots = [int(m.group(1)) for m in _SLOT_RE.finditer(text)]
    if slots != list(range(len(flat))):  # a user string that looks like a slot: write it the plain way
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return _SLOT_RE.sub(lambda m: flat[int(m.group(1))], text) + "\n"


_INLINE_LIST = 8
_SLOT = "\x00clbias-list\x00"  # json.dumps writes NUL as \u0000, so a slot is a string no renderer writes
_SLOT_RE = re.compile(r'"\\u0000clbias-list\\u0000(\d+)\\u0000clbias-list\\u0000"')


def write_json(report: Report, path: str | Path, per_query: bool = True) -> None:
    write_text_atomic(path, to_json_text(report, per_query))


def _cell(key: str, value: float | None, ci: list[float] | None) -> str:
    d = display(key)
    return f"{d.value(value)} [{d.ci(ci)}]" if value is not None and ci else d.value(value)


_MD_SPECIAL = re.compile(r"([|])")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _md(text: object) -> str:
    """Untrusted text for a Markdown line or table cell: one line, no raw HTML (entities instead), no control
    characters, no cell breaks."""
    text = one_line(text)
    text = "".join(_HTML.get(c, c) for c in text)
    return _MD_SPECIAL.sub(r"\\\1", text)


def _code(text: object) -> str:
    """Untrusted text as an inline code span (shown verbatim, HTML included, never interpreted): one line, a
    fence longer than any run of backticks inside, pipes escaped for tables."""
    text = one_line(text).replace("|", "\\|")
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


def _header_lines(report: Report) -> list[str]:
    lines = []
    for m in report.models:
        lines.append(f"- model {_code(m.name)} sha256 {_code(m.sha256)} ({_md(m.onnx)}, {_md(m.pooling)} pooling, "
                     f"prefixes {_code(repr(m.prefixes['query']))}/{_code(repr(m.prefixes['passage']))}, max length "
                     f"{_md(m.max_length)})")
    env = report.environment
    lines.append(f"- index {report.index.get('kind')} {report.index.get('params')}, recall vs exact "
                 f"{report.index.get('recall_vs_exact')}")
    lines.append(f"- clbias {env['clbias']}, onnxruntime {env['onnxruntime']}, tokenizers {env['tokenizers']}, "
                 f"numpy {env['numpy']}, threads {env['threads']}; bootstrap {report.settings['bootstrap']} "
                 f"(seed {report.settings['seed']}), 95% CI in brackets")
    c = report.corpus
    parallel = parallel_text(c.get("parallel"))
    lines.append(f"- corpus: {c.get('n_docs')} documents in {_md(', '.join(c.get('doc_langs', [])))}; "
                 f"{c.get('n_queries')} queries" + (f"; parallel: {_md(parallel)}" if parallel else ""))
    if c.get("query_derivation"):
        lines.append(f"- queries: {_md(c['query_derivation'])}")
    return lines


def _summary_lines(report: Report) -> list[str]:
    columns = summary_columns(report)
    langs = summary_langs(report)
    if not columns or not langs:
        return []
    found = verdict(report)
    many = len(report.models) > 1
    head = ["lang"] + (["model"] if many else []) + ["verdict"] + [
        f"{c.scenario} {display(c.metric).title}" for c in columns]
    rows = []
    for lang in langs:
        for m in report.models:
            cells = [_cell(c.metric, *cell) if (cell := summary_cell(report, c, lang, m.name)) else ""
                     for c in columns]
            rows.append([lang] + ([_md(m.name)] if many else []) + [LEANING_SHORT[found.leaning(lang, m.name)] or "–"]
                        + cells)
    return ["", "## Summary by language", "", "X = the row's language; value [95% CI].", ""] + _table(head, rows)


def _matrix_lines(report: Report) -> list[str]:
    lines: list[str] = []
    for m, metric in ((m, metric) for m in report.models for metric in MATRIX_METRICS):
        matrix = language_matrix(report, m.name, metric)
        if matrix is None:
            continue
        label = display(matrix.metric).label
        lines += ["", f"## Language matrix ({label}, {_md(m.name)})", "",
                  "Rows: query language X; columns: pool language Y (the diagonal is monolingual); last column: "
                  "mean cross-lingual penalty S(X,Y) − S(X,X) over the other pools.", ""]
        rows = [[q] + [(f"**{v}**" if p == q else v) for p in matrix.langs
                       for v in [display(matrix.metric).value(matrix.score(q, p))]]
                + [_signed(matrix.mean_penalty(query=q))] for q in matrix.langs]
        rows.append(["penalty"] + [_signed(matrix.mean_penalty(pool=p)) for p in matrix.langs] + [""])
        lines += _table(["q \\ pool"] + matrix.langs + ["penalty"], rows)
        lines += ["", matrix_sentence(matrix)]
    return lines


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f}"


def _scenario_lines(report: Report) -> list[str]:
    k = report.settings["k"]
    keys = [at_k(key, k) for key in SCENARIO_KEYS] + [
        key for key in ("twin_pref", "eir_neutral")
        if any(s.metrics.get(key) is not None for r in report.scenarios for s in r.by_model.values())]
    rows = [[_md(r.name), _md(name), str(r.n_queries)] + [_cell(key, s.metrics.get(key), s.ci.get(key)) for key in keys]
            for r in report.scenarios for name, s in r.by_model.items()]
    return ["", "## Scenarios", ""] + _table(["scenario", "model", "n"] + [display(key).title for key in keys], rows)


def _comparison_lines(report: Report) -> list[str]:
    k = report.settings["k"]
    keys = [at_k(key, k) for key in ("max_r_norm", "complete@{k}", "ndcg@{k}", "eir", "en_exposure@{k}")]
    rows = []
    for r in report.scenarios:
        for comp in r.comparisons:
            cells = []
            for key in keys:
                change = comp.metrics.get(key) or {}
                if change.get("diff") is None:
                    cells.append("–")
                    continue
                d = display(key)
                mark = {"better": " (better)", "worse": " (worse)"}.get(change_class(key, change), "")
                star = "*" if significant(change) else ""
                cells.append(f"{d.value(change['diff'], sign=True)}{star} [{d.ci(change.get('ci'), sign=True)}]{mark}")
            rows.append([_md(r.name), _md(f"{comp.other} − {comp.base}")] + cells)
    if not rows:
        return []
    return (["", "## Paired model comparison", "", "Difference of means with its paired 95% CI; * = the CI excludes 0 "
             "(better/worse by each metric's direction).", ""]
            + _table(["scenario", "models"] + [display(key).title for key in keys], rows))


def _gap_lines(report: Report) -> list[str]:
    if not report.gaps:
        return []
    k = report.settings["k"]
    keys = [at_k(key, k) for key in ("max_r_norm", "complete@{k}", "ndcg@{k}")]
    rows = [[_md(f"{g.kind} [{'+'.join(g.pool_langs)}]"), g.lang, _md(g.model), gap_pairs(g)]
            + [_cell(key, g.metrics.get(key), g.ci.get(key)) for key in keys] for g in report.gaps]
    return (["", "## Language gap", "", "metric(English queries) − metric(X queries) on the same pool, points, "
             "paired over the questions asked in both languages (pairs); unpaired only where no question is.", ""]
            + _table(["scenario", "X", "model", "pairs"] + [display(key).label for key in keys], rows))


def _field_lines(report: Report) -> list[str]:
    present = {key for r in report.scenarios for s in r.by_model.values() for key, v in s.metrics.items()
               if v is not None}
    keys = field_keys(report.settings["k"], present)
    rows = [[_md(r.name), _md(name)] + [_cell(key, s.metrics.get(key), s.ci.get(key)) for key in keys]
            for r in report.scenarios for name, s in r.by_model.items()
            if any(s.metrics.get(key) is not None for key in keys)]
    if not rows:
        return []
    return (["", "## The field's metrics", "", "PEER (SIGIR 2024), MLAIRE's LPR and Lang-nDCG, Shift's TLR and a "
             "calibrated language preference; definitions and readings in docs/field-metrics.md.", ""]
            + _table(["scenario", "model"] + [display(key).title for key in keys], rows))


def _truncation_lines(report: Report) -> list[str]:
    lines = ["", "## Truncation", ""]
    counts = [(m, kind, langs) for m, kind, langs in truncation_counts(report) if langs]
    if not counts:
        lines.append("No text was truncated at the model's max length.")
    for m, kind, langs in counts:
        lines.append(f"- {_md(m)} {kind}: " + ", ".join(f"{l} {n}" for l, n in langs.items()))
    for kind, ids_by_lang in truncation_ids(report).items():
        for lang, ids in ids_by_lang.items():
            lines.append(f"- truncated {kind} ids, {lang}: " + ", ".join(_code(i) for i in ids))
    return lines


def _glossary_lines(report: Report) -> list[str]:
    keys = sorted({key for r in report.scenarios for s in r.by_model.values() for key, v in s.metrics.items()
                   if v is not None})
    if not keys:
        return []
    rows = [[f"`{key}`", display(key).title, display(key).unit, _md(display(key).description)] for key in keys]
    return ["", "## Metrics", ""] + _table(["key", "label", "unit", "meaning"], rows)


def to_markdown(report: Report) -> str:
    lines = [f"# clbias audit: {_md(report.corpus['name'])}", ""] + _header_lines(report)
    lines += ["", "## Verdict", ""] + [f"- {_md(s)}" for s in verdict(report).sentences]
    lines += _summary_lines(report) + _matrix_lines(report) + _scenario_lines(report) + _comparison_lines(report)
    lines += _gap_lines(report) + _field_lines(report) + _truncation_lines(report)
    if report.run_files:
        lines += ["", "TREC run files written with this report: " + ", ".join(_code(p) for p in report.run_files)]
    for note in report.notes:
        lines.append(f"\n> note: {_md(note)}")
    lines += _glossary_lines(report)
    return "\n".join(lines) + "\n"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_")


def trec_run_paths(report: Report, directory: str | Path) -> list[Path]:
    """The run files `write_trec_runs` writes, one per scenario and model, in that order."""
    directory = Path(directory)
    pairs = [(r.name, model) for r in report.scenarios for model in r.by_model]
    names = [f"{_safe(scenario)}.{_safe(model)}" for scenario, model in pairs]
    clash = {n.lower() for n in names if sum(m.lower() == n.lower() for m in names) > 1}  # case-blind file systems
    # Names that `_safe` folds together (`e5 small`, `e5_small`) keep apart by a digest of the exact names.
    return [directory / (f"{n}-{hashlib.blake2b(f'{s}{chr(0)}{m}'.encode(), digest_size=4).hexdigest()}.run"
                         if n.lower() in clash else f"{n}.run") for n, (s, m) in zip(names, pairs)]


def write_trec_runs(report: Report, directory: str | Path) -> list[Path]:
    """One TREC run file per scenario and model: `qid Q0 docid rank score tag`.

    Scores are written repr-exact (the shortest text that reads back as the same float), so two distinct
    scores never print alike and trec_eval's tie-break by docid cannot reorder a ranking."""
    written: list[Path] = []
    paths = iter(trec_run_paths(report, directory))
    for r in report.scenarios:
        for model, scores in r.by_model.items():
            path = next(paths)
            tag = _safe(model)
            rows = [f"{qid} Q0 {doc} {rank} {float(score)!r} {tag}"
                    for qid, docs, scs in scores.run for rank, (doc, score) in enumerate(zip(docs, scs), start=1)]
            write_text_atomic(path, "\n".join(rows) + "\n")
            written.append(path)
    return written

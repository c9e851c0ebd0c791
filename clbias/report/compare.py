"""Two saved audits of the same corpus as one two-model Report, with paired comparisons per scenario.

Scenarios are matched by name and queries by id (`ScenarioResult.query_ids`); each metric is compared on
the queries both audits judged, with the same paired bootstrap CI as a two-model audit (`clbias.audit.compare`;
significant when it excludes 0, `clbias.metrics.stats.significant`), so the verdict reads the merged report
exactly as it reads a live one.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import InputError
from .model import ModelInfo, ModelScores, Report, ScenarioResult

SAME_CORPUS_FIELDS = ("name", "n_docs", "doc_langs", "query_langs", "split")
SAME_SETTINGS = ("k", "depth", "expand_translations")


def _check_same(a: Report, b: Report, a_name: str, b_name: str) -> list[str]:
    """Refuse two audits of different data, index or depth; notes on what could not be verified."""
    notes = []
    fa, fb = a.corpus.get("fingerprint"), b.corpus.get("fingerprint")
    if isinstance(fa, dict) and isinstance(fb, dict):
        if fa.get("sha256") != fb.get("sha256"):
            files = fa.get("files") or {}
            other = fb.get("files") or {}
            differ = [name for name in sorted(set(files) | set(other)) if files.get(name) != other.get(name)]
            raise InputError(f"{a_name} and {b_name} audit different data (different "
                             f"{', '.join(differ) or 'split'}; sha256 {str(fa.get('sha256'))[:12]} vs "
                             f"{str(fb.get('sha256'))[:12]}); compare audits of the same corpus, queries, qrels and "
                             f"split")
    else:
        older = ", ".join(n for n, f in ((a_name, fa), (b_name, fb)) if not isinstance(f, dict))
        notes.append(f"{older} has no data fingerprint (written by an older clbias): that both audits read the same "
                     f"files could only be checked by name and size")
    ia, ib = (a.index or {}).get("kind"), (b.index or {}).get("kind")
    if ia != ib or (a.index or {}).get("params") != (b.index or {}).get("params"):
        raise InputError(f"{a_name} and {b_name} searched different indexes ({ia} {(a.index or {}).get('params')} "
                         f"vs {ib} {(b.index or {}).get('params')}); compare audits run alike")
    for key in SAME_CORPUS_FIELDS:
        if a.corpus.get(key) != b.corpus.get(key):
            raise InputError(f"{a_name} and {b_name} audit different corpora (corpus {key}: "
                             f"{a.corpus.get(key)!r} vs {b.corpus.get(key)!r})")
    for key in SAME_SETTINGS:
        if a.settings.get(key) != b.settings.get(key):
            raise InputError(f"{a_name} and {b_name} used different settings ({key}: "
                             f"{a.settings.get(key)!r} vs {b.settings.get(key)!r}); compare audits run alike")
    return notes


def _pick_model(report: Report, name: str | None, file: str, option: str) -> ModelInfo:
    """The model of `report` to compare: the only one, or the one named with --a-model/--b-model."""
    names = [m.name for m in report.models]
    if name is None:
        if len(report.models) > 1:
            raise InputError(f"{file} holds {len(names)} models ({', '.join(names)}): choose one with {option}")
        return report.models[0]
    for m in report.models:
        if m.name == name:
            return m
    raise InputError(f"{file} has no model {name!r} (it has: {', '.join(names)})", field=option)


def _has_per_query(report: Report) -> bool:
    return any(s.per_query for r in report.scenarios for s in r.by_model.values())


def _labels(a: ModelInfo, b: ModelInfo, a_name: str, b_name: str) -> tuple[str, str]:
    """The models' names; the same model becomes `name:fp32`/`name:int8` by graph, else `name (file)`."""
    from ..audit import graph_tag

    if a.name != b.name:
        return a.name, b.name
    if a.onnx != b.onnx:
        return f"{a.name}:{graph_tag(a.onnx)}", f"{b.name}:{graph_tag(b.onnx)}"
    a_label, b_label = Path(a_name).stem, Path(b_name).stem
    if a_label == b_label:
        a_label, b_label = a_name, b_name
    return f"{a.name} ({a_label})", f"{b.name} ({b_label})"


def _aligned(scores: ModelScores, ids: list[str], common: list[str]) -> ModelScores:
    pos = {q: i for i, q in enumerate(ids)}
    return replace(scores, per_query={m: [v[pos[q]] for q in common] for m, v in scores.per_query.items()
                                      if len(v) == len(ids)})


def compare_reports(a: Report, b: Report, a_name: str = "A", b_name: str = "B", a_model: str | None = None,
                    b_model: str | None = None) -> tuple[Report, list[str]]:
    """(merged report: `a`'s model as the base, `b`'s as the other; notes on what could not be paired). A
    report of several models needs `a_model`/`b_model` to say which."""
    from ..audit import AuditSettings, compare

    model_a = _pick_model(a, a_model, a_name, "--a-model")
    model_b = _pick_model(b, b_model, b_name, "--b-model")
    check_notes = _check_same(a, b, a_name, b_name)
    for report, name in ((a, a_name), (b, b_name)):
        if not _has_per_query(report):
            raise InputError(f"{name} has no per-query values, so it cannot be compared query by query; re-run the "
                             "audit with --json (per-query values are written unless --no-per-query)")
    base, other = _labels(model_a, model_b, a_name, b_name)
    settings = AuditSettings(bootstrap=int(a.settings.get("bootstrap", 1000)), seed=int(a.settings.get("seed", 0)))
    theirs = {r.name: r for r in b.scenarios}
    merged: list[ScenarioResult] = []
    notes: list[str] = list(check_notes)
    for r in a.scenarios:
        s = theirs.get(r.name)
        if s is None:
            notes.append(f"{r.name}: only in {a_name}")
            continue
        mine_scores, their_scores = r.by_model[model_a.name], s.by_model[model_b.name]
        if r.query_ids and s.query_ids:
            common = [q for q in r.query_ids if q in set(s.query_ids)]
            mine_scores = _aligned(mine_scores, r.query_ids, common)
            their_scores = _aligned(their_scores, s.query_ids, common)
        elif r.n_queries != s.n_queries:
            notes.append(f"{r.name}: no query ids and different query counts; not compared")
            continue
        names = [m for m in mine_scores.per_query if m in their_scores.per_query]
        comparison = compare(base, other, mine_scores, their_scores, names, settings)
        merged.append(replace(r, by_model={base: r.by_model[model_a.name], other: s.by_model[model_b.name]},
                              comparisons=[comparison]))
    notes += [f"{name}: only in {b_name}" for name in theirs if name not in {r.name for r in a.scenarios}]
    if not merged:
        raise InputError(f"{a_name} and {b_name} have no scenario in common")
    models = [replace(model_a, name=base), replace(model_b, name=other)]
    gaps = [replace(g, model=base) for g in a.gaps if g.model == model_a.name] + [
        replace(g, model=other) for g in b.gaps if g.model == model_b.name]
    report = replace(a, models=models, scenarios=merged, gaps=gaps, notes=notes, run_files=[],
                     truncation={base: a.truncation.get(model_a.name, {}), other: b.truncation.get(model_b.name, {})},
                     timings={})
    return report, notes

"""The one report data model that every renderer (terminal, JSON, Markdown, HTML, TREC) reads.

JSON schema `clbias.audit/1` (names fixed, fields may be added):
  schema, model{name, sha256, prefixes, pooling, ...}, models[...], index{kind, params, recall_vs_exact},
  scenarios[{name, kind, pool_langs, query_lang, n_queries, pool_size, metrics{...}, ci{...},
             query_ids[...], by_model{model: {metrics, ci, per_query{metric: [value per query]}}},
             comparisons{...}}], gaps[...], corpus{...}, settings{...}, environment{...}, truncation{...},
  notes[...], run_files[...], timings{...} (the only part that varies between runs).
Per-query values are written by default (`clbias compare` and the per-query plots need them);
`to_json(per_query=False)` (CLI: `--no-per-query`) leaves them out. `Report.from_json` reads it all back.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from collections.abc import Sequence
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import numpy as np

REPORT_SCHEMA = "clbias.audit/1"
_ATOMIC = (float, int, str, bool, type(None))
HEADLINE_METRICS = ("max_r", "max_r_norm", "complete@10", "ndcg@10", "recall@10", "mrr@10", "eir", "eir_neutral",
                    "twin_pref", "en_exposure@10")
DETAIL_METRICS = ("top1_rel_same", "top1_rel_en", "top1_rel_other", "top1_irr_same", "top1_irr_en",
                  "top1_irr_other", "twin_rank_gap", "twin_score_gap",
                  "peer@10", "lpr", "lang_ndcg@10", "tlr@10", "lang_pref")  # the field's metrics (field.py)


class RankedRun(Sequence):
    """Every query's ranked head, kept as the retrieval arrays; a (qid, doc ids, scores) row is made only when
    read (TREC files, run comparisons). Building all rows up front cost a warm re-audit ~0.3 s it rarely uses."""

    def __init__(self, qids: Sequence[str], doc_ids: np.ndarray, top: np.ndarray, scores: np.ndarray,
                 lengths: np.ndarray) -> None:
        self._qids, self._doc_ids, self._top, self._scores, self._lengths = qids, doc_ids, top, scores, lengths

    def __len__(self) -> int:
        return len(self._qids)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = int(self._lengths[i])
        docs = self._doc_ids[self._top[i, :n]].tolist() if n else []
        return (self._qids[i], docs, self._scores[i, :n].astype(float).tolist())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"RankedRun({len(self)} queries)"


@dataclass
class ModelInfo:
    name: str
    sha256: str
    onnx: str
    prefixes: dict[str, str]
    pooling: str
    normalize: bool
    max_length: int
    dim: int | None
    source: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] = field(default_factory=dict)
    shift: dict[str, Any] | None = None


@dataclass
class ModelScores:
    metrics: dict[str, float | None]
    ci: dict[str, list[float] | None]
    per_query: dict[str, list[float | None]] = field(default_factory=dict)  # aligned with ScenarioResult.query_ids
    run: Sequence[tuple[str, list[str], list[float]]] = field(default_factory=list)  # (qid, docs, scores); TREC


@dataclass
class Comparison:
    """Model `other` minus model `base` on the same queries, per metric."""

    base: str
    other: str
    metrics: dict[str, dict[str, Any]]  # metric -> {diff, ci, p_value, wins, ties, losses}


@dataclass
class ScenarioResult:
    name: str
    kind: str
    pool_langs: list[str]
    query_lang: str
    n_queries: int
    pool_size: int
    skipped_queries: int
    metrics: dict[str, float | None]  # of the first model
    ci: dict[str, list[float] | None]
    by_model: dict[str, ModelScores] = field(default_factory=dict)
    comparisons: list[Comparison] = field(default_factory=list)
    index: dict[str, Any] = field(default_factory=dict)
    query_ids: list[str] = field(default_factory=list)  # the judged queries, in the order of per-query values


@dataclass
class LanguageGap:
    """metric(English queries) - metric(X queries) on the same pool, in points (clbias/gaps.py).

    Paired over the questions asked in both languages (`pairs` of them; `n`: per metric, the pairs where it
    applies on both sides); unpaired (`paired` False, `pairs` 0, `n` = all queries of both languages) only
    when no question is asked in both."""

    kind: str
    pool_langs: list[str]
    lang: str
    model: str
    metrics: dict[str, float | None]
    ci: dict[str, list[float] | None]
    paired: bool = False
    pairs: int = 0
    n: dict[str, int | None] = field(default_factory=dict)


@dataclass
class Report:
    corpus: dict[str, Any]
    models: list[ModelInfo]
    index: dict[str, Any]
    settings: dict[str, Any]
    environment: dict[str, Any]
    scenarios: list[ScenarioResult] = field(default_factory=list)
    gaps: list[LanguageGap] = field(default_factory=list)
    # model -> "passage"/"query" -> lang -> n truncated; model -> "passage_ids"/"query_ids" -> lang -> first ids
    truncation: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    neighbours: dict[str, Any] | None = None  # label-free view: language mix of nearest neighbours
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    run_files: list[str] = field(default_factory=list)  # TREC run files written with this report
    schema: str = REPORT_SCHEMA

    @property
    def model(self) -> ModelInfo:
        return self.models[0]

    def to_json(self, per_query: bool = True) -> dict[str, Any]:
        # Rankings (`run`) are for TREC files, never in JSON.
        data: dict[str, Any] = {"schema": self.schema, "model": _plain(self.model)}
        body = _plain(self, skip={"run"} if per_query else {"run", "per_query"})
        body.pop("schema")
        data.update(body)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Report":
        """The Report that `to_json` wrote (rankings excepted: they are never in JSON). Fields this version
        does not know are ignored, so a newer file still reads; raises ValueError on a wrong schema or shape."""
        if not isinstance(data, dict) or data.get("schema") != REPORT_SCHEMA:
            found = data.get("schema") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a clbias audit report (schema {found!r}, expected {REPORT_SCHEMA!r})")
        try:
            models = [_build(ModelInfo, m, f"models[{i}]") for i, m in enumerate(data.get("models") or [data["model"]])]
            scenarios = [_scenario(s, f"scenarios[{i}]") for i, s in enumerate(_list(data, "scenarios"))]
            gaps = [_build(LanguageGap, g, f"gaps[{i}]") for i, g in enumerate(_list(data, "gaps"))]
            rest = {f.name: data[f.name] for f in fields(cls)
                    if f.name in data and f.name not in ("models", "scenarios", "gaps")}
            report = cls(models=models, scenarios=scenarios, gaps=gaps, **rest)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed clbias audit report: {exc}") from None
        if not models:
            raise ValueError("malformed clbias audit report: no models")
        try:
            _check_fields(report, "")
        except TypeError as exc:
            raise ValueError(f"malformed clbias audit report: {exc}") from None
        return report

    def metrics_only(self) -> dict[str, Any]:
        """Everything but timings: what must be byte-identical between two runs of the same audit."""
        data = self.to_json()
        data.pop("timings", None)
        return data


T = TypeVar("T")


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise TypeError(f"'{key}' must be a list, got {type(value).__name__}")
    return value


def _build(cls: type[T], data: Any, where: str) -> T:
    if not isinstance(data, dict):
        raise TypeError(f"'{where}' must be an object, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]  # T is always one of the dataclasses here
    missing = [f.name for f in fields(cls)  # type: ignore[arg-type]  # likewise
               if f.name not in data and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise TypeError(f"'{where}' lacks {', '.join(repr(m) for m in missing)}")
    return cls(**{k: v for k, v in data.items() if k in known})


def _scenario(data: Any, where: str) -> ScenarioResult:
    if not isinstance(data, dict):
        raise TypeError(f"'{where}' must be an object, got {type(data).__name__}")
    by_model_raw = data.get("by_model", {})
    if not isinstance(by_model_raw, dict):
        raise TypeError(f"'{where}.by_model' must be an object, got {type(by_model_raw).__name__}")
    by_model = {name: _build(ModelScores, {**scores, "run": []} if isinstance(scores, dict) else scores,
                             f"{where}.by_model[{name!r}]") for name, scores in by_model_raw.items()}
    comparisons = [_build(Comparison, c, f"{where}.comparisons[{i}]")
                   for i, c in enumerate(_list(data, "comparisons"))]
    scenario = _build(ScenarioResult, {**data, "by_model": by_model, "comparisons": comparisons}, where)
    for name, scores in by_model.items():
        for metric, values in scores.per_query.items() if isinstance(scores.per_query, dict) else ():
            if isinstance(values, list) and isinstance(scenario.query_ids, list) \
                    and len(values) != len(scenario.query_ids):
                raise TypeError(f"'{where}.by_model[{name!r}].per_query[{metric!r}]' has {len(values)} values for "
                                f"{len(scenario.query_ids)} query ids")
    return scenario


def _check_fields(obj: Any, where: str) -> None:
    """Every field of a report dataclass holds what its annotation says (numbers, strings, lists, objects):
    a wrong-typed saved report is refused here, in one line, instead of failing inside a renderer."""
    hints = get_type_hints(type(obj))
    for f in fields(obj):
        if f.name == "run":
            continue
        _check_value(getattr(obj, f.name), hints[f.name], f"{where}.{f.name}" if where else f.name)


def _check_value(value: Any, hint: Any, where: str) -> None:
    if hint is Any:
        return
    if hasattr(value, "__dataclass_fields__"):
        _check_fields(value, where)
        return
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        if value is None and type(None) in args:
            return
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            _check_value(value, inner[0], where)
            return
        if any(_matches(value, a) for a in inner):
            return
        raise TypeError(f"'{where}' must be {_hint_name(hint)}, got {type(value).__name__}")
    if origin is list:
        if not isinstance(value, list):
            raise TypeError(f"'{where}' must be a list, got {type(value).__name__}")
        if args and _is_plain(args[0]):  # per-query values: hundreds of thousands, checked flat
            bad = next((i for i, v in enumerate(value) if not _matches(v, args[0])), None)
            if bad is not None:
                raise TypeError(f"'{where}[{bad}]' must be {_hint_name(args[0])}, got {type(value[bad]).__name__}")
            return
        for i, item in enumerate(value):
            _check_value(item, args[0] if args else Any, f"{where}[{i}]")
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"'{where}' must be an object, got {type(value).__name__}")
        for key, item in value.items():
            _check_value(item, args[1] if args else Any, f"{where}[{key!r}]")
        return
    if not _matches(value, hint):
        raise TypeError(f"'{where}' must be {_hint_name(hint)}, got {type(value).__name__}")


def _hint_name(hint: Any) -> str:
    names = {float: "a number", int: "an integer", str: "a string", bool: "true or false", type(None): "null",
             list: "a list", dict: "an object"}
    if get_origin(hint) in (Union, UnionType):
        return " or ".join(_hint_name(a) for a in get_args(hint))
    return names.get(get_origin(hint) or hint, getattr(hint, "__name__", str(hint)))


def _is_plain(hint: Any) -> bool:
    return hint in (float, int, str, bool, type(None)) or (
        get_origin(hint) in (Union, UnionType) and all(_is_plain(a) for a in get_args(hint)))


def _matches(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is type(None):
        return value is None
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        return any(_matches(value, a) for a in get_args(hint))
    if origin is not None:
        return isinstance(value, origin)
    return isinstance(value, hint)


def _plain(obj: Any, skip: frozenset[str] | set[str] = frozenset()) -> Any:
    """`dataclasses.asdict` for the report's types, with the fields named in `skip` left out wherever they
    occur, and lists of plain values copied as lists instead of element by element (asdict deep-copies
    each of the ~300k per-query floats of a large audit, which dominated a warm re-audit's rendering)."""
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: _plain(getattr(obj, f.name), skip) for f in fields(obj) if f.name not in skip}
    if isinstance(obj, list):
        if all(type(x) in _ATOMIC for x in obj):
            return list(obj)
        return [_plain(x, skip) for x in obj]
    if isinstance(obj, tuple):
        return [_plain(x, skip) for x in obj]
    if isinstance(obj, dict):
        return {k: _plain(v, skip) for k, v in obj.items()}
    return obj

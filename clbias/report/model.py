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

from dataclasses import dataclass, field, fields
from collections.abc import Sequence
from typing import Any, TypeVar

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

    def __getitem__(self, i):  # type: ignore[no-untyped-def]
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
    """metric(English queries) - metric(X queries) on the same pool, in points."""

    kind: str
    pool_langs: list[str]
    lang: str
    model: str
    metrics: dict[str, float | None]
    ci: dict[str, list[float] | None]
    paired: bool = False


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
            models = [_build(ModelInfo, m) for m in data.get("models") or [data["model"]]]
            scenarios = [_scenario(s) for s in data.get("scenarios", [])]
            gaps = [_build(LanguageGap, g) for g in data.get("gaps", [])]
            rest = {f.name: data[f.name] for f in fields(cls)
                    if f.name in data and f.name not in ("models", "scenarios", "gaps")}
            return cls(models=models, scenarios=scenarios, gaps=gaps, **rest)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed clbias audit report: {exc}") from None

    def metrics_only(self) -> dict[str, Any]:
        """Everything but timings: what must be byte-identical between two runs of the same audit."""
        data = self.to_json()
        data.pop("timings", None)
        return data


T = TypeVar("T")


def _build(cls: type[T], data: dict[str, Any]) -> T:
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in known})


def _scenario(data: dict[str, Any]) -> ScenarioResult:
    by_model = {name: _build(ModelScores, {**scores, "run": []}) for name, scores in data.get("by_model", {}).items()}
    comparisons = [_build(Comparison, c) for c in data.get("comparisons", [])]
    return _build(ScenarioResult, {**data, "by_model": by_model, "comparisons": comparisons})


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

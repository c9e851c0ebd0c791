"""The one report data model that every renderer (terminal, JSON, Markdown, HTML, TREC) reads.

JSON schema `clbias.audit/1` (names fixed, fields may be added):
  schema, model{name, sha256, prefixes, pooling, ...}, models[...], index{kind, params, recall_vs_exact},
  scenarios[{name, kind, pool_langs, query_lang, n_queries, pool_size, metrics{...}, ci{...},
             by_model{model: {metrics, ci}}, comparisons{...}}], gaps[...], corpus{...}, settings{...},
  environment{...}, truncation{...}, notes[...], timings{...} (the only part that varies between runs).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

REPORT_SCHEMA = "clbias.audit/1"
HEADLINE_METRICS = ("max_r", "max_r_norm", "complete@10", "ndcg@10", "recall@10", "mrr@10", "eir", "eir_neutral",
                    "twin_pref", "en_exposure@10")
DETAIL_METRICS = ("top1_rel_same", "top1_rel_en", "top1_rel_other", "top1_irr_same", "top1_irr_en",
                  "top1_irr_other", "twin_rank_gap", "twin_score_gap")


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
    per_query: dict[str, list[float | None]] = field(default_factory=dict)  # kept out of JSON by default
    run: list[tuple[str, list[str], list[float]]] = field(default_factory=list)  # (qid, doc ids, scores); for TREC


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
    schema: str = REPORT_SCHEMA

    @property
    def model(self) -> ModelInfo:
        return self.models[0]

    def to_json(self, per_query: bool = False) -> dict[str, Any]:
        # Rankings (`run`) are for TREC files; copying them through asdict would dominate a warm re-audit.
        slim = replace(self, scenarios=[
            replace(s, by_model={m: replace(sc, run=[], per_query=sc.per_query if per_query else {})
                                 for m, sc in s.by_model.items()}) for s in self.scenarios])
        data: dict[str, Any] = {"schema": self.schema, "model": asdict(self.model)}
        body = asdict(slim)
        body.pop("schema")
        for scenario in body["scenarios"]:
            for scores in scenario["by_model"].values():
                scores.pop("run", None)
                if not per_query:
                    scores.pop("per_query", None)
        data.update(body)
        return data

    def metrics_only(self) -> dict[str, Any]:
        """Everything but timings: what must be byte-identical between two runs of the same audit."""
        data = self.to_json()
        data.pop("timings", None)
        return data

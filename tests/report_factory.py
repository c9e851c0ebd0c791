"""Hand-made Reports for renderer and verdict tests: only the fields a test sets carry meaning."""
from __future__ import annotations

from typing import Any, Mapping

from clbias.report.model import Comparison, ModelInfo, ModelScores, Report, ScenarioResult

Scores = Mapping[str, tuple[float | None, list[float] | None]]  # metric -> (value, CI)


def model_info(name: str) -> ModelInfo:
    return ModelInfo(name=name, sha256="ab" * 32, onnx="model.onnx", prefixes={"query": "query: ", "passage": "passage: "},
                     pooling="mean", normalize=True, max_length=512, dim=8)


def scores(values: Scores) -> ModelScores:
    return ModelScores(metrics={k: v for k, (v, _) in values.items()}, ci={k: ci for k, (_, ci) in values.items()})


def scenario(kind: str, pool: list[str], query: str, by_model: Mapping[str, Scores],
             comparisons: list[Comparison] | None = None, n: int = 20) -> ScenarioResult:
    models = {name: scores(v) for name, v in by_model.items()}
    first = next(iter(models.values()))
    return ScenarioResult(name=f"{kind} [{'+'.join(pool)}] q={query}", kind=kind, pool_langs=pool, query_lang=query,
                          n_queries=n, pool_size=40, skipped_queries=0, metrics=first.metrics, ci=first.ci,
                          by_model=models, comparisons=comparisons or [])


def change(diff: float, ci: list[float], base: float, other: float) -> dict[str, Any]:
    return {"base": base, "other": other, "diff": diff, "ci": ci, "p_value": 0.01, "wins": 9, "ties": 2, "losses": 1,
            "n": 12}


def report(scenarios: list[ScenarioResult], langs: list[str], models: list[str] | None = None,
           **extra: Any) -> Report:
    names = models or [next(iter(scenarios[0].by_model))] if scenarios else ["m"]
    return Report(corpus={"name": "hand-made", "path": "/nowhere", "n_docs": 40, "n_queries": 20, "doc_langs": langs,
                          "query_langs": langs, "parallel": extra.pop("parallel", None)},
                  models=[model_info(n) for n in names], index={"kind": "exact", "params": {"depth": 100},
                                                                 "recall_vs_exact": None},
                  settings={"k": 10, "depth": 100, "bootstrap": 100, "seed": 0, "expand_translations": True,
                            "ci_level": 0.95},
                  environment={"clbias": "0", "onnxruntime": "0", "tokenizers": "0", "numpy": "0", "threads": 1},
                  scenarios=scenarios, **extra)

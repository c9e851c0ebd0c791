"""int8 vs fp32, per language: embedding drift, top-10 overlap and retrieval-metric movement.

Quantisation can break one language while English looks fine (onnxruntime #9599); cosine alone does not
say whether rankings move, so the verdict is on retrieval metrics: int8 is acceptable only if no
language's metrics move by more than `max_points` on the corpus.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..audit import AuditSettings, audit
from ..corpus import Corpus, load_corpus
from ..runtime.embed import embed_texts
from ..runtime.encoder import Encoder, Kind

RETRIEVAL_METRICS = ("max_r_norm", "complete@10", "ndcg@10", "recall@10", "mrr@10", "eir")


@dataclass
class LanguageDrift:
    lang: str
    n_texts: int
    min_cosine: float
    median_cosine: float
    top10_overlap: float | None
    max_metric_move: float | None
    worst: str | None  # "scenario metric" of the largest move

    @property
    def ok(self) -> bool:
        return self.max_metric_move is None or self.max_metric_move <= self.limit

    limit: float = 1.0


@dataclass
class Int8Check:
    model: str
    corpus: str
    fp32: str
    int8: str
    max_points: float
    languages: list[LanguageDrift] = field(default_factory=list)

    @property
    def int8_acceptable(self) -> bool:
        return all(l.ok for l in self.languages)

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "corpus": self.corpus, "fp32": self.fp32, "int8": self.int8,
                "max_points": self.max_points, "int8_acceptable": self.int8_acceptable,
                "languages": [{k: v for k, v in vars(l).items() if k != "limit"} for l in self.languages]}


def check_int8(model_dir: Path, corpus_dir: Path, max_points: float = 1.0, threads: int | None = None,
               fp32: str = "model.onnx", int8: str = "model.int8.onnx") -> Int8Check:
    a = Encoder.load(model_dir, onnx=fp32, threads=threads)
    b = Encoder.load(model_dir, onnx=int8, threads=threads, verify=False)
    corpus = load_corpus(corpus_dir)
    with tempfile.TemporaryDirectory(prefix="clbias-check-") as cache:  # embed each text once per graph
        return _check(a, b, corpus, corpus_dir, max_points, fp32, int8, Path(cache))


def _check(a: Encoder, b: Encoder, corpus: Corpus, corpus_dir: Path, max_points: float, fp32: str, int8: str,
           cache: Path) -> Int8Check:
    report = audit(corpus, [a, b], AuditSettings(scenarios=["multi", "mono-same", "mono-cross"], bootstrap=200,
                                                 cache_dir=cache))
    base, other = report.models[0].name, report.models[1].name
    result = Int8Check(a.manifest.name, str(corpus_dir), fp32, int8, max_points)
    for lang in corpus.doc_langs:
        docs = [d.text for d in corpus.docs if d.lang == lang]
        queries = [q.text for q in corpus.queries if q.lang == lang]
        sides: tuple[tuple[list[str], Kind], ...] = ((docs, "passage"), (queries, "query"))
        cos = np.concatenate([_row_cos(embed_texts(a, t, kind, cache)[0], embed_texts(b, t, kind, cache)[0])
                              for t, kind in sides if t])
        overlap = _top10_overlap(report, lang, base, other)
        moves = [(abs(d["diff"]), f"{r.name} {m}") for r in report.scenarios if r.query_lang == lang
                 for comp in r.comparisons for m, d in comp.metrics.items()
                 if m in RETRIEVAL_METRICS and d.get("diff") is not None]
        worst = max(moves) if moves else None
        result.languages.append(LanguageDrift(lang, len(docs) + len(queries), round(float(cos.min()), 5),
                                              round(float(np.median(cos)), 5), overlap,
                                              None if worst is None else round(worst[0], 3),
                                              None if worst is None else worst[1], max_points))
    return result


def _row_cos(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))


def _top10_overlap(report: Any, lang: str, base: str, other: str) -> float | None:
    for r in report.scenarios:
        if r.kind == "multi" and r.query_lang == lang or (lang == "en" and r.kind == "mono-same" and r.query_lang == "en"):
            runs_a, runs_b = r.by_model[base].run, r.by_model[other].run
            return round(float(np.mean([len(set(da[:10]) & set(db[:10])) / min(10, len(da))
                                        for (_, da, _), (_, db, _) in zip(runs_a, runs_b)])), 4)
    return None

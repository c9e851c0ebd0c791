"""The protocols of the retriever seam and what the audit hands a system."""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, Union, cast, runtime_checkable

import numpy as np

from ..corpus import Corpus, Record
from ..metrics.types import PoolInfo
from ..report.model import ModelInfo
from ..scenarios import Scenario
from ..search.censored import CensoredResult
from ..search.ranking import RetrievalResult

if TYPE_CHECKING:
    from ..audit import AuditSettings, Progress

PoolRanking = Union[RetrievalResult, CensoredResult]


@runtime_checkable
class Retriever(Protocol):
    """Any system: ranked (doc id, score) lists per query id, best first, at most `depth` long."""

    name: str

    def rank(self, docs: Sequence[Record], queries: Sequence[Record], depth: int
             ) -> Mapping[str, Sequence[tuple[str, float]]]: ...


@runtime_checkable
class Scorer(Protocol):
    """A system that scores every document of the pool for every query: float array [n_queries, n_docs]."""

    name: str

    def score(self, docs: Sequence[Record], queries: Sequence[Record]) -> np.ndarray: ...


@runtime_checkable
class Embedder(Protocol):
    """A dense system: one vector per text; the audit scores by dot product (normalise for cosine)."""

    name: str

    def embed_documents(self, docs: Sequence[Record]) -> np.ndarray: ...

    def embed_queries(self, queries: Sequence[Record]) -> np.ndarray: ...


@dataclass
class AuditContext:
    """What every system of one audit shares: the corpus, settings, the documents and queries some
    scenario uses, and the Ray session of `--engine ray` (None: local)."""

    corpus: Corpus
    settings: "AuditSettings"
    progress: "Progress | None" = None
    session: Any = None
    docs_needed: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    queries_needed: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    scenarios: list[Scenario] = field(default_factory=list)

    @cached_property
    def doc_ids(self) -> np.ndarray:
        return np.array([d.id for d in self.corpus.docs], dtype=object)

    def pool_docs(self, scenario: Scenario) -> list[Record]:
        return [self.corpus.docs[i] for i in scenario.pool]

    def queries(self, scenario: Scenario) -> list[Record]:
        return [self.corpus.queries[i] for i in scenario.queries]


class System(Protocol):
    """One audited system as the audit runs it (the built-in adapters below implement it)."""

    info: ModelInfo

    @property
    def truncation(self) -> dict[str, dict[str, Any]]:
        """What the system cut from long texts (embedders), else {}."""
        ...

    def prepare(self, ctx: AuditContext) -> list[str]:
        """Work done once per audit (embedding, loading); returns notes for the report."""
        ...

    def rank(self, scenario: Scenario, pool: PoolInfo, ctx: AuditContext) -> PoolRanking: ...


def as_system(obj: Any) -> System:
    """The audit's view of `obj`: an ONNX Encoder, a built-in System, or a user Retriever/Scorer/Embedder."""
    from ..runtime.encoder import Encoder
    from .dense import EmbedderSystem, EncoderSystem
    from .lists import RankingSystem, ScoreSystem

    if isinstance(obj, Encoder):
        return EncoderSystem(obj)
    if hasattr(obj, "info") and hasattr(obj, "prepare") and hasattr(obj, "rank"):
        return cast(System, obj)
    if not isinstance(getattr(obj, "name", None), str) or not obj.name:
        raise TypeError(f"{type(obj).__name__}: a retriever needs a non-empty string `name`")
    if isinstance(obj, Embedder):
        return EmbedderSystem(obj)
    if isinstance(obj, Scorer):
        return ScoreSystem(obj)
    if isinstance(obj, Retriever):
        return RankingSystem(obj)
    raise TypeError(f"{type(obj).__name__} is not a retriever: give it rank(docs, queries, depth), "
                    "score(docs, queries), or embed_documents(docs) and embed_queries(queries)")


def user_info(obj: Any, kind: str = "custom") -> ModelInfo:
    return ModelInfo(name=obj.name, kind=str(getattr(obj, "kind", kind)), details={"class": type(obj).__qualname__})


def system_labels(infos: Sequence[ModelInfo]) -> list[str]:
    """Unique names for reports; the same model with two graphs becomes `name:fp32` and `name:int8`."""
    from ..model_paths import graph_tag

    names = [m.name for m in infos]
    labels = [n if names.count(n) == 1 or m.kind != "model" else f"{n}:{graph_tag(m.onnx)}"
              for n, m in zip(names, infos)]
    seen: Counter[str] = Counter()
    out = []
    for label in labels:
        seen[label] += 1
        out.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return out

"""Systems whose rankings come from outside clbias's vectors: scorers, ranked lists, run files.

A scorer scores the whole pool, so its rankings are exact. A ranked list that stops at a depth (a user's
`rank()`, a run file) is audited with censoring: ranks beyond what the system returned are unknown
(clbias.search.censored).

Run files come in two modes:
  RunFileSystem   one run over the whole corpus; each scenario keeps the run's documents that are in its
                  pool, in the run's order (ranks within the pool). Exact for systems whose scores do not
                  depend on what else is indexed; censored beyond the run's depth.
  PoolRunsSystem  one run per pool (`clbias pools export` writes the pools, the user's system indexes each
                  and writes DIR/<pool>.trec); exact for pool-dependent systems (BM25 statistics, thresholds).
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..metrics.types import PoolInfo
from ..report.model import ModelInfo
from ..runfiles import Run, read_run
from ..scenarios import Scenario
from ..search.censored import KnownRankings, rank_known
from ..search.ranking import RetrievalResult, rank_scores
from .base import AuditContext, PoolRanking, Retriever, Scorer, user_info

RUN_SUFFIXES = (".trec", ".txt", ".run", ".tsv", ".jsonl")


class ScoreSystem:
    """A scorer (clbias.retrievers.Scorer): every pool document scored, so every rank is exact."""

    truncation: dict[str, dict[str, Any]] = {}

    def __init__(self, scorer: Scorer, info: ModelInfo | None = None) -> None:
        self.scorer = scorer
        self.info = info or user_info(scorer, "scorer")

    def prepare(self, ctx: AuditContext) -> list[str]:
        return []

    def scores(self, scenario: Scenario, ctx: AuditContext) -> np.ndarray:
        docs, queries = ctx.pool_docs(scenario), ctx.queries(scenario)
        out = np.asarray(self.scorer.score(docs, queries), dtype=np.float32)
        if out.shape != (len(queries), len(docs)):
            raise ValueError(f"{self.info.name}.score returned shape {out.shape}, expected "
                             f"({len(queries)}, {len(docs)})")
        return out

    def rank(self, scenario: Scenario, pool: PoolInfo, ctx: AuditContext) -> RetrievalResult:
        scores = self.scores(scenario, ctx)
        return rank_pool_scores(scores, scenario, pool, ctx)


def rank_pool_scores(scores: np.ndarray, scenario: Scenario, pool: PoolInfo, ctx: AuditContext) -> RetrievalResult:
    queries = ctx.queries(scenario)
    settings = ctx.settings
    return rank_scores(lambda a, b: scores[a:b].copy(), len(queries), [q.id for q in queries],
                       [q.lang for q in queries], scenario.relevant, pool, max(settings.depth, settings.k),
                       settings.k, scenario.excluded)


def _censored(rankings: Sequence[tuple[np.ndarray, np.ndarray]], scenario: Scenario, pool: PoolInfo,
              ctx: AuditContext) -> PoolRanking:
    queries = ctx.queries(scenario)
    known = KnownRankings([d for d, _ in rankings], [s for _, s in rankings])
    settings = ctx.settings
    return rank_known(known, [q.id for q in queries], [q.lang for q in queries], scenario.relevant, pool,
                      max(settings.depth, settings.k), settings.k, scenario.excluded)


class RankingSystem:
    """A user's Retriever: its ranked lists over each pool, censored beyond their length."""

    truncation: dict[str, dict[str, Any]] = {}

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever
        self.info = user_info(retriever)

    def prepare(self, ctx: AuditContext) -> list[str]:
        return []

    def rank(self, scenario: Scenario, pool: PoolInfo, ctx: AuditContext) -> PoolRanking:
        docs, queries = ctx.pool_docs(scenario), ctx.queries(scenario)
        depth = max(ctx.settings.depth, ctx.settings.k)
        got = self.retriever.rank(docs, queries, depth)
        where = f"{self.info.name}.rank"
        if not isinstance(got, Mapping):
            raise ValueError(f"{where} returned {type(got).__name__}, expected {{query id: [(doc id, score)]}}")
        position = {d.id: i for i, d in enumerate(docs)}
        asked = {q.id for q in queries}
        unknown = sorted(set(got) - asked)
        if unknown:
            raise ValueError(f"{where} returned query id {unknown[0]!r}, which it was not asked")
        rankings = []
        for q in queries:
            rows = list(got.get(q.id, ()))
            idx = []
            scores = []
            for row in rows:
                doc_id, score = row
                if doc_id not in position:
                    raise ValueError(f"{where}: query {q.id!r} ranks {doc_id!r}, which is not in the pool")
                s = float(score)
                if not np.isfinite(s):
                    raise ValueError(f"{where}: query {q.id!r} gives {doc_id!r} the score {score!r}")
                idx.append(position[doc_id])
                scores.append(s)
            d, s_arr = np.asarray(idx, np.int64), np.asarray(scores, np.float64)
            if np.unique(d).size != d.size:
                raise ValueError(f"{where}: query {q.id!r} ranks a document twice")
            order = np.lexsort((d, -s_arr))[:depth]
            rankings.append((d[order], s_arr[order]))
        return _censored(rankings, scenario, pool, ctx)


def _run_info(name: str, runs: Sequence[Run], mode: str, path: Path) -> ModelInfo:
    digest = runs[0].sha256 if len(runs) == 1 else hashlib.sha256(
        "".join(f"{r.path.name}:{r.sha256}\n" for r in runs).encode()).hexdigest()
    files = [{"path": str(r.path), "sha256": r.sha256, "format": r.format, "rows": r.rows, "depth": r.depth}
             for r in runs]
    return ModelInfo(name=name, sha256=digest, kind="run",
                     details={"mode": mode, "path": str(path), "files": files})


class RunFileSystem:
    """One run over the whole corpus (mode A): each scenario ranks the run's documents in its pool."""

    truncation: dict[str, dict[str, Any]] = {}

    def __init__(self, name: str, path: str | Path, run: Run | None = None) -> None:
        self.path = Path(path)
        self.name = name
        self.run: Run | None = run
        self.info = _run_info(name, [run], "corpus", self.path) if run else ModelInfo(name=name, kind="run")

    def load(self, ctx: AuditContext) -> None:
        """Read and check the run against the corpus (InputError naming file and line)."""
        corpus = ctx.corpus
        self.run = read_run(self.path, corpus.doc_index(), {q.id for q in corpus.queries})
        self.info = _run_info(self.name, [self.run], "corpus", self.path)

    def prepare(self, ctx: AuditContext) -> list[str]:
        corpus = ctx.corpus
        if self.run is None:
            self.load(ctx)
        assert self.run is not None
        needed = {corpus.queries[i].id for i in ctx.queries_needed}
        missing = len(needed - set(self.run.rankings))
        notes = [f"{self.name}: a run over the whole corpus ({self.path.name}, depth {self.run.depth}); each "
                 "scenario ranks the run's documents that are in its pool, in the run's order, and metrics that "
                 "need ranks beyond the run's depth are bounds (censored queries counted)"]
        if missing:
            notes.append(f"{self.name}: {missing} audited queries have no row in the run (every rank unknown)")
        return notes

    def rank(self, scenario: Scenario, pool: PoolInfo, ctx: AuditContext) -> PoolRanking:
        assert self.run is not None
        in_pool = np.full(len(ctx.corpus.docs), -1, np.int64)
        in_pool[scenario.pool] = np.arange(scenario.pool.size)
        empty = (np.empty(0, np.int64), np.empty(0))
        rankings = []
        for q in ctx.queries(scenario):
            r = self.run.rankings.get(q.id)
            if r is None:
                rankings.append(empty)
                continue
            pos = in_pool[r.docs]
            keep = pos >= 0
            rankings.append((pos[keep], r.scores[keep]))
        return _censored(rankings, scenario, pool, ctx)


def pool_name(pool_langs: Sequence[str], doc_ids: Sequence[str]) -> str:
    """A pool's name in `pools export` and in a per-pool run directory: its languages and a digest of its
    document ids, so it does not depend on which scenarios were chosen."""
    digest = hashlib.sha256("\n".join(sorted(doc_ids)).encode()).hexdigest()[:10]
    return f"{'+'.join(pool_langs)}-{digest}"


def scenario_pool_name(scenario: Scenario, doc_ids: np.ndarray) -> str:
    return pool_name(sorted(set(scenario.pool_langs)), doc_ids[scenario.pool].tolist())


def find_pool_run(directory: Path, name: str) -> Path | None:
    for suffix in RUN_SUFFIXES:
        for candidate in (directory / f"{name}{suffix}", directory / f"{name}{suffix}.gz"):
            if candidate.is_file():
                return candidate
    return None


class PoolRunsSystem:
    """One run file per pool (mode B), in DIR/<pool name>.trec (or .jsonl, .gz)."""

    truncation: dict[str, dict[str, Any]] = {}

    def __init__(self, name: str, directory: str | Path) -> None:
        self.name = name
        self.directory = Path(directory)
        self.info = ModelInfo(name=name, kind="run")
        self.runs: dict[str, Run] = {}

    def load(self, ctx: AuditContext) -> None:
        """Read and check the run of every pool the audit's scenarios use."""
        doc_ids = ctx.doc_ids
        for scenario in ctx.scenarios:
            name = scenario_pool_name(scenario, doc_ids)
            if name in self.runs:
                continue
            path = find_pool_run(self.directory, name)
            if path is None:
                raise InputError(f"no run for pool {name} ({scenario.label}); expected {name}.trec or "
                                 f"{name}.jsonl (optionally .gz), as `clbias pools export` names the pools",
                                 self.directory)
            docs = [ctx.corpus.docs[i] for i in scenario.pool]
            queries = {q.id for q in ctx.corpus.queries}
            self.runs[name] = read_run(path, {d.id: i for i, d in enumerate(docs)}, queries)
        self.info = _run_info(self.name, [self.runs[n] for n in sorted(self.runs)], "pools", self.directory)

    def prepare(self, ctx: AuditContext) -> list[str]:
        if not self.runs:
            self.load(ctx)
        runs = self.runs
        return [f"{self.name}: one run per pool from {self.directory} ({len(runs)} pools); ranks beyond a run's "
                "depth are censored"]

    def rank(self, scenario: Scenario, pool: PoolInfo, ctx: AuditContext) -> PoolRanking:
        run = self.runs[scenario_pool_name(scenario, ctx.doc_ids)]
        empty = (np.empty(0, np.int64), np.empty(0))
        rankings = [(r.docs, r.scores) if (r := run.rankings.get(q.id)) else empty for q in ctx.queries(scenario)]
        return _censored(rankings, scenario, pool, ctx)

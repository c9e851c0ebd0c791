"""The audit as a library call: corpus + models -> Report. The CLI is a thin layer over `audit()`."""
from __future__ import annotations

import numbers
import os
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from . import __version__
from .corpus import Corpus
from .errors import InputError
from .gaps import language_gaps
from .io import portable_path
from .langs import ENGLISH, normalize_lang
from .labelfree import TWIN_DERIVATION, needs_label_free, neighbour_mix, twin_probes
from .metrics import registry, stats
from .metrics.types import PoolInfo
from .report.model import (DETAIL_METRICS, HEADLINE_METRICS, ModelScores,
                           RankedRun, Report, ScenarioResult)
from .report.compare import compare
from .retrievers import AuditContext, EncoderSystem, PoolRanking, ShiftedSystem, System, as_system, system_labels
from .retrievers.dense import DenseSystem, empty_text_notes
from .runtime.manifest import language_note
from .scenarios import DEFAULT_KINDS, SCENARIO_KINDS, Scenario, build_scenarios
from .search import HnswParams, IndexKind
from .search.censored import CensoredResult

INDEX_KINDS = ("auto", "exact", "hnsw")


class Progress(Protocol):
    def start(self, description: str, total: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def finish(self) -> None: ...


@dataclass
class AuditSettings:
    scenarios: list[str] | None = None  # None = every kind
    langs: list[str] | None = None
    k: int = 10
    depth: int = 100
    index: IndexKind = "auto"
    hnsw: HnswParams = field(default_factory=HnswParams)
    bootstrap: int = 1000
    seed: int = 0
    expand_translations: bool = True
    batch_size: int = 32
    cache_dir: Path | None = None
    shift: bool = False  # add a `NAME+shift` variant for every model with a fitted training-free shift
    engine: str = "local"  # "ray": embed with Ray Data and score large pools as Ray tasks (extra `ray`)
    ray: Any = None  # clbias.engine.ray_engine.RayOptions for engine "ray" (None: defaults)

    def __post_init__(self) -> None:
        """Refuse settings that would crash or mislead halfway through an audit; InputError names the field."""
        for name in ("k", "depth", "bootstrap", "batch_size"):
            _positive_int(getattr(self, name), name)
        for name in ("M", "ef_construction", "ef"):
            _positive_int(getattr(self.hnsw, name), f"hnsw.{name}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise InputError(f"must be an integer >= 0, got {self.seed!r}", field="seed")
        if self.index not in INDEX_KINDS:
            raise InputError(f"{self.index!r} is not one of {', '.join(INDEX_KINDS)}", field="index")
        if self.scenarios is not None:
            unknown = [k for k in self.scenarios if k not in SCENARIO_KINDS]
            if unknown or not self.scenarios:
                what = f"unknown scenario kind(s) {unknown}" if unknown else "no scenario kind given"
                raise InputError(f"{what}; known: {', '.join(SCENARIO_KINDS)}", field="scenarios")
        if self.langs is not None:
            normalized = [normalize_lang(lang) if isinstance(lang, str) else None for lang in self.langs]
            bad = [lang for lang, norm in zip(self.langs, normalized) if norm is None]
            if bad or not self.langs:
                raise InputError(f"unknown language code(s) {bad}" if bad else "no language given", field="langs")
            self.langs = [lang for lang in normalized if lang is not None]
        if self.cache_dir is not None:
            self.cache_dir = Path(self.cache_dir)

    def metric_names(self) -> list[str]:
        names = [n.replace("@10", f"@{self.k}") for n in HEADLINE_METRICS]
        return names + [n for n in (d.replace("@10", f"@{self.k}") for d in DETAIL_METRICS) if n not in names]


def _positive_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InputError(f"must be an integer >= 1, got {value!r}", field=name)


@dataclass
class AuditPlan:
    """What an audit will score, known before any model runs: the corpus (with derived twin probes when it
    has no queries/qrels), its scenarios, and notes on what is absent and why."""

    corpus: Corpus
    scenarios: list[Scenario]
    notes: list[str]
    neighbours_only: bool = False


def plan_audit(corpus: Corpus, settings: AuditSettings) -> AuditPlan:
    notes: list[str] = []
    neighbours_only = False
    if corpus.queries and not corpus.qrels:
        notes.append(f"queries.jsonl has {len(corpus.queries)} queries but there are no qrels (qrels/*.tsv) to judge "
                     "them, so they are not used")
    if needs_label_free(corpus):
        if corpus.has_parallel:
            corpus = twin_probes(corpus)
            notes.append(f"no queries/qrels: {len(corpus.queries)} twin probes derived from parallel_id "
                         f"({TWIN_DERIVATION})")
        else:
            neighbours_only = True
            notes.append("no queries, qrels or parallel_id: relevance is unknown, so Max@R, Complete, nDCG, "
                         "EIR and twin gaps cannot be computed; shown: English exposure and the language mix "
                         "of each document's nearest neighbours")
    if neighbours_only:
        return AuditPlan(corpus, [], notes, True)
    notes.extend(language_coverage_notes(corpus.doc_langs, settings.scenarios))
    scenarios, scenario_notes = build_scenarios(corpus, settings.scenarios, settings.langs,
                                                settings.expand_translations)
    return AuditPlan(corpus, scenarios, notes + scenario_notes)


def language_coverage_notes(doc_langs: Sequence[str], kinds: Sequence[str] | None) -> list[str]:
    """Why scenarios and EIR are absent when the corpus lacks English or a second language."""
    chosen = set(kinds or DEFAULT_KINDS)
    others = [lang for lang in doc_langs if lang != ENGLISH]
    if ENGLISH in doc_langs and others:
        if "multi-n" in chosen and len(others) < 2:
            return [f"multi-n needs at least two non-English languages; the corpus has one ({others[0]})"]
        return []
    if ENGLISH in doc_langs:
        absent = [k for k in ("multi", "multi-all", "mono-cross", "multi-n", "full") if k in chosen]
        return [f"English-only corpus: {', '.join(absent) + ' scenarios and ' if absent else ''}EIR need documents "
                "in a second language, so only mono-same [en] is scored"]
    absent = [k for k in ("multi", "multi-all", "mono-cross", "multi-n") + (("full",) if len(others) == 1 else ())
              if k in chosen]
    what = f"one language only ({others[0]})" if len(others) == 1 else f"no English documents ({', '.join(others)})"
    return [f"{what}: {', '.join(absent) + ' scenarios and ' if absent else ''}EIR need English documents "
            "in the pool beside another language"]


class PoolCache:
    """One PoolInfo per distinct pool of an audit: scenarios that search the same documents (English and X
    queries on one pool, every model) share it, and with it its per-pool tables (languages, twins, codes)."""

    def __init__(self, corpus: Corpus) -> None:
        self.ids, self.langs, self.pids = corpus.doc_arrays()
        self._pools: dict[bytes, PoolInfo] = {}

    def get(self, docs: np.ndarray) -> PoolInfo:
        key = np.ascontiguousarray(docs, dtype=np.int64).tobytes()
        pool = self._pools.get(key)
        if pool is None:
            pool = PoolInfo(doc_ids=self.ids[docs], langs=self.langs[docs], parallel_ids=self.pids[docs])
            self._pools[key] = pool
        return pool


def scores_of(result: PoolRanking, pool: PoolInfo, settings: AuditSettings, names: list[str]
              ) -> tuple[ModelScores, dict[str, Any]]:
    """Metrics (vectorised over the columnar runs), their bootstrap CIs, and the head of every ranking. A
    censored result (rankings that stop at a depth) gives bounds where its completions disagree."""
    if isinstance(result, CensoredResult):
        return _censored_scores(result, pool, settings, names)
    columns = result.columns
    per_query = registry.evaluate(columns, pool, names)
    metrics = {n: _round(registry.mean_applicable(v)) for n, v in per_query.items()}
    estimates = stats.summarize(per_query, n_resamples=settings.bootstrap, seed=settings.seed)
    ci = {n: None if e is None else _round_pair((e.low, e.high)) for n, e in estimates.items()}
    index = {"kind": result.index_kind, "params": result.index_params, "recall_vs_exact": _round(result.recall_vs_exact)}
    run = RankedRun(columns.qids, pool.doc_ids, np.maximum(columns.top, 0), columns.top_scores,
                    columns.top_len if pool.size else np.zeros(len(columns.qids), np.int64))
    scores = ModelScores(metrics, ci, {n: _listed(v) for n, v in per_query.items()}, run)
    return scores, index


def _censored_scores(result: CensoredResult, pool: PoolInfo, settings: AuditSettings, names: list[str]
                     ) -> tuple[ModelScores, dict[str, Any]]:
    """Per query, the smallest and largest value over the completions; exact where they agree."""
    evaluated = [registry.evaluate(c.columns, pool, names) for c in result.completions]
    metrics: dict[str, float | None] = {}
    ci: dict[str, list[float] | None] = {}
    per_query: dict[str, list[float | None]] = {}
    bounds: dict[str, dict[str, Any]] = {}
    for n in names:
        if registry.get_metric(n).unit == "score":  # completions rank by made-up scores; the real ones are unknown
            metrics[n], ci[n], per_query[n] = None, None, [None] * len(result.known.docs)
            continue
        values = np.stack([e[n] for e in evaluated])
        low, high = np.fmin.reduce(values, axis=0), np.fmax.reduce(values, axis=0)
        censored = ~np.isnan(low) & (low != high)
        per_query[n] = _listed(np.where(censored, np.nan, low))
        if not censored.any():
            metrics[n] = _round(registry.mean_applicable(low))
            est = stats.summarize({n: low}, n_resamples=settings.bootstrap, seed=settings.seed)[n]
            ci[n] = None if est is None else _round_pair((est.low, est.high))
            continue
        metrics[n], ci[n] = None, None
        both = stats.summarize({"low": low, "high": high}, n_resamples=settings.bootstrap, seed=settings.seed)
        lo_ci, hi_ci = both["low"], both["high"]
        bounds[n] = {"low": _round(registry.mean_applicable(low)), "high": _round(registry.mean_applicable(high)),
                     "ci": None if lo_ci is None or hi_ci is None else _round_pair((lo_ci.low, hi_ci.high)),
                     "censored": int(censored.sum()), "per_query": [_listed(low), _listed(high)]}
    top, top_scores, lengths = result.known.head(max(settings.depth, settings.k))
    run = RankedRun(result.completions[0].columns.qids, pool.doc_ids, np.maximum(top, 0), top_scores, lengths)
    index = {"kind": "ranked list", "params": {"depth": int(result.known_len.max(initial=0))}, "recall_vs_exact": None}
    return ModelScores(metrics, ci, per_query, run, bounds), index


def _listed(values: np.ndarray) -> list[float | None]:
    return [None if x != x else x for x in values.tolist()]


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else round(float(x), digits)


def _round_pair(pair: tuple[float, float] | None) -> list[float] | None:
    return None if pair is None else [round(float(pair[0]), 4), round(float(pair[1]), 4)]




def environment(threads: int) -> dict[str, Any]:
    import onnxruntime
    import tokenizers
    from importlib.metadata import PackageNotFoundError, version

    def v(pkg: str) -> str | None:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return None

    return {"clbias": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "onnxruntime": onnxruntime.__version__, "tokenizers": tokenizers.__version__, "hnswlib": v("hnswlib"),
            "rich": v("rich"), "platform": platform.platform(), "threads": threads,
            "cpu_count": os.cpu_count()}


def audit(corpus: Corpus, systems: Sequence[Any], settings: AuditSettings | None = None,
          names: Sequence[str] | None = None, progress: Progress | None = None,
          plan: AuditPlan | None = None) -> Report:
    """Rank every scenario's pool with each system, score the rankings, and return one Report.
    `systems`: exported models (`Encoder`), built-in systems (clbias.retrievers) or user retrievers
    (anything `clbias.retrievers.as_system` takes). `names` overrides the systems' report names.
    `plan` is `plan_audit(corpus, settings)` when the caller already made it (to check gates before embedding)."""
    settings = settings or AuditSettings()
    if not systems:
        raise ValueError("audit needs at least one system")
    chosen = [as_system(s) for s in systems]
    if names is not None and len(names) != len(chosen):
        raise ValueError(f"{len(names)} names for {len(chosen)} systems")
    if settings.cache_dir is not None:
        from .runtime.cache import prepare_cache_dir

        settings = replace(settings, cache_dir=prepare_cache_dir(settings.cache_dir))
    if settings.engine == "ray":
        from .engine.ray_engine import RaySession

        with RaySession(settings.ray) as session:
            return _audit(corpus, chosen, settings, progress, session, plan, names)
    return _audit(corpus, chosen, settings, progress, None, plan, names)


def _audit(corpus: Corpus, systems: list[System], settings: AuditSettings, progress: Progress | None,
           session: Any, plan: AuditPlan | None, names: Sequence[str] | None = None) -> Report:
    metric_names = settings.metric_names()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    plan = plan or plan_audit(corpus, settings)
    corpus, scenarios, notes, neighbours_only = plan.corpus, plan.scenarios, list(plan.notes), plan.neighbours_only
    empty = np.empty(0, np.int64)
    ctx = AuditContext(corpus, settings, progress, session,
                       np.unique(np.concatenate([s.pool for s in scenarios])) if scenarios else empty,
                       np.unique(np.concatenate([s.queries for s in scenarios])) if scenarios else empty,
                       scenarios)
    for system in systems:
        notes += system.prepare(ctx)
    if settings.shift:
        systems = systems + _shifted_variants(systems, notes)
        for system in systems:
            if isinstance(system, ShiftedSystem):
                system.prepare(ctx)
    labels = list(names) if names is not None else system_labels([s.info for s in systems])
    for system, label in zip(systems, labels):
        system.info.name = label
    encoded = [(s, label) for s, label in zip(systems, labels) if isinstance(s, EncoderSystem)]
    notes += empty_text_notes([s.vectors() for s, _ in encoded], [label for _, label in encoded])
    corpus_langs = {d.lang for d in corpus.docs} | {q.lang for q in corpus.queries}
    for s in systems:
        note = language_note(s.info.name, s.encoder.manifest, corpus_langs) if isinstance(s, EncoderSystem) else None
        if note:
            notes.append(note)
    timings["embed_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    results: list[ScenarioResult] = []
    index_info: dict[str, Any] = {"kind": None, "params": {}, "recall_vs_exact": None}
    recalls: list[float] = []
    pools = PoolCache(corpus)
    for scenario in scenarios:
        pool = pools.get(scenario.pool)
        by_model: dict[str, ModelScores] = {}
        first_index: dict[str, Any] = {}
        for system, label in zip(systems, labels):
            scores, index = scores_of(system.rank(scenario, pool, ctx), pool, settings, metric_names)
            by_model[label] = scores
            first_index = first_index or index
            if system.info.kind == "model":
                index_info = {"kind": index["kind"], "params": index["params"], "recall_vs_exact": None}
                if index["recall_vs_exact"] is not None:
                    recalls.append(index["recall_vs_exact"])
        first = by_model[labels[0]]
        comparisons = [compare(labels[0], other, first, by_model[other], metric_names, settings.bootstrap,
                               settings.seed) for other in labels[1:]]
        results.append(ScenarioResult(name=scenario.label, kind=scenario.kind, pool_langs=list(scenario.pool_langs),
                                      query_lang=scenario.query_lang, n_queries=len(scenario.queries),
                                      pool_size=len(scenario.pool), skipped_queries=scenario.skipped_queries,
                                      metrics=first.metrics, ci=first.ci, by_model=by_model,
                                      comparisons=comparisons, index=first_index,
                                      query_ids=[corpus.queries[i].id for i in scenario.queries]))
    if index_info["kind"] is None and results:
        index_info = {**results[-1].index, "recall_vs_exact": None}
    if recalls:
        index_info["recall_vs_exact"] = _round(float(np.mean(recalls)))
    neighbours = None
    if neighbours_only:
        dense = next((s for s in systems if isinstance(s, DenseSystem) and s.embedded is not None), None)
        if dense is not None:
            neighbours = neighbour_mix(dense.vectors().docs, pools.langs, settings.k)
        else:
            notes.append("the nearest-neighbour language mix needs a dense model; none was audited")
    elif not scenarios:
        notes.append("no scenario has judged queries: ranking metrics need queries and qrels")
    gaps = [g for name in labels
            for g in language_gaps(corpus, results, name, metric_names, settings.bootstrap, settings.seed)]
    timings["score_s"] = time.perf_counter() - t1
    encoders = [s.encoder for s in systems if isinstance(s, EncoderSystem)]
    report = Report(
        corpus=_corpus_info(corpus, settings),
        models=[s.info for s in systems],
        index=index_info,
        settings={"k": settings.k, "depth": settings.depth, "bootstrap": settings.bootstrap, "seed": settings.seed,
                  "scenarios": settings.scenarios, "langs": settings.langs, "index": settings.index,
                  "expand_translations": settings.expand_translations, "ci_level": 0.95},
        environment=environment(encoders[0].threads if encoders else 1),
        scenarios=results, gaps=gaps,
        truncation={label: s.truncation for s, label in zip(systems, labels) if s.info.kind == "model"},
        neighbours=neighbours, notes=notes, timings={k: round(v, 3) for k, v in timings.items()},
    )
    return report


def _shifted_variants(systems: list[System], notes: list[str]) -> list[System]:
    """The training-free shift moves only document vectors, at index time, so it reuses the embeddings."""
    from .shift import load_shift

    out: list[System] = []
    for system in systems:
        if not isinstance(system, EncoderSystem):
            continue
        encoder = system.encoder
        shift = load_shift(encoder.model_dir, encoder.onnx)
        if shift is None:
            notes.append(f"{system.info.name}: no shift fitted (run `clbias shift fit --model {encoder.model_dir} "
                         "--pairs ...`)")
            continue
        out.append(ShiftedSystem(system, shift))
    return out


def _corpus_info(corpus: Corpus, settings: AuditSettings) -> dict[str, Any]:
    meta = corpus.meta
    return {"path": portable_path(corpus.path), "name": meta.get("name", corpus.path.name), "n_docs": len(corpus.docs),
            "n_queries": len(corpus.queries), "doc_langs": corpus.doc_langs, "query_langs": corpus.query_langs,
            "split": corpus.split, "parallel": meta.get("parallel"), "query_derivation": meta.get("query_derivation"),
            "label_free": bool(meta.get("label_free")), "source": meta.get("source"), "license": meta.get("license") or meta.get("licence"),
            "fingerprint": corpus.fingerprint()}

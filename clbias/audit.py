"""The audit as a library call: corpus + models -> Report. The CLI is a thin layer over `audit()`."""
from __future__ import annotations

import numbers
import os
import platform
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from . import __version__
from .corpus import Corpus, passage_text
from .errors import InputError
from .gaps import language_gaps
from .langs import ENGLISH, normalize_lang
from .labelfree import TWIN_DERIVATION, needs_label_free, neighbour_mix, twin_probes
from .metrics import registry, stats
from .metrics.types import PoolInfo
from .report.model import (DETAIL_METRICS, HEADLINE_METRICS, Comparison, ModelInfo, ModelScores,
                           RankedRun, Report, ScenarioResult)
from .retrieval import RetrievalResult, retrieve
from .runtime.embed import embed_texts
from .runtime.encoder import Encoder
from .runtime.manifest import language_note
from .scenarios import DEFAULT_KINDS, SCENARIO_KINDS, Scenario, build_scenarios
from .search import HnswParams, IndexKind, choose_index

INDEX_KINDS = ("auto", "exact", "hnsw")
TRUNCATED_IDS_SHOWN = 5  # ids of truncated texts named per language in the report


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
class EmbeddedCorpus:
    docs: np.ndarray
    queries: np.ndarray
    # "passage"/"query": lang -> number truncated; "passage_ids"/"query_ids": lang -> first truncated ids
    truncation: dict[str, dict[str, Any]]
    empty: dict[str, list[str]] = field(default_factory=dict)  # "documents"/"queries": ids with no token of text


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


def model_info(encoder: Encoder, name: str | None = None) -> ModelInfo:
    m = encoder.manifest
    return ModelInfo(name=name or m.name, sha256=encoder.sha256, onnx=encoder.onnx,
                     prefixes={"query": m.prefixes.query, "passage": m.prefixes.passage}, pooling=m.pooling,
                     normalize=m.normalize, max_length=m.max_length, dim=m.dim, source=m.source,
                     quantization=m.quantization.get(encoder.onnx, {}))


def embed_corpus(corpus: Corpus, encoder: Encoder, settings: AuditSettings, progress: Progress | None = None,
                 docs_needed: np.ndarray | None = None, queries_needed: np.ndarray | None = None,
                 embed_texts: Any = embed_texts) -> EmbeddedCorpus:
    """Embed the documents and queries that some scenario uses (all, when not told); the rest stay zero.
    `embed_texts`: the engine's embedding function (runtime.embed.embed_texts, or the Ray engine's)."""
    doc_idx = np.arange(len(corpus.docs)) if docs_needed is None else docs_needed
    q_idx = np.arange(len(corpus.queries)) if queries_needed is None else queries_needed
    if progress:
        progress.start(f"embedding with {encoder.manifest.name}", len(doc_idx) + len(q_idx))
    advance = progress.advance if progress else None
    doc_texts = [passage_text(corpus.docs[i]) for i in doc_idx]
    doc_vecs, doc_stats = embed_texts(encoder, doc_texts, "passage", settings.cache_dir, settings.batch_size, advance)
    q_vecs, q_stats = embed_texts(encoder, [corpus.queries[i].text for i in q_idx], "query", settings.cache_dir,
                                  settings.batch_size, advance)
    if progress:
        progress.finish()
    dim = doc_vecs.shape[1] if len(doc_idx) else (q_vecs.shape[1] if len(q_idx) else int(encoder.manifest.dim or 1))
    docs = np.zeros((len(corpus.docs), dim), dtype=np.float32)
    queries = np.zeros((len(corpus.queries), dim), dtype=np.float32)
    docs[doc_idx] = doc_vecs
    queries[q_idx] = q_vecs
    truncation: dict[str, dict[str, Any]] = {
        "passage": _count_by_lang([corpus.docs[i].lang for i in doc_idx], doc_stats.truncated),
        "query": _count_by_lang([corpus.queries[i].lang for i in q_idx], q_stats.truncated),
        "passage_ids": _first_ids_by_lang([corpus.docs[i] for i in doc_idx], doc_stats.truncated),
        "query_ids": _first_ids_by_lang([corpus.queries[i] for i in q_idx], q_stats.truncated),
    }
    empty: dict[str, list[str]] = {"documents": [corpus.docs[int(i)].id for i in doc_idx[encoder.empty_texts(doc_stats.n_tokens, "passage")]],
             "queries": [corpus.queries[int(i)].id for i in q_idx[encoder.empty_texts(q_stats.n_tokens, "query")]]}
    return EmbeddedCorpus(docs, queries, truncation, {k: v for k, v in empty.items() if v})


def empty_text_notes(embedded: Sequence[EmbeddedCorpus], names: Sequence[str]) -> list[str]:
    """One note per model and kind of text that tokenised to nothing but the prefix and special tokens
    (zero-width or control characters only): their vectors say nothing about the text."""
    notes = []
    for emb, name in zip(embedded, names):
        for what, ids in emb.empty.items():
            shown = ", ".join(repr(i) for i in ids[:TRUNCATED_IDS_SHOWN])
            notes.append(f"{name}: {len(ids)} {what} empty after tokenisation (the model reads only its prefix): "
                         f"{shown}{', ...' if len(ids) > TRUNCATED_IDS_SHOWN else ''}")
    return notes


def _first_ids_by_lang(records: Sequence[Any], truncated: np.ndarray) -> dict[str, list[str]]:
    """The first few truncated ids per language (only languages with any), in corpus order."""
    out: dict[str, list[str]] = {}
    for i in np.flatnonzero(truncated).tolist():
        ids = out.setdefault(records[i].lang, [])
        if len(ids) < TRUNCATED_IDS_SHOWN:
            ids.append(records[i].id)
    return dict(sorted(out.items()))


def _count_by_lang(langs: Sequence[str], truncated: np.ndarray) -> dict[str, int]:
    counts = Counter(lang for lang, cut in zip(langs, truncated) if cut)
    return {lang: counts.get(lang, 0) for lang in sorted(set(langs))}


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


def score_scenario(corpus: Corpus, scenario: Scenario, embedded: EmbeddedCorpus, settings: AuditSettings,
                   names: list[str], session: Any = None, pools: PoolCache | None = None
                   ) -> tuple[ModelScores, dict[str, Any]]:
    """`session`: a running Ray engine session; exact scoring of large pools then runs as Ray tasks."""
    pool = (pools or PoolCache(corpus)).get(scenario.pool)
    queries = [corpus.queries[i] for i in scenario.queries]
    if session is not None and choose_index(settings.index, pool.size) == "exact":
        from .engine.ray_engine import retrieve_ray

        result = retrieve_ray(session, embedded.queries[scenario.queries], embedded.docs[scenario.pool],
                              [q.id for q in queries], [q.lang for q in queries], scenario.relevant, pool,
                              depth=max(settings.depth, settings.k), k=settings.k, excluded=scenario.excluded)
        return scores_of(result, pool, settings, names)
    result = retrieve(embedded.queries[scenario.queries], embedded.docs[scenario.pool], [q.id for q in queries],
                      [q.lang for q in queries], scenario.relevant, pool, depth=max(settings.depth, settings.k),
                      k=settings.k, index=settings.index, hnsw=settings.hnsw, excluded=scenario.excluded)
    return scores_of(result, pool, settings, names)


def scores_of(result: RetrievalResult, pool: PoolInfo, settings: AuditSettings, names: list[str]
              ) -> tuple[ModelScores, dict[str, Any]]:
    """Metrics (vectorised over the columnar runs), their bootstrap CIs, and the head of every ranking."""
    columns = result.columns
    per_query = registry.evaluate(columns, pool, names)
    metrics = {n: _round(registry.mean_applicable(v)) for n, v in per_query.items()}
    estimates = stats.summarize(per_query, n_resamples=settings.bootstrap, seed=settings.seed)
    ci = {n: None if e is None else _round_pair((e.low, e.high)) for n, e in estimates.items()}
    index = {"kind": result.index_kind, "params": result.index_params, "recall_vs_exact": _round(result.recall_vs_exact)}
    run = RankedRun(columns.qids, pool.doc_ids, np.maximum(columns.top, 0), columns.top_scores,
                    columns.top_len if pool.size else np.zeros(len(columns.qids), np.int64))
    scores = ModelScores(metrics, ci, {n: [None if x != x else x for x in v.tolist()] for n, v in per_query.items()},
                         run)
    return scores, index


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else round(float(x), digits)


def _round_pair(pair: tuple[float, float] | None) -> list[float] | None:
    return None if pair is None else [round(float(pair[0]), 4), round(float(pair[1]), 4)]


def compare(base: str, other: str, a: ModelScores, b: ModelScores, names: list[str],
            settings: AuditSettings) -> Comparison:
    out: dict[str, dict[str, Any]] = {}
    for n in names:
        va = np.array([np.nan if x is None else x for x in a.per_query[n]], dtype=float)
        vb = np.array([np.nan if x is None else x for x in b.per_query[n]], dtype=float)
        c = stats.paired_comparison(vb, va, n, n_resamples=settings.bootstrap, seed=settings.seed)
        out[n] = {"diff": None} if c is None else {
            "base": _round(c.mean_b), "other": _round(c.mean_a), "diff": _round(c.difference),
            "ci": _round_pair((c.low, c.high)), "wins": c.wins, "ties": c.ties,
            "losses": c.losses, "n": c.n}
    return Comparison(base=base, other=other, metrics=out)


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


def audit(corpus: Corpus, encoders: Sequence[Encoder], settings: AuditSettings | None = None,
          names: Sequence[str] | None = None, progress: Progress | None = None,
          plan: AuditPlan | None = None) -> Report:
    """Embed the corpus with each model, build the scenarios, score them, and return one Report.
    `plan` is `plan_audit(corpus, settings)` when the caller already made it (to check gates before embedding)."""
    settings = settings or AuditSettings()
    if not encoders:
        raise ValueError("audit needs at least one model")
    if settings.cache_dir is not None:
        from .runtime.cache import prepare_cache_dir

        settings = replace(settings, cache_dir=prepare_cache_dir(settings.cache_dir))
    if settings.engine == "ray":
        from .engine.ray_engine import RaySession

        with RaySession(settings.ray) as session:
            return _audit(corpus, encoders, settings, progress, session, plan)
    return _audit(corpus, encoders, settings, progress, None, plan)


def _audit(corpus: Corpus, encoders: Sequence[Encoder], settings: AuditSettings, progress: Progress | None,
           session: Any, plan: AuditPlan | None) -> Report:
    model_names = model_labels(encoders)
    metric_names = settings.metric_names()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    plan = plan or plan_audit(corpus, settings)
    corpus, scenarios, notes, neighbours_only = plan.corpus, plan.scenarios, list(plan.notes), plan.neighbours_only
    corpus_langs = {d.lang for d in corpus.docs} | {q.lang for q in corpus.queries}
    notes += [n for e, label in zip(encoders, model_names) if (n := language_note(label, e.manifest, corpus_langs))]
    embedded: list[EmbeddedCorpus] = []
    docs_needed = np.unique(np.concatenate([s.pool for s in scenarios])) if scenarios else None
    queries_needed = np.unique(np.concatenate([s.queries for s in scenarios])) if scenarios else None
    embed_fn: Any = embed_texts
    if session is not None:
        from functools import partial

        from .engine.ray_engine import embed_texts_ray

        embed_fn = partial(embed_texts_ray, session)
    for encoder in encoders:
        embedded.append(embed_corpus(corpus, encoder, settings, progress, docs_needed, queries_needed, embed_fn))
    notes += empty_text_notes(embedded[:len(encoders)], model_names)
    infos = [model_info(e, n) for e, n in zip(encoders, model_names)]
    if settings.shift:
        model_names, embedded, infos = _with_shifted_variants(corpus, encoders, model_names, embedded, infos, notes)
    timings["embed_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    results: list[ScenarioResult] = []
    index_info: dict[str, Any] = {"kind": None, "params": {}, "recall_vs_exact": None}
    recalls: list[float] = []
    pools = PoolCache(corpus)
    for scenario in scenarios:
        by_model: dict[str, ModelScores] = {}
        for name, emb in zip(model_names, embedded):
            scores, index = score_scenario(corpus, scenario, emb, settings, metric_names, session, pools)
            by_model[name] = scores
            index_info = {"kind": index["kind"], "params": index["params"], "recall_vs_exact": None}
            if index["recall_vs_exact"] is not None:
                recalls.append(index["recall_vs_exact"])
        first = by_model[model_names[0]]
        comparisons = [compare(model_names[0], other, first, by_model[other], metric_names, settings)
                       for other in model_names[1:]]
        results.append(ScenarioResult(name=scenario.label, kind=scenario.kind, pool_langs=list(scenario.pool_langs),
                                      query_lang=scenario.query_lang, n_queries=len(scenario.queries),
                                      pool_size=len(scenario.pool), skipped_queries=scenario.skipped_queries,
                                      metrics=first.metrics, ci=first.ci, by_model=by_model,
                                      comparisons=comparisons, index=index,
                                      query_ids=[corpus.queries[i].id for i in scenario.queries]))
    if recalls:
        index_info["recall_vs_exact"] = _round(float(np.mean(recalls)))
    neighbours = None
    if neighbours_only:
        langs = pools.langs
        neighbours = neighbour_mix(embedded[0].docs, langs, settings.k)
    elif not scenarios:
        notes.append("no scenario has judged queries: ranking metrics need queries and qrels")
    gaps = [g for name in model_names
            for g in language_gaps(corpus, results, name, metric_names, settings.bootstrap, settings.seed)]
    timings["score_s"] = time.perf_counter() - t1
    report = Report(
        corpus=_corpus_info(corpus, settings),
        models=infos,
        index=index_info,
        settings={"k": settings.k, "depth": settings.depth, "bootstrap": settings.bootstrap, "seed": settings.seed,
                  "scenarios": settings.scenarios, "langs": settings.langs, "index": settings.index,
                  "expand_translations": settings.expand_translations, "ci_level": 0.95},
        environment=environment(encoders[0].threads),
        scenarios=results, gaps=gaps,
        truncation={n: e.truncation for n, e in zip(model_names, embedded)},
        neighbours=neighbours, notes=notes, timings={k: round(v, 3) for k, v in timings.items()},
    )
    return report


def _with_shifted_variants(corpus: Corpus, encoders: Sequence[Encoder], names: list[str],
                           embedded: list[EmbeddedCorpus], infos: list[ModelInfo], notes: list[str]
                           ) -> tuple[list[str], list[EmbeddedCorpus], list[ModelInfo]]:
    """The training-free shift moves only document vectors, at index time, so it reuses the embeddings."""
    from .shift import load_shift

    langs = [d.lang for d in corpus.docs]
    names, embedded, infos = list(names), list(embedded), list(infos)
    for encoder, name, emb, info in list(zip(encoders, names, embedded, infos)):
        shift = load_shift(encoder.model_dir, encoder.onnx)
        if shift is None:
            notes.append(f"{name}: no shift fitted (run `clbias shift fit --model {encoder.model_dir} --pairs ...`)")
            continue
        names.append(f"{name}+shift")
        embedded.append(EmbeddedCorpus(shift.apply(emb.docs, langs), emb.queries, emb.truncation))
        infos.append(replace(info, name=f"{name}+shift", shift={"langs": shift.langs, "n_pairs": shift.n_pairs,
                                                                "source": shift.source}))
    return names, embedded, infos


def graph_tag(onnx: str) -> str:
    """The short name of a graph file, as `NAME:GRAPH` takes it: model.int8-RECIPE.onnx -> int8-RECIPE."""
    tag = {"model.onnx": "fp32", "model.int8.onnx": "int8"}.get(onnx, onnx.removesuffix(".onnx"))
    return tag.removeprefix("model.") if tag.startswith("model.int8") else tag


def model_labels(encoders: Sequence[Encoder]) -> list[str]:
    """Model names for reports; the same model with two graphs becomes `name:fp32` and `name:int8`."""
    names = [e.manifest.name for e in encoders]
    labels = [n if names.count(n) == 1 else f"{n}:{graph_tag(e.onnx)}" for n, e in zip(names, encoders)]
    seen: Counter[str] = Counter()
    out = []
    for label in labels:
        seen[label] += 1
        out.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return out


def _corpus_info(corpus: Corpus, settings: AuditSettings) -> dict[str, Any]:
    meta = corpus.meta
    return {"path": str(corpus.path), "name": meta.get("name", corpus.path.name), "n_docs": len(corpus.docs),
            "n_queries": len(corpus.queries), "doc_langs": corpus.doc_langs, "query_langs": corpus.query_langs,
            "split": corpus.split, "parallel": meta.get("parallel"), "query_derivation": meta.get("query_derivation"),
            "label_free": bool(meta.get("label_free")), "source": meta.get("source"), "license": meta.get("license") or meta.get("licence"),
            "fingerprint": corpus.fingerprint()}

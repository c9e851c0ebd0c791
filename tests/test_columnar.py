"""The columnar path equals the per-query reference: `retrieve` gives the runs a full sort of every score row
gives (ties, exclusions, chunking, HNSW), and every registry metric's vectorised form gives, to the bit, what
its per-query definition gives, on random runs and on hand-made ones."""
from __future__ import annotations

import numpy as np
import pytest

from clbias.search import ranking as retrieval
from clbias.metrics import PoolInfo, QueryRun, query_run_from_scores
from clbias.metrics.columnar import ColumnarRuns, exact_row_reduce
from clbias.metrics.registry import DEFAULT_METRICS, evaluate_columnar, evaluate_reference, get_metric
from clbias.search import HnswParams

ALL_METRICS = list(DEFAULT_METRICS) + ["complete@1", "ndcg@3", "recall@5", "mrr@2", "en_exposure@3",
                                       "ndcg@200", "en_exposure@1000"]


def mixed_pool(n_docs: int, seed: int, langs: tuple[str, ...] = ("en", "zh", "de")) -> PoolInfo:
    """Languages at random; parallel ids shared across languages, some ids held by two documents of one
    language, some documents without an id."""
    rng = np.random.default_rng(seed)
    doc_langs = rng.choice(langs, n_docs)
    pids = [None if rng.random() < 0.2 else f"p{rng.integers(0, max(1, n_docs // 3))}" for _ in range(n_docs)]
    return PoolInfo(doc_ids=np.array([f"d{i}" for i in range(n_docs)]), langs=doc_langs,
                    parallel_ids=np.array(pids, dtype=object))


def random_case(seed: int, n_docs: int = 60, n_queries: int = 40, dim: int = 8):
    rng = np.random.default_rng(seed)
    pool = mixed_pool(n_docs, seed)
    docs = rng.normal(size=(n_docs, dim)).astype(np.float32)
    docs[5] = docs[4]  # identical documents tie on every query
    queries = rng.normal(size=(n_queries, dim)).astype(np.float32)
    queries = np.round(queries, 1)  # rounded scores tie often
    docs = np.round(docs, 1)
    qlangs = list(rng.choice(["en", "zh", "de", "fr"], n_queries))
    relevant = tuple(np.sort(rng.choice(n_docs, int(rng.integers(0, 6)), replace=False)) for _ in range(n_queries))
    return pool, docs, queries, qlangs, relevant


def assert_same_metrics(runs: list[QueryRun], pool: PoolInfo, names=ALL_METRICS) -> None:
    reference = evaluate_reference(runs, pool, names)
    vectorised = evaluate_columnar(ColumnarRuns.from_runs(runs, pool), pool, names)
    for name in names:
        assert np.array_equal(reference[name], vectorised[name], equal_nan=True), \
            (name, reference[name], vectorised[name])


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_registry_equals_the_per_query_reference_on_random_runs(seed: int) -> None:
    pool, docs, queries, qlangs, relevant = random_case(seed)
    scores = queries @ docs.T
    runs = [query_run_from_scores(f"q{i}", qlangs[i], scores[i], relevant[i], pool, depth=int(5 + seed * 7))
            for i in range(len(queries))]
    assert_same_metrics(runs, pool)
    # and the sampled runs do exercise the metrics: each applies to some query and varies
    values = evaluate_reference(runs, pool, ALL_METRICS)
    for name in ("eir", "eir_neutral", "twin_pref", "twin_rank_gap", "twin_score_gap", "max_r_norm"):
        assert np.isfinite(values[name]).any(), name


def test_vectorised_registry_on_hand_made_runs() -> None:
    pool = PoolInfo(doc_ids=np.array(["en0", "zh0", "en1", "zh1", "fr1", "zh2", "en2", "zh3"]),
                    langs=np.array(["en", "zh", "en", "zh", "fr", "zh", "en", "zh"]),
                    parallel_ids=np.array(["a", "a", "b", "b", "b", "b", None, "c"], dtype=object))

    def run(lang, top, relevant, ranks, best=None, twin=None, exact=None, scores=None):
        top = np.array(top, dtype=np.int64)
        return QueryRun(qid="q", lang=lang, top=top, top_scores=np.linspace(1, 0, top.size).astype(np.float32),
                        relevant=np.array(relevant, dtype=np.int64), relevant_ranks=np.array(ranks, dtype=np.int64),
                        relevant_scores=np.array(scores if scores is not None else [0.5] * len(relevant),
                                                 dtype=np.float32),
                        best_irrelevant_rank=best or {}, best_irrelevant_twinned_rank=twin or {},
                        exact_head=None if exact is None else np.array(exact, dtype=np.int64))

    runs = [
        run("zh", [2, 1, 0, 3], [1, 0], [2, 3], {"en": 1, "zh": 4, "fr": 5}, {"zh": 4}),
        run("zh", [3, 2], [0, 1, 2, 3, 4], [5, 1, 2, 3, 4], {"en": 6}, {}, scores=[0.1, 0.9, 0.3, 0.7, 0.2]),
        run("en", [0], [0], [1], {"zh": 2}),
        run("zh", [], [], []),  # unjudged
        run("zh", [6, 5], [7], [8], {"en": 1, "zh": 2}, {"zh": 3}, exact=[5, 6, 0, 1]),  # approximate head
        run("fr", [4, 0], [4], [1], {"en": 2}),
        run("zh", [5, 7], [1], [3], {}, {}),  # top-1 from the head fallback
        run("de", [0, 1], [0, 1], [1, 2], {"zh": 3}),  # query language not in the pool
    ]
    assert_same_metrics(runs, pool)


def test_exact_row_reduce_is_numpy_sum_and_mean_per_row() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=(200, 40)) * 10.0 ** rng.integers(-8, 8, size=(200, 40))
    mask = rng.random((200, 40)) < rng.random((200, 1))
    sums, counts = exact_row_reduce(values, mask)
    means, _ = exact_row_reduce(values, mask, "mean")
    for i in range(200):
        assert counts[i] == mask[i].sum()
        if counts[i]:
            assert sums[i] == np.sum(values[i][mask[i]]) and means[i] == np.mean(values[i][mask[i]])


def chunked_scores(queries, docs):
    """The score rows as retrieve computes them: one matrix product per chunk of queries (BLAS may round a
    product of one row differently from the same row inside a larger product)."""
    rows = max(1, retrieval.MAX_CHUNK_CELLS // max(1, len(docs)))
    return np.concatenate([queries[a:a + rows] @ docs.T for a in range(0, len(queries), rows)])


def reference_runs(queries, docs, qlangs, relevant, pool, depth, excluded=()):
    scores = chunked_scores(queries, docs)
    for i, ex in enumerate(excluded):
        scores[i, ex] = -np.inf
    return [query_run_from_scores(f"q{i}", qlangs[i], scores[i], relevant[i], pool, depth=depth)
            for i in range(len(queries))]


def assert_runs_equal(got: list[QueryRun], want: list[QueryRun], excluded=()) -> None:
    for i, (a, b) in enumerate(zip(got, want)):
        top = b.top if not excluded else b.top[~np.isin(b.top, excluded[i])]
        assert np.array_equal(a.top, top), (i, a.top, top)
        assert np.array_equal(a.top_scores, b.top_scores[:top.size]) or excluded
        assert np.array_equal(a.relevant, b.relevant)
        assert np.array_equal(a.relevant_ranks, b.relevant_ranks), (i, a.relevant_ranks, b.relevant_ranks)
        assert np.array_equal(a.relevant_scores, b.relevant_scores)
        assert a.best_irrelevant_rank == b.best_irrelevant_rank, i
        assert a.best_irrelevant_twinned_rank == b.best_irrelevant_twinned_rank, i


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("chunk_cells", [retrieval.MAX_CHUNK_CELLS, 70, 500])
def test_retrieve_equals_a_full_sort_of_every_row(monkeypatch: pytest.MonkeyPatch, seed: int,
                                                  chunk_cells: int) -> None:
    monkeypatch.setattr(retrieval, "MAX_CHUNK_CELLS", chunk_cells)
    pool, docs, queries, qlangs, relevant = random_case(seed)
    result = retrieval.retrieve(queries, docs, [f"q{i}" for i in range(len(queries))], qlangs, relevant, pool,
                                depth=10, index="exact")
    assert_runs_equal(result.runs, reference_runs(queries, docs, qlangs, relevant, pool, 10))
    assert_same_metrics(result.runs, pool)


@pytest.mark.parametrize("sample_rank, row_count_width", [(32, 5_000), (1, 0), (2, 10**9)])
def test_retrieve_with_a_large_pool_takes_the_head_from_a_sampled_threshold(
        monkeypatch: pytest.MonkeyPatch, sample_rank: int, row_count_width: int) -> None:
    """Pools much larger than the depth select the head by a threshold drawn from a sample of the row (a
    threshold too high for a row falls back to every column), and count deep ranks row by row or along an
    axis; the head and ranks are exact either way, ties at the boundary included."""
    monkeypatch.setattr(retrieval, "_SAMPLE_RANK", sample_rank)
    monkeypatch.setattr(retrieval, "_ROW_COUNT_WIDTH", row_count_width)
    rng = np.random.default_rng(7)
    n_docs = 6000
    pool = mixed_pool(n_docs, 7)
    docs = np.round(rng.normal(size=(n_docs, 6)), 1).astype(np.float32)
    queries = np.round(rng.normal(size=(25, 6)), 1).astype(np.float32)
    qlangs = list(rng.choice(["en", "zh", "de"], 25))
    relevant = tuple(np.sort(rng.choice(n_docs, 3, replace=False)) for _ in range(25))
    result = retrieval.retrieve(queries, docs, [f"q{i}" for i in range(25)], qlangs, relevant, pool,
                                depth=30, index="exact")
    assert_runs_equal(result.runs, reference_runs(queries, docs, qlangs, relevant, pool, 30))


def test_retrieve_with_exclusions_and_a_depth_beyond_the_pool() -> None:
    pool, docs, queries, qlangs, relevant = random_case(11, n_docs=30, n_queries=12)
    rng = np.random.default_rng(2)
    excluded = tuple(np.setdiff1d(rng.choice(30, 2, replace=False), relevant[i]) for i in range(12))
    for depth in (5, 40):
        result = retrieval.retrieve(queries, docs, [f"q{i}" for i in range(12)], qlangs, relevant, pool,
                                    depth=depth, index="exact", excluded=excluded)
        want = reference_runs(queries, docs, qlangs, relevant, pool, depth, excluded)
        assert_runs_equal(result.runs, want, excluded)
        for run, ex in zip(result.runs, excluded):
            assert not np.isin(run.top, ex).any()


def test_retrieve_hnsw_keeps_exact_deep_ranks_and_head() -> None:
    pool, docs, queries, qlangs, relevant = random_case(3, n_docs=400, n_queries=20, dim=16)
    exact = retrieval.retrieve(queries, docs, [f"q{i}" for i in range(20)], qlangs, relevant, pool, depth=20,
                               index="exact")
    approx = retrieval.retrieve(queries, docs, [f"q{i}" for i in range(20)], qlangs, relevant, pool, depth=20,
                                index="hnsw", hnsw=HnswParams(M=4, ef_construction=10, ef=10))
    assert approx.recall_vs_exact is not None and 0.0 < approx.recall_vs_exact <= 1.0
    for e, a in zip(exact.runs, approx.runs):
        assert np.array_equal(a.exact_head, e.top)
        assert np.array_equal(a.relevant_ranks, e.relevant_ranks)
        assert a.best_irrelevant_rank == e.best_irrelevant_rank
    assert_same_metrics(approx.runs, pool)
    values = evaluate_columnar(approx.columns, pool, ["twin_pref", "eir"])
    assert np.array_equal(values["twin_pref"], evaluate_columnar(exact.columns, pool, ["twin_pref"])["twin_pref"],
                          equal_nan=True)


def test_nan_scores_rank_last_like_minus_infinity() -> None:
    pool, docs, queries, qlangs, relevant = random_case(5, n_docs=40, n_queries=6)
    docs = docs.copy()
    docs[3, 0] = np.nan  # every query scores document 3 as NaN
    queries = queries.copy()
    queries[2, 1] = np.nan  # and query 2 scores every document as NaN
    result = retrieval.retrieve(queries, docs, [f"q{i}" for i in range(6)], qlangs, relevant, pool, depth=8,
                                index="exact")
    scores = chunked_scores(queries, docs)
    scores[np.isnan(scores)] = -np.inf
    want = [query_run_from_scores(f"q{i}", qlangs[i], scores[i], relevant[i], pool, depth=8) for i in range(6)]
    for a, b in zip(result.runs, want):
        assert np.array_equal(a.top, b.top) and np.array_equal(a.relevant_ranks, b.relevant_ranks)
        assert a.best_irrelevant_rank == b.best_irrelevant_rank
        assert a.best_irrelevant_twinned_rank == b.best_irrelevant_twinned_rank


def test_metric_names_all_have_a_vectorised_form() -> None:
    for name in ALL_METRICS:
        assert get_metric(name).vectorised is not None, name


@pytest.mark.parametrize("paired", [False, True])
def test_language_gaps_from_kept_draws_equal_fresh_draws(paired: bool) -> None:
    from clbias.metrics import stats

    rng = np.random.default_rng(8)
    english, other = rng.normal(size=57), rng.normal(size=57 if paired else 43)
    english[3] = np.nan
    gap = stats.language_gap(english, other, paired=paired, n_resamples=500, seed=11)
    fresh = np.random.default_rng(11)
    if paired:
        both = ~np.isnan(english) & ~np.isnan(other)
        samples = stats._bootstrap_means(english[both] - other[both], 500, fresh)
    else:
        e = english[~np.isnan(english)]
        samples = stats._bootstrap_means(e, 500, fresh) - stats._bootstrap_means(other, 500, fresh)
    assert (gap.low, gap.high) == stats._percentile_interval(samples, 0.95)


@pytest.mark.parametrize("packed_limit", [0, 2 ** 62])
def test_twin_preference_dedupes_pairs_the_same_with_packed_keys_or_lexsort(
        packed_limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large pools fall back from one packed int64 key per (query, English doc, native doc) to a lexsort."""
    from clbias.metrics import columnar

    monkeypatch.setattr(columnar, "_PACKED_KEY_LIMIT", packed_limit)
    pool, docs, queries, qlangs, relevant = random_case(3)
    scores = queries @ docs.T
    runs = [query_run_from_scores(f"q{i}", qlangs[i], scores[i], relevant[i], pool, depth=20)
            for i in range(len(queries))]
    assert_same_metrics(runs, pool, ["twin_pref"])

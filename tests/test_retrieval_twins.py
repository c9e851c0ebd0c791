"""`retrieve` carries what neutral EIR and twin preference need, exactly as a brute-force run over the
full score row has it (ties, exclusions, small chunks, HNSW heads)."""
from __future__ import annotations

import numpy as np
import pytest

from clbias.search import ranking as retrieval
from clbias.metrics import PoolInfo, get_metric, query_run_from_scores
from clbias.search import HnswParams


def parallel_pool(n_pids: int, seed: int = 0) -> tuple[PoolInfo, np.ndarray]:
    """en + zh twins of `n_pids` texts plus untwinned documents in both languages, and clustered vectors."""
    rng = np.random.default_rng(seed)
    langs = ["en", "zh"] * n_pids + ["zh"] * 7 + ["en"] * 5
    pids = [f"p{i // 2}" for i in range(2 * n_pids)] + [None] * 12
    centres = rng.normal(size=(n_pids, 24))
    vecs = np.concatenate([centres[np.arange(2 * n_pids) // 2], rng.normal(size=(12, 24))])
    vecs = vecs + 0.6 * rng.normal(size=vecs.shape)
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    pool = PoolInfo(doc_ids=np.array([f"d{i}" for i in range(len(langs))]), langs=np.array(langs),
                    parallel_ids=np.array(pids, dtype=object))
    return pool, vecs


@pytest.mark.parametrize("chunk_cells", [retrieval.MAX_CHUNK_CELLS, 150])
def test_twinned_ranks_match_a_full_sort(monkeypatch: pytest.MonkeyPatch, chunk_cells: int) -> None:
    monkeypatch.setattr(retrieval, "MAX_CHUNK_CELLS", chunk_cells)
    pool, docs = parallel_pool(40)
    rng = np.random.default_rng(3)
    queries = docs[rng.integers(0, 80, 30)] + 0.2 * rng.normal(size=(30, 24)).astype(np.float32)
    queries[5] = queries[4]  # identical rows and rounded scores give ties
    queries = np.round(queries, 1)
    relevant = tuple(np.array([2 * (i % 40), 2 * (i % 40) + 1]) for i in range(30))
    result = retrieval.retrieve(queries, docs, [f"q{i}" for i in range(30)], ["zh"] * 30, relevant, pool,
                                depth=20, index="exact")
    scores = queries.astype(np.float32) @ docs.T
    for i, run in enumerate(result.runs):
        reference = query_run_from_scores(run.qid, "zh", scores[i], relevant[i], pool, depth=20)
        assert run.best_irrelevant_twinned_rank == reference.best_irrelevant_twinned_rank
        assert run.best_irrelevant_rank == reference.best_irrelevant_rank
        assert np.array_equal(run.top, reference.top) and run.exact_head is None
        for name in ("eir", "eir_neutral", "twin_pref"):
            assert get_metric(name)(run, pool) == get_metric(name)(reference, pool)


def test_a_language_whose_twinned_documents_are_all_relevant_has_no_twinned_rank() -> None:
    pool, docs = parallel_pool(1)
    result = retrieval.retrieve(docs[:1], docs, ["q"], ["zh"], (np.array([0, 1]),), pool, index="exact")
    assert "zh" not in result.runs[0].best_irrelevant_twinned_rank
    assert "zh" in result.runs[0].best_irrelevant_rank  # the untwinned zh documents are still there


def test_excluded_documents_never_count_as_twins() -> None:
    pool, docs = parallel_pool(30)
    relevant, excluded = (np.array([0]),), (np.array([3]),)  # query = doc 1 (zh of p0); p1's zh excluded
    result = retrieval.retrieve(docs[1:2], docs, ["q"], ["zh"], relevant, pool, index="exact", excluded=excluded)
    run = result.runs[0]
    assert 3 not in run.top.tolist()
    scores = docs[1:2] @ docs.T
    scores[0, 3] = -np.inf
    reference = query_run_from_scores("q", "zh", scores[0], [0], pool)
    assert run.best_irrelevant_twinned_rank == reference.best_irrelevant_twinned_rank


def test_hnsw_runs_keep_the_exact_head_for_twin_preference() -> None:
    pool, docs = parallel_pool(200)
    rng = np.random.default_rng(9)
    queries = docs[rng.integers(0, 400, 20)]
    relevant = tuple(np.array([0, 1]) for _ in range(20))
    exact = retrieval.retrieve(queries, docs, [f"q{i}" for i in range(20)], ["zh"] * 20, relevant, pool,
                               depth=50, index="exact")
    approx = retrieval.retrieve(queries, docs, [f"q{i}" for i in range(20)], ["zh"] * 20, relevant, pool,
                                depth=50, index="hnsw", hnsw=HnswParams(M=4, ef_construction=10, ef=10))
    for e, a in zip(exact.runs, approx.runs):
        assert a.exact_head is not None and np.array_equal(a.exact_head, e.top)
        assert get_metric("twin_pref")(a, pool) == get_metric("twin_pref")(e, pool)

"""`clbias.retrieval.retrieve` against a brute-force reference written here: full sort per query, ties broken
by pool index, excluded documents last and never shown, deep ranks and best irrelevant rank per language
read from the whole ranking, whatever the chunking; with HNSW, the head comes from the graph and every deep
quantity stays exact."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from clbias.search import ranking as retrieval
from clbias.metrics.types import PoolInfo, QueryRun
from clbias.search.ranking import retrieve
from clbias.search import HnswParams

LANGS = ("de", "en", "zh")


def integer_vectors(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Small integers: every inner product is exact in float32, and many are equal (ties)."""
    return rng.integers(-2, 3, size=(n, dim)).astype(np.float32)


def pool_info(langs: list[str]) -> PoolInfo:
    n = len(langs)
    return PoolInfo(doc_ids=np.array([f"d{i}" for i in range(n)]), langs=np.array(langs),
                    parallel_ids=np.array([None] * n, dtype=object))


def random_case(rng: np.random.Generator, n_docs: int, n_queries: int, dim: int = 3,
                with_exclusions: bool = True) -> dict[str, Any]:
    docs, queries = integer_vectors(n_docs, dim, rng), integer_vectors(n_queries, dim, rng)
    langs = [LANGS[i] for i in rng.integers(0, len(LANGS), n_docs)]
    relevant, excluded = [], []
    for _ in range(n_queries):
        chosen = rng.permutation(n_docs)[: rng.integers(1, 7)]
        relevant.append(np.sort(chosen[: max(1, len(chosen) - 2)]).astype(np.int64))
        dropped = chosen[len(relevant[-1]):] if with_exclusions else chosen[:0]
        excluded.append(dropped.astype(np.int64))
    return {"queries": queries, "docs": docs, "langs": langs, "relevant": tuple(relevant),
            "excluded": tuple(excluded)}


def brute_force(queries: np.ndarray, docs: np.ndarray, langs: list[str], relevant: tuple[np.ndarray, ...],
                excluded: tuple[np.ndarray, ...], depth: int) -> list[dict[str, Any]]:
    out = []
    n = len(docs)
    for i, query in enumerate(queries):
        scores = docs.astype(np.float64) @ query.astype(np.float64)
        hidden = set(excluded[i].tolist()) if excluded else set()
        for doc in hidden:
            scores[doc] = -np.inf
        order = sorted(range(n), key=lambda doc: (-scores[doc], doc))
        rank = {doc: position + 1 for position, doc in enumerate(order)}
        rel = relevant[i].tolist()
        best = {}
        for lang in sorted(set(langs)):
            left = [rank[d] for d in range(n) if langs[d] == lang and d not in hidden and d not in rel]
            if left:
                best[lang] = min(left)
        head = [doc for doc in order[: min(depth, n)] if doc not in hidden]
        out.append({"top": head, "top_scores": scores[head], "relevant_ranks": [rank[d] for d in rel],
                    "relevant_scores": scores[rel], "best_irrelevant_rank": best})
    return out


def run_case(case: dict[str, Any], chunk: int | None = None, **kwargs: Any) -> retrieval.RetrievalResult:
    """`chunk`: queries per matrix product (given to `retrieve` as that many rows of score cells)."""
    n = len(case["queries"])
    if chunk is not None:
        kwargs["chunk_cells"] = chunk * len(case["docs"])
    return retrieve(case["queries"], case["docs"], [f"q{i}" for i in range(n)], ["de"] * n, case["relevant"],
                    pool_info(case["langs"]), excluded=case["excluded"], **kwargs)


def assert_matches(runs: list[QueryRun], expected: list[dict[str, Any]], case: dict[str, Any]) -> None:
    assert len(runs) == len(expected)
    for i, (run, ref) in enumerate(zip(runs, expected)):
        assert run.qid == f"q{i}"
        assert run.top.tolist() == ref["top"], i
        np.testing.assert_array_equal(run.top_scores.astype(np.float64), ref["top_scores"])
        np.testing.assert_array_equal(run.relevant, case["relevant"][i])
        assert run.relevant_ranks.tolist() == ref["relevant_ranks"], i
        np.testing.assert_array_equal(run.relevant_scores.astype(np.float64), ref["relevant_scores"])
        assert run.best_irrelevant_rank == ref["best_irrelevant_rank"], i


def same_runs(a: list[QueryRun], b: list[QueryRun]) -> bool:
    return len(a) == len(b) and all(
        x.top.tolist() == y.top.tolist() and x.relevant_ranks.tolist() == y.relevant_ranks.tolist()
        and np.array_equal(x.top_scores, y.top_scores) and x.best_irrelevant_rank == y.best_irrelevant_rank
        for x, y in zip(a, b))


# --- exact search against the reference -------------------------------------------------------------------

@pytest.mark.parametrize("depth", [1, 10, 60, 500])
@pytest.mark.parametrize("chunk", [1, 7, 256])
def test_exact_retrieval_matches_brute_force(depth: int, chunk: int) -> None:
    case = random_case(np.random.default_rng(depth * 1000 + chunk), n_docs=60, n_queries=23)
    result = run_case(case, depth=depth, k=5, index="exact", chunk=chunk)
    assert result.index_kind == "exact" and result.recall_vs_exact is None
    assert result.index_params == {"depth": min(depth, 60)}
    assert_matches(result.runs, brute_force(case["queries"], case["docs"], case["langs"], case["relevant"],
                                            case["excluded"], depth), case)


def test_the_case_exercises_ties_deep_ranks_and_exclusions() -> None:
    """Guard for the test above: its data must contain what it claims to test."""
    case = random_case(np.random.default_rng(10 * 1000 + 7), n_docs=60, n_queries=23)
    expected = brute_force(case["queries"], case["docs"], case["langs"], case["relevant"], case["excluded"], 10)
    scores = case["queries"] @ case["docs"].T
    assert all(len(np.unique(row)) < len(row) for row in scores)  # ties in every row
    assert max(max(r["relevant_ranks"]) for r in expected) > 10  # relevant documents below the head
    assert sum(len(e) for e in case["excluded"]) > 10


@pytest.mark.parametrize("cells", [1, 59, 60, 61, 3 * 60, 3 * 60 - 1])
def test_chunks_capped_by_max_chunk_cells_give_the_same_runs(cells: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cap gives max(1, cells // pool) queries per product: 1, 1, 1, 1, 3 and 2 here."""
    case = random_case(np.random.default_rng(3), n_docs=60, n_queries=11)
    expected = brute_force(case["queries"], case["docs"], case["langs"], case["relevant"], case["excluded"], 8)
    monkeypatch.setattr(retrieval, "MAX_CHUNK_CELLS", cells)
    assert_matches(run_case(case, depth=8, index="exact").runs, expected, case)


def test_no_exclusions_given_equals_empty_exclusions() -> None:
    case = random_case(np.random.default_rng(4), n_docs=40, n_queries=9, with_exclusions=False)
    with_empty = run_case(case, depth=10, index="exact", chunk=4)
    without = run_case({**case, "excluded": ()}, depth=10, index="exact", chunk=4)
    assert same_runs(with_empty.runs, without.runs)
    assert_matches(without.runs, brute_force(case["queries"], case["docs"], case["langs"], case["relevant"], (),
                                             10), {**case, "excluded": ()})


# --- hand-checked cases -----------------------------------------------------------------------------------

def test_equal_scores_rank_by_pool_index() -> None:
    # scores for the one query: [1, 2, 1, 2, 0, 2]
    docs = np.array([[1, 0], [2, 0], [1, 0], [2, 0], [0, 5], [2, 0]], dtype=np.float32)
    query = np.array([[1, 0]], dtype=np.float32)
    result = retrieve(query, docs, ["q"], ["en"], (np.array([5, 2]),), pool_info(["en", "en", "de", "de", "de", "en"]),
                      depth=4, k=2, index="exact")
    run = result.runs[0]
    assert run.top.tolist() == [1, 3, 5, 0]  # the three 2s by index, then the first 1
    assert run.relevant_ranks.tolist() == [3, 5]  # doc 5: third of the 2s; doc 2: second of the 1s
    assert run.best_irrelevant_rank == {"en": 1, "de": 2}  # doc 1 (en), doc 3 (de)


def test_excluded_documents_rank_last_and_never_reach_the_head() -> None:
    docs = np.array([[3.0], [2.0], [1.0], [0.0]], dtype=np.float32)
    query = np.array([[1.0]], dtype=np.float32)
    result = retrieve(query, docs, ["q"], ["de"], (np.array([2]),), pool_info(["de", "en", "de", "en"]), depth=10,
                      index="exact", excluded=(np.array([0]),))
    run = result.runs[0]
    assert run.top.tolist() == [1, 2, 3]  # the best document is the query's own source: hidden
    assert run.relevant_ranks.tolist() == [2]
    assert run.best_irrelevant_rank == {"en": 1}  # no German document is left: the language is absent


def test_a_language_whose_documents_are_all_relevant_has_no_best_irrelevant_rank() -> None:
    docs = np.eye(3, dtype=np.float32)
    queries = np.eye(3, dtype=np.float32)
    result = retrieve(queries, docs, ["a", "b", "c"], ["en"] * 3, (np.array([0]), np.array([0, 2]), np.array([1])),
                      pool_info(["en", "de", "en"]), depth=3, index="exact")
    assert [r.best_irrelevant_rank for r in result.runs] == [{"de": 2, "en": 3}, {"de": 1}, {"en": 1}]


# --- HNSW: the head from the graph, every deep quantity exact ---------------------------------------------

def clustered(n: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    x = centres[rng.integers(0, len(centres), n)] + 0.35 * rng.normal(size=(n, centres.shape[1]))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("with_exclusions", [False, True])
def test_hnsw_head_is_close_to_exact_and_deep_quantities_are_identical(with_exclusions: bool) -> None:
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(25, 24))
    docs, queries = clustered(2500, rng, centres), clustered(120, rng, centres)
    langs = [LANGS[i] for i in rng.integers(0, len(LANGS), len(docs))]
    relevant = tuple(np.sort(rng.choice(len(docs), rng.integers(1, 4), replace=False)) for _ in queries)
    excluded = tuple(np.setdiff1d(rng.choice(len(docs), 3, replace=False), r) for r in relevant) \
        if with_exclusions else ()
    case = {"queries": queries, "docs": docs, "langs": langs, "relevant": relevant, "excluded": excluded}
    depth, k = 30, 10
    exact = run_case(case, depth=depth, k=k, index="exact", chunk=50)
    approx = run_case(case, depth=depth, k=k, index="hnsw", chunk=50, hnsw=HnswParams(ef=100))
    assert approx.index_kind == "hnsw" and approx.index_params["ef"] == 100 and approx.index_params["depth"] == depth
    measured = np.mean([len(np.intersect1d(a.top[:k], b.top[:k])) / k for a, b in zip(approx.runs, exact.runs)])
    assert approx.recall_vs_exact == pytest.approx(measured)
    assert 0.9 <= approx.recall_vs_exact <= 1.0
    hidden = excluded or (np.empty(0, np.int64),) * len(queries)
    for query, a, e, ex in zip(queries, approx.runs, exact.runs, hidden):
        assert a.relevant_ranks.tolist() == e.relevant_ranks.tolist()
        assert a.best_irrelevant_rank == e.best_irrelevant_rank
        np.testing.assert_array_equal(a.relevant_scores, e.relevant_scores)
        assert len(a.top) == depth and len(set(a.top.tolist())) == depth and not np.isin(a.top, ex).any()
        np.testing.assert_allclose(a.top_scores, docs[a.top] @ query, atol=1e-5)


@pytest.mark.parametrize("sort_targets", [1, 10_000])
@pytest.mark.parametrize("row_count_width", [1, 10_000])
def test_deep_ranks_by_sorted_rows_or_by_counting_match_brute_force(
        sort_targets: int, row_count_width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows with many targets are sorted once and searched; rows with few are counted: both give the
    reference ranks, ties (integer vectors) included."""
    monkeypatch.setattr(retrieval, "_SORT_TARGETS", sort_targets)
    monkeypatch.setattr(retrieval, "_ROW_COUNT_WIDTH", row_count_width)
    case = random_case(np.random.default_rng(77), n_docs=90, n_queries=31)
    expected = brute_force(case["queries"], case["docs"], case["langs"], case["relevant"], case["excluded"], 5)
    assert_matches(run_case(case, depth=5, index="exact", chunk=8).runs, expected, case)

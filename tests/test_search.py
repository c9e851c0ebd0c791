import numpy as np

from clbias.search import HnswIndex, HnswParams, choose_index, rank_order, ranks_of


def clustered(n, dim=32, clusters=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_rank_order_breaks_ties_by_index():
    scores = np.array([[0.5, 0.9, 0.5, 0.9, 0.1]])
    assert rank_order(scores, 5).tolist() == [[1, 3, 0, 2, 4]]
    assert rank_order(scores, 3).tolist() == [[1, 3, 0]]
    assert ranks_of(scores[0], np.array([0, 2, 3, 4])).tolist() == [3, 4, 2, 5]


def test_rank_order_matches_full_sort_on_random_scores():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(7, 300)).round(1)  # many ties
    full = np.stack([np.lexsort((np.arange(300), -row)) for row in scores])
    assert np.array_equal(rank_order(scores, 25), full[:, :25])
    for row, order in zip(scores, full):
        assert np.array_equal(ranks_of(row, order[:40]), np.arange(1, 41))


def test_hnsw_recall_against_exact_and_ef_survives_save(tmp_path):
    docs, queries = clustered(3000), clustered(100, seed=5)
    exact = rank_order(queries @ docs.T, 10)
    index = HnswIndex.build(docs, HnswParams(ef=100))
    top, scores = index.search(queries, 10)
    recall = np.mean([len(np.intersect1d(a, b)) / 10 for a, b in zip(top, exact)])
    assert recall >= 0.98
    assert np.allclose(scores, np.take_along_axis(queries @ docs.T, top, axis=1), atol=1e-5)
    index.save(tmp_path / "pool.hnsw")
    loaded = HnswIndex.load(tmp_path / "pool.hnsw", dim=docs.shape[1])
    assert loaded.params.ef == 100
    assert np.array_equal(loaded.search(queries, 10)[0], top)


def test_hnsw_clamps_k_to_pool_size():
    docs = clustered(5)
    top, _ = HnswIndex.build(docs).search(docs[:2], 50)
    assert top.shape == (2, 5)


def test_auto_index_switches_on_size():
    assert choose_index("auto", 100) == "exact"
    assert choose_index("auto", 10**6) == "hnsw"
    assert choose_index("hnsw", 10) == "hnsw"

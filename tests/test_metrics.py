"""Per-query metrics and the registry: parity with ranx / trec_eval, and hand-computed cases."""
from __future__ import annotations

import math

import numpy as np
import pytest

from clbias.errors import InputError
from clbias.metrics import (DEFAULT_METRICS, Direction, PoolInfo, QueryRun, aggregate, evaluate, get_metric,
                            query_run_from_scores)


def make_pool(langs: list[str], parallel_ids: list[str | None] | None = None) -> PoolInfo:
    n = len(langs)
    return PoolInfo(doc_ids=np.array([f"d{i}" for i in range(n)]), langs=np.array(langs),
                    parallel_ids=np.array(parallel_ids if parallel_ids is not None else [None] * n, dtype=object))


def ranked(pool: PoolInfo, order: list[int], relevant: list[int], lang: str = "zh",
           depth: int = 100) -> QueryRun:
    """A run whose ranking starts with `order`; the rest of the pool follows by pool index."""
    scores = np.zeros(pool.size)
    scores[order] = np.arange(len(order), 0, -1, dtype=float)
    return query_run_from_scores("q", lang, scores, relevant, pool, depth=depth)


def value(name: str, run: QueryRun, pool: PoolInfo) -> float | None:
    return get_metric(name)(run, pool)


# ---------------------------------------------------------------- parity with standard tools

PARITY_QUERIES, PARITY_POOL, PARITY_DEPTH = 50, 200, 20


@pytest.fixture(scope="module")
def synthetic_run() -> tuple[PoolInfo, list[QueryRun], dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    rng = np.random.default_rng(7)
    pool = make_pool([("en", "zh", "th")[i % 3] for i in range(PARITY_POOL)])
    runs, scores_by_qid, qrels = [], {}, {}
    for q in range(PARITY_QUERIES):
        qid = f"q{q}"
        scores = rng.normal(size=PARITY_POOL)
        relevant = rng.choice(PARITY_POOL, size=int(rng.integers(1, 7)), replace=False)
        scores[relevant] += rng.uniform(0.0, 3.0)  # some queries easy, some hard
        runs.append(query_run_from_scores(qid, "zh", scores, relevant, pool, depth=PARITY_DEPTH))
        scores_by_qid[qid] = {str(pool.doc_ids[i]): float(s) for i, s in enumerate(scores)}
        qrels[qid] = {str(pool.doc_ids[i]): 1 for i in relevant}
    return pool, runs, scores_by_qid, qrels


def test_synthetic_run_covers_the_hard_cases(synthetic_run) -> None:
    _, runs, _, _ = synthetic_run
    deepest = np.array([run.relevant_ranks.max() for run in runs])
    first = np.array([run.relevant_ranks.min() for run in runs])
    sizes = {run.relevant.size for run in runs}
    assert (deepest > PARITY_DEPTH).any() and (first <= 10).any() and (first > 10).any()
    assert len(sizes) >= 4


def test_ranking_metrics_match_ranx(synthetic_run) -> None:
    ranx = pytest.importorskip("ranx")
    pool, runs, scores_by_qid, qrels = synthetic_run
    names = ["ndcg@10", "recall@10", "mrr@10", "ndcg@3"]
    reference = ranx.Run(scores_by_qid)
    ranx.evaluate(ranx.Qrels(qrels), reference, names)
    ours = evaluate(runs, pool, names)
    for name in names:
        expected = np.array([reference.scores[name][run.qid] for run in runs])
        np.testing.assert_allclose(ours[name] / 100.0, expected, atol=1e-9, err_msg=name)


def test_ranking_metrics_match_trec_eval_via_ir_measures(synthetic_run) -> None:
    ir_measures = pytest.importorskip("ir_measures")
    pool, runs, scores_by_qid, qrels = synthetic_run
    measures = {"ndcg@10": ir_measures.nDCG @ 10, "recall@10": ir_measures.R @ 10, "mrr@10": ir_measures.RR @ 10,
                "ndcg@3": ir_measures.nDCG @ 3}
    qrel_rows = [ir_measures.Qrel(qid, doc, rel) for qid, docs in qrels.items() for doc, rel in docs.items()]
    run_rows = [ir_measures.ScoredDoc(qid, doc, s) for qid, docs in scores_by_qid.items() for doc, s in docs.items()]
    expected: dict[str, dict[str, float]] = {name: {} for name in measures}
    by_measure = {str(measure): name for name, measure in measures.items()}
    for row in ir_measures.iter_calc(list(measures.values()), qrel_rows, run_rows):
        expected[by_measure[str(row.measure)]][row.query_id] = row.value
    ours = evaluate(runs, pool, list(measures))
    for name in measures:
        np.testing.assert_allclose(ours[name] / 100.0, [expected[name][run.qid] for run in runs], atol=1e-9,
                                   err_msg=name)


# ---------------------------------------------------------------- building runs

def test_query_run_from_scores_breaks_ties_by_pool_index() -> None:
    pool = make_pool(["en", "zh", "en", "zh", "th"])
    run = query_run_from_scores("q", "zh", np.array([1.0, 2.0, 2.0, 0.5, 2.0]), [3, 2], pool, depth=3)
    assert run.top.tolist() == [1, 2, 4]
    assert run.relevant.tolist() == [2, 3] and run.relevant_ranks.tolist() == [2, 5]
    assert run.relevant_scores.tolist() == [2.0, 0.5]
    assert run.best_irrelevant_rank == {"zh": 1, "th": 3, "en": 4}


def test_query_run_from_scores_rejects_wrong_length() -> None:
    with pytest.raises(ValueError):
        query_run_from_scores("q", "zh", np.zeros(3), [0], make_pool(["en", "zh"]))


# ---------------------------------------------------------------- Max@R, Max@R_norm, Complete@k

def test_max_r_and_complete_at_k() -> None:
    pool = make_pool(["en", "zh"] * 5)
    run = ranked(pool, [7, 3, 8, 9, 1], relevant=[3, 1])
    assert value("max_r", run, pool) == 5.0
    assert value("complete@5", run, pool) == 100.0
    assert value("complete@4", run, pool) == 0.0
    assert value("complete@10", run, pool) == 100.0


def test_max_r_norm_endpoints_and_middle() -> None:
    pool = make_pool(["en", "zh"] * 8)  # |D| = 16
    assert value("max_r_norm", ranked(pool, [4, 9], relevant=[4, 9]), pool) == pytest.approx(100.0)
    last = ranked(pool, list(range(15)), relevant=[0, 15])  # doc 15 is ranked last
    assert last.relevant_ranks.max() == 16
    assert value("max_r_norm", last, pool) == pytest.approx(0.0)
    # deepest relevant at rank 4: (log2 16 - log2 4) / (log2 16 - log2 2) = 2 / 3
    assert value("max_r_norm", ranked(pool, [0, 5, 6, 1], relevant=[0, 1]), pool) == pytest.approx(200 / 3)


def test_max_r_norm_when_the_relevant_set_is_the_pool() -> None:
    pool = make_pool(["en", "zh"])
    assert value("max_r_norm", ranked(pool, [1, 0], relevant=[0, 1]), pool) == 100.0


def test_unjudged_query_is_not_applicable_and_skipped_by_aggregate() -> None:
    pool = make_pool(["en", "zh", "zh"])
    judged, unjudged = ranked(pool, [2], relevant=[2]), ranked(pool, [2], relevant=[])
    names = ["max_r", "max_r_norm", "complete@1", "ndcg@10", "recall@10", "mrr@10", "eir", "top1_irr_en"]
    per_query = evaluate([judged, unjudged], pool, names)
    assert all(np.isnan(per_query[name][1]) for name in names)
    means = aggregate(per_query)
    assert means["max_r"] == 1.0 and means["mrr@10"] == 100.0
    assert aggregate(evaluate([unjudged], pool, ["ndcg@10"])) == {"ndcg@10": None}


def test_hand_computed_ndcg_recall_mrr() -> None:
    pool = make_pool(["en"] * 20)
    run = ranked(pool, [5, 0, 6, 1], relevant=[0, 1, 19])  # relevant at ranks 2, 4, 20
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert value("ndcg@10", run, pool) == pytest.approx(100 * (1 / math.log2(3) + 1 / math.log2(5)) / ideal)
    assert value("recall@10", run, pool) == pytest.approx(200 / 3)
    assert value("mrr@10", run, pool) == pytest.approx(50.0)
    assert value("mrr@1", run, pool) == 0.0
    more_relevant_than_k = ranked(pool, [3, 4], relevant=[3, 4, 5])
    assert value("ndcg@1", more_relevant_than_k, pool) == pytest.approx(100.0)
    assert value("ndcg@2", more_relevant_than_k, pool) == pytest.approx(100.0)


# ---------------------------------------------------------------- English inclination rate

EIR_POOL = make_pool(["en", "en", "zh", "zh", "zh", "th"], ["p1", None, "p1", None, None, None])


def test_eir_counts_irrelevant_english_above_the_native_relevant() -> None:
    run = ranked(EIR_POOL, [1, 3, 2], relevant=[0, 2])  # irrelevant en at 1, native relevant at 3
    assert value("eir", run, EIR_POOL) == 100.0


def test_eir_is_zero_when_english_is_below_or_relevant() -> None:
    below = ranked(EIR_POOL, [2, 3, 1], relevant=[0, 2])
    relevant_english_first = ranked(EIR_POOL, [0, 2, 1], relevant=[0, 2])  # the English twin is relevant
    assert value("eir", below, EIR_POOL) == 0.0
    assert value("eir", relevant_english_first, EIR_POOL) == 0.0


def test_eir_does_not_apply() -> None:
    english_query = ranked(EIR_POOL, [1, 2], relevant=[0, 2], lang="en")
    no_native_relevant = ranked(EIR_POOL, [1, 0], relevant=[0])
    no_english_pool = make_pool(["zh", "zh", "th"])
    assert value("eir", english_query, EIR_POOL) is None
    assert value("eir", no_native_relevant, EIR_POOL) is None
    assert value("eir", ranked(no_english_pool, [2, 0], relevant=[0]), no_english_pool) is None


def test_eir_with_english_all_relevant_is_zero() -> None:
    pool = make_pool(["en", "zh", "zh"])
    assert value("eir", ranked(pool, [0, 2, 1], relevant=[0, 1]), pool) == 0.0


# ---------------------------------------------------------------- English exposure

def test_english_exposure() -> None:
    pool = make_pool(["en", "en"] + ["zh"] * 8)  # English share 0.2
    run = ranked(pool, [0, 2, 1, 3, 4], relevant=[2])
    assert value("en_exposure@5", run, pool) == pytest.approx(0.4 / 0.2)
    assert value("en_exposure@1", run, pool) == pytest.approx(1 / 0.2)
    assert value("en_exposure@10", run, pool) == pytest.approx(1.0)
    short = ranked(pool, [0, 2, 1, 3, 4], relevant=[2], depth=2)  # a head shorter than k
    assert value("en_exposure@10", short, pool) == pytest.approx(0.5 / 0.2)
    no_english = make_pool(["zh", "th"])
    assert value("en_exposure@10", ranked(no_english, [1], relevant=[0]), no_english) is None


# ---------------------------------------------------------------- top-1 decomposition

TOP1 = ["top1_rel_same", "top1_rel_en", "top1_rel_other", "top1_irr_same", "top1_irr_en", "top1_irr_other"]
TOP1_POOL = make_pool(["en", "en", "zh", "zh", "th", "th"])


@pytest.mark.parametrize("lang, first, relevant, expected", [
    ("zh", 1, [2], "top1_irr_en"),
    ("zh", 2, [2], "top1_rel_same"),
    ("zh", 0, [0, 2], "top1_rel_en"),
    ("zh", 3, [2], "top1_irr_same"),
    ("zh", 4, [2], "top1_irr_other"),
    ("zh", 5, [5], "top1_rel_other"),
    ("en", 1, [0], "top1_irr_same"),  # for an English query English is its own language
    ("en", 0, [0], "top1_rel_same"),
    ("en", 2, [0], "top1_irr_other"),
])
def test_top1_decomposition(lang: str, first: int, relevant: list[int], expected: str) -> None:
    run = ranked(TOP1_POOL, [first], relevant=relevant, lang=lang)
    values = {name: value(name, run, TOP1_POOL) for name in TOP1}
    assert values == {name: 100.0 if name == expected else 0.0 for name in TOP1}


def test_top1_uses_exact_rank_one_over_an_approximate_head() -> None:
    exact = ranked(TOP1_POOL, [1, 2], relevant=[2])  # exact rank 1: irrelevant English
    approximate_head = QueryRun(qid="q", lang="zh", top=np.array([2, 3]), top_scores=np.array([0.9, 0.8]),
                                relevant=exact.relevant, relevant_ranks=exact.relevant_ranks,
                                relevant_scores=exact.relevant_scores,
                                best_irrelevant_rank=exact.best_irrelevant_rank)
    assert value("top1_irr_en", approximate_head, TOP1_POOL) == 100.0
    head_only = QueryRun(qid="q", lang="zh", top=np.array([4, 2]), top_scores=np.array([0.9, 0.8]),
                         relevant=np.array([2]), relevant_ranks=np.array([2]), relevant_scores=np.array([0.8]))
    assert value("top1_irr_other", head_only, TOP1_POOL) == 100.0


# ---------------------------------------------------------------- twin gaps

TWIN_POOL = make_pool(["en", "zh", "en", "zh", "th", "zh", "en", "zh"],
                      ["a", "a", "b", "b", "c", "c", None, None])


def test_twin_gaps_signed_towards_english() -> None:
    run = ranked(TWIN_POOL, [0, 6, 2, 3, 7, 1], relevant=[0, 1, 2, 3])  # a: en 1, zh 6; b: en 3, zh 4
    assert value("twin_rank_gap", run, TWIN_POOL) == pytest.approx(((6 - 1) + (4 - 3)) / 2)
    scores = dict(zip(run.relevant.tolist(), run.relevant_scores.tolist()))
    expected_score_gap = ((scores[0] - scores[1]) + (scores[2] - scores[3])) / 2
    assert value("twin_score_gap", run, TWIN_POOL) == pytest.approx(expected_score_gap)
    assert expected_score_gap > 0


def test_twin_gap_is_negative_when_the_native_twin_leads() -> None:
    run = ranked(TWIN_POOL, [1, 6, 0], relevant=[0, 1])
    assert value("twin_rank_gap", run, TWIN_POOL) == pytest.approx(1 - 3)
    assert value("twin_score_gap", run, TWIN_POOL) < 0


def test_twin_gap_ignores_pairs_without_english() -> None:
    run = ranked(TWIN_POOL, [5, 0, 4], relevant=[4, 5])  # th and zh twins, no English version
    assert value("twin_rank_gap", run, TWIN_POOL) is None
    assert value("twin_score_gap", run, TWIN_POOL) is None


def test_twin_gap_in_a_three_language_group_is_english_vs_each_other_language() -> None:
    pool = make_pool(["en", "zh", "th", "en"], ["a", "a", "a", None])
    run = ranked(pool, [2, 3, 0, 1], relevant=[0, 1, 2])  # th 1, en 3, zh 4: zh-th (gap 3) must not enter
    assert value("twin_rank_gap", run, pool) == pytest.approx(((4 - 3) + (1 - 3)) / 2)


def test_twin_gap_needs_a_relevant_pair() -> None:
    one_twin = ranked(TWIN_POOL, [0, 1], relevant=[0, 7])
    assert value("twin_rank_gap", one_twin, TWIN_POOL) is None
    assert value("twin_score_gap", one_twin, TWIN_POOL) is None


# ---------------------------------------------------------------- language preference vs neutrality

# Parallel pairs a..d in en and zh, plus an untwinned zh document (8) and an untwinned English one (9).
PREF_POOL = make_pool(["en", "zh"] * 4 + ["zh", "en"], ["a", "a", "b", "b", "c", "c", "d", "d", None, None])


def test_twin_preference_counts_irrelevant_pairs_where_english_leads() -> None:
    # relevant pair a; irrelevant pairs b (en 2 above zh 5), c (zh 3 above en 4), d (en 6 above zh 7)
    run = ranked(PREF_POOL, [0, 2, 5, 4, 3, 6, 7, 1], relevant=[0, 1])
    assert value("twin_pref", run, PREF_POOL) == pytest.approx(100 * 2 / 3)


def test_twin_preference_counts_a_member_outside_the_head_as_below() -> None:
    # head of 3: b's zh (3) and c's en (4) are in it, their twins are not; d is wholly outside and not counted
    run = ranked(PREF_POOL, [3, 4, 1, 2, 5], relevant=[0, 1], depth=3)
    assert value("twin_pref", run, PREF_POOL) == pytest.approx(50.0)
    only_native = ranked(PREF_POOL, [3, 1, 5], relevant=[0, 1], depth=2)
    assert value("twin_pref", only_native, PREF_POOL) == 0.0


def test_twin_preference_does_not_apply_to_english_queries_or_without_pairs() -> None:
    assert value("twin_pref", ranked(PREF_POOL, [0, 1], relevant=[0, 1], lang="en"), PREF_POOL) is None
    no_twins = make_pool(["en", "zh", "zh"], [None, "x", None])
    assert value("twin_pref", ranked(no_twins, [0, 1, 2], relevant=[2]), no_twins) is None


def test_twin_preference_reads_the_exact_head_over_an_approximate_one() -> None:
    exact = ranked(PREF_POOL, [2, 3], relevant=[0, 1])  # b: English first
    approximate = QueryRun(qid="q", lang="zh", top=np.array([3, 2]), top_scores=np.array([2.0, 1.0]),
                           relevant=exact.relevant, relevant_ranks=exact.relevant_ranks,
                           relevant_scores=exact.relevant_scores, exact_head=exact.top)
    assert value("twin_pref", approximate, PREF_POOL) == value("twin_pref", exact, PREF_POOL)


@pytest.mark.parametrize("order, eir, neutral", [
    ([9, 1], 100.0, 0.0),        # untwinned English above the relevant zh: English preference, neutral 0
    ([3, 2, 1], 100.0, 100.0),   # twinned zh above the relevant zh, its English twin too: neutral EIR as well
    ([8, 1, 9], 0.0, 0.0),       # an untwinned zh document does not count for the neutral value
    ([3, 1, 2], 0.0, 100.0),     # own-language preference: the native twin leads, its English twin trails
    ([1, 2, 3], 0.0, 0.0),
])
def test_eir_and_its_neutral_value(order: list[int], eir: float, neutral: float) -> None:
    run = ranked(PREF_POOL, order, relevant=[0, 1])
    assert (value("eir", run, PREF_POOL), value("eir_neutral", run, PREF_POOL)) == (eir, neutral)


def test_neutral_eir_applies_where_eir_does() -> None:
    english_query = ranked(PREF_POOL, [3, 1], relevant=[0, 1], lang="en")
    no_native_relevant = ranked(PREF_POOL, [3, 1], relevant=[0])
    for run in (english_query, no_native_relevant):
        assert value("eir", run, PREF_POOL) is None and value("eir_neutral", run, PREF_POOL) is None


# ---------------------------------------------------------------- registry

def test_default_metrics_resolve_to_their_exact_keys() -> None:
    pool = make_pool(["en", "zh"] * 3, ["a", "a", None, None, None, None])
    per_query = evaluate([ranked(pool, [1, 2, 0], relevant=[0, 1])], pool)
    assert list(per_query) == list(DEFAULT_METRICS)
    for key in ("max_r", "max_r_norm", "complete@10", "ndcg@10", "recall@10", "mrr@10", "eir", "en_exposure@10"):
        assert get_metric(key).name == key
        assert not np.isnan(per_query[key][0])


def test_parameterised_names_and_metadata() -> None:
    metric = get_metric("NDCG@5")
    assert metric.name == "ndcg@5" and metric.direction is Direction.HIGHER and metric.origin == "paper"
    assert "5" in metric.description
    assert get_metric("max_r").direction is Direction.LOWER
    assert get_metric("eir").origin == "ours"
    assert get_metric("en_exposure@20").ideal == 1.0
    assert get_metric("max_r").format(12.3456) == "12.35" and get_metric("max_r").format(None) == "n/a"


@pytest.mark.parametrize("name", ["ndcg", "ndcg@", "ndcg@0", "ndcg@x", "map@10", "eir@10", "nope"])
def test_bad_metric_names_raise(name: str) -> None:
    with pytest.raises(InputError):
        get_metric(name)


def test_improvement_follows_direction() -> None:
    assert get_metric("ndcg@10").improvement(60.0, 50.0) > 0
    assert get_metric("max_r").improvement(60.0, 50.0) < 0
    assert get_metric("twin_rank_gap").improvement(-1.0, 3.0) > 0
    assert get_metric("en_exposure@10").improvement(1.5, 0.8) < 0

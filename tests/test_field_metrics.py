"""The field's metrics (PEER@k, LPR, Lang-nDCG@k, TLR@k, calibrated language preference): hand-computed
cases, the vectorised forms equal to the per-query definitions to the bit, and PEER against the authors'
reference implementation (peer_measure) on the same run."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from clbias.metrics import PoolInfo, QueryRun, get_metric, query_run_from_scores
from clbias.metrics.columnar import ColumnarRuns
from clbias.metrics.field import chi2_sf
from clbias.metrics.registry import evaluate_columnar, evaluate_reference

FIELD_METRICS = ["peer@1", "peer@3", "peer@10", "lpr", "lang_ndcg@3", "lang_ndcg@10", "tlr@1", "tlr@10",
                 "lang_pref"]


def make_pool(langs: list[str], parallel_ids: list[str | None] | None = None) -> PoolInfo:
    n = len(langs)
    return PoolInfo(doc_ids=np.array([f"d{i}" for i in range(n)]), langs=np.array(langs),
                    parallel_ids=np.array(parallel_ids if parallel_ids is not None else [None] * n, dtype=object))


def ranked(pool: PoolInfo, order: list[int], relevant: list[int], lang: str = "zh", depth: int = 100) -> QueryRun:
    """A run whose ranking starts with `order`; the rest of the pool follows by pool index."""
    scores = np.zeros(pool.size)
    scores[order] = np.arange(len(order), 0, -1, dtype=float)
    return query_run_from_scores("q", lang, scores, relevant, pool, depth=depth)


def value(name: str, run: QueryRun, pool: PoolInfo) -> float | None:
    """The per-query definition, checked against the vectorised one on the same run."""
    reference = get_metric(name)(run, pool)
    columns = evaluate_columnar(ColumnarRuns.from_runs([run], pool), pool, [name])[name][0]
    assert (reference is None and np.isnan(columns)) or reference == columns, (name, reference, columns)
    return reference


def chi2_sf_1(h: float) -> float:
    return math.erfc(math.sqrt(h / 2.0))  # one degree of freedom


# ---------------------------------------------------------------- PEER@k

EN_ZH = ["en", "zh", "en", "zh", "en", "zh"]  # d0 en, d1 zh, d2 en, d3 zh, d4 en, d5 zh


def test_peer_hand_computed_both_relevant_versions_retrieved() -> None:
    pool = make_pool(EN_ZH)
    run = ranked(pool, [1, 2, 0, 3, 4, 5], relevant=[0, 1])
    # relevant level: en {3}, zh {1}: N = 2, SSG = SSA = 2, H = 1, p = chi2.sf(1, 1)
    # irrelevant level in the top 3: only d2 (en), one language, p = 1
    assert value("peer@3", run, pool) == pytest.approx(0.5 * 1.0 + 0.5 * chi2_sf_1(1.0), abs=1e-15)


def test_peer_unretrieved_relevant_documents_take_the_reference_rank() -> None:
    pool = make_pool(EN_ZH)
    run = ranked(pool, [2, 4, 3, 1, 0, 5], relevant=[0, 1])
    # k = 4: d1 (zh) at rank 4, d0 (en) beyond: rank |R| + (U + 1) / 2 = 2 + 1 = 3, as peer_measure does, so
    # relevant: en {3}, zh {4}: H = 1. Irrelevant in the top 4: en {1, 2}, zh {3}: mean 2, SSG = 2 * 0.25 + 1
    # = 1.5, SSA = 2, H = (3 - 1) * 1.5 / 2 = 1.5
    assert value("peer@4", run, pool) == pytest.approx(0.5 * chi2_sf_1(1.5) + 0.5 * chi2_sf_1(1.0), abs=1e-15)
    # k = 2: no relevant document in the top 2 (p = 1); irrelevant en {1}, en {2}: one language, p = 1
    assert value("peer@2", run, pool) == pytest.approx(1.0)


def test_peer_is_undefined_where_the_reference_divides_zero_by_zero() -> None:
    pool = make_pool(EN_ZH)
    run = ranked(pool, [2, 3, 1, 4, 5, 0], relevant=[0, 1])
    # k = 3: d1 at rank 3, d0 beyond at 2 + 1 = 3: every value equal, SSA = 0, H = 0/0 (NaN in peer_measure)
    assert value("peer@3", run, pool) is None
    # k = 2: no relevant retrieved (p = 1); irrelevant en {1}, zh {2}: H = 1
    assert value("peer@2", run, pool) == pytest.approx(0.5 * chi2_sf_1(1.0) + 0.5, abs=1e-15)


def test_peer_three_languages_uses_two_degrees_of_freedom() -> None:
    pool = make_pool(["en", "zh", "de", "en", "zh", "de"])
    run = ranked(pool, [0, 3, 1, 4, 2, 5], relevant=[0, 1, 2])
    # relevant en {1}, zh {3}, de {5}: mean 3, SSG = SSA = 8, H = 2; chi2.sf(2, 2) = exp(-1)
    # irrelevant in the top 6: en {2}, zh {4}, de {6}: H = 2 likewise
    assert value("peer@6", run, pool) == pytest.approx(math.exp(-1.0), abs=1e-15)


def test_peer_unjudged_query_and_single_language_pool() -> None:
    pool = make_pool(EN_ZH)
    assert value("peer@3", ranked(pool, [0], relevant=[]), pool) is None
    mono = make_pool(["zh"] * 4)
    assert value("peer@2", ranked(mono, [3, 0], relevant=[0]), mono) == 1.0


def test_chi2_survival_matches_the_closed_forms_and_scipy() -> None:
    h = np.array([0.0, 0.5, 1.0, 2.0, 7.3, 30.0, 400.0, np.nan, np.inf])
    for df in range(1, 12):
        ours = chi2_sf(h, np.full(h.size, df))
        assert ours[0] == pytest.approx(1.0) and np.isnan(ours[7]) and ours[8] == 0.0
        assert np.all(np.diff(ours[:7]) <= 0)
    assert chi2_sf(np.array([2.0]), np.array([2]))[0] == pytest.approx(math.exp(-1.0), abs=1e-16)
    assert chi2_sf(np.array([1.0]), np.array([1]))[0] == pytest.approx(chi2_sf_1(1.0), abs=1e-16)
    stats = pytest.importorskip("scipy.stats")
    for df in range(1, 12):
        np.testing.assert_allclose(chi2_sf(h[:7], np.full(7, df)), stats.chi2.sf(h[:7], df), rtol=1e-12, atol=1e-300)


# ---------------------------------------------------------------- MLAIRE: LPR, Lang-nDCG

def test_language_preference_rate() -> None:
    pool = make_pool(EN_ZH)
    assert value("lpr", ranked(pool, [0, 1], relevant=[0, 1]), pool) == 0.0  # English version first
    assert value("lpr", ranked(pool, [1, 0], relevant=[0, 1]), pool) == 100.0
    assert value("lpr", ranked(pool, [4, 3, 1, 0], relevant=[0, 1]), pool) == 100.0  # only the relevant order counts
    assert value("lpr", ranked(pool, [0, 1], relevant=[0, 1], lang="en"), pool) == 100.0
    assert value("lpr", ranked(pool, [1], relevant=[1, 3]), pool) is None  # no version in another language
    assert value("lpr", ranked(pool, [0], relevant=[0, 2]), pool) is None  # none in the query's language


def test_lang_ndcg_gives_gain_only_to_query_language_relevant_documents() -> None:
    pool = make_pool(EN_ZH)
    run = ranked(pool, [0, 1, 2, 3], relevant=[0, 1, 3])
    ideal = 1.0 + 1.0 / math.log2(3)
    assert value("lang_ndcg@5", run, pool) == pytest.approx(100 * (1 / math.log2(3) + 1 / math.log2(5)) / ideal)
    assert value("lang_ndcg@3", run, pool) == pytest.approx(100 * (1 / math.log2(3)) / ideal)
    assert value("lang_ndcg@1", run, pool) == 0.0  # the English version at rank 1 earns nothing
    assert value("ndcg@1", run, pool) == 100.0  # where plain nDCG sees a perfect rank 1
    assert value("lang_ndcg@3", ranked(pool, [0], relevant=[0, 2]), pool) is None


# ---------------------------------------------------------------- Shift: TLR@k

def test_target_languages_recall() -> None:
    pool = make_pool(EN_ZH)
    run = ranked(pool, [1, 0, 3, 4, 2], relevant=[0, 2, 1])
    assert value("tlr@1", run, pool) == 0.0  # the query-language document at rank 1 does not count
    assert value("tlr@3", run, pool) == 50.0  # d0 at 2; d2 at 5
    assert value("tlr@5", run, pool) == 100.0
    assert value("recall@3", run, pool) == pytest.approx(200 / 3)
    assert value("tlr@5", ranked(pool, [1], relevant=[1, 3]), pool) is None


# ---------------------------------------------------------------- calibrated language preference

def test_calibrated_language_preference_hand_computed() -> None:
    pool = make_pool(["en", "zh", "en", "zh", "en", "zh", "en"])  # en: d0 d2 d4 d6, zh: d1 d3 d5
    run = ranked(pool, [3, 0, 1, 5, 2], relevant=[1], depth=3)  # head d3 (zh), d0 (en), d1 (relevant)
    # irrelevant: 4 en, 2 zh. Pairs with a member in the head: (d0,d3) zh first; (d0,d5) en first;
    # (d2,d3), (d4,d3), (d6,d3) zh first; (d2|d4|d6, d5) both outside: not counted. 1 of 5 -> 20
    assert value("lang_pref", run, pool) == pytest.approx(20.0)
    deeper = ranked(pool, [3, 0, 1, 5, 2], relevant=[1], depth=7)  # the whole ranking: 8 pairs
    # en d0 (rank 2) beats d5 (4); d2 (5) none; d4, d6 none -> 1 of 8
    assert value("lang_pref", deeper, pool) == pytest.approx(12.5)
    english_first = ranked(pool, [0, 2, 4, 6, 3, 5], relevant=[1], depth=7)
    assert value("lang_pref", english_first, pool) == 100.0
    assert value("lang_pref", ranked(pool, [0], relevant=[0], lang="en"), pool) is None
    no_english = make_pool(["zh", "de", "zh"])
    assert value("lang_pref", ranked(no_english, [0], relevant=[0]), no_english) is None


def test_calibrated_language_preference_needs_no_parallel_ids_and_ignores_composition() -> None:
    twinned = make_pool(EN_ZH, ["a", "a", "b", "b", "c", "c"])
    plain = make_pool(EN_ZH)
    order = [1, 3, 0, 5, 2, 4]
    assert value("lang_pref", ranked(twinned, order, [1]), twinned) == value("lang_pref", ranked(plain, order, [1]), plain)
    # a language-blind ranking interleaving the languages at their pool rates is neutral, whatever the counts
    big = make_pool(["en"] * 40 + ["zh"] * 10)
    blind = [i for block in range(10) for i in [block * 4, block * 4 + 1, block * 4 + 2, block * 4 + 3, 40 + block]]
    reversed_blind = [i for block in range(10) for i in [40 + block, block * 4, block * 4 + 1, block * 4 + 2,
                                                         block * 4 + 3]]
    # zh after its block's 4 en: 4 + 8 + ... + 40 = 220 of 400 pairs English-first; zh first in each block: 180
    assert value("lang_pref", ranked(big, blind, [], depth=50), big) == pytest.approx(55.0)
    assert value("lang_pref", ranked(big, reversed_blind, [], depth=50), big) == pytest.approx(45.0)


# ---------------------------------------------------------------- vectorised == reference

def random_runs(seed: int, n_docs: int = 50, n_queries: int = 40) -> tuple[PoolInfo, list[QueryRun]]:
    rng = np.random.default_rng(seed)
    pool = make_pool(list(rng.choice(["en", "zh", "de"], n_docs)))
    scores = np.round(rng.normal(size=(n_queries, n_docs)), 1)  # ties
    runs = []
    for i in range(n_queries):
        relevant = np.sort(rng.choice(n_docs, int(rng.integers(0, 7)), replace=False))
        runs.append(query_run_from_scores(f"q{i}", str(rng.choice(["en", "zh", "de", "fr"])), scores[i], relevant,
                                          pool, depth=int(rng.integers(2, 30))))
    return pool, runs


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_field_metrics_equal_the_reference_to_the_bit(seed: int) -> None:
    pool, runs = random_runs(seed)
    reference = evaluate_reference(runs, pool, FIELD_METRICS)
    vectorised = evaluate_columnar(ColumnarRuns.from_runs(runs, pool), pool, FIELD_METRICS)
    for name in FIELD_METRICS:
        assert np.array_equal(reference[name], vectorised[name], equal_nan=True), name
        assert np.isfinite(reference[name]).any(), name  # the random runs exercise every metric
    assert len({float(v) for v in reference["peer@10"] if v == v}) > 5


def test_vectorised_field_metrics_with_an_approximate_head() -> None:
    pool, runs = random_runs(11, n_queries=12)
    approx = [QueryRun(r.qid, r.lang, r.top[::-1].copy(), r.top_scores[::-1].copy(), r.relevant, r.relevant_ranks,
                       r.relevant_scores, r.best_irrelevant_rank, r.best_irrelevant_twinned_rank, exact_head=r.top)
              for r in runs]
    exact = evaluate_reference(runs, pool, FIELD_METRICS)
    for name, values in evaluate_columnar(ColumnarRuns.from_runs(approx, pool), pool, FIELD_METRICS).items():
        assert np.array_equal(values, exact[name], equal_nan=True), name  # search error is not counted


def test_registry_cites_each_field_metric() -> None:
    for name, cited in (("peer@10", "SIGIR 2024"), ("lpr", "2605.07249"), ("lang_ndcg@10", "2605.07249"),
                        ("tlr@20", "2606.18801"), ("lang_pref", "2601.02956")):
        assert cited in get_metric(name).source, name


# ---------------------------------------------------------------- PEER against peer_measure

def test_peer_matches_the_reference_implementation_on_the_same_run() -> None:
    ir_measures = pytest.importorskip("ir_measures")
    peer_measure = pytest.importorskip("peer_measure")
    rng = np.random.default_rng(3)
    n_docs, n_queries = 120, 60
    pool = make_pool(list(rng.choice(["en", "zh", "th"], n_docs, p=[0.5, 0.3, 0.2])))
    lang_mapping = {str(d): str(lang) for d, lang in zip(pool.doc_ids, pool.langs)}
    runs, qrels, run_rows = [], [], []
    for q in range(n_queries):
        qid = f"q{q}"
        scores = rng.normal(size=n_docs)  # distinct: peer_measure breaks ties by doc id, clbias by pool index
        relevant = rng.choice(n_docs, int(rng.integers(1, 7)), replace=False)
        scores[relevant] += rng.uniform(0.0, 3.0)
        runs.append(query_run_from_scores(qid, "zh", scores, relevant, pool, depth=40))
        qrels += [ir_measures.Qrel(qid, str(pool.doc_ids[d]), int(d in relevant)) for d in range(n_docs)]
        run_rows += [ir_measures.ScoredDoc(qid, str(pool.doc_ids[d]), float(s)) for d, s in enumerate(scores)]
    partial = [0 < np.count_nonzero(r.relevant_ranks <= 10) < r.relevant.size for r in runs]
    assert sum(partial) >= 10  # the unretrieved-rank rule is exercised
    for k in (5, 10, 20):
        measure = peer_measure.PEER(weights={0: 0.5, 1: 0.5}, lang_mapping=lang_mapping) @ k
        expected = {row.query_id: row.value for row in peer_evaluator(ir_measures, peer_measure, measure, qrels)
                    .iter_calc(run_rows)}
        ours = evaluate_reference(runs, pool, [f"peer@{k}"])[f"peer@{k}"]
        reference = np.array([expected[r.qid] for r in runs], dtype=float)
        np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=f"peer@{k}")
        assert len(set(np.round(reference[~np.isnan(reference)], 9))) > 5


def peer_evaluator(ir_measures, peer_measure, measure, qrels):  # type: ignore[no-untyped-def]
    """peer_measure's own evaluator for one PEER measure. Its provider (0.0.1) groups measures with
    `ir_measures.util.flatten_measures`, which ir_measures 0.4 no longer has, so the evaluator it would build is
    built here the same way; every number still comes from peer_measure's code (ranks, unretrieved rule, test)."""
    if hasattr(ir_measures.util, "flatten_measures"):
        return peer_measure.PEERProvider().evaluator([measure], qrels)
    mapping = measure["lang_mapping"]
    qrels_dict = ir_measures.util.QrelsConverter(qrels).as_dict_of_dict()
    return peer_measure.PEEREvaluator([measure], qrels_dict, {id(mapping): [(measure["cutoff"], measure)]},
                                      {id(mapping): mapping})


# ---------------------------------------------------------------- in the report

def test_audit_reports_the_field_metrics_in_json_detail_markdown_and_html(tiny_model_dir, tmp_path) -> None:
    from io import StringIO

    from rich.console import Console

    from clbias.api import audit_corpus
    from clbias.report.html.page import to_html
    from clbias.report.model import Report
    from clbias.report.render_files import to_json_text, to_markdown
    from clbias.report.render_terminal import render
    from corpus_factory import parallel_corpus

    report = audit_corpus(parallel_corpus(tmp_path / "corpus"), [tiny_model_dir], bootstrap=200, k=5,
                          cache_dir=tmp_path / "cache")
    multi = next(s for s in report.scenarios if s.name == "multi [en+de] q=de")
    for key in ("peer@5", "lpr", "lang_ndcg@5", "tlr@5", "lang_pref"):
        assert multi.metrics[key] is not None, key
        lo, hi = multi.ci[key]
        assert lo <= multi.metrics[key] <= hi
        assert len(multi.by_model[report.models[0].name].per_query[key]) == multi.n_queries
    mono = next(s for s in report.scenarios if s.name == "mono-same [de] q=de")
    assert mono.metrics["lpr"] is None and mono.metrics["tlr@5"] is None  # no relevant version in another language
    again = Report.from_json(json.loads(to_json_text(report)))
    assert again.scenarios[0].metrics == report.scenarios[0].metrics
    out = StringIO()
    render(report, Console(file=out, width=120, record=False), detail=True)
    text = out.getvalue()
    assert "the field's metrics" in text and "PEER" in text and "Lang-nDCG" in text
    assert max(len(line) for line in text.splitlines()) <= 120
    compact = StringIO()
    render(report, Console(file=compact, width=120), detail=False)
    assert "the field's metrics" not in compact.getvalue()
    markdown = to_markdown(report)
    assert "## The field's metrics" in markdown and "| multi [en+de] q=de |" in markdown
    assert 'data-table="field"' in to_html(report)


@pytest.mark.slow
def test_lang_pref_agrees_in_direction_with_twin_preference_on_the_real_model(e5_model_dir, tmp_path) -> None:
    """On the UDHR example (Multi pools, fully parallel) the real model prefers the query's own language in
    most languages (method.md section 6: twin preference 0-5%). The twin-free measure must say the same there."""
    from pathlib import Path

    from clbias.api import audit_corpus

    example = Path(__file__).resolve().parents[1] / "examples" / "udhr"
    report = audit_corpus(example, [e5_model_dir], bootstrap=200, scenarios=["multi"], cache_dir=tmp_path / "cache")
    native = {s.query_lang: s for s in report.scenarios if s.kind == "multi" and s.query_lang != "en"}
    strong = [x for x, s in native.items() if s.ci["twin_pref"] is not None and s.ci["twin_pref"][1] < 20]
    assert len(strong) >= 5
    for x in strong:
        pref, ci = native[x].metrics["lang_pref"], native[x].ci["lang_pref"]
        assert pref is not None and ci[1] < 50, (x, pref, ci)  # own language preferred, CI clear of neutral
    for s in report.scenarios:
        assert s.metrics["tlr@10"] is None or 0 <= s.metrics["tlr@10"] <= 100

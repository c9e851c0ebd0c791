"""Bootstrap intervals, paired comparisons and language gaps."""
from __future__ import annotations

import numpy as np
import pytest

from clbias.metrics import (bootstrap_ci, holm_significant, language_gap, non_inferior, paired_comparison, significant,
                            significant_loss, summarize)


def normal(seed: int, n: int, mean: float = 50.0, sd: float = 10.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, sd, size=n)


def width(low: float, high: float) -> float:
    return high - low


# ---------------------------------------------------------------- bootstrap CI of a mean

def test_ci_contains_the_mean_and_ignores_not_applicable() -> None:
    values = np.concatenate([normal(1, 40), [np.nan] * 10])
    estimate = bootstrap_ci(values)
    assert estimate is not None and estimate.n == 40
    assert estimate.mean == pytest.approx(np.nanmean(values))
    assert estimate.low < estimate.mean < estimate.high
    assert estimate.confidence == 0.95


def test_ci_shrinks_with_more_queries() -> None:
    small, large = bootstrap_ci(normal(2, 50)), bootstrap_ci(normal(2, 5000))
    assert width(large.low, large.high) < width(small.low, small.high) / 5


def test_ci_width_is_about_the_normal_theory_width() -> None:
    values = normal(3, 400)
    estimate = bootstrap_ci(values)
    normal_width = 2 * 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert width(estimate.low, estimate.high) == pytest.approx(normal_width, rel=0.15)


def test_ci_is_reproducible_with_a_seed() -> None:
    values = normal(4, 60)
    assert bootstrap_ci(values) == bootstrap_ci(values)
    assert bootstrap_ci(values, seed=11) == bootstrap_ci(values, seed=11)
    assert bootstrap_ci(values, seed=11) != bootstrap_ci(values, seed=12)


def test_ci_of_nothing_is_none_and_of_one_value_is_that_value() -> None:
    assert bootstrap_ci(np.array([np.nan, np.nan])) is None
    single = bootstrap_ci(np.array([np.nan, 7.0]))
    assert (single.mean, single.low, single.high, single.n) == (7.0, 7.0, 7.0, 1)


def test_wider_confidence_gives_a_wider_interval() -> None:
    values = normal(5, 80)
    narrow, wide = bootstrap_ci(values, confidence=0.8), bootstrap_ci(values, confidence=0.99)
    assert wide.low < narrow.low and narrow.high < wide.high


def test_summarize_covers_every_metric() -> None:
    summary = summarize({"ndcg@10": normal(6, 30), "eir": np.full(5, np.nan)})
    assert summary["eir"] is None and summary["ndcg@10"].n == 30


# ---------------------------------------------------------------- paired comparison

def test_paired_comparison_detects_a_real_shift() -> None:
    base = normal(7, 60, sd=20.0)
    improved = base + 3.0 + np.random.default_rng(8).normal(0, 2.0, size=60)
    result = paired_comparison(improved, base, "ndcg@10")
    assert result.difference == pytest.approx(np.mean(improved - base))
    assert 0.0 < result.low < result.difference < result.high
    assert significant(result.low, result.high)
    assert result.wins > 50 and result.wins + result.ties + result.losses == result.n == 60
    reversed_result = paired_comparison(base, improved, "ndcg@10")  # the rule is two-sided
    assert reversed_result.high < 0.0 and significant(reversed_result.low, reversed_result.high)


def test_paired_comparison_does_not_invent_a_shift() -> None:
    rng = np.random.default_rng(9)
    rejected = 0
    trials = 200
    for trial in range(trials):
        base = rng.normal(50.0, 20.0, size=30)
        noisy = base + rng.normal(0.0, 2.0, size=30)
        result = paired_comparison(noisy, base, "ndcg@10", n_resamples=200, seed=trial)
        rejected += significant(result.low, result.high)
    assert rejected / trials < 0.10  # a calibrated rule calls about 5% of true nulls significant


def test_paired_comparison_has_no_second_test_beside_its_ci() -> None:
    """Stars, colours and verdicts read the CI; no p-value is carried that could disagree with it."""
    result = paired_comparison(np.array([2.0, 3, 4, 5, 6]), np.array([1.0, 1, 1, 1, 1]), "mrr@10")
    assert not hasattr(result, "p_value") and significant(result.low, result.high)


# ---------------------------------------------------------------- the one rule: significance, no harm, Holm

def test_significance_and_non_inferiority_rules() -> None:
    assert significant(0.1, 2.0) and significant(-3.0, -0.5) and not significant(-0.1, 0.2)
    assert significant_loss(-3.0, -0.5) and not significant_loss(0.1, 2.0)
    assert significant_loss(0.1, 2.0, lower_is_better=True)  # e.g. EIR or Max@R going up
    # no harm at a 1-point margin: the CI end on the losing side stays within the margin
    assert non_inferior(-0.8, 1.5, 1.0) and not non_inferior(-1.2, 0.5, 1.0)
    assert non_inferior(-2.0, 0.9, 1.0, lower_is_better=True) and not non_inferior(-0.2, 1.1, 1.0, lower_is_better=True)
    with pytest.raises(ValueError):
        non_inferior(0.0, 1.0, -1.0)


def test_holm_finds_a_real_loss_among_many_unchanged_cells() -> None:
    rng = np.random.default_rng(21)
    cells = [rng.normal(0.0, 10.0, size=150) for _ in range(40)]
    cells[7] = rng.normal(-6.0, 10.0, size=150)  # one cell really loses 6 points
    decisions = holm_significant(cells, loss_side=[False] * 40, seed=3)
    assert [d.index for d in decisions if d.significant] == [7]
    assert decisions[7].confidence == pytest.approx(1 - 0.05 / 40) and decisions[7].high < 0
    # the same loss alone at 95% is significant too, and a gain is never a loss
    assert holm_significant([cells[7]], loss_side=[False])[0].significant
    assert not holm_significant([-cells[7]], loss_side=[False])[0].significant
    assert holm_significant([-cells[7]])[0].significant  # either side when no side is named


def test_holm_keeps_the_family_wise_error_of_an_unchanged_model_at_alpha() -> None:
    """90 cells of true-zero differences: Holm calls any of them a loss in about alpha/2 of the families
    (one-sided), while reading each cell alone at 95% calls at least one loss in nearly every family."""
    rng = np.random.default_rng(5)
    families, holm_hits, alone_hits = 40, 0, 0
    for f in range(families):
        cells = [rng.normal(0.0, 5.0, size=80) for _ in range(90)]
        holm_hits += any(d.significant for d in holm_significant(cells, loss_side=[False] * 90, seed=f))
        alone_hits += any(paired_comparison(c, np.zeros(80), "ndcg@10", n_resamples=200, seed=f).high < 0
                          for c in cells)
    assert holm_hits / families <= 0.05
    assert alone_hits / families > 0.8


def test_paired_comparison_is_reproducible_and_drops_unpaired_queries() -> None:
    a, b = normal(11, 40), normal(12, 40)
    a[3], b[7] = np.nan, np.nan
    first, second = paired_comparison(a, b, "ndcg@10"), paired_comparison(a, b, "ndcg@10")
    assert first == second and first.n == 38


def test_win_tie_loss_respects_direction() -> None:
    a, b = np.array([1.0, 5.0, 3.0, 4.0]), np.array([2.0, 5.0, 1.0, 2.0])
    lower_is_better = paired_comparison(a, b, "max_r")
    higher_is_better = paired_comparison(a, b, "recall@10")
    assert (lower_is_better.wins, lower_is_better.ties, lower_is_better.losses) == (1, 1, 2)
    assert (higher_is_better.wins, higher_is_better.ties, higher_is_better.losses) == (2, 1, 1)
    toward_zero = paired_comparison(np.array([-1.0, 4.0]), np.array([3.0, 2.0]), "twin_rank_gap")
    assert (toward_zero.wins, toward_zero.ties, toward_zero.losses) == (1, 0, 1)


def test_paired_comparison_edge_cases() -> None:
    assert paired_comparison(np.array([np.nan]), np.array([1.0]), "mrr@10") is None
    with pytest.raises(ValueError):
        paired_comparison(np.zeros(3), np.zeros(4), "mrr@10")


# ---------------------------------------------------------------- language gap

def test_unpaired_language_gap() -> None:
    english, chinese = normal(13, 80, mean=60.0), normal(14, 120, mean=40.0, sd=20.0)
    chinese[:5] = np.nan
    gap = language_gap(english, chinese)
    assert gap.gap == pytest.approx(english.mean() - np.nanmean(chinese))
    standard_error = np.hypot(english.std(ddof=1) / np.sqrt(80), np.nanstd(chinese, ddof=1) / np.sqrt(115))
    assert width(gap.low, gap.high) == pytest.approx(2 * 1.96 * standard_error, rel=0.15)
    assert 10.0 < gap.low < gap.gap < gap.high < 30.0
    assert (gap.n_english, gap.n_other, gap.paired) == (80, 115, False)


def test_no_gap_between_equal_languages_has_an_interval_around_zero() -> None:
    gap = language_gap(normal(15, 100), normal(16, 100))
    assert gap.low < 0.0 < gap.high


def test_paired_language_gap_is_tighter_when_questions_share_difficulty() -> None:
    difficulty = normal(17, 100, mean=0.0, sd=20.0)
    english = 60.0 + difficulty + normal(18, 100, mean=0.0, sd=2.0)
    other = 50.0 + difficulty + normal(19, 100, mean=0.0, sd=2.0)
    paired, unpaired = language_gap(english, other, paired=True), language_gap(english, other)
    assert paired.paired and paired.gap == pytest.approx(unpaired.gap)
    assert width(paired.low, paired.high) < width(unpaired.low, unpaired.high) / 3
    assert paired.low < 10.0 < paired.high


def test_language_gap_edge_cases() -> None:
    assert language_gap(np.array([1.0]), np.array([np.nan])) is None
    with pytest.raises(ValueError):
        language_gap(np.zeros(2), np.zeros(3), paired=True)


def test_summarize_gives_each_metric_its_own_bootstrap_interval():
    """summarize shares resamples between metrics of equal size (one product); each interval must still be
    the one bootstrap_ci gives that metric alone, NaN rows and large samples included."""
    rng = np.random.default_rng(3)
    per_query = {"a": rng.normal(size=40), "b": rng.exponential(size=40), "c": rng.normal(size=40),
                 "none": np.full(40, np.nan), "big": rng.normal(size=5000)}
    per_query["c"][[1, 5, 9]] = np.nan
    per_query["b"][::4] = 0.0
    out = summarize(per_query, n_resamples=1000, seed=5)
    assert list(out) == list(per_query) and out["none"] is None
    for name in ("a", "b", "c", "big"):
        ref = bootstrap_ci(per_query[name], n_resamples=1000, seed=5)
        got = out[name]
        assert got.n == ref.n and got.confidence == ref.confidence
        assert got.mean == pytest.approx(ref.mean, abs=1e-12)
        assert got.low == pytest.approx(ref.low, abs=1e-9) and got.high == pytest.approx(ref.high, abs=1e-9)
    assert out["c"].n == 37

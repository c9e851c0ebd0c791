"""Bootstrap intervals, paired comparisons and language gaps."""
from __future__ import annotations

import math

import numpy as np
import pytest

from clbias.metrics import bootstrap_ci, language_gap, paired_comparison, summarize


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
    assert result.p_value < 0.01
    assert result.wins > 50 and result.wins + result.ties + result.losses == result.n == 60
    reversed_result = paired_comparison(base, improved, "ndcg@10")  # the test is two-sided
    assert reversed_result.p_value < 0.01 and reversed_result.high < 0.0


def test_paired_comparison_does_not_invent_a_shift() -> None:
    rng = np.random.default_rng(9)
    rejected = covered = 0
    trials = 200
    for trial in range(trials):
        base = rng.normal(50.0, 20.0, size=30)
        noisy = base + rng.normal(0.0, 2.0, size=30)
        result = paired_comparison(noisy, base, "ndcg@10", n_resamples=200, seed=trial)
        rejected += result.p_value < 0.05
        covered += result.low < 0.0 < result.high
    assert rejected / trials < 0.10  # a calibrated test rejects about 5% of true nulls
    assert covered / trials > 0.88


def test_paired_comparison_exact_sign_flip_for_few_queries() -> None:
    result = paired_comparison(np.array([2.0, 3, 4, 5, 6]), np.array([1.0, 1, 1, 1, 1]), "mrr@10")
    assert result.p_value == pytest.approx(2 / 32)  # only all-plus and all-minus are as extreme
    symmetric = paired_comparison(np.array([1.0, 3.0]), np.array([2.0, 2.0]), "mrr@10")
    assert symmetric.p_value == pytest.approx(1.0)


def test_sign_flip_p_value_matches_normal_theory_for_many_queries() -> None:
    z = normal(20, 200, mean=0.0, sd=1.0)
    differences = 1.0 + (z - z.mean()) / z.std() * np.sqrt(200) / 2  # mean 1, t statistic 2
    null_sd = np.sqrt(np.sum(differences ** 2)) / 200  # sd of the mean under random sign flips
    expected = math.erfc(1.0 / null_sd / math.sqrt(2))  # two-sided normal tail, about 0.048
    result = paired_comparison(differences, np.zeros(200), "ndcg@10", n_resamples=4000)
    assert result.p_value == pytest.approx(expected, abs=0.012)


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

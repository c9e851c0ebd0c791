"""Fusing two systems' scores over the same pool: reciprocal rank fusion, or a weighted sum of scores.

RRF (Cormack et al., SIGIR 2009): fused(d) = sum over systems of 1 / (k + rank(d)), k = 60, over each
system's full ranking of the pool (ties ranked by pool index). Weighted: w * s1 + (1 - w) * s2 after each
system's scores are min-max normalised per query over the pool (a constant row becomes 0).
"""
from __future__ import annotations

import numpy as np

RRF_K = 60


def full_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of every column per row, highest score first, ties by column index."""
    order = np.argsort(-scores.astype(np.float64), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, scores.shape[1] + 1)[None, :].repeat(scores.shape[0], 0), axis=1)
    return ranks


def reciprocal_rank_fusion(*scores: np.ndarray, k: int = RRF_K) -> np.ndarray:
    fused = np.zeros(scores[0].shape, np.float64)
    for s in scores:
        fused += 1.0 / (k + full_ranks(s))
    return fused


def minmax(scores: np.ndarray) -> np.ndarray:
    s = scores.astype(np.float64)
    low, high = s.min(axis=1, keepdims=True), s.max(axis=1, keepdims=True)
    span = high - low
    return np.where(span > 0, (s - low) / np.where(span > 0, span, 1.0), 0.0)


def weighted_fusion(first: np.ndarray, second: np.ndarray, weight: float) -> np.ndarray:
    """weight * minmax(first) + (1 - weight) * minmax(second)."""
    return weight * minmax(first) + (1.0 - weight) * minmax(second)

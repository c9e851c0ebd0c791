"""Exact inner-product search over L2-normalised vectors (numpy, batched)."""
from __future__ import annotations

import numpy as np


def full_scores(queries: np.ndarray, docs: np.ndarray) -> np.ndarray:
    return queries @ docs.T


def rank_order(scores: np.ndarray, depth: int) -> np.ndarray:
    """Indices of the `depth` best scores per row, best first; ties go to the lower pool index."""
    n = scores.shape[1]
    depth = min(depth, n)
    if depth < n:
        part = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
    else:
        part = np.broadcast_to(np.arange(n), scores.shape).copy()
    part_scores = np.take_along_axis(scores, part, axis=1)
    # lexsort: last key is primary -> sort by -score, then by index
    order = np.lexsort((part, -part_scores), axis=1)
    top = np.take_along_axis(part, order, axis=1)
    if depth < n:
        top = _fix_boundary_ties(scores, top)
    return top


def rank_order_presorted(scores: np.ndarray, ranked: np.ndarray, depth: int) -> np.ndarray:
    """`rank_order(scores, depth)` for rows without NaN, given each row sorted ascending (`ranked`):
    every score at or above the depth-th largest is a candidate (ties at the boundary included), and the
    candidates are ordered by score, then pool index. Avoids argpartition, which is slower than a sort."""
    n, size = scores.shape
    depth = min(depth, size)
    if n == 0 or depth == 0:
        return np.empty((n, depth), dtype=np.int64)
    rows, cols = np.nonzero(scores >= ranked[:, size - depth][:, None])
    order = np.lexsort((cols, -scores[rows, cols], rows))
    rows, cols = rows[order], cols[order]
    starts = np.searchsorted(rows, np.arange(n))
    return cols[starts[:, None] + np.arange(depth)].astype(np.int64, copy=False)


def _fix_boundary_ties(scores: np.ndarray, top: np.ndarray) -> np.ndarray:
    """argpartition may keep a higher index among documents tied with the last kept score."""
    last = np.take_along_axis(scores, top[:, -1:], axis=1)
    rows = np.flatnonzero((scores == last).sum(axis=1) > (np.take_along_axis(scores, top, axis=1) == last).sum(axis=1))
    for r in rows:
        order = np.lexsort((np.arange(scores.shape[1]), -scores[r]))
        top[r] = order[: top.shape[1]]
    return top


def ranks_of(scores_row: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """1-based ranks of `docs` in one query's full ranking (ties broken by pool index)."""
    s = scores_row[docs]
    above = (scores_row[None, :] > s[:, None]).sum(axis=1)
    tied_before = ((scores_row[None, :] == s[:, None]) & (np.arange(scores_row.shape[0])[None, :] < docs[:, None])).sum(axis=1)
    return (1 + above + tied_before).astype(np.int64)

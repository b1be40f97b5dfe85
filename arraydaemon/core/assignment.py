"""Minimum-cost assignment of a few rows to a few columns (the tracker's tracks to detections).

The same answer as ``scipy.optimize.linear_sum_assignment`` (tested against it) without importing
``scipy.optimize``, which costs the daemon ~35 MB and ~0.2 s at start-up for one assignment of a
handful of tracks per window. Exact: a dynamic programme over the subsets of the smaller side,
``O(n · k · 2^k)`` for ``k = min(rows, cols)``, microseconds for the tracker's sizes (k ≤ 8).
"""

from __future__ import annotations

import numpy as np

MAX_SMALL_SIDE = 12  # 2^12 subsets: beyond that this is the wrong algorithm


def min_cost_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` of a minimum-cost matching of ``min(n, m)`` pairs in ``cost [shape=(n, m)]``
    (finite), each row and each column used at most once, ``rows`` ascending (as scipy returns them).
    """
    cost = np.asarray(cost, dtype=float)
    if cost.ndim != 2:
        raise ValueError(f"cost: expected a 2-D array, got shape {cost.shape}")
    if not np.all(np.isfinite(cost)):
        raise ValueError("cost: expected finite entries")
    transposed = cost.shape[1] > cost.shape[0]
    c = cost.T if transposed else cost  # (n, k): every one of the k columns is matched to a row
    n, k = c.shape
    if k == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    if k > MAX_SMALL_SIDE:
        raise ValueError(f"cost: at most {MAX_SMALL_SIDE} on the smaller side, got shape {cost.shape}")
    if k == 1:  # one detection or one track: the cheapest partner
        i = int(np.argmin(c[:, 0]))
        return (np.array([0]), np.array([i])) if transposed else (np.array([i]), np.array([0]))
    full = (1 << k) - 1
    rows = c.tolist()
    # best[mask]: the least cost of matching the columns in mask to rows seen so far; the choices
    # made for each row are kept to walk back.
    best = {0: 0.0}
    choices = []
    for i in range(n):
        step = dict(best)
        choice = {mask: -1 for mask in best}
        for mask, value in best.items():
            for j in range(k):
                bit = 1 << j
                if mask & bit:
                    continue
                new, total = mask | bit, value + rows[i][j]
                if total < step.get(new, np.inf):
                    step[new] = total
                    choice[new] = j
        best = step
        choices.append(choice)
    pairs, mask = [], full
    for i in range(n - 1, -1, -1):
        j = choices[i][mask]
        if j >= 0:
            pairs.append((i, j))
            mask &= ~(1 << j)
    pairs = [(j, i) for i, j in pairs] if transposed else pairs
    pairs.sort()
    out = np.array(pairs, dtype=np.intp).reshape(-1, 2)
    return out[:, 0], out[:, 1]

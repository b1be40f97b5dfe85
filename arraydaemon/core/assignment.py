"""Minimum-cost assignment of rows to columns (the tracker's tracks to detections).

The answer of ``scipy.optimize.linear_sum_assignment`` (tested against it) without importing
``scipy.optimize``, which costs the daemon ~35 MB and ~0.2 s at start-up for one assignment of a
handful of tracks per window. The same algorithm as scipy's (shortest augmenting paths with dual
variables, Crouse 2016), as a numba kernel: about a microsecond at the tracker's sizes.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _assign(cost, col4row):  # pragma: no cover - compiled
    """Fills ``col4row [shape=(nr,)]`` with each row's column for ``cost [shape=(nr, nc)]``, nr <= nc,
    finite. Returns False if no complete matching exists (cannot happen for finite costs)."""
    nr, nc = cost.shape
    u = np.zeros(nr)
    v = np.zeros(nc)
    shortest = np.empty(nc)
    path = np.empty(nc, dtype=np.int64)
    row4col = np.full(nc, -1, dtype=np.int64)
    remaining = np.empty(nc, dtype=np.int64)
    seen_rows = np.zeros(nr, dtype=np.bool_)
    seen_cols = np.zeros(nc, dtype=np.bool_)
    for i in range(nr):
        col4row[i] = -1
    for cur_row in range(nr):
        for j in range(nc):
            shortest[j] = np.inf
            path[j] = -1
            remaining[j] = nc - j - 1  # scipy's order, so ties resolve as scipy's do
            seen_cols[j] = False
        for i in range(nr):
            seen_rows[i] = False
        n_remaining = nc
        min_val = 0.0
        i = cur_row
        sink = -1
        while sink == -1:
            seen_rows[i] = True
            index = -1
            lowest = np.inf
            for it in range(n_remaining):
                j = remaining[it]
                r = min_val + cost[i, j] - u[i] - v[j]
                if r < shortest[j]:
                    path[j] = i
                    shortest[j] = r
                if shortest[j] < lowest or (shortest[j] == lowest and row4col[j] == -1):
                    lowest = shortest[j]
                    index = it
            min_val = lowest
            if min_val == np.inf:
                return False
            j = remaining[index]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            seen_cols[j] = True
            n_remaining -= 1
            remaining[index] = remaining[n_remaining]
        u[cur_row] += min_val
        for i in range(nr):
            if seen_rows[i] and i != cur_row:
                u[i] += min_val - shortest[col4row[i]]
        for j in range(nc):
            if seen_cols[j]:
                v[j] -= min_val - shortest[j]
        j = sink
        while True:
            i = path[j]
            row4col[j] = i
            previous = col4row[i]
            col4row[i] = j
            j = previous
            if i == cur_row:
                break
    return True


def min_cost_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` of a minimum-cost matching of ``min(n, m)`` pairs in ``cost [shape=(n, m)]``
    (finite), each row and each column used at most once, ``rows`` ascending (as scipy returns them).
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"cost: expected a 2-D array, got shape {cost.shape}")
    if not np.all(np.isfinite(cost)):
        raise ValueError("cost: expected finite entries")
    transposed = cost.shape[1] < cost.shape[0]
    c = np.ascontiguousarray(cost.T if transposed else cost)  # (nr, nc), nr <= nc
    col4row = np.empty(c.shape[0], dtype=np.int64)
    if c.shape[0] and not _assign(c, col4row):
        raise ValueError("cost: no complete matching")  # unreachable for finite costs
    rows = np.arange(c.shape[0], dtype=np.intp)
    cols = col4row.astype(np.intp)
    if transposed:
        order = np.argsort(cols)
        return cols[order], rows[order]
    return rows, cols

"""Minimum-cost assignment of rows to columns (the tracker's tracks to detections).

The answer of ``scipy.optimize.linear_sum_assignment`` (tested against it) without importing
``scipy.optimize``, which costs the daemon ~35 MB and ~0.2 s at start-up for one assignment of a
handful of tracks per window. The same algorithm as scipy's (shortest augmenting paths with dual
variables, Crouse 2016), as a numba kernel (``kernel_code.assign``, compiled with the others:
``compiled.py``): 8-10 µs a call at the tracker's sizes, wrapper included.
"""

from __future__ import annotations

import numpy as np

from arraydaemon.core import compiled

_k = compiled.kernels()  # its kernel's code: core/kernel_code.py


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
    if c.shape[0] and not _k.assign(c, col4row):
        raise ValueError("cost: no complete matching")  # unreachable for finite costs
    rows = np.arange(c.shape[0], dtype=np.intp)
    cols = col4row.astype(np.intp)
    if transposed:
        order = np.argsort(cols)
        return cols[order], rows[order]
    return rows, cols

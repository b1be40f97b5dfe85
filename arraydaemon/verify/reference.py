"""Plain-numpy references of the map-scoring kernels in :mod:`arraydaemon.verify.kernels`, written
for clarity; ``tests/verify/test_kernels.py`` holds the kernels to them within 1e-5."""

from __future__ import annotations

import numpy as np


def tdoa_scores(tau: np.ndarray, weight: np.ndarray, maps: np.ndarray, pos: np.ndarray, pinv: np.ndarray,
                sigma: float, speed: float, norm_range: tuple[float, float], norm_width: float) -> np.ndarray:
    """Mean over windows (weighted) of the biweight-weighted share of mics fitting a plane wave,
    penalised outside ``norm_range`` of ``|s| c``: ``[shape=(maps,)]`` float64."""
    v = tau[:, maps]  # (W, N, M)
    v = v - v.mean(axis=2, keepdims=True)
    s = -np.einsum("km,wnm->wnk", pinv, v)  # (W, N, 3)
    r = v + np.einsum("mk,wnk->wnm", pos, s)
    fit = (np.clip(1.0 - (r / (3.0 * sigma)) ** 2, 0.0, None) ** 2).mean(axis=2)
    norm = np.linalg.norm(s, axis=2) * speed
    lo, hi = norm_range
    x = np.where(norm > hi, (norm - hi) / norm_width, np.where(norm < lo, (lo - norm) / norm_width, 0.0))
    fit = fit * np.exp(-x * x)
    return (weight[:, None] * fit).sum(axis=0) / max(weight.sum(), 1e-30)


def srp_scores(tables: np.ndarray, pair_row: np.ndarray, maps: np.ndarray, lag_pos: np.ndarray,
               max_lag: int) -> np.ndarray:
    """Max over directions of the mean over mapped mic pairs of the GCC at the direction's delay
    (linear interpolation): ``[shape=(maps, W)]`` float32."""
    m = maps.shape[1]
    i, j = np.triu_indices(m, 1)  # itertools.combinations order
    n_lags = tables.shape[2]
    out = np.empty((len(maps), tables.shape[0]), dtype=np.float32)
    for n, cmap in enumerate(maps):
        a, b = cmap[i], cmap[j]
        rows = pair_row[a, b]
        sign = np.where(a < b, 1.0, -1.0)
        x = np.clip(max_lag + sign[None, :] * lag_pos, 0.0, n_lags - 1.0)  # (D, P)
        k = np.minimum(np.floor(x).astype(np.intp), n_lags - 2)
        f = x - k
        lo = tables[:, rows[None, :], k]  # (W, D, P)
        hi = tables[:, rows[None, :], k + 1]
        srp = (lo + f * (hi - lo)).mean(axis=2)
        out[n] = srp.max(axis=1)
    return out

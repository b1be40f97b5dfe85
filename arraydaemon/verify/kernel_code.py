"""The code of the channel-map scoring kernels (``verify/kernels.py`` has their checked wrappers and
the scores' description): compiled ahead of time with the core kernels (``core/compiled.py``), or by
numba's JIT where that module is absent. References: :mod:`arraydaemon.verify.reference`."""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def tdoa_scores(tau, weight, maps, pos, pinv, sigma, speed, norm_lo, norm_hi, norm_width):
    n_maps, n_mics = maps.shape
    n_win = tau.shape[0]
    out = np.zeros(n_maps)
    v = np.empty(n_mics)
    inv9s2 = 1.0 / (9.0 * sigma * sigma)
    wsum = 0.0
    for w in range(n_win):
        wsum += weight[w]
    for n in range(n_maps):
        total = 0.0
        for w in range(n_win):
            if weight[w] <= 0.0:
                continue
            mean = 0.0
            for i in range(n_mics):
                v[i] = tau[w, maps[n, i]]
                mean += v[i]
            mean /= n_mics
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            for i in range(n_mics):
                v[i] -= mean
                s0 -= pinv[0, i] * v[i]
                s1 -= pinv[1, i] * v[i]
                s2 -= pinv[2, i] * v[i]
            fit = 0.0
            for i in range(n_mics):
                r = v[i] + pos[i, 0] * s0 + pos[i, 1] * s1 + pos[i, 2] * s2
                q = 1.0 - r * r * inv9s2
                if q > 0.0:
                    fit += q * q
            fit /= n_mics
            norm = math.sqrt(s0 * s0 + s1 * s1 + s2 * s2) * speed
            if norm > norm_hi:
                x = (norm - norm_hi) / norm_width
                fit *= math.exp(-x * x)
            elif norm < norm_lo:
                x = (norm_lo - norm) / norm_width
                fit *= math.exp(-x * x)
            total += weight[w] * fit
        out[n] = total / max(wsum, 1e-30)
    return out


@numba.njit(cache=True, nogil=True)
def srp_scores(tables, pair_row, maps, lag_pos, max_lag):
    n_win, _, n_lags = tables.shape
    n_maps, n_mics = maps.shape
    n_dirs, n_pairs = lag_pos.shape
    out = np.empty((n_maps, n_win), dtype=np.float32)
    acc = np.empty(n_dirs)
    rows = np.empty(n_pairs, dtype=np.intp)
    signs = np.empty(n_pairs)
    for n in range(n_maps):
        q = 0
        for i in range(n_mics):
            for j in range(i + 1, n_mics):
                a = maps[n, i]
                b = maps[n, j]
                rows[q] = pair_row[a, b]
                signs[q] = 1.0 if a < b else -1.0
                q += 1
        for w in range(n_win):
            for d in range(n_dirs):
                acc[d] = 0.0
            for q in range(n_pairs):
                row = rows[q]
                sg = signs[q]
                for d in range(n_dirs):
                    x = max_lag + sg * lag_pos[d, q]
                    if x < 0.0:
                        x = 0.0
                    elif x > n_lags - 1.0:
                        x = n_lags - 1.0
                    k = int(x)
                    k = min(k, n_lags - 2)
                    f = x - k
                    lo = tables[w, row, k]
                    acc[d] += lo + f * (tables[w, row, k + 1] - lo)
            best = acc[0]
            for d in range(1, n_dirs):
                best = max(best, acc[d])
            out[n, w] = best / n_pairs
    return out

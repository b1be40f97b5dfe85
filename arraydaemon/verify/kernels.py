"""numba kernels that score candidate channel maps, with checked public wrappers.

A channel map assigns an analysed channel to every mic (``maps[n, i]``: the channel of mic ``i``).
Two scores:

- :func:`tdoa_scores` (fast enough for every map of 8 mics): per window, the channels' arrival
  times ``tau [shape=(W, C)]`` are fitted by a plane wave on the mapped geometry, ``tau_map =
  -P s + const`` (slowness ``s``, in the geometry's span); the score is the mean over windows of
  the share of mics within ``sigma`` of the fit (Gaussian-weighted), times a penalty when
  ``|s| c`` leaves ``[norm_lo, norm_hi]`` (a wave slower than sound, or a 3-D array's too fast one).
- :func:`srp_scores`: per window, SRP-PHAT of the mapped mic pairs over a direction grid (the
  mean over pairs of each pair's GCC at the direction's delay, linearly interpolated), maximised
  over the grid: ``[shape=(maps, W)]``.

The plain-numpy references are in :mod:`arraydaemon.verify.reference`; tests hold the kernels to
them within 1e-5.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from arraydaemon.core.kernels import check_array


@numba.njit(cache=True, nogil=True)
def _tdoa_scores(tau, weight, maps, pos, pinv, sigma, speed, norm_lo, norm_hi, norm_width):
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
def _srp_scores(tables, pair_row, maps, lag_pos, max_lag):
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


def _check_maps(maps, n_channels: int):
    maps = check_array(maps, "maps", np.intp, 2)
    if maps.size and (maps.min() < 0 or maps.max() >= n_channels):
        raise ValueError(f"maps: expected channel indices below {n_channels}")
    if maps.shape[1] > 1 and not (np.diff(np.sort(maps, axis=1), axis=1) > 0).all():
        raise ValueError("maps: a map uses one channel twice")
    return maps


def tdoa_scores(tau: np.ndarray, weight: np.ndarray, maps: np.ndarray, pos: np.ndarray, pinv: np.ndarray,
                sigma: float, speed: float, norm_range: tuple[float, float], norm_width: float) -> np.ndarray:
    """Plane-wave fit score of every map ``[shape=(maps,)]``, see the module doc.

    ``tau [shape=(W, C)]`` arrival times (s), ``weight [shape=(W,)]`` window weights, ``maps
    [shape=(N, M)]`` intp, ``pos [shape=(M, 3)]`` centred mic positions, ``pinv [shape=(3, M)]``
    their pseudo-inverse restricted to the geometry's span; ``sigma`` (s) the delay tolerance.
    """
    tau = check_array(tau, "tau", np.float64, 2)
    weight = check_array(weight, "weight", np.float64, 1)
    maps = _check_maps(maps, tau.shape[1])
    pos = check_array(pos, "pos", np.float64, 2)
    pinv = check_array(pinv, "pinv", np.float64, 2)
    if weight.shape[0] != tau.shape[0]:
        raise ValueError(f"weight: expected {tau.shape[0]} windows, got {weight.shape[0]}")
    if pos.shape != (maps.shape[1], 3) or pinv.shape != (3, maps.shape[1]):
        raise ValueError(f"pos, pinv: expected shapes ({maps.shape[1]}, 3) and (3, {maps.shape[1]}), got "
                         f"{pos.shape} and {pinv.shape}")
    if not sigma > 0 or not norm_width > 0:
        raise ValueError("sigma and norm_width must be positive")
    return _tdoa_scores(tau, weight, maps, pos, pinv, float(sigma), float(speed), float(norm_range[0]),
                        float(norm_range[1]), float(norm_width))


def srp_scores(tables: np.ndarray, pair_row: np.ndarray, maps: np.ndarray, lag_pos: np.ndarray,
               max_lag: int) -> np.ndarray:
    """Per-window SRP maximum of every map ``[shape=(maps, W)]`` float32, see the module doc.

    ``tables [shape=(W, channel pairs, lags)]`` float32 (lag ``l`` at index ``max_lag + l``),
    ``pair_row [shape=(C, C)]`` intp (the table row of channels ``a, b``), ``maps [shape=(N, M)]``
    intp, ``lag_pos [shape=(directions, M (M - 1) / 2)]`` float64: each direction's delay of mic
    pair ``(i, j)``, ``i < j`` in ``itertools.combinations`` order, in lags (``tau_j - tau_i``).
    """
    tables = check_array(tables, "tables", np.float32, 3)
    pair_row = check_array(pair_row, "pair_row", np.intp, 2)
    maps = _check_maps(maps, pair_row.shape[0])
    lag_pos = check_array(lag_pos, "lag_pos", np.float64, 2)
    m = maps.shape[1]
    if lag_pos.shape[1] != m * (m - 1) // 2:
        raise ValueError(f"lag_pos: expected {m * (m - 1) // 2} pairs, got {lag_pos.shape[1]}")
    if tables.shape[2] != 2 * max_lag + 1 or tables.shape[2] < 2:
        raise ValueError(f"tables: expected {2 * max_lag + 1} lags, got {tables.shape[2]}")
    return _srp_scores(tables, pair_row, maps, lag_pos, int(max_lag))

"""Kernels that score candidate channel maps (their code: ``verify/kernel_code.py``, compiled
ahead of time or by numba's JIT, ``core/compiled.py``), with checked public wrappers.

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

import numpy as np

from arraydaemon.core import compiled
from arraydaemon.core.kernels import check_array

_k = compiled.kernels()


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
    return _k.tdoa_scores(tau, weight, maps, pos, pinv, float(sigma), float(speed), float(norm_range[0]),
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
    return _k.srp_scores(tables, pair_row, maps, lag_pos, int(max_lag))

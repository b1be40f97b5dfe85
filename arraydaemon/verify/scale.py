"""The size of the declared geometry: do the recording's delays fit an array of that size?

Per active window, the channels' arrival times (:mod:`.order`) are fitted by a plane wave on the
declared geometry with the channel map in use; the fitted slowness ``s`` times the speed of sound
is 1 for a wave from any direction when the geometry is right. A planar array sees only the
in-plane part, ``cos(elevation)``; a linear one the part along its line. So:

- 3-D arrays: the median of ``|s| c`` over the windows is the ratio of the true to the declared
  size (``> 1``: the declared geometry is too small; ``< 1``: too large);
- planar arrays: its :data:`QUANTILE` quantile, as a talker walking around the array at about its
  height passes near the plane now and then; linear arrays: the largest delays of the longest
  pairs (:func:`long_pair_factor`), reached near the line's end-fire directions. A talker always
  high above a planar array makes a right geometry look too large.

Where the diffuse-noise coherence gave pair distances (:mod:`.coherence`), their median ratio to
the declared distances measures the same thing independently of any direction; how the two are
combined is in :func:`scale_check`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arraydaemon.verify.order import ArrivalTimes, MapGeometry

QUANTILE = 0.9
TOO_SMALL = 1.12  # delay factor above this: the declared geometry is too small
TOO_LARGE = {"planar": 0.78, "3d": 0.80, "linear": 0.72}  # delay factor below this (no coherence): too large
CORROBORATE = 1.0  # a coherence factor above TOO_SMALL counts when the delays are at least this
COHERENCE_LOW = 0.88  # coherence factor below this: too large
COHERENCE_MAX_M = 0.25  # pairs up to this distance count for the coherence ratio
LONG_PAIR = 0.6  # linear arrays: pairs at least this fraction of the aperture give the delay factor
MIN_WINDOWS = 8
MIN_FIT = 0.75


@dataclass
class ScaleResult:
    """``status``: ``ok``, ``too_small``, ``too_large`` or ``unknown``; ``factor`` ≈ true size /
    declared size (from the coherence when it decided, else from the delays); ``norms
    [shape=(W,)]`` ``|s| c`` of the windows used (for plots)."""

    status: str
    factor: float | None = None
    delay_factor: float | None = None
    coherence_factor: float | None = None
    windows: int = 0
    message: str = ""
    norms: np.ndarray | None = None


def weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(x)
    cw = np.cumsum(w[order])
    return float(x[order][min(int(np.searchsorted(cw, q * cw[-1])), len(x) - 1)])


def window_norms(times: ArrivalTimes, geo: MapGeometry, cols: np.ndarray, sigma_s: float) -> tuple[np.ndarray, np.ndarray]:
    """``|s| c`` of every window ``[shape=(W,)]`` with the map ``cols`` and the share of mics within
    ``sigma_s`` of each window's plane-wave fit ``[shape=(W,)]``."""
    v = times.tau[:, cols]
    v = v - v.mean(axis=1, keepdims=True)
    s = -v @ geo.pinv.T  # (W, 3)
    r = v + s @ geo.pos.T
    fit = np.mean(np.exp(-0.5 * (r / sigma_s) ** 2), axis=1)
    return np.linalg.norm(s, axis=1) * geo.speed, fit


def long_pair_factor(times: ArrivalTimes, geo: MapGeometry, cols: np.ndarray, pair_row: np.ndarray) -> float | None:
    """Median over the pairs spanning at least :data:`LONG_PAIR` of the aperture of their largest
    delay (95th percentile of the agreeing windows' ``|delay|``) over the largest they allow."""
    d = np.linalg.norm(geo.mics[:, None] - geo.mics[None], axis=-1)
    good = times.weight > 0.05
    ratios = []
    for i in range(len(cols)):
        for j in range(i + 1, len(cols)):
            if d[i, j] < LONG_PAIR * d.max():
                continue
            p = pair_row[cols[i], cols[j]]
            use = good & times.inlier[:, p]
            if use.sum() >= MIN_WINDOWS:
                ratios.append(float(np.quantile(np.abs(times.peak_delay[use, p]), 0.95)) / (d[i, j] / geo.speed))
    return float(np.median(ratios)) if ratios else None


def scale_check(times: ArrivalTimes, geo: MapGeometry, cols: np.ndarray, sigma_s: float, pair_row: np.ndarray,
                coherence_ratios: list[float] | None = None) -> ScaleResult:
    """Check the declared size of ``geo`` with the channel columns ``cols`` (one per mic).

    The two measures err in opposite directions, and each decides where it does not err: delays
    (GCC peaks pulled toward lag 0 by reverberation and low-frequency coherence, and a talker off
    the plane) come out short, so long ones are trusted; diffuse-noise distances (a talker's
    remains in the quiet frames make the coherence fall faster) come out long, so short ones are.
    A long coherence distance counts when the delays are not short too."""
    norms, fit = window_norms(times, geo, np.asarray(cols), sigma_s)
    use = (times.weight > 0.05) & (fit >= MIN_FIT)
    result = ScaleResult("unknown", windows=int(use.sum()), norms=norms[use])
    if geo.kind == "linear":
        result.delay_factor = long_pair_factor(times, geo, np.asarray(cols), pair_row)
    elif result.windows >= MIN_WINDOWS:
        q = 0.5 if geo.kind == "3d" else QUANTILE
        result.delay_factor = weighted_quantile(norms[use], times.weight[use], q)
    ratios = [r for r in (coherence_ratios or []) if math.isfinite(r)]
    if len(ratios) >= 2:
        result.coherence_factor = float(np.median(ratios))
    a, c = result.delay_factor, result.coherence_factor
    if a is None and c is None:
        result.message = "too few windows with a clear direction to check the array's size"
        return result
    too_small_a = a is not None and a > TOO_SMALL
    too_small_c = c is not None and c > TOO_SMALL and (a is None or a > CORROBORATE)
    too_large_c = c is not None and c < COHERENCE_LOW
    too_large_a = c is None and a is not None and a < TOO_LARGE[geo.kind]
    parts = []
    if a is not None:
        parts.append(f"delays {a:.2f}× " + ("the declared geometry's" if geo.kind == "3d" else
                                              "the largest the declared geometry allows"))
    if c is not None:
        parts.append(f"diffuse-noise distances {c:.2f}× the declared")
    how = ", ".join(parts)
    if too_small_a or too_small_c:
        result.status, result.factor = "too_small", (a if too_small_a else c)
        result.message = f"{how}: the array is about {result.factor:.2f}× larger than the profile says"
    elif too_large_c or too_large_a:
        result.status, result.factor = "too_large", (c if too_large_c else a)
        result.message = f"{how}: the array is about {result.factor:.2f}× the size the profile says"
        if too_large_a and geo.kind != "3d":
            result.message += " (unless every sound came from well above or below the array)"
    else:
        result.status, result.factor = "ok", (c if c is not None else a)
        result.message = how
    return result

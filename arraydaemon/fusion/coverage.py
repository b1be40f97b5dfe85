"""What the arrays of a room see together (``arraydaemon room check``): a floor grid at the arrays'
mean height, where each cell gets the floor-plane uncertainty a talker there would be placed with
(the triangulation covariance of every array's bearing at the room's ``bearing_sigma_deg``) and the
best crossing angle of two arrays' bearings. Arrays are taken as hearing the whole room (mic arrays
have no field of view); reverberation and distance make real bearings worse than the sigma, so the
map ranks places, it does not promise errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from arraydaemon.fusion.room import Room

GOOD_SIGMA_M = 0.25
FAIR_SIGMA_M = 0.6
GOOD_CROSSING_DEG = 30.0


@dataclass(frozen=True)
class Coverage:
    xs: np.ndarray  # cell centres along x
    ys: np.ndarray
    sigma_m: np.ndarray  # [shape=(len(ys), len(xs))]: inf where no two arrays cross
    crossing_deg: np.ndarray  # best crossing angle of two bearings, [0, 90]

    def share(self, mask: np.ndarray) -> float:
        return float(mask.mean()) if mask.size else 0.0


def crossing_deg(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> float:
    """Angle at ``p`` between the floor-plane lines to ``a`` and to ``b``, folded into [0, 90] degrees."""
    u, v = a[:2] - p, b[:2] - p
    cos = abs(float(u @ v)) / max(np.linalg.norm(u) * np.linalg.norm(v), 1e-12)
    return math.degrees(math.acos(min(1.0, cos)))


def expected_sigma(room: Room, p: np.ndarray) -> float:
    """Floor-plane 1-sigma (worst direction) of a point at ``p`` seen by every array."""
    sigma = math.radians(room.bearing_sigma_deg)
    a = np.zeros((2, 2))
    for arr in room.arrays:
        d = p - arr.position[:2]
        r = float(np.linalg.norm(d))
        if r < 0.2:
            return math.inf
        n = np.array([-d[1], d[0]]) / r
        a += np.outer(n, n) / (sigma * r) ** 2
    if np.linalg.cond(a) > 1e8:
        return math.inf
    return float(math.sqrt(np.linalg.eigvalsh(np.linalg.inv(a))[-1]))


def coverage(room: Room, cell_m: float | None = None) -> Coverage:
    low, high = room.bounds()
    span = high - low
    cell = cell_m or max(0.1, float(span.max()) / 40.0)
    xs = np.arange(low[0] + cell / 2, high[0], cell)
    ys = np.arange(low[1] + cell / 2, high[1], cell)
    sigma = np.full((len(ys), len(xs)), math.inf)
    cross = np.zeros((len(ys), len(xs)))
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            p = np.array([x, y])
            if len(room.arrays) >= 2:
                sigma[j, i] = expected_sigma(room, p)
                cross[j, i] = max(crossing_deg(a.position, b.position, p) for a, b in combinations(room.arrays, 2))
    return Coverage(xs, ys, sigma, cross)


def report(room: Room, cov: Coverage) -> list[str]:
    """The lines ``room check`` prints: the share of the floor in each class, and a map (north up)."""
    good = (cov.sigma_m <= GOOD_SIGMA_M) & (cov.crossing_deg >= GOOD_CROSSING_DEG)
    fair = ~good & (cov.sigma_m <= FAIR_SIGMA_M)
    cell = cov.xs[1] - cov.xs[0] if len(cov.xs) > 1 else 0.0
    lines = [
        f"floor: {len(cov.xs)} x {len(cov.ys)} cells of {cell:.2f} m at bearing noise {room.bearing_sigma_deg:g} deg",
        (f"  good  (#): {cov.share(good) * 100:5.1f} %  bearings cross at >= {GOOD_CROSSING_DEG:g} deg, "
         f"expected error <= {GOOD_SIGMA_M:g} m"),
        f"  fair  (+): {cov.share(fair) * 100:5.1f} %  expected error <= {FAIR_SIGMA_M:g} m",
        (f"  poor  (.): {cov.share(~good & ~fair) * 100:5.1f} %  bearings nearly parallel (between arrays, "
         "far away): mostly a direction, not a place"),
    ]
    if len(room.arrays) < 2:
        lines.append("  one array only: every talker is a bearing, never a place")
    marks = {}
    for k, arr in enumerate(room.arrays):
        i = int(np.argmin(np.abs(cov.xs - arr.position[0])))
        j = int(np.argmin(np.abs(cov.ys - arr.position[1])))
        marks[(j, i)] = chr(ord("A") + k) if k < 26 else "*"
    lines.append("map (x to the right, y up; letters: the arrays in file order):")
    for j in range(len(cov.ys) - 1, -1, -1):
        row = "".join(marks.get((j, i), "#" if good[j, i] else "+" if fair[j, i] else ".") for i in range(len(cov.xs)))
        lines.append("  " + row)
    return lines

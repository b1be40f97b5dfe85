"""Direction grids, direction helpers and peak picking (REP-103 array frame: x forward, y left, z up).

A grid is chosen from the array geometry at run time: a ring in the array plane for planar arrays
(1° default), a half ring on the front side for linear arrays, a Fibonacci sphere of ≥ 2000 points for
3-D arrays. Directions a geometry cannot tell apart are folded onto the reported side
(:func:`fold`), so a planar array reports the upper side of its plane and a linear array the front.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arraydaemon.core.messages import SourceDirection
from arraydaemon.core.profiles import GeometryInfo


@dataclass(frozen=True, eq=False)
class DirectionGrid:
    """Unit vectors ``[shape=(directions, 3)]`` with the plane/ring basis used to refine peaks."""

    vectors: np.ndarray
    kind: str  # "ring" | "half-ring" | "sphere"
    spacing_deg: float
    plane_u: np.ndarray | None = None  # ring kinds: orthonormal basis of the ring's plane
    plane_v: np.ndarray | None = None
    normal: np.ndarray | None = None  # ring kinds: the side reported when mirrored

    def __len__(self) -> int:
        return int(self.vectors.shape[0])


def azel_to_vector(azimuth_deg, elevation_deg) -> np.ndarray:
    """Unit vectors ``[shape=(..., 3)]`` from azimuth/elevation in degrees."""
    az = np.radians(np.asarray(azimuth_deg, dtype=np.float64))
    el = np.radians(np.asarray(elevation_deg, dtype=np.float64))
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def vector_to_azel(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth in (-180, 180] and elevation in [-90, 90] degrees of ``vectors [shape=(..., 3)]``."""
    v = np.asarray(vectors, dtype=np.float64)
    az = np.degrees(np.arctan2(v[..., 1], v[..., 0]))
    az = np.where(az <= -180.0, az + 360.0, az)
    el = np.degrees(np.arcsin(np.clip(v[..., 2] / np.linalg.norm(v, axis=-1), -1.0, 1.0)))
    return az, el


def angular_distance_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Great-circle angle in degrees between unit vectors ``a`` and ``b`` (broadcasting)."""
    dot = np.clip(np.sum(np.asarray(a) * np.asarray(b), axis=-1), -1.0, 1.0)
    return np.degrees(np.arccos(dot))


def fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` near-uniform unit vectors ``[shape=(n, 3)]`` on the sphere (golden-angle spiral)."""
    i = np.arange(n, dtype=np.float64) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(1.0 - z * z)
    phi = math.pi * (3.0 - math.sqrt(5.0)) * i
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=-1)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _front_normal(axis: np.ndarray) -> np.ndarray:
    """For a linear array: the horizontal direction across the line that counts as 'front'."""
    n = np.cross([0.0, 0.0, 1.0], axis)
    if np.linalg.norm(n) < 1e-6:  # vertical line: call +x the front
        return np.array([1.0, 0.0, 0.0])
    n = _unit(n)
    lead = 0 if abs(n[0]) > 1e-6 else 1
    return n * np.sign(n[lead])


def grid_points(kind: str, resolution_deg: float | None = None, sphere_points: int = 2000) -> int:
    """How many directions :func:`make_grid` makes for an array of ``kind`` (no allocation)."""
    if resolution_deg is not None and resolution_deg <= 0:
        raise ValueError(f"grid resolution must be positive, got {resolution_deg}")
    if kind == "3d":
        # Fibonacci spacing ≈ sqrt(4π/n) rad; honour an explicitly requested finer resolution.
        if resolution_deg is None:
            return sphere_points
        return max(sphere_points, int(math.ceil(4 * math.pi / math.radians(resolution_deg) ** 2)))
    if kind == "planar":
        return int(round(360.0 / (resolution_deg or 1.0)))
    return int(round(180.0 / (resolution_deg or 1.0))) + 1


def make_grid(geometry: GeometryInfo, resolution_deg: float | None = None, sphere_points: int = 2000) -> DirectionGrid:
    """The search grid for ``geometry``: ring (planar), half ring (linear) or sphere (3-D).

    ``resolution_deg`` None means 1° rings and a ``sphere_points`` sphere (≈ 4.5° for 2000 points;
    peaks are refined below the spacing anyway): a 1° sphere would have 41 253 points."""
    n = grid_points(geometry.kind, resolution_deg, sphere_points)
    if geometry.kind == "3d":
        return DirectionGrid(fibonacci_sphere(n), "sphere", math.degrees(math.sqrt(4 * math.pi / n)))
    if geometry.kind == "planar":
        normal = np.asarray(geometry.normal)
        if abs(normal[2]) > 1 - 1e-9:  # horizontal array: the ring is exactly the azimuth circle
            u, v = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
        else:
            u = _unit(np.cross(normal, [0.0, 0.0, 1.0]) if abs(normal[2]) < 0.9 else np.cross([0.0, 1.0, 0.0], normal))
            v = np.cross(normal, u)
        ang = np.radians(np.arange(n) * 360.0 / n)
        vecs = np.cos(ang)[:, None] * u + np.sin(ang)[:, None] * v
        return DirectionGrid(vecs, "ring", 360.0 / n, u, v, normal)
    axis = np.asarray(geometry.axis)
    front = _front_normal(axis)
    ang = np.radians(np.linspace(0.0, 180.0, n))
    vecs = np.cos(ang)[:, None] * axis + np.sin(ang)[:, None] * front
    return DirectionGrid(vecs, "half-ring", 180.0 / (n - 1), axis, front, front)


def hemisphere_rings(grid: DirectionGrid, step: float) -> np.ndarray:
    """Directions on the reported side of a planar array's plane, off the plane, ``[shape=(n, 3)]``.

    A planar array's delays depend only on a direction's projection ``p`` onto its plane (``|p| =
    cos(elevation)``), so these points are spread evenly in ``p``: rings of ``|p| = 1 - step, 1 - 2
    step, ...`` with points about ``step`` apart, plus the normal. With the ring grid (``|p| = 1``)
    they cover the half-space; ``grid`` must be a "ring" grid."""
    if grid.kind != "ring":
        raise ValueError(f"hemisphere_rings: expected a ring grid, got {grid.kind!r}")
    if not 0.0 < step < 1.0:
        raise ValueError(f"hemisphere_rings: expected 0 < step < 1, got {step}")
    rows = [np.asarray(grid.normal, dtype=np.float64)[None]]
    n_rings = int(math.ceil(1.0 / step)) - 1
    for i in range(1, n_rings + 1):
        r = 1.0 - i * step
        if r < 0.5 * step:
            break
        count = max(3, int(math.ceil(2.0 * math.pi * r / step)))
        ang = 2.0 * math.pi * (np.arange(count) + 0.5 * (i % 2)) / count  # stagger neighbouring rings
        rows.append(from_plane(np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1), grid))
    return np.concatenate(rows)


def to_plane(vectors: np.ndarray, grid: DirectionGrid) -> np.ndarray:
    """In-plane coordinates ``[shape=(..., 2)]`` of ``vectors [shape=(..., 3)]`` for a ring grid."""
    v = np.asarray(vectors, dtype=np.float64)
    return np.stack([v @ grid.plane_u, v @ grid.plane_v], axis=-1)


def from_plane(p: np.ndarray, grid: DirectionGrid) -> np.ndarray:
    """Unit vectors ``[shape=(n, 3)]`` on the normal's side of a ring grid's plane whose in-plane
    coordinates are ``p [shape=(n, 2)]``; points outside the unit disk are pulled onto its rim."""
    p = np.asarray(p, dtype=np.float64)
    r = np.sqrt(np.sum(p * p, axis=-1))
    p = p / np.maximum(r, 1.0)[:, None]
    up = np.sqrt(np.maximum(0.0, 1.0 - np.minimum(r, 1.0) ** 2))
    return p[:, :1] * grid.plane_u + p[:, 1:] * grid.plane_v + up[:, None] * np.asarray(grid.normal)


def fold(vectors: np.ndarray, geometry: GeometryInfo) -> np.ndarray:
    """Mirror ``vectors [shape=(..., 3)]`` onto the side the geometry reports (see module doc)."""
    v = np.array(vectors, dtype=np.float64)
    if geometry.kind == "planar":
        n = np.asarray(geometry.normal)
    elif geometry.kind == "linear":
        n = _front_normal(np.asarray(geometry.axis))
    else:
        return v
    dot = v @ n
    return v - 2.0 * np.minimum(dot, 0.0)[..., None] * n


def tdoa_table(directions: np.ndarray, relative_mics: np.ndarray, speed_of_sound: float) -> np.ndarray:
    """Plane-wave TDOA of every mic vs the reference, ``[shape=(directions, mics)]`` seconds.

    ``relative_mics [shape=(mics, 3)]`` are positions minus the reference mic's: a mic further
    along the direction of the source hears the wave earlier, so its TDOA is negative.
    """
    return -(np.asarray(directions, dtype=np.float64) @ relative_mics.T) / speed_of_sound


def tangent_patch(center: np.ndarray, offsets_deg: np.ndarray, up=None) -> np.ndarray:
    """Unit vectors at angular ``offsets_deg [shape=(n, 2)]`` (along azimuth, elevation) around
    ``center``; used to refine a grid peak below the grid spacing. Returns ``[shape=(n, 3)]``.

    Azimuth and elevation are taken about ``up`` (default +z); a planar array passes its normal,
    so that the second offset leaves the array plane whatever the array's orientation."""
    c = _unit(center)
    up = np.array([0.0, 0.0, 1.0]) if up is None else _unit(up)
    ref = up if abs(c @ up) < 0.99 else cross3(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0])
    e1 = _unit(cross3(ref, c))
    e2 = cross3(c, e1)
    t = np.tan(np.radians(offsets_deg))
    v = c + t[:, :1] * e1 + t[:, 1:2] * e2
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def cross3(a, b) -> np.ndarray:
    """Cross product of two 3-vectors (np.cross costs ~10 µs of overhead per call)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def pair_delays(vectors: np.ndarray, baselines: np.ndarray, speed_of_sound: float) -> np.ndarray:
    """TDOAs ``tau_j - tau_i`` (s) of plane waves from unit ``vectors [shape=(D, 3)]`` at mic pairs with
    baselines ``r_j - r_i [shape=(P, 3)]``: ``[shape=(D, P)]``."""
    return -(np.asarray(vectors, dtype=np.float64) @ baselines.T) / speed_of_sound


def pick_peaks(spectrum: np.ndarray, vectors: np.ndarray, max_peaks: int, min_separation_deg: float,
               threshold: float, relative_threshold: float) -> list[int]:
    """Greedy peak picking on a grid spectrum ``[shape=(directions,)]`` over ``vectors``.

    Each pick is the grid maximum among directions at least ``min_separation_deg`` from earlier
    picks, and must be a local maximum (no higher direction within half the separation), above
    ``threshold`` and above ``relative_threshold`` × the first pick.
    """
    peaks: list[int] = []
    if max_peaks < 1 or len(spectrum) == 0:
        return peaks
    idx = int(np.argmax(spectrum))
    if max_peaks == 1:  # the global maximum is a local one: no neighbourhoods needed
        return [idx] if spectrum[idx] >= threshold else peaks
    cos_sep = np.cos(np.radians(min_separation_deg))
    cos_local = np.cos(np.radians(min_separation_deg / 2))
    available = np.ones(len(spectrum), dtype=bool)
    while len(peaks) < max_peaks and available.any():
        idx = int(np.argmax(np.where(available, spectrum, -np.inf)))
        value = spectrum[idx]
        # not available[idx]: every available direction is -inf (masked), argmax fell elsewhere
        if not available[idx] or value < threshold or (peaks and value < relative_threshold * spectrum[peaks[0]]):
            break
        cos_to = vectors @ vectors[idx]
        available &= cos_to < cos_sep
        if np.any(spectrum[cos_to >= cos_local] > value):
            continue  # on the flank of a stronger, already-suppressed peak
        peaks.append(idx)
    return peaks


def source_direction(vector: np.ndarray, confidence: float) -> SourceDirection:
    """A SourceDirection from a unit vector; confidence clipped to [0, 1]."""
    v = np.asarray(vector, dtype=np.float64)
    v = v / np.linalg.norm(v)
    az, el = vector_to_azel(v)
    return SourceDirection(
        azimuth_deg=float(az),
        elevation_deg=float(el),
        vector=(float(v[0]), float(v[1]), float(v[2])),
        confidence=float(min(1.0, max(0.0, confidence))),
    )


def quadratic_vertex(values: np.ndarray, patch: np.ndarray) -> np.ndarray | None:
    """Offset ``[shape=(2,)]`` of the maximum of the quadratic through ``values`` on the 3x3 (or 3x1)
    ``patch`` of offsets (row-major, centre in the middle), within one step of the centre; None
    where the values do not curve down."""
    h = float(np.max(np.abs(patch[:, 0])))
    f = np.asarray(values, dtype=np.float64)
    if len(f) == 3:  # along one dimension
        curve = f[0] - 2 * f[1] + f[2]
        return None if curve >= 0 else np.array([float(np.clip(0.5 * (f[0] - f[2]) / curve, -1, 1)) * h, 0.0])
    f = f.reshape(3, 3)  # [y, x]
    gx, gy = 0.5 * (f[1, 2] - f[1, 0]), 0.5 * (f[2, 1] - f[0, 1])
    hxx, hyy = f[1, 2] - 2 * f[1, 1] + f[1, 0], f[2, 1] - 2 * f[1, 1] + f[0, 1]
    hxy = 0.25 * (f[2, 2] - f[2, 0] - f[0, 2] + f[0, 0])
    det = hxx * hyy - hxy * hxy
    if hxx >= 0 or det <= 0:
        return None
    x = -(hyy * gx - hxy * gy) / det
    y = -(hxx * gy - hxy * gx) / det
    return np.clip([x, y], -1.0, 1.0) * h


def climb_patches(place, score, start: np.ndarray, unit_patch: np.ndarray, step: float) -> tuple[np.ndarray, float]:
    """Local search for the maximum of ``score(points) -> [shape=(n,)]`` from ``start``: two levels,
    at ``step`` and ``step / 8``; at each, the patch ``place(best, unit_patch * level_step)`` (3x3 or
    3x1 offsets, row-major, centre in the middle) moves to its best point until the centre is best (at
    most 20 moves), then jumps to the vertex of the quadratic through it (:func:`quadratic_vertex`);
    the last vertex is kept only if it scores better than that patch's centre. ``place(center,
    offsets [shape=(k, 2)])`` returns the ``k`` points. Returns (point, score)."""
    best = start
    centre = len(unit_patch) // 2
    for level_step in (step, step / 8):
        patch = unit_patch * level_step
        for _ in range(20):
            cand = place(best, patch)
            values = score(cand)
            i = int(np.argmax(values))
            best, value = cand[i], float(values[i])
            if i == centre:
                break
        vertex = quadratic_vertex(values, patch) if i == centre else None
        if vertex is not None:
            best = place(best, vertex[None])[0]  # the centre of the next patch
    if vertex is not None:
        v = float(score(best[None])[0])
        if v > value:
            value = v
        else:
            best = cand[centre]
    return best, value

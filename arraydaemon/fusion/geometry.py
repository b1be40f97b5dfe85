"""Bearings in the room frame and least-squares triangulation.

A bearing is a ray from an array's position along a room-frame unit vector (the array's REP-103
direction turned by its pose). What an array cannot tell apart becomes a second hypothesis: a planar
array's direction mirrored across its plane (up/down), a linear array's mirrored across the
vertical plane through its axis (front/back); association picks the hypothesis the other arrays agree
with.

Triangulation is split by what the geometry supports best: the floor-plane point minimises the
bearings' squared perpendicular distances, each weighted by ``1 / (sigma * range)^2`` (a bearing's
angular noise ``sigma`` grows its lateral error with range), and its covariance is the inverse of
that weighted normal matrix (the Gauss-Newton covariance of the angular model); the height is the
weighted mean of each bearing's height at that point's range, from bearings whose elevation is
meaningful (not a linear array's, whose elevation is a cone, nor a planar array's within 55
degrees of its plane). The residual adds both spreads, so of
a planar array's up/down hypotheses the one whose height the other arrays agree with wins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arraydaemon.fusion.room import RoomArray

MIN_HORIZONTAL = 0.05  # a bearing within ~3 degrees of vertical says nothing about the floor point
MIN_RANGE_M = 0.2  # a point this close to an array is inside it, not a talker
MAX_RANGE_M = 30.0
PLANAR_MIN_ELEVATION_DEG = 55.0
MIN_OUT_OF_PLANE = 0.1  # sin of the angle to a planar array's plane below which its elevation noise stops growing
MAX_Z_CHI2 = 4.0  # one bearing's height miss counts at most this much (an elevation off by a reflection)


@dataclass(frozen=True)
class Bearing:
    """A ray in the room frame: ``origin`` and unit ``direction`` ``[shape=(3,)]``.

    ``array``: the room's name for the array; ``track_id``: the array's track id; ``hypothesis``: 0
    for the direction the daemon reported, 1 for its mirror; ``elevation_known``: whether the ray's
    elevation is information (False for a linear array)."""

    array: str
    track_id: int
    origin: np.ndarray
    direction: np.ndarray
    hypothesis: int = 0
    elevation_known: bool = True
    activity: float = 1.0
    elevation_factor: float = 1.0  # elevation noise / azimuth noise (a planar array near its plane: large)

    @property
    def azimuth_deg(self) -> float:
        return math.degrees(math.atan2(self.direction[1], self.direction[0]))

    @property
    def elevation_deg(self) -> float:
        return math.degrees(math.asin(max(-1.0, min(1.0, float(self.direction[2])))))


def mirrored(direction: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """``direction`` reflected across the plane with unit ``normal`` (through the origin)."""
    return direction - 2.0 * float(direction @ normal) * normal


def bearings_of(array: RoomArray, track_id: int, vector, activity: float = 1.0) -> list[Bearing]:
    """The room-frame hypotheses of one track's array-frame unit ``vector``: the reported direction,
    then its mirror when the geometry is ambiguous (and the mirror is a different ray)."""
    v = np.asarray(vector, dtype=np.float64)
    v = v / max(np.linalg.norm(v), 1e-12)
    d = array.rotation @ v
    known = array.kind != "linear"
    factor = 1.0
    if array.kind == "planar" and array.mirror_normal is not None:
        # A planar array measures the in-plane part of the direction, cos(angle to its plane): near the
        # plane that angle's error is the azimuth's divided by its sine, and in a reverberant room the
        # reported angle is biased away from the plane (talkers level with a wall array read 20-35
        # degrees up in the benchmark rooms): nearer than PLANAR_MIN_ELEVATION_DEG it is no information.
        out_of_plane = abs(float(d @ array.mirror_normal))
        factor = 1.0 / max(out_of_plane, MIN_OUT_OF_PLANE)
        known = out_of_plane >= math.sin(math.radians(PLANAR_MIN_ELEVATION_DEG))
    out = [Bearing(array.name, int(track_id), array.position, d, 0, known, float(activity), factor)]
    if array.mirror_normal is not None:
        m = mirrored(d, array.mirror_normal)
        if np.linalg.norm(m - d) > 1e-3:
            out.append(Bearing(array.name, int(track_id), array.position, m / np.linalg.norm(m), 1, known,
                               float(activity), factor))
    return out


@dataclass(frozen=True)
class Fix:
    """A triangulated position: ``point`` ``[x, y, z]``, floor-plane ``cov_xy [shape=(2, 2)]`` (m²),
    ``sigma_z`` (m, inf when no bearing's elevation is known), ``residual`` (sum of squared
    normalised angular residuals, chi-square with ``len(bearings) - 2`` degrees of freedom) and the
    worst single bearing's angular miss (degrees)."""

    point: np.ndarray
    cov_xy: np.ndarray
    sigma_z: float
    residual: float
    worst_deg: float
    bearings: tuple[Bearing, ...]

    @property
    def sigma_xy(self) -> float:
        """1-sigma extent along the worst direction, metres."""
        return float(math.sqrt(max(np.linalg.eigvalsh(self.cov_xy)[-1], 0.0)))


def _floor_lines(bearings):
    origins = np.array([b.origin[:2] for b in bearings])
    dirs = np.array([b.direction[:2] for b in bearings])
    norms = np.linalg.norm(dirs, axis=1)
    return origins, dirs / norms[:, None], norms


def triangulate(bearings, sigma_deg: float, default_z: float | None = None, iterations: int = 3) -> Fix | None:
    """The least-squares point of two or more bearings (from different arrays), or None when they do
    not meet in front of every array (parallel, behind one, or out of range)."""
    bearings = tuple(bearings)
    if len(bearings) < 2:
        return None
    origins, dirs, horizontal = _floor_lines(bearings)
    if np.any(horizontal < MIN_HORIZONTAL):
        return None
    normals = np.stack([-dirs[:, 1], dirs[:, 0]], axis=1)
    sigma = math.radians(sigma_deg)
    ranges = np.ones(len(bearings))
    point = None
    for _ in range(iterations):
        w = 1.0 / (sigma * np.maximum(ranges, MIN_RANGE_M)) ** 2
        a = (normals * w[:, None]).T @ normals
        if np.linalg.cond(a) > 1e8:
            return None  # parallel lines: no point
        b = (normals * w[:, None]).T @ np.einsum("ij,ij->i", normals, origins)
        point = np.linalg.solve(a, b)
        along = np.einsum("ij,ij->i", point[None, :] - origins, dirs)
        if np.any(along < MIN_RANGE_M) or np.any(along > MAX_RANGE_M):
            return None  # behind an array, inside it, or beyond any room
        ranges = np.linalg.norm(point[None, :] - origins, axis=1)
    w = 1.0 / (sigma * np.maximum(ranges, MIN_RANGE_M)) ** 2
    a = (normals * w[:, None]).T @ normals
    cov = np.linalg.inv(a)
    miss = np.einsum("ij,ij->i", normals, point[None, :] - origins)
    angles = np.arctan2(np.abs(miss), np.maximum(ranges, 1e-9))
    residual = float(np.sum((angles / sigma) ** 2))
    z, sigma_z, z_chi2 = height(bearings, point, sigma, default_z)
    return Fix(np.array([point[0], point[1], z]), cov, sigma_z, residual + z_chi2, float(np.degrees(angles.max())),
               bearings)


def height(bearings, point_xy: np.ndarray, sigma_rad: float,
           default_z: float | None = None) -> tuple[float, float, float]:
    """(z, sigma_z, chi2) at floor point ``point_xy`` from the bearings whose elevation is known: each
    gives ``origin_z + range * tan(elevation)``, weighted by its variance ``(range * sigma * elevation_factor /
    cos^2)^2``; ``chi2``: their squared normalised spread about z, each
    bearing's share capped at :data:`MAX_Z_CHI2`. Without one: ``default_z`` (or the arrays' mean height) and an infinite sigma."""
    zs, ws = [], []
    for b in bearings:
        r = float(np.linalg.norm(point_xy - b.origin[:2]))
        h = float(np.linalg.norm(b.direction[:2]))
        if not b.elevation_known or h < MIN_HORIZONTAL:
            continue
        tan = float(b.direction[2]) / h
        zs.append(float(b.origin[2]) + r * tan)
        ws.append(1.0 / max((r * sigma_rad * b.elevation_factor * (1.0 + tan * tan)) ** 2, 1e-6))
    if not zs:
        z = default_z if default_z is not None else float(np.mean([b.origin[2] for b in bearings]))
        return z, math.inf, 0.0
    w, zs = np.array(ws), np.array(zs)
    z = float(np.dot(w, zs) / w.sum())
    return z, float(1.0 / math.sqrt(w.sum())), float(np.minimum(w * (zs - z) ** 2, MAX_Z_CHI2).sum())


def angular_miss_deg(bearing: Bearing, point: np.ndarray) -> float:
    """Floor-plane angle between ``bearing`` and the direction from its origin to ``point``, degrees
    (180 when the point is behind it)."""
    to = point[:2] - bearing.origin[:2]
    d = bearing.direction[:2]
    cos = float(to @ d) / max(np.linalg.norm(to) * np.linalg.norm(d), 1e-12)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))

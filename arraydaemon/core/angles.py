"""Angle arithmetic on plain floats (no numpy): light subscribers such as ``reason`` use it too.

Conventions (REP-103): azimuth in degrees counter-clockwise from +x, elevation in degrees up from
the x-y plane.
"""

from __future__ import annotations

import math


def wrap_azimuth(azimuth_deg: float) -> float:
    """``azimuth_deg`` wrapped to [-180, 180)."""
    return (azimuth_deg + 180.0) % 360.0 - 180.0


def azimuth_difference(a: float, b: float) -> float:
    """Absolute azimuth difference in degrees, in [0, 180]."""
    return abs(wrap_azimuth(a - b))


def unit_vector(azimuth_deg: float, elevation_deg: float = 0.0) -> tuple[float, float, float]:
    """The unit direction of (azimuth, elevation) in degrees."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))


def angle_between(a, b) -> float:
    """Great-circle angle in degrees between unit vectors ``a`` and ``b`` (3 floats each)."""
    dot = sum(x * y for x, y in zip(a, b))
    return math.degrees(math.acos(max(-1.0, min(1.0, dot))))

"""Geometry of the simulator: directions in the REP-103 array frame and shared input validators.

Azimuth in degrees counter-clockwise from +x in (-180, 180]; elevation in degrees up from the
x-y plane; x forward, y left, z up, metres.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["direction_vector", "vector_to_angles"]


def direction_vector(azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Unit vector pointing from the array towards a direction, in the REP-103 array frame.

    Returns float64 ``[shape=(3,)]``: ``(cos el cos az, cos el sin az, sin el)``.
    """
    az = math.radians(float(azimuth_deg))
    el = math.radians(float(elevation_deg))
    return np.array(
        [math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)], dtype=np.float64
    )


def vector_to_angles(vector: np.ndarray) -> tuple[float, float]:
    """Inverse of :func:`direction_vector` for any non-zero vector ``[shape=(3,)]``.

    Returns ``(azimuth_deg, elevation_deg)`` with azimuth in (-180, 180] and elevation in
    [-90, 90].
    """
    v = np.asarray(vector, dtype=np.float64).reshape(3)
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        raise ValueError("cannot take the direction of a zero vector")
    az = math.degrees(math.atan2(v[1], v[0]))
    if az <= -180.0:
        az += 360.0
    el = math.degrees(math.asin(max(-1.0, min(1.0, v[2] / norm))))
    return az, el


def as_mic_positions(mic_positions: np.ndarray) -> np.ndarray:
    mics = np.asarray(mic_positions, dtype=np.float64)
    if mics.ndim != 2 or mics.shape[1] != 3 or mics.shape[0] < 1:
        raise ValueError(f"mic_positions must have shape (mics, 3), got {mics.shape}")
    return mics


def as_signal(signal: np.ndarray, what: str) -> np.ndarray:
    sig = np.asarray(signal, dtype=np.float64)
    if sig.ndim != 1 or sig.shape[0] == 0:
        raise ValueError(f"{what} must be a non-empty 1-D signal, got shape {sig.shape}")
    return sig


def num_samples(duration_s: float, sample_rate: int) -> int:
    if duration_s <= 0 or sample_rate <= 0:
        raise ValueError("duration_s and sample_rate must be positive")
    return int(round(duration_s * sample_rate))

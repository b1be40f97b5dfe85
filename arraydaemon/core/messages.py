"""Messages passed between pipeline stages: frozen dataclasses carrying seq, capture time and rate.

Times: ``t_*`` are stream seconds (the capture clock of the source: PortAudio's ADC clock live, seconds
from the file's start in replay); ``wall_*`` are UNIX seconds of the same instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class AudioBlock:
    """A block of captured audio in mic order. ``samples [shape=(samples, mics)]`` float32."""

    seq: int
    sample_rate: int
    t_start: float  # stream time of the first sample
    wall_start: float  # wall time of the first sample
    samples: np.ndarray


@dataclass(frozen=True, eq=False)
class FeatureWindow:
    """One analysis window (≈250 ms) ending at ``t_end``: what every localizer consumes.

    ``spectra [shape=(frames, mics, bins)]`` complex64: the window's Hann-windowed STFT frames,
    oldest first. Localizers form the mic pairs' cross-spectra from them (summed over all frames,
    over masked frames and bins, or per time group), then PHAT-weight them (GCC-PHAT).
    """

    seq: int
    sample_rate: int
    t_end: float
    wall_time: float
    spectra: np.ndarray
    level_db: float  # in-band mean power of the window, dB re full scale
    bad_samples: bool = False  # the window overlaps a block of NaN/Inf input that was zeroed
    # [shape=(frames, bins)] bool: the bins that carry direct-path evidence (stages/evidence.py); None: all
    evidence: np.ndarray | None = None


@dataclass(frozen=True)
class SourceDirection:
    """One detected source: direction in the array frame (REP-103) and confidence in [0, 1]."""

    azimuth_deg: float
    elevation_deg: float
    vector: tuple[float, float, float]
    confidence: float


@dataclass(frozen=True, eq=False)
class Estimate:
    """A localizer's output for one window. ``spectrum [shape=(directions,)]`` over its grid."""

    seq: int
    sample_rate: int
    t_end: float
    wall_time: float
    estimator: str
    sources: tuple[SourceDirection, ...]
    level_db: float
    spectrum: np.ndarray | None = None
    embedding: np.ndarray | None = None
    extras: dict = field(default_factory=dict)
    # What the window alone shows (before the followed integrals refined ``sources``), for the tracker:
    # its measurements must not depend on its own predictions, or errors feed back. None: ``sources``.
    detections: tuple[SourceDirection, ...] | None = None

    @classmethod
    def of_window(cls, window: FeatureWindow, estimator: str, sources, spectrum=None, **extra) -> "Estimate":
        """An estimate stamped with ``window``'s sequence number, times and level."""
        return cls(seq=window.seq, sample_rate=window.sample_rate, t_end=window.t_end, wall_time=window.wall_time,
                   estimator=estimator, sources=tuple(sources), level_db=window.level_db, spectrum=spectrum, **extra)


@dataclass(frozen=True)
class Track:
    """One tracked source (see ``tracker.py``): a stable id and the filtered direction."""

    id: int  # from 1, never reused
    azimuth_deg: float
    elevation_deg: float
    vector: tuple[float, float, float]  # unit direction, array frame
    activity: float  # probability that the source is emitting now, in [0, 1]
    age_s: float  # since the track's first detection
    silent_s: float  # since its last detection
    angular_speed_dps: float  # great-circle speed, degrees per second
    azimuth_rate_dps: float  # d(azimuth)/dt, degrees per second (counter-clockwise positive)
    level_db: float  # smoothed in-band level of the windows it was detected in, dB re full scale


@dataclass(frozen=True)
class Tracks:
    """The tracker's output for one window: confirmed tracks, lowest id first."""

    seq: int
    sample_rate: int
    t_end: float
    wall_time: float
    tracks: tuple[Track, ...]

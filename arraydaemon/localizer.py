"""Localizer stage (SRP-PHAT): FeatureWindow → Estimate.

The steered response power of the window's GCC-PHAT spectra is evaluated on a run-time direction
grid (frequency-domain steering, so delays are exact fractions of a sample), peaks are picked with a
minimum separation, and each peak is refined below the grid spacing by a local search. Confidence is
the SRP value at the peak: the mean phase agreement across mic pairs and band bins, in [0, 1].

The activity gate publishes an empty source list when the window is too quiet or no direction
stands out (diffuse or sensor noise gives SRP values ≲ 0.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import grids, kernels
from .features import FrameLayout
from .messages import Estimate, FeatureWindow, SourceDirection
from .profiles import ArrayProfile


@dataclass(frozen=True)
class LocalizerConfig:
    resolution_deg: float = 1.0
    sphere_points: int = 2000
    max_sources: int = 1
    min_separation_deg: float = 25.0
    min_confidence: float = 0.12  # absolute SRP gate for any source
    relative_threshold: float = 0.5  # secondary peaks must reach this fraction of the first
    min_level_db: float = -75.0  # windows quieter than this are inactive


def pick_peaks(spectrum: np.ndarray, vectors: np.ndarray, max_peaks: int, min_separation_deg: float,
               threshold: float, relative_threshold: float) -> list[int]:
    """Greedy peak picking on a grid spectrum ``[shape=(directions,)]`` over ``vectors``.

    Each pick is the grid maximum among directions at least ``min_separation_deg`` from earlier
    picks, and must be a local maximum (no higher direction within half the separation), above
    ``threshold`` and above ``relative_threshold`` × the first pick.
    """
    peaks: list[int] = []
    cos_sep = np.cos(np.radians(min_separation_deg))
    cos_local = np.cos(np.radians(min_separation_deg / 2))
    available = np.ones(len(spectrum), dtype=bool)
    while len(peaks) < max_peaks and available.any():
        idx = int(np.argmax(np.where(available, spectrum, -np.inf)))
        value = spectrum[idx]
        if value < threshold or (peaks and value < relative_threshold * spectrum[peaks[0]]):
            break
        cos_to = vectors @ vectors[idx]
        available &= cos_to < cos_sep
        if np.any(spectrum[cos_to >= cos_local] > value):
            continue  # on the flank of a stronger, already-suppressed peak
        peaks.append(idx)
    return peaks


class SrpPhatLocalizer:
    """Stage: FeatureWindow → Estimate with up to ``max_sources`` directions."""

    name = "srp-phat"

    def __init__(self, profile: ArrayProfile, layout: FrameLayout, config: LocalizerConfig = LocalizerConfig()):
        self.profile = profile
        self.layout = layout
        self.config = config
        self.geometry = profile.geometry
        self.grid = grids.make_grid(self.geometry, config.resolution_deg, config.sphere_points)
        self._rel = profile.relative_mics
        self._tdoa = self._tdoa_of(self.grid.vectors)
        # Refinement patches (degrees along azimuth/elevation), coarse to fine.
        step = self.grid.spacing_deg / 2
        offsets = np.arange(-2, 3, dtype=np.float64)
        if self.grid.kind == "ring":
            az_off, el_off = np.meshgrid(np.arange(-15.0, 16.0, 3.0), np.arange(0.0, 81.0, 10.0))
            self._planar_scan = np.stack([az_off.ravel(), el_off.ravel()], axis=1)
            step = 2.5
        if self.grid.kind == "half-ring":
            self._patches = [np.stack([offsets * s, np.zeros(5)], axis=1) for s in (step, step / 4, step / 16, step / 64)]
        else:
            mesh = np.stack(np.meshgrid(offsets, offsets), axis=-1).reshape(-1, 2)
            self._patches = [mesh * s for s in (step, step / 4, step / 16, step / 64)]

    def reset(self) -> None:
        pass  # stateless: every window is localized on its own

    def _tdoa_of(self, vectors: np.ndarray) -> np.ndarray:
        return grids.tdoa_table(vectors, self._rel, self.profile.speed_of_sound)

    def _srp(self, gcc: np.ndarray, vectors: np.ndarray, tdoa: np.ndarray | None = None) -> np.ndarray:
        if tdoa is None:
            tdoa = self._tdoa_of(vectors)
        return kernels.srp_phat(gcc, self.layout.band, self.layout.bin_hz, tdoa, self.profile.reference_mic)

    def spatial_spectrum(self, window: FeatureWindow) -> np.ndarray:
        """SRP-PHAT over the grid, ``[shape=(directions,)]`` float32."""
        return self._srp(window.gcc, self.grid.vectors, self._tdoa)

    def refine(self, gcc: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, float]:
        """Local search from grid direction ``start`` below the grid spacing; (vector, SRP)."""
        return self.refine_with(lambda vectors: self._srp(gcc, vectors), start)

    def refine_with(self, score, start: np.ndarray) -> tuple[np.ndarray, float]:
        """Local search maximizing ``score(vectors [shape=(n, 3)]) -> [shape=(n,)]`` from ``start``."""
        best = start
        if self.grid.kind == "ring":
            # A planar array sees the out-of-plane angle only through the shrinking in-plane delays,
            # and the in-plane peak of an elevated source is biased: scan a coarse (azimuth,
            # elevation) patch around the ring peak before the fine local search.
            scan = grids.tangent_patch(start, self._planar_scan, up=self.grid.normal)
            best = scan[int(np.argmax(score(scan)))]
        value = -np.inf
        for patch in self._patches:
            cand = grids.fold(grids.tangent_patch(best, patch), self.geometry)
            values = score(cand)
            i = int(np.argmax(values))
            best, value = cand[i], float(values[i])
        return best, value

    def process(self, window: FeatureWindow) -> Estimate:
        cfg = self.config
        spectrum = self.spatial_spectrum(window)
        sources: list[SourceDirection] = []
        if window.level_db >= cfg.min_level_db:
            peaks = pick_peaks(spectrum, self.grid.vectors, cfg.max_sources, cfg.min_separation_deg,
                               cfg.min_confidence, cfg.relative_threshold)
            for idx in peaks:
                vec, value = self.refine(window.gcc, self.grid.vectors[idx])
                sources.append(make_source(vec, value))
        return Estimate(
            seq=window.seq,
            sample_rate=window.sample_rate,
            t_end=window.t_end,
            wall_time=window.wall_time,
            estimator=self.name,
            sources=tuple(sources),
            level_db=window.level_db,
            spectrum=spectrum,
        )


def make_source(vector: np.ndarray, confidence: float) -> SourceDirection:
    """A SourceDirection from a unit vector; confidence clipped to [0, 1]."""
    v = np.asarray(vector, dtype=np.float64)
    v = v / np.linalg.norm(v)
    az, el = grids.vector_to_azel(v)
    return SourceDirection(
        azimuth_deg=float(az),
        elevation_deg=float(el),
        vector=(float(v[0]), float(v[1]), float(v[2])),
        confidence=float(min(1.0, max(0.0, confidence))),
    )

"""The SRP-PHAT estimator: FeatureWindow → Estimate.

The steered response power of the window's GCC-PHAT spectra is scanned over a run-time direction
grid (:class:`~arraydaemon.localizers.scan.SrpScan`), the best direction is refined below the grid
spacing by a local search on the exact SRP (:class:`~arraydaemon.localizers.refine.Refiner`), and
further sources are searched after masking the time-frequency bins the ones found explain.
Confidence is the SRP value at the peak: the mean phase agreement across mic pairs and band bins,
in [-1, 1] (clipped to [0, 1]).

The activity gate publishes an empty source list when the window is too quiet or no direction
stands out (sensor noise gives SRP values ≲ 0.1; diffuse noise: see "Prominence" in ``scan.py``).

Several sources: speech mixtures are sparse in time-frequency, so after each peak the STFT bins
that agree with it (mean pair phase agreement ≥ ``mask_agreement``) are removed and the SRP of the
remaining bins is searched for the next source, away from the ones found. A secondary source must
reach ``min_confidence`` and ``relative_threshold`` × the first source's SRP on that residual (its
confidence is that residual SRP). Secondary peaks of the plain SRP, by contrast, are mostly
sidelobes and reflections of the first. The searches are skipped when too few time-frequency bins
remain to reach their thresholds.

Temporal integration (``integration_s`` > 0, ``integration.py``): the first source is searched in the
integrated pair cross-spectra; whether a source is active is decided on the window alone, and
further sources are searched in the window alone. The tracker is given the window's own sources
(``Estimate.detections``): the integral lags a walking talker, and the tracker smooths by itself.
"""

from __future__ import annotations

import numpy as np

from arraydaemon.core import kernels
from arraydaemon.core.grids import pick_peaks, source_direction
from arraydaemon.core.messages import Estimate, FeatureWindow, SourceDirection
from arraydaemon.core.options import LocalizerConfig
from arraydaemon.core.profiles import ArrayProfile
from arraydaemon.localizers.integration import CrossSpectrumIntegral, WindowDecay
from arraydaemon.localizers.refine import Refiner
from arraydaemon.localizers.scan import SrpScan
from arraydaemon.stages.features import FrameLayout


class SrpPhatLocalizer:
    """Stage: FeatureWindow → Estimate with up to ``max_sources`` directions (see the module doc)."""

    name = "srp-phat"

    def __init__(self, profile: ArrayProfile, layout: FrameLayout, config: LocalizerConfig = LocalizerConfig()):
        self.profile = profile
        self.layout = layout
        self.config = config
        self.scan = SrpScan(profile, layout, config)
        self.grid = self.scan.grid
        self.refiner = Refiner(self.scan)
        self.decay = WindowDecay(config.integration_s)
        self.integral = CrossSpectrumIntegral(config.integration_s)

    def reset(self) -> None:
        self.decay.reset()
        self.integral.reset()

    def process(self, window: FeatureWindow) -> Estimate:
        cfg, scan = self.config, self.scan
        sums = scan.pair_sum(window.spectra)
        gcc, lags = scan.lags(sums)
        values = scan.scan(lags)
        peak = scan.gated_peak(values, cfg) if window.level_db >= cfg.min_level_db else None
        detections = None
        if cfg.integration_s > 0.0:
            # The tracker measures the window alone (the integral lags a walking talker; the tracker
            # smooths and follows motion itself); the integral places the published sources.
            detections = tuple(self._sources(window, gcc, peak))
            # Whether: this window's gates (an integrated diffuse field converges to its coherence,
            # whose fixed phases make a steadier peak than any one window shows). Where: the integral.
            gcc, lags = scan.lags(self.integral.add(sums, self.decay.step(window.t_end)))
            values = scan.scan(lags)
            if peak is not None:
                peak = int(np.argmax(values))
        spectrum = values[:len(self.grid)].copy()
        return Estimate.of_window(window, self.name, self._sources(window, gcc, peak), spectrum, detections=detections)

    def _sources(self, window: FeatureWindow, gcc: np.ndarray, peak: int | None) -> list[SourceDirection]:
        """The first source at scan point ``peak`` refined on pair spectra ``gcc``, then the window's further ones."""
        sources: list[SourceDirection] = []
        if peak is not None:
            vec, value = self.refiner.exact(gcc, self.scan.points[peak])
            sources.append(source_direction(vec, value))
            if self.config.max_sources > 1:
                sources.extend(self._secondary_sources(window, vec, value))
        return sources

    def _secondary_sources(self, window: FeatureWindow, first: np.ndarray, first_value: float) -> list[SourceDirection]:
        """Further sources after ``first``: masks the STFT bins each found source explains and
        searches the SRP of the rest."""
        cfg, scan, lay = self.config, self.scan, self.layout
        keep = np.ones((window.spectra.shape[0], lay.bins), dtype=bool)
        vectors = scan.points
        cos_sep = np.cos(np.radians(cfg.min_separation_deg))
        near = np.zeros(len(vectors), dtype=bool)
        found, out = [first], []
        while len(found) < cfg.max_sources:
            near |= scan.separation_cos_to_points(found[-1]) >= cos_sep
            agreement = kernels.phase_agreement(window.spectra, scan.pair_i, scan.pair_j,
                                                scan.mic_tdoa(found[-1][None])[0], lay.band, lay.bin_hz)
            keep &= agreement < cfg.mask_agreement
            # A bin masked in every frame has G = 0, and the SRP is a mean over band bins of terms
            # |.| <= 1: the residual cannot reach the thresholds unless enough bins are left.
            left = float(np.mean(keep[:, lay.band[0]:lay.band[1]].any(axis=0)))
            if left < max(cfg.min_confidence, cfg.relative_threshold * first_value, 1e-9):
                break
            gcc, lags = scan.lags(scan.pair_sum(window.spectra, keep))
            values = scan.scan(lags)
            masked = np.where(near, -np.inf, values)
            peaks = pick_peaks(masked, vectors, 1, cfg.min_separation_deg, cfg.min_confidence, 0.0)
            if (not peaks or values[peaks[0]] < cfg.relative_threshold * first_value
                    or scan.prominence(values, peaks[0]) < cfg.min_prominence):
                break
            vec, value = self.refiner.exact(gcc, vectors[peaks[0]])
            if any(scan.separation_cos(vec[None], f)[0] >= cos_sep for f in found):
                break  # the refinement slid back onto a source already found
            out.append(source_direction(vec, value))
            found.append(vec)
        return out

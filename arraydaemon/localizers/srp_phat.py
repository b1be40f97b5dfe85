"""The SRP-PHAT estimator: FeatureWindow → Estimate.

The steered response power of the window's GCC-PHAT spectra is scanned over a run-time direction
grid (:class:`~arraydaemon.localizers.scan.SrpScan`), the best direction is refined below the grid
spacing by a local search on the exact SRP (:class:`~arraydaemon.localizers.refine.Refiner`), and
further sources are searched after masking the time-frequency bins the ones found explain.
Confidence is the SRP value at the peak: the mean phase agreement across mic pairs and band bins,
in [-1, 1] (clipped to [0, 1]).

The activity gate publishes an empty source list when the window is too quiet or no direction
stands out (sensor noise gives SRP values ≲ 0.1; diffuse noise: see "Prominence" in ``scan.py``).

Several sources (``further.py``): the time-frequency bins the sources found explain are masked and
the SRP of the rest is searched again; a further source's confidence is that residual SRP.

Two answers per window. The tracker's *detections* (``Estimate.detections``) are the window alone,
its evidence bins only (``FeatureWindow.evidence``: above the stationary noise floor and not
decaying, ``stages/evidence.py``), so a robot's fan and a talker's reflections form fewer peaks and
the tracker follows walkers without lag. The *published* sources place the first source from every
bin, integrated over past windows (``integration_s`` > 0, ``integration.py``): whether a source is
active is decided on the window alone, where it is by the integral, which is steadier for a still
talker; further published sources are the further detections.
"""

from __future__ import annotations

import numpy as np

from arraydaemon.core.grids import source_direction
from arraydaemon.core.messages import Estimate, FeatureWindow, SourceDirection
from arraydaemon.core.options import LocalizerConfig
from arraydaemon.core.profiles import ArrayProfile
from arraydaemon.localizers.further import FurtherSources
from arraydaemon.localizers.integration import CrossSpectrumIntegral, WindowDecay
from arraydaemon.localizers.refine import Refiner
from arraydaemon.localizers.scan import SrpScan
from arraydaemon.stages.features import FrameLayout


class SrpPhatLocalizer:
    """Stage: FeatureWindow → Estimate with up to ``max_sources`` directions (see the module doc)."""

    name = "srp-phat"

    def __init__(self, profile: ArrayProfile, layout: FrameLayout, config: LocalizerConfig = LocalizerConfig(),
                 noise=None):
        self.profile = profile
        self.layout = layout
        self.config = config
        self.scan = SrpScan(profile, layout, config, noise)
        self.grid = self.scan.grid
        self.refiner = Refiner(self.scan)
        self.further = FurtherSources(self.scan, self.refiner, config)
        self.decay = WindowDecay(config.integration_s)
        self.integral = CrossSpectrumIntegral(config.integration_s)

    def reset(self) -> None:
        self.decay.reset()
        self.integral.reset()
        self.further.reset()

    def process(self, window: FeatureWindow) -> Estimate:
        cfg, scan = self.config, self.scan
        loud = window.level_db >= cfg.min_level_db
        # Detections, the tracker's measurements: this window alone, its evidence bins only.
        sums = scan.pair_sum(window.spectra, window.evidence)
        gcc, lags = scan.lags(sums)
        values = scan.scan(lags)
        detections = self._sources(window, gcc, scan.gated_peak(values, cfg) if loud else None)
        if cfg.integration_s <= 0.0 and window.evidence is None:
            return Estimate.of_window(window, self.name, detections, values[:len(self.grid)].copy(),
                                      extras={"room_dry": self.further.room.dryness()})
        # Published sources: the first from every bin, integrated over past windows (the integral
        # lags a walker, so the tracker does not measure it); further ones are the window's.
        if window.evidence is not None:  # else the detections' sums were already of every bin
            sums = scan.pair_sum(window.spectra)
            gcc, lags = scan.lags(sums)
            values = scan.scan(lags)
        # Whether: this window's gates (an integrated diffuse field converges to its coherence, whose
        # fixed phases make a steadier peak than any one window shows). Where: the integral.
        peak = scan.gated_peak(values, cfg) if loud else None
        if cfg.integration_s > 0.0:
            gcc, lags = scan.lags(self.integral.add(sums, self.decay.step(window.t_end)))
            values = scan.scan(lags)
            if peak is not None:
                peak = int(np.argmax(values))
        sources: list[SourceDirection] = []
        if peak is not None:
            vec, value = self.refiner.exact(gcc, scan.points[peak])
            sources = self.further.after_first(source_direction(vec, value), detections)
        return Estimate.of_window(window, self.name, sources, values[:len(self.grid)].copy(),
                                  detections=tuple(detections), extras={"room_dry": self.further.room.dryness()})

    def _sources(self, window: FeatureWindow, gcc: np.ndarray, peak: int | None) -> list[SourceDirection]:
        """The first source at scan point ``peak`` refined on pair spectra ``gcc``, then the window's further ones."""
        sources: list[SourceDirection] = []
        if peak is not None:
            vec, value = self.refiner.exact(gcc, self.scan.points[peak])
            sources.append(source_direction(vec, value))
            if self.config.max_sources > 1:
                sources.extend(self.further.search(window, vec, value))
        return sources

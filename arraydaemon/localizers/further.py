"""Further sources after the first: a part both estimators compose.

Speech mixtures are sparse in time-frequency, so after each source found the STFT bins that agree
with it (mean pair phase agreement ≥ ``mask_agreement``) are removed and the SRP of the remaining
bins is searched for the next source, away from the ones found. A further source must reach
``min_confidence``, ``relative_threshold`` × the first source's SRP on that residual, and the
prominence gate; in a dry room the relative gate comes down (``room.py``: how coherently the first
source arrives says how strong its reflections can be). Secondary peaks of the plain SRP (or of a learned spectrum), by contrast, are mostly
sidelobes and reflections of the first. The search stops early when too few time-frequency bins
remain to reach the thresholds.
"""

from __future__ import annotations

import numpy as np

from arraydaemon.core import kernels
from arraydaemon.core.grids import pick_peaks, source_direction
from arraydaemon.core.messages import FeatureWindow, SourceDirection
from arraydaemon.core.options import LocalizerConfig
from arraydaemon.localizers.refine import Refiner
from arraydaemon.localizers.room import RoomCoherence
from arraydaemon.localizers.scan import SrpScan


class FurtherSources:
    """Masked SRP search for the sources after the first (see the module doc)."""

    def __init__(self, scan: SrpScan, refiner: Refiner, config: LocalizerConfig):
        self.scan = scan
        self.refiner = refiner
        self.config = config
        self.room = RoomCoherence(config)

    def reset(self) -> None:
        self.room.reset()

    def after_first(self, first: SourceDirection, detections) -> list[SourceDirection]:
        """``first`` (placed by another spectrum, e.g. an integral), then the window's further
        ``detections`` (those after the detections' own first) not within ``min_separation_deg`` of it;
        at most ``max_sources``."""
        vec = np.asarray(first.vector)
        cos_sep = np.cos(np.radians(self.config.min_separation_deg))
        further = [d for d in detections[1:] if self.scan.separation_cos(np.asarray(d.vector)[None], vec)[0] < cos_sep]
        return ([first] + further)[:self.config.max_sources]

    def first_only(self, first_value: float) -> None:
        """A window whose further sources are not searched: its first source's SRP still tells the room."""
        self.room.add(first_value)

    def search(self, window: FeatureWindow, first: np.ndarray, first_value: float) -> list[SourceDirection]:
        """Further sources after ``first [shape=(3,)]`` (whose SRP is ``first_value``): masks the STFT
        bins each found source explains and searches the SRP of the rest."""
        cfg, scan, lay = self.config, self.scan, self.scan.layout
        self.room.add(first_value)
        relative = self.room.relative_threshold()
        keep = np.ones((window.spectra.shape[0], lay.bins), dtype=bool) if window.evidence is None \
            else window.evidence.copy()
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
            if left < max(cfg.min_confidence, relative * first_value, 1e-9):
                break
            gcc, lags = scan.lags(scan.pair_sum(window.spectra, keep))
            values = scan.scan(lags)
            masked = np.where(near, -np.inf, values)
            peaks = pick_peaks(masked, vectors, 1, cfg.min_separation_deg, cfg.min_confidence, 0.0)
            if (not peaks or values[peaks[0]] < relative * first_value
                    or scan.prominence(values, peaks[0]) < cfg.min_prominence):
                break
            vec, value = self.refiner.exact(gcc, vectors[peaks[0]])
            if any(scan.separation_cos(vec[None], f)[0] >= cos_sep for f in found):
                break  # the refinement slid back onto a source already found
            out.append(source_direction(vec, value))
            found.append(vec)
        return out

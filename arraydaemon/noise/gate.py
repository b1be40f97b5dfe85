"""Stage: the robot's own noise is never a talker. Estimate → Estimate, between localizer and tracker.

Where the noise is: the peak of the SRP-PHAT of its spatial covariance (the pair elements of the
covariance, PHAT-weighted, scanned like a window's cross-spectra), if that peak passes the
localizer's gates (a directional noise; a diffuse one has none). From a noise model (``model``),
fixed; without one, from the online noise field (``stages/noise_field.py``) once it holds a
directional noise in at least ``MIN_ACTIVE_SHARE`` of the band's bins, updated every
``ONLINE_EVERY`` windows.

What it does: drops every published source and every tracker detection within ``exclusion_deg``
of a noise direction (in the array plane for planar arrays), and puts the noise directions in
``Estimate.extras["noise"]`` as ``(vector, origin)`` pairs, which the ``doa`` topic publishes as
its ``noise`` field. A detection near the noise is kept when a detection kept in the last ``CHAIN_S`` lies within
``CHAIN_DEG`` of it: a talker walking past the noise is followed through it, while the noise's own
detections, which never arrive from outside, are not. "Outside" is farther: a chain starts only at
a detection at least ``CHAIN_ORIGIN_DEG`` from the noise and passes on through kept detections within
``CHAIN_DEG`` of each other; the noise's own detections, scattered a few degrees beyond
``exclusion_deg`` (a near-field or 3-D view of it, a room that reverberates it unlike the
installation's), are kept but start no chain, so the detections on the noise that follow them are
still dropped (chained from any kept detection, one such stray detection let the noise's through
for good). A talker who starts to speak where the fan
is is not heard until he moves: the fan's cells are his as much as the fan's, and the tracker
would otherwise hold a track on the fan for ever.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from arraydaemon.core.messages import Estimate

EXCLUSION_DEG = 8.0
CHAIN_S = 0.3  # a detection near the noise is kept when one this recent, ...
CHAIN_DEG = 10.0  # ... this close, was kept: a talker walking past the noise
CHAIN_ORIGIN_DEG = 20.0  # ... on a chain that started this far from the noise

MIN_ACTIVE_SHARE = 0.25
ONLINE_EVERY = 3


def covariance_direction(scan, covariance: np.ndarray, band: tuple[int, int], config) -> np.ndarray | None:
    """The unit direction ``[shape=(3,)]`` of the SRP-PHAT peak of the band bins' covariances
    ``[shape=(band bins, mics, mics)]`` (``C[m, n] = E x_m conj(x_n)``), or None when it fails the
    localizer's gates (``scan.gated_peak``)."""
    lo, hi = band
    sums = np.zeros((len(scan.pair_i), scan.layout.bins), dtype=np.complex64)
    sums[:, lo:hi] = covariance[:, scan.pair_j, scan.pair_i].T
    _, lags = scan.lags(sums)
    values = scan.scan(lags)
    peak = scan.gated_peak(values, config)
    return None if peak is None else np.asarray(scan.points[peak], dtype=np.float64)


class NoiseGate:
    """See the module doc. ``model_covariance [shape=(bins, mics, mics)]`` or None; ``field``: the
    features stage's online noise field, or None."""

    name = "noise-gate"

    def __init__(self, scan, config, model_covariance: np.ndarray | None = None, field=None,
                 exclusion_deg: float | None = None):
        self.scan = scan
        self.config = config
        self.field = field if model_covariance is None else None
        self.cos_limit = float(np.cos(np.radians(EXCLUSION_DEG if exclusion_deg is None else exclusion_deg)))
        self._chain_cos = float(np.cos(np.radians(CHAIN_DEG)))
        self._origin_cos = float(np.cos(np.radians(CHAIN_ORIGIN_DEG)))
        band = scan.layout.band
        self.fixed: list[tuple[np.ndarray, str]] = []
        if model_covariance is not None:
            direction = covariance_direction(scan, np.asarray(model_covariance)[band[0]:band[1]], band, config)
            if direction is not None:
                self.fixed.append((direction, "model"))
        self.reset()

    def reset(self) -> None:
        self.online: list[tuple[np.ndarray, str]] = []
        self._windows = 0
        # (t_end, vector) of recently kept detections on a chain from outside (CHAIN_ORIGIN_DEG)
        self._kept: list[tuple[float, np.ndarray]] = []

    @property
    def directions(self) -> list[tuple[np.ndarray, str]]:
        """The noise directions now, ``(unit vector [shape=(3,)], origin "model" | "online")``."""
        return self.fixed + self.online

    def _update_online(self) -> None:
        cov, active = self.field.noise_covariance()
        self.online = []
        if active.mean() >= MIN_ACTIVE_SHARE:
            direction = covariance_direction(self.scan, np.where(active[:, None, None], cov, 0), self.field.band,
                                             self.config)
            if direction is not None:
                self.online = [(direction, "online")]

    def _noise_cos(self, vector: np.ndarray) -> float:
        """The cosine of the angle from ``vector`` to the nearest noise direction."""
        return max(float(self.scan.separation_cos(vector[None], d)[0]) for d, _ in self.directions)

    def process(self, estimate: Estimate) -> Estimate:
        if self.field is not None:
            if self._windows % ONLINE_EVERY == 0:
                self._update_online()
            self._windows += 1
        if not self.directions:
            return estimate
        t = estimate.t_end
        self._kept = [(tk, v) for tk, v in self._kept if t - tk <= CHAIN_S + 1e-9]
        chain = [v for _, v in self._kept]

        chains = []  # kept sources of this window on a chain from outside

        def keep(source) -> bool:
            vector = np.asarray(source.vector, dtype=np.float64)
            cos = self._noise_cos(vector)
            chained = cos < self._origin_cos or any(float(vector @ v) >= self._chain_cos for v in chain)
            if chained:
                chains.append(vector)
            return chained or cos < self.cos_limit

        sources = tuple(s for s in estimate.sources if keep(s))
        self._kept += [(t, v) for v in chains]
        # the tracker's detections are all passed on, those near the noise marked: only a track that
        # came from outside may take them (stages/tracker.py), which follows a walker by his motion
        detections = estimate.sources if estimate.detections is None else estimate.detections
        near = tuple(self._noise_cos(np.asarray(s.vector, dtype=np.float64)) >= self.cos_limit for s in detections)
        extras = {**estimate.extras, "noise": self.directions, "noise_near": near}
        return replace(estimate, sources=sources, detections=detections, extras=extras)

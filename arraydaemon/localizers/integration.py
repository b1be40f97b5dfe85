"""Temporal integration over past windows: a part both estimators compose.

With a time constant tau > 0, a localizer searches its first source in the pair cross-spectra summed
over the window's frames *plus* the integrated sums of earlier windows decayed by ``exp(-dt / tau)``,
before PHAT whitening. Unwhitened sums weight loud frames more, so a talker's direct path adds up
over windows while reverberation and noise, which change from window to window, do not; silence
contributes little. Activity decisions stay per window. Causal; ``reset`` forgets the past, and a
window whose time does not advance (a new stream) starts afresh. tau = 0 means no integration and
no integration work: every integral returns its input as it is.
"""

from __future__ import annotations

import math

import numpy as np


class WindowDecay:
    """The weight of the integrated past at each new window: ``exp(-dt / tau)`` for the time ``dt``
    since the previous window, 0 without integration or when time did not advance."""

    def __init__(self, tau_s: float):
        self.tau_s = tau_s
        self.reset()

    def reset(self) -> None:
        self._last_t_end: float | None = None

    def step(self, t_end: float) -> float:
        """The decay to apply at a window ending at ``t_end`` (stream seconds)."""
        last, self._last_t_end = self._last_t_end, t_end
        if self.tau_s <= 0.0 or last is None or not t_end > last:
            return 0.0
        return math.exp(-(t_end - last) / self.tau_s)


class CrossSpectrumIntegral:
    """Exponentially decayed sum of pair cross-spectra ``[shape=(pairs, bins)]`` complex64."""

    def __init__(self, tau_s: float):
        self.tau_s = tau_s
        self.reset()

    def reset(self) -> None:
        self._integrated: np.ndarray | None = None

    def add(self, sums: np.ndarray, decay: float) -> np.ndarray:
        """``sums`` plus the integral of the earlier windows' sums decayed by ``decay``."""
        if self.tau_s <= 0.0:
            return sums
        if decay > 0.0 and self._integrated is not None and self._integrated.shape == sums.shape:
            self._integrated *= np.float32(decay)
            self._integrated += sums
        else:
            self._integrated = np.array(sums, dtype=np.complex64)
        return self._integrated


class WeightedSpectrumAverage:
    """Exponentially decayed average of spectra ``[shape=(directions,)]``, each window weighted
    (the neural estimator weights its spectrum by its activity probability)."""

    def __init__(self, tau_s: float):
        self.tau_s = tau_s
        self.reset()

    def reset(self) -> None:
        self._sum: np.ndarray | None = None
        self._weight = 0.0

    def add(self, spectrum: np.ndarray, weight: float, decay: float) -> np.ndarray:
        """The average of ``spectrum`` and the earlier windows' (decayed by ``decay``)."""
        if self.tau_s <= 0.0:
            return spectrum
        if decay > 0.0 and self._sum is not None:
            self._sum = decay * self._sum + weight * spectrum
            self._weight = decay * self._weight + weight
        else:
            self._sum, self._weight = weight * spectrum, weight
        if self._weight < 1e-3:  # nothing active lately: this window's spectrum as it is
            return spectrum
        return self._sum / self._weight

"""How far below the strongest source a further source may go, from what the stream measures of the room.

A further source (``further.py``) must reach ``relative_threshold`` × the first source's SRP on the
masked residual. In a reverberant room that gate is what keeps a talker's strong reflections out;
in a dry room there are hardly any reflections to keep out, and the same gate keeps out a talker
6–10 dB quieter than another.

What tells the rooms apart is how coherently the strongest source arrives: the SRP-PHAT of a
window's first source is the mean phase agreement of its cells across mic pairs, near 1 when the
direct path dominates every cell and lower the more reverberant (and noisy) energy each cell holds
— the direct-to-reverberant ratio as the array hears it. :class:`RoomCoherence` keeps the first
source's SRP of the last ``WINDOWS`` windows that had one and takes a high percentile (the
windows where the strongest talker spoke alone, whose agreement is limited only by the room and
the noise); the relative gate then goes from ``relative_threshold`` (coherence at most
``dry_coherence[0]``) down to ``dry_relative_threshold`` (at least ``dry_coherence[1]``), linearly
between. Until ``MIN_WINDOWS`` windows have been seen the gate is ``relative_threshold``.

With a noise model the pair spectra keep only the cells above the robot's noise and a talker's SRP
is lower (``LocalizerConfig.noise_model_confidence``): the coherence reads as a reverberant room's
and the gate stays where it was chosen for robots.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from arraydaemon.core.options import LocalizerConfig

WINDOWS = 100  # 10 s at the default 0.1 s hop
MIN_WINDOWS = 5
PERCENTILE = 90.0


class RoomCoherence:
    """Streaming estimate of the strongest source's coherence, and the relative gate it implies."""

    def __init__(self, config: LocalizerConfig):
        self.config = config
        self.reset()

    def reset(self) -> None:
        self._values: deque[float] = deque(maxlen=WINDOWS)
        self._coherence: float | None = None  # the percentile of ``_values``, formed once per add

    def add(self, first_value: float) -> None:
        """The SRP of a window's first source (each window at most once)."""
        if np.isfinite(first_value):
            self._values.append(float(first_value))
            self._coherence = None if len(self._values) < MIN_WINDOWS else \
                float(np.percentile(np.fromiter(self._values, dtype=np.float64), PERCENTILE))

    @property
    def coherence(self) -> float | None:
        """The high percentile of the recent first-source SRPs, or None before ``MIN_WINDOWS``."""
        return self._coherence

    def dryness(self) -> float:
        """How dry the room reads, in [0, 1]: 0 at a coherence of at most ``dry_coherence[0]`` (or
        before ``MIN_WINDOWS``), 1 at ``dry_coherence[1]`` or more, linear between. The tracker
        confirms tracks sooner in a dry room (``Estimate.extras["room_dry"]``)."""
        c = self.coherence
        lo, hi = self.config.dry_coherence
        if c is None:
            return 0.0
        if hi <= lo:
            return float(c >= hi)
        return float(np.clip((c - lo) / (hi - lo), 0.0, 1.0))

    def relative_threshold(self) -> float:
        """The fraction of the first source's SRP a further source must reach now."""
        cfg = self.config
        if cfg.dry_relative_threshold >= cfg.relative_threshold:
            return cfg.relative_threshold
        return cfg.relative_threshold - self.dryness() * (cfg.relative_threshold - cfg.dry_relative_threshold)

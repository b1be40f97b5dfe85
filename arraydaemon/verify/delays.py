"""Per mic pair: the delays the recording shows against the largest the declared geometry allows.

A pair ``(i, j)`` of mics ``d`` metres apart can never hear a sound more than ``d / c`` apart. For
the channels the profile puts them on, the observed delays are the GCC-PHAT peaks of the active
windows that agree with the other pairs (inliers of the arrival-time fit, :mod:`.order`), so a
reflection fooling one pair in one window does not count. A talker walking around the array
brings each pair near its end-fire direction, where the delay is largest; the pair's *largest
observed delay* is the :data:`QUANTILE` quantile of ``|delay|`` over those windows. A pair whose
largest observed delay clearly exceeds what its declared distance allows is mis-described (wrong
positions or scale) or on the wrong channels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from arraydaemon.verify.coherence import CoherenceFit
from arraydaemon.verify.order import ArrivalTimes
from arraydaemon.verify.pairs import PairObservations

QUANTILE = 0.95
MIN_SAMPLES = 10
EXCESS_RATIO = 1.15  # observed may exceed allowed by this factor ...
EXCESS_SAMPLES = 0.5  # ... plus this many samples before the pair is flagged
HIST_BINS = 61


@dataclass
class PairReport:
    """One declared mic pair: its channels, distance, the delays allowed and observed (None when
    too few windows showed it clearly), the diffuse-noise distance (None when not measured), the
    histogram of its inlier delays ``hist [shape=(bins,)]`` over ``edges_s [shape=(bins+1,)]``, and
    its measured coherence ``coherence [shape=(freqs,)]`` (real part) with the fitted model."""

    mics: tuple[int, int]
    channels: tuple[int, int]
    declared_m: float
    allowed_delay_s: float
    max_observed_delay_s: float | None = None
    coherence_distance_m: float | None = None
    samples: int = 0
    problems: list[str] = field(default_factory=list)
    hist: np.ndarray | None = None
    edges_s: np.ndarray | None = None
    coherence: np.ndarray | None = None
    coherence_model: np.ndarray | None = None


def pair_reports(obs: PairObservations, times: ArrivalTimes, mics: np.ndarray, channel_cols: dict[int, int],
                 speed: float, coherence: CoherenceFit | None = None) -> list[PairReport]:
    """:class:`PairReport` of every pair of mics ``mics [shape=(M, 3)]`` whose channels were
    analysed; ``channel_cols`` maps a mic to its column in ``obs``; ``coherence`` is the
    diffuse-noise fit of ``obs``'s pairs (same order)."""
    rows = obs.pair_index()
    fs = obs.layout.sample_rate
    reach = float(np.max(np.abs(obs.layout.lags_s)))
    edges = np.linspace(-reach, reach, HIST_BINS + 1)
    good = times.weight > 0.05
    out = []
    m = len(mics)
    for i in range(m):
        for j in range(i + 1, m):
            d = float(np.linalg.norm(mics[j] - mics[i]))
            rep = PairReport((i, j), (-1, -1), d, d / speed)
            if i not in channel_cols or j not in channel_cols:
                out.append(rep)
                continue
            a, b = channel_cols[i], channel_cols[j]
            rep.channels = (int(obs.channels[a]), int(obs.channels[b]))
            p = rows[a, b]
            sign = 1.0 if a < b else -1.0
            use = good & times.inlier[:, p]
            delays = sign * times.peak_delay[use, p]
            rep.samples = int(use.sum())
            rep.hist = np.histogram(delays, edges, weights=times.weight[use])[0] if len(delays) else np.zeros(HIST_BINS)
            rep.edges_s = edges
            if rep.samples >= MIN_SAMPLES:
                rep.max_observed_delay_s = float(np.quantile(np.abs(delays), QUANTILE))
                if rep.max_observed_delay_s > EXCESS_RATIO * rep.allowed_delay_s + EXCESS_SAMPLES / fs:
                    rep.problems.append("exceeds")
            if coherence is not None and coherence.real.shape[0] > p:
                rep.coherence = coherence.real[p]
                if np.isfinite(coherence.distance[p]):
                    rep.coherence_distance_m = float(coherence.distance[p])
                    rep.coherence_model = coherence.model(p, speed)
            out.append(rep)
    return out

"""Per-channel checks: level, dead, clipped, DC offset, gain mismatch, inverted polarity, and a
channel that carries another's signal (duplicated in software, or two inputs shorted).

Two passes. :func:`signal_stats` needs only the samples: level, DC, clipping, and channels that are
silent or constant (dead). :func:`pair_checks` then uses the GCC-PHAT of the live channels'
pairs (:mod:`.pairs`): a mic that hears nothing the others hear is dead too (a broken capsule
delivering only its own noise); a pair whose GCC is a perfect peak at lag 0 in every window is a
duplicate; and a channel whose GCC with the others peaks *negative* is inverted. Polarity is
solved jointly: each pair votes ``+1`` or ``-1`` for the product of its channels' signs, and the
signs that agree with the most votes (all 2^(C-1) for up to 16 channels) are chosen, the majority
of the mics taken as upright.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PROBLEMS = ("dead", "clipped", "dc", "gain", "polarity", "duplicate")
SILENT_DBFS = -90.0  # RMS below this (after removing DC): the channel carries nothing
DEAD_BELOW_DB = 30.0  # in-band level this far below the median mic: dead
GAIN_DB = 6.0  # in-band level this far from the median mic: gain mismatch
DC_FS = 0.01  # |mean| above this fraction of full scale (or above the AC RMS): DC offset
CLIP_LEVEL = 0.9995  # of the channel's peak, itself near full scale or flat-topped
CLIP_MIN_SAMPLES = 50
DUPLICATE_GCC = 0.97  # a window's GCC peak at lag 0 this high ...
DUPLICATE_SHARE = 0.9  # ... in this share of the windows, and a waveform correlation of
DUPLICATE_CORR = 0.99
POLARITY_MIN = 0.3  # |mean vote| a pair needs to count
DEAF_GCC = 0.08  # a mic whose best pair's median GCC peak is below this ...
DEAF_RATIO = 0.4  # ... or below this fraction of the other mics' median hears nothing the others hear,
HEARING_GCC = 0.2  # ... while the other mics' best pairs are above this


@dataclass
class ChannelReport:
    """One device channel: ``mic`` is the mic the profile puts on it (None: unused)."""

    channel: int
    mic: int | None
    level_db: float  # RMS of the whole recording, DC removed, dB re full scale
    inband_db: float  # in the analysis band (200-7000 Hz), dB re full scale
    dc: float  # mean, fraction of full scale
    peak: float
    clipped_samples: int
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, problem: str, note: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)
        self.notes.append(note)


def _db(x) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(np.asarray(x, dtype=np.float64), 1e-30))


def _clipped(x: np.ndarray, peak: float) -> int:
    """Samples at the channel's peak magnitude when the peak looks like a limit (full scale, or
    flat tops: runs of equal extreme samples that a band-limited signal does not produce)."""
    if peak < 0.05:
        return 0
    at = np.abs(x) >= CLIP_LEVEL * peak
    n = int(at.sum())
    if peak >= 0.99:
        return n
    runs = int(np.sum(at[1:] & at[:-1]))  # consecutive samples at the peak
    return n if runs >= CLIP_MIN_SAMPLES // 2 else 0


def signal_stats(samples: np.ndarray, device_channels: np.ndarray, channel_map: tuple[int, ...],
                 inband_power: np.ndarray) -> list[ChannelReport]:
    """Level, DC, clipping and silence of every channel of ``samples [shape=(samples, channels)]``;
    ``inband_power [shape=(channels,)]`` is the mean-square level in the analysis band."""
    mic_of = {ch: m for m, ch in enumerate(channel_map)}
    out = []
    for col in range(samples.shape[1]):
        x = samples[:, col]
        mean = float(np.mean(x, dtype=np.float64))
        ac = float(np.sqrt(max(float(np.mean(np.square(x, dtype=np.float64))) - mean * mean, 0.0)))
        peak = float(np.max(np.abs(x))) if len(x) else 0.0
        ch = int(device_channels[col])
        rep = ChannelReport(ch, mic_of.get(ch), float(_db(ac * ac)), float(_db(inband_power[col])), mean, peak,
                            _clipped(x, peak))
        if rep.level_db < SILENT_DBFS:
            rep.add("dead", "constant" if abs(mean) > 1e-4 else "silent" if peak == 0 else
                    f"silent ({rep.level_db:.0f} dBFS)")
        if rep.clipped_samples >= CLIP_MIN_SAMPLES and "dead" not in rep.problems:
            rep.add("clipped", f"{rep.clipped_samples} samples at {peak:.3f} of full scale")
        if abs(mean) >= DC_FS or (abs(mean) >= 1e-3 and abs(mean) > ac):
            rep.add("dc", f"DC offset {mean:+.3f} of full scale")
        out.append(rep)
    return out


def level_checks(reports: list[ChannelReport]) -> None:
    """Dead (far below) and gain (off by more than :data:`GAIN_DB`) against the median in-band
    level of the mics' channels that are not silent."""
    mics = [r for r in reports if r.mic is not None and "dead" not in r.problems]
    if not mics:
        return
    median = float(np.median([r.inband_db for r in mics]))
    for r in reports:
        if "dead" in r.problems:
            continue
        diff = r.inband_db - median
        if r.mic is not None and diff <= -DEAD_BELOW_DB:
            r.add("dead", f"{-diff:.0f} dB below the other mics")
        elif r.mic is not None and abs(diff) > GAIN_DB:
            r.add("gain", f"{diff:+.1f} dB against the other mics")


def pair_strength(tables: np.ndarray, reach: int, max_lag: int) -> np.ndarray:
    """Median over windows of each pair's largest ``|GCC|`` within ``±reach`` lags (an inverted
    channel's peak counts too): ``[shape=(pairs,)]`` from ``tables [shape=(W, pairs, lags)]``."""
    if tables.shape[0] == 0:
        return np.zeros(tables.shape[1])
    inside = tables[:, :, max(0, max_lag - reach):max_lag + reach + 1]
    return np.median(np.max(np.abs(inside), axis=2), axis=0)


def deaf_channels(strength: np.ndarray, pair_a: np.ndarray, pair_b: np.ndarray, n: int,
                  is_mic: np.ndarray) -> np.ndarray:
    """Analysed channels ``[shape=(n,)]`` bool whose best pair is incoherent (median GCC peak below
    :data:`DEAF_GCC`, or below :data:`DEAF_RATIO` of the other mics' median: the largest of many
    noisy lags is not 0) while the other mics' best pairs are coherent (above :data:`HEARING_GCC`)."""
    best = np.full(n, -1.0)
    for p, (a, b) in enumerate(zip(pair_a, pair_b)):
        best[a] = max(best[a], strength[p])
        best[b] = max(best[b], strength[p])
    deaf = np.zeros(n, dtype=bool)
    for c in range(n):
        others = [best[o] for o in range(n) if o != c and is_mic[o]]
        hearing = float(np.median(others)) if others else 0.0
        if is_mic[c] and hearing > HEARING_GCC and best[c] < max(DEAF_GCC, DEAF_RATIO * hearing):
            deaf[c] = True
    return deaf


def duplicate_pairs(tables: np.ndarray, max_lag: int, samples: np.ndarray, pair_a: np.ndarray,
                    pair_b: np.ndarray) -> list[tuple[int, int, float]]:
    """Pairs ``(a, b, correlation)`` that carry the same signal: a GCC of at least
    :data:`DUPLICATE_GCC` at lag 0 in :data:`DUPLICATE_SHARE` of the windows of ``tables
    [shape=(W, pairs, lags)]``, and a waveform correlation of at least :data:`DUPLICATE_CORR` of
    ``samples [shape=(samples, C)]`` (the analysed channels)."""
    if tables.shape[0] == 0:
        return []
    at0 = tables[:, :, max_lag]
    share = np.mean(at0 >= DUPLICATE_GCC, axis=0)
    out = []
    for p in np.flatnonzero(share >= DUPLICATE_SHARE):
        a, b = int(pair_a[p]), int(pair_b[p])
        xa = samples[:, a] - samples[:, a].mean()
        xb = samples[:, b] - samples[:, b].mean()
        corr = float(np.dot(xa, xb) / (np.linalg.norm(xa) * np.linalg.norm(xb) + 1e-30))
        if abs(corr) >= DUPLICATE_CORR:
            out.append((a, b, corr))
    return out


def polarity_votes(tables: np.ndarray, reach: np.ndarray, max_lag: int) -> np.ndarray:
    """Each pair's vote ``[shape=(pairs,)]`` in [-1, 1] for the product of its channels' signs: the
    mean over windows of the sign of its GCC's largest excursion within ``±reach`` lags
    ``[shape=(pairs,)]`` (the direct path is a positive peak; an inverted channel makes it a
    negative one)."""
    if tables.shape[0] == 0:
        return np.zeros(tables.shape[1])
    idx = np.abs(np.arange(tables.shape[2]) - max_lag)
    inside = idx[None, :] <= reach[:, None]
    hi = np.max(np.where(inside[None], tables, -np.inf), axis=2)
    lo = -np.min(np.where(inside[None], tables, np.inf), axis=2)
    return np.mean(np.where(hi >= lo, 1.0, -1.0), axis=0)


def solve_signs(votes: np.ndarray, pair_a: np.ndarray, pair_b: np.ndarray, n: int, is_mic: np.ndarray) -> np.ndarray:
    """Channel signs ``[shape=(n,)]`` (+1/-1) agreeing best with the pairs' ``votes``: maximise
    ``sum_p v_p s_a s_b`` over pairs with ``|v_p| >= POLARITY_MIN``; exhaustive up to 16 channels,
    else greedy single flips. Of a solution and its negation, the one with more upright mics."""
    use = np.abs(votes) >= POLARITY_MIN
    v, a, b = votes[use], pair_a[use], pair_b[use]
    if n <= 1 or not len(v):
        return np.ones(n, dtype=np.int64)
    if n <= 16:
        codes = np.arange(2 ** (n - 1))
        signs = 1 - 2 * ((codes[:, None] >> np.arange(n)[None, :]) & 1)  # channel n-1 is +1 in all
        score = (signs[:, a] * signs[:, b]) @ v
        best = signs[int(np.argmax(score))]
    else:
        best = np.ones(n, dtype=np.int64)
        for _ in range(n):
            gains = [(-2 * sum(v[p] * best[a[p]] * best[b[p]] for p in range(len(v)) if c in (a[p], b[p])), c)
                     for c in range(n)]
            g, c = max(gains)
            if g <= 0:
                break
            best[c] = -best[c]
    if np.sum(best[is_mic] < 0) > np.sum(best[is_mic] > 0):
        best = -best
    return best.astype(np.int64)


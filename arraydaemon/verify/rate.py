"""The sample rate: does the device run at the profile's rate?

Three clues, from the cheapest:

- **The file's header** names a rate other than the profile's: the recording was made at that
  rate (it is resampled for the analysis). A warning: replay resamples too, but the daemon opens
  the device at the profile's rate.
- **An empty upper band**: nothing above half of a lower standard rate (a resampler's cliff,
  :func:`content_rate`): the device delivers audio sampled at that rate and upsampled. A warning:
  directions are right, the higher rate only costs CPU.
- **Delays scaled by a rate ratio**: when the largest delay of any channel pair is about
  48000/16000 = 3× (or another ratio of standard rates) the largest the geometry allows, samples
  are counted at the wrong rate (an I2S or driver clock set wrongly): a problem, as every delay,
  hence every direction, is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from arraydaemon.verify.pairs import Frames, PairObservations

STANDARD_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)
CLIFF_DB = 40.0  # an empty upper band: this far below the band just under the cliff
BELOW_DB = 35.0
FLAT_DB = 10.0
RATIO_TOLERANCE = 0.04
RATIO_SPAN = 1.15
BEYOND, BEYOND_SHARE = 1.3, 0.25
MIN_RATIO = 1.7  # delay scales within [1/MIN_RATIO, MIN_RATIO] are geometry questions, not rates


@dataclass
class RateResult:
    """``content_hz``: the rate the audio seems to have been sampled at (None: the profile's)."""

    profile_hz: int
    file_hz: int | None
    content_hz: int | None = None
    delay_ratio: float | None = None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def content_rate(frames: Frames, frame_idx: np.ndarray) -> int | None:
    """The highest standard rate below the analysis rate whose upper band (above 0.55 of it, past
    a resampler's transition) is empty (its 95th percentile :data:`CLIFF_DB` below the median of
    the band from 0.35 to 0.45 of it, which itself carries sound: within :data:`BELOW_DB` of the
    300-3000 Hz level and :data:`FLAT_DB` of the band from 0.2 to 0.3 of it), or None."""
    lay = frames.layout
    if not len(frame_idx):
        return None
    power = np.mean(np.abs(frames.spec[frame_idx]) ** 2, axis=(0, 1))  # (bins,)
    db = 10 * np.log10(np.maximum(power, 1e-30))
    f = np.arange(len(db)) * lay.bin_hz
    ref = float(np.median(db[(f >= 300.0) & (f <= 3000.0)]))
    for rate in sorted((r for r in STANDARD_RATES if r < lay.sample_rate), reverse=True):
        below = (f >= 0.35 * rate) & (f <= 0.45 * rate)
        above = (f >= 0.55 * rate) & (f <= 0.47 * lay.sample_rate)
        lower = (f >= 0.2 * rate) & (f <= 0.3 * rate)
        if below.sum() < 3 or above.sum() < 3 or np.median(db[below]) < ref - BELOW_DB:
            continue
        if np.median(db[below]) < np.median(db[lower]) - FLAT_DB:  # the cliff is lower down
            continue
        if np.median(db[below]) - np.percentile(db[above], 95) >= CLIFF_DB:
            return rate
    return None


def largest_delay_ratio(obs: PairObservations, max_delay_s: float, min_value: float = 0.25) -> float | None:
    """The largest delay any channel pair shows often (the 95th percentile of ``|delay|`` over the
    windows where its GCC peak reaches ``min_value``, in the whole lag range), over the largest the
    geometry allows (``max_delay_s``); None without enough clear windows. A pair's delays count as
    beyond the geometry only when at least :data:`BEYOND_SHARE` of its windows are beyond
    :data:`BEYOND` times the limit: a few reflections far out are not a rate."""
    if obs.n_windows == 0 or max_delay_s <= 0:
        return None
    delay, value = obs.peaks(float(np.max(np.abs(obs.layout.lags_s))))
    best = None
    for p in range(delay.shape[1]):
        use = value[:, p] >= min_value
        if use.sum() >= 10:
            d = np.abs(delay[use, p])
            q = float(np.quantile(d, 0.95))
            if np.mean(d > BEYOND * max_delay_s) < BEYOND_SHARE:
                q = min(q, BEYOND * max_delay_s)
            best = q if best is None else max(best, q)
    return None if best is None else best / max_delay_s


def likely_rates(ratio: float, profile_hz: int) -> list[int]:
    """Standard rates a device could really run at when its delays look ``ratio`` times too long:
    from ``ratio`` (a talker never exactly end-fire makes the measured ratio a little short) up to
    :data:`RATIO_SPAN` times it."""
    lo, hi = ratio * (1.0 - RATIO_TOLERANCE), ratio * RATIO_SPAN
    return [r for r in STANDARD_RATES if r != profile_hz and lo <= r / profile_hz <= hi]


def rate_check(profile_hz: int, file_hz: int | None, frames: Frames, active_frames: np.ndarray,
               obs: PairObservations | None, max_delay_s: float) -> RateResult:
    """All three clues (see the module doc)."""
    result = RateResult(profile_hz, file_hz)
    if file_hz is not None and file_hz != profile_hz:
        result.warnings.append(f"the recording is at {file_hz} Hz, the profile says {profile_hz} Hz (resampled "
                               f"for the analysis): if the device runs at {file_hz} Hz, set sample_rate: "
                               f"{file_hz} in the profile, or check that it can be opened at {profile_hz} Hz")
    result.content_hz = content_rate(frames, active_frames)
    if result.content_hz is not None:
        result.warnings.append(f"nothing above {result.content_hz // 2} Hz: the audio was sampled at "
                               f"{result.content_hz} Hz and upsampled to {profile_hz} Hz; a profile at "
                               f"{result.content_hz} Hz gives the same directions for less CPU")
    if obs is not None:
        ratio = largest_delay_ratio(obs, max_delay_s)
        result.delay_ratio = ratio
        if ratio is not None and (ratio >= MIN_RATIO or ratio <= 1.0 / MIN_RATIO):
            rates = likely_rates(ratio, profile_hz)
            if rates:
                which = " or ".join(str(r) for r in rates)
                result.problems.append(f"delays are {ratio:.2f}× the largest the geometry allows: the device "
                                       f"probably samples at {which} Hz, not {profile_hz} Hz (or the geometry is "
                                       f"{ratio:.1f}× too {'small' if ratio > 1 else 'large'})")
    return result

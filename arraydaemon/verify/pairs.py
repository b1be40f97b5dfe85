"""What verification observes of every pair of device channels: GCC-PHAT over short windows.

The recording is cut into STFT frames (Hann, ~32 ms, 50 % overlap, the daemon's band 200-7000 Hz)
and the frames into consecutive windows of :data:`WINDOW_FRAMES` frames (~144 ms at 16 kHz, short
enough that a walking talker hardly moves within one). Windows well above the recording's noise
floor are *active*. For each active window and each pair ``(a, b)`` of analysed channels the
PHAT-weighted cross-spectrum ``X_b conj(X_a)`` becomes a band-limited GCC over fine lags (the
daemon's own kernels: :func:`arraydaemon.core.kernels.srp_lags`), positive when ``b`` hears the
sound later than ``a``. The lag range reaches :data:`LAG_REACH` times the array's largest delay,
so that delays the geometry does not allow are seen too.

The quietest frames (:func:`noise_frames`) are kept apart for the diffuse-noise coherence fit.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from arraydaemon.core import kernels
from arraydaemon.stages.features import hann

FRAME_S = 0.032
BAND_HZ = (200.0, 7000.0)
WINDOW_FRAMES = 8
LAG_REACH = 3.5  # lag tables reach this many times the array's largest delay (a 3x rate error still fits)
ACTIVE_DB = 6.0  # active windows: this far above the noise floor (5th percentile of frame power)
MAX_WINDOWS = 400


@dataclass(frozen=True)
class Layout:
    """Sample counts of the analysis at one rate; lags are in steps of ``1 / lag_rate`` seconds."""

    sample_rate: int
    n_fft: int
    hop: int
    band: tuple[int, int]  # bins lo <= k < hi
    upsample: int
    max_lag: int  # lag tables hold lags -max_lag..max_lag (in 1/lag_rate s)

    @property
    def bin_hz(self) -> float:
        return self.sample_rate / self.n_fft

    @property
    def lag_rate(self) -> float:
        return float(self.sample_rate * self.upsample)

    @property
    def lags_s(self) -> np.ndarray:
        """The lag axis ``[shape=(2 max_lag + 1,)]`` seconds."""
        return np.arange(-self.max_lag, self.max_lag + 1) / self.lag_rate

    @property
    def window_s(self) -> float:
        return ((WINDOW_FRAMES - 1) * self.hop + self.n_fft) / self.sample_rate


def make_layout(sample_rate: int, max_delay_s: float) -> Layout:
    """The analysis layout for a rate and an array whose largest delay is ``max_delay_s``."""
    n_fft = 2 * max(16, int(round(FRAME_S * sample_rate / 2)))
    bin_hz = sample_rate / n_fft
    lo = max(1, int(math.ceil(BAND_HZ[0] / bin_hz)))
    hi = min(n_fft // 2, int(math.floor(min(BAND_HZ[1], 0.45 * sample_rate) / bin_hz)) + 1)
    upsample = int(max(2, math.ceil(9.0 * (hi - 1) * bin_hz / sample_rate)))
    reach = max(LAG_REACH * max_delay_s, max_delay_s + 8.0 / sample_rate)
    return Layout(sample_rate, n_fft, n_fft // 2, (lo, hi), upsample, int(math.ceil(reach * sample_rate * upsample)))


@dataclass(eq=False)
class Frames:
    """STFT of the analysed channels: ``spec [shape=(frames, channels, bins)]`` complex64 and the
    in-band power of every frame and channel ``power [shape=(frames, channels)]``."""

    layout: Layout
    spec: np.ndarray
    power: np.ndarray

    @property
    def times_s(self) -> np.ndarray:
        """Centre time of every frame ``[shape=(frames,)]``."""
        lay = self.layout
        return (np.arange(self.spec.shape[0]) * lay.hop + 0.5 * lay.n_fft) / lay.sample_rate


def stft_frames(samples: np.ndarray, layout: Layout) -> Frames:
    """:class:`Frames` of ``samples [shape=(samples, channels)]`` float32 (DC removed per channel)."""
    x = np.ascontiguousarray(samples - samples.mean(axis=0, dtype=np.float64), dtype=np.float32)
    spec = kernels.stft(x, hann(layout.n_fft), layout.hop)
    lo, hi = layout.band
    power = np.mean(np.abs(spec[:, :, lo:hi]) ** 2, axis=2)
    return Frames(layout, spec, power)


@dataclass(eq=False)
class PairObservations:
    """GCC-PHAT of every channel pair in every active window.

    ``channels [shape=(C,)]``: the columns of the analysed signal (indices into the recording's
    channels); pairs ``(pair_a[p], pair_b[p])``, ``a < b``, index into ``channels``.
    ``window_start [shape=(W,)]``: first frame of each active window; ``times_s``, ``level_db``
    ``[shape=(W,)]``; ``tables [shape=(W, pairs, lags)]`` float32 on :attr:`Layout.lags_s`.
    """

    layout: Layout
    channels: np.ndarray
    pair_a: np.ndarray
    pair_b: np.ndarray
    window_start: np.ndarray
    times_s: np.ndarray
    level_db: np.ndarray
    tables: np.ndarray

    @property
    def n_windows(self) -> int:
        return int(self.tables.shape[0])

    def pair_index(self) -> np.ndarray:
        """``[shape=(C, C)]``: the pair row of channels ``(a, b)`` (either order), -1 on the diagonal."""
        c = len(self.channels)
        out = -np.ones((c, c), dtype=np.intp)
        out[self.pair_a, self.pair_b] = np.arange(len(self.pair_a))
        out[self.pair_b, self.pair_a] = np.arange(len(self.pair_a))
        return out

    def subset(self, keep: np.ndarray) -> PairObservations:
        """The observations of the analysed channels ``keep`` (indices into ``channels``, taken in
        ascending order) only."""
        keep = np.unique(np.asarray(keep, dtype=np.intp))
        rows = self.pair_index()
        pairs = list(itertools.combinations(range(len(keep)), 2))
        a = np.array([p[0] for p in pairs], dtype=np.intp)
        b = np.array([p[1] for p in pairs], dtype=np.intp)
        sel = rows[keep[a], keep[b]] if pairs else np.zeros(0, dtype=np.intp)
        return PairObservations(self.layout, self.channels[keep], a, b, self.window_start, self.times_s,
                                self.level_db, np.ascontiguousarray(self.tables[:, sel]))

    def peaks(self, reach_s: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The highest GCC value within ``±reach_s`` (scalar, or ``[shape=(pairs,)]``) of lag 0 and
        its delay (parabolic interpolation): ``(delay_s, value)``, each ``[shape=(W, pairs)]``."""
        lay = self.layout
        reach = np.broadcast_to(np.asarray(reach_s, dtype=np.float64), (len(self.pair_a),))
        half = np.clip(np.ceil(reach * lay.lag_rate).astype(np.intp), 1, lay.max_lag - 1)
        idx = np.arange(2 * lay.max_lag + 1)
        outside = np.abs(idx - lay.max_lag)[None, :] > half[:, None]  # (pairs, lags)
        masked = np.where(outside[None], -np.inf, self.tables)
        k = np.argmax(masked, axis=2)
        value = np.take_along_axis(self.tables, k[..., None], 2)[..., 0]
        left = np.take_along_axis(self.tables, np.maximum(k - 1, 0)[..., None], 2)[..., 0]
        right = np.take_along_axis(self.tables, np.minimum(k + 1, 2 * lay.max_lag)[..., None], 2)[..., 0]
        denom = left - 2 * value + right
        shift = np.where(denom < -1e-9, 0.5 * (left - right) / np.where(denom < -1e-9, denom, -1.0), 0.0)
        shift = np.clip(shift, -0.5, 0.5)
        peak = value - 0.25 * (left - right) * shift
        return (k - lay.max_lag + shift) / lay.lag_rate, peak


def active_windows(frames: Frames, live: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """First frames ``[shape=(W,)]`` of the active windows, their level (dB re full scale, mean over
    the ``live`` channels), and the noise floor in dB. At most :data:`MAX_WINDOWS` (the loudest)."""
    n_win = frames.spec.shape[0] // WINDOW_FRAMES
    if n_win == 0 or not len(live):
        return np.zeros(0, dtype=np.intp), np.zeros(0), -300.0
    frame_power = frames.power[: n_win * WINDOW_FRAMES, live].mean(axis=1) * power_scale(frames.layout)
    p = frame_power.reshape(n_win, WINDOW_FRAMES).mean(axis=1)
    db = 10 * np.log10(np.maximum(p, 1e-30))
    floor = float(np.percentile(10 * np.log10(np.maximum(frame_power, 1e-30)), 5))
    keep = np.flatnonzero((db >= floor + ACTIVE_DB) & (db >= db.max() - 50.0))
    if len(keep) > MAX_WINDOWS:
        keep = np.sort(keep[np.argsort(db[keep])[::-1][:MAX_WINDOWS]])
    return keep * WINDOW_FRAMES, db[keep], floor


def power_scale(layout: Layout) -> float:
    """Band power of a frame (mean |X|² over band bins) → mean-square signal level in that band."""
    w = hann(layout.n_fft)
    lo, hi = layout.band
    return 2.0 * (hi - lo) / (layout.n_fft * float(np.sum(w**2)))


def observe_pairs(frames: Frames, channels: np.ndarray, starts: np.ndarray, level_db: np.ndarray) -> PairObservations:
    """:class:`PairObservations` of the analysed ``channels`` (columns of ``frames``) in the windows
    starting at frames ``starts``."""
    lay = frames.layout
    channels = np.asarray(channels, dtype=np.intp)
    pairs = list(itertools.combinations(range(len(channels)), 2))
    pair_a = np.array([p[0] for p in pairs], dtype=np.intp)
    pair_b = np.array([p[1] for p in pairs], dtype=np.intp)
    n_lags = 2 * lay.max_lag + 1
    tables = np.zeros((len(starts), len(pairs), n_lags), dtype=np.float32)
    if pairs and len(starts):
        keep = np.ones((WINDOW_FRAMES, lay.n_fft // 2 + 1), dtype=bool)
        n_interp = lay.n_fft * lay.upsample
        direct = (lay.band[1] - lay.band[0]) * n_lags <= 1.5 * n_interp * math.log2(n_interp)
        steering = kernels.lag_steering(lay.band, lay.n_fft, lay.upsample, lay.max_lag) if direct else None
        spec = np.ascontiguousarray(frames.spec[:, channels])
        for w, s in enumerate(starts):
            cross = kernels.masked_pair_sum(spec[s:s + WINDOW_FRAMES], pair_a, pair_b, keep, lay.band)
            gcc = kernels.gcc_phat(cross)
            tables[w] = (kernels.srp_lags_direct(gcc, lay.band, steering) if steering is not None
                         else kernels.srp_lags(gcc, lay.band, lay.upsample, lay.max_lag))
    times = (np.asarray(starts) * lay.hop + 0.5 * lay.window_s * lay.sample_rate) / lay.sample_rate
    return PairObservations(lay, channels, pair_a, pair_b, np.asarray(starts, dtype=np.intp), times,
                            np.asarray(level_db, dtype=np.float64), tables)


def noise_frames(frames: Frames, live: np.ndarray, margin_db: float = 3.0) -> np.ndarray:
    """Indices of the quiet frames ``[shape=(n,)]``: within ``margin_db`` of the recording's 20th
    percentile of frame power (all frames of a recording of steady noise alone)."""
    if not len(live) or frames.spec.shape[0] == 0:
        return np.zeros(0, dtype=np.intp)
    db = 10 * np.log10(np.maximum(frames.power[:, live].mean(axis=1), 1e-30))
    return np.flatnonzero(db <= np.percentile(db, 20) + margin_db)

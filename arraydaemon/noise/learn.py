"""``arraydaemon noise learn``: a noise model from a recording of the robot's own noise alone.

The model is each STFT bin's spatial covariance ``R_n = mean_t x xᴴ [shape=(mics, mics)]``, with the
features stage's STFT (``stages/features.py``), so the daemon whitens it out of the same cells.

**Not noise alone?** A fan or a motor holds its power in every bin; speech (or a door, a cough)
comes and goes. Each bin's power, smoothed over ``SMOOTH_FRAMES`` frames (~80 ms), is compared with
its median over the recording; a frame is *loud* when ``LOUD_BIN_SHARE`` of the band's bins stand
``LOUD_DB`` above their median. For stationary noise the smoothed power of a bin has about
``2 × mics × SMOOTH_FRAMES`` degrees of freedom and stays within ±2 dB of its median (plus the
machine's own drift); (measured on a 7-mic robot recording: at most 0.5 % of the bins 6 dB above their median); a talker 11 dB below the noise lifts 8-14 % of them, one at its level 14-31 %.
Loud stretches of at least ``MIN_LOUD_S`` make the recording *not noise alone*: it is reported
(where, how long) and not learned, unless asked to learn from the rest (``drop_loud``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arraydaemon.core import kernels
from arraydaemon.core.errors import UserError
from arraydaemon.stages.features import FrameLayout, hann

SMOOTH_FRAMES = 5
LOUD_DB = 6.0
LOUD_BIN_SHARE = 0.05
MIN_LOUD_S = 0.1
MIN_SECONDS = 2.0  # a model needs at least this much noise (≈ 120 frames: 15 per mic at 8 mics)


@dataclass(frozen=True)
class LearnReport:
    """What a noise recording held: its length, the loud stretches ``(start_s, end_s)`` and the
    seconds the model was learned from."""

    duration_s: float
    loud: tuple[tuple[float, float], ...]
    learned_s: float

    @property
    def loud_s(self) -> float:
        return float(sum(b - a for a, b in self.loud))

    def describe(self) -> str:
        spans = ", ".join(f"{a:.1f}–{b:.1f} s" for a, b in self.loud[:6]) + (" …" if len(self.loud) > 6 else "")
        return f"{self.loud_s:.1f} s of {self.duration_s:.1f} s stand above the stationary noise ({spans})"


def stft(audio: np.ndarray, layout: FrameLayout) -> np.ndarray:
    """The features stage's STFT of ``audio [shape=(samples, mics)]``: ``[shape=(frames, mics, bins)]`` complex64."""
    return kernels.stft(np.ascontiguousarray(audio, dtype=np.float32), hann(layout.n_fft), layout.frame_hop)


def loud_frames(spectra: np.ndarray, layout: FrameLayout) -> np.ndarray:
    """Frames ``[shape=(frames,)]`` bool in which the band stands above its stationary level (module doc)."""
    lo, hi = layout.band
    power = np.mean(np.abs(spectra[:, :, lo:hi]) ** 2, axis=1).astype(np.float64)  # (frames, band bins)
    kernel = np.ones(SMOOTH_FRAMES) / SMOOTH_FRAMES
    smooth = np.apply_along_axis(lambda p: np.convolve(p, kernel, mode="same"), 0, power)
    median = np.median(smooth, axis=0)
    above = smooth > median[None, :] * 10 ** (LOUD_DB / 10)
    return np.mean(above, axis=1) >= LOUD_BIN_SHARE


def _spans(flags: np.ndarray, frame_s: float, min_s: float) -> list[tuple[float, float]]:
    """Runs of True at least ``min_s`` long, gaps under 0.2 s closed, as ``(start_s, end_s)``."""
    out: list[list[float]] = []
    idx = np.flatnonzero(flags)
    for i in idx:
        t = i * frame_s
        if out and t - out[-1][1] < 0.2:
            out[-1][1] = t + frame_s
        else:
            out.append([t, t + frame_s])
    return [(a, b) for a, b in out if b - a >= min_s]


def learn(audio: np.ndarray, layout: FrameLayout, drop_loud: bool = False, source: str = "recording"
          ) -> tuple[np.ndarray, LearnReport]:
    """The noise covariance ``[shape=(bins, mics, mics)]`` complex128 of ``audio [shape=(samples, mics)]``
    and what the recording held. :class:`UserError` when it is too short, or not noise alone
    (unless ``drop_loud``: the loud stretches are left out, and the rest must still be long enough)."""
    duration = len(audio) / layout.sample_rate
    spectra = stft(audio, layout)
    frame_s = layout.frame_hop / layout.sample_rate
    if len(spectra) * frame_s < MIN_SECONDS:
        raise UserError(f"{source}: {duration:.1f} s, a noise model needs at least {MIN_SECONDS:g} s of the noise alone")
    if not np.any(np.abs(spectra[:, :, layout.band[0]:layout.band[1]]) > 0):
        raise UserError(f"{source}: digital silence; record the robot's noise with the array")
    spans = _spans(loud_frames(spectra, layout), frame_s, MIN_LOUD_S)
    keep = np.ones(len(spectra), dtype=bool)
    for a, b in spans:
        keep[int(a / frame_s):int(np.ceil(b / frame_s)) + SMOOTH_FRAMES // 2 + 1] = False
        keep[max(0, int(a / frame_s) - SMOOTH_FRAMES // 2 - 1):int(a / frame_s)] = False
    report = LearnReport(duration, tuple(spans), float(keep.sum() * frame_s))
    if spans and not drop_loud:
        raise UserError(f"{source}: not the noise alone: {report.describe()}, someone talking or another "
                        "sound? Record the robot alone, or pass --drop-loud to learn from the rest")
    if report.learned_s < MIN_SECONDS:
        raise UserError(f"{source}: only {report.learned_s:.1f} s of stationary noise (at least {MIN_SECONDS:g} s needed)")
    x = spectra[keep].astype(np.complex128)  # (frames, mics, bins)
    cov = np.einsum("tmk,tnk->kmn", x, x.conj()) / len(x)
    return cov, report

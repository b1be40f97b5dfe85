"""Inputs of the neural localizer, computed from a FeatureWindow by the daemon's numba GCC path.

Tokens are (time group, mic pair): the window's STFT frames are split into ``GROUPS`` consecutive
groups, and for each group and each non-reference mic the GCC-PHAT against the reference mic is
evaluated at fixed *time* lags (±1 ms in 31.25 µs steps) in two frequency bands. Lags in seconds
rather than samples make the features independent of the array's sample rate, so one model serves
16 and 48 kHz arrays. Live inference and training data generation both call :func:`window_tokens`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels
from .features import FrameLayout
from .messages import FeatureWindow

LAG_STEP_S = 1.0 / 32000.0
MAX_LAG = 32  # ±1 ms: pairs up to 34 cm apart
N_LAGS = 2 * MAX_LAG + 1
GROUPS = 5
BANDS_HZ = ((200.0, 2000.0), (2000.0, 7000.0))
TOKEN_FEATURES = len(BANDS_HZ) * N_LAGS
LAG_TIMES = np.arange(-MAX_LAG, MAX_LAG + 1) * LAG_STEP_S


@dataclass(frozen=True, eq=False)
class LagProjector:
    """Maps GCC-PHAT spectra to band-limited GCC at ``LAG_TIMES`` (one matrix per band)."""

    bands: tuple[tuple[int, int], ...]
    matrices: tuple[np.ndarray, ...]  # each [shape=(2 * band bins, N_LAGS)] float32: [cos; -sin]

    @classmethod
    def for_layout(cls, layout: FrameLayout) -> "LagProjector":
        freqs = np.arange(layout.bins) * layout.bin_hz
        bands, mats = [], []
        for lo_hz, hi_hz in BANDS_HZ:
            hi_hz = min(hi_hz, 0.5 * layout.sample_rate)
            idx = np.nonzero((freqs >= lo_hz) & (freqs < hi_hz))[0]
            lo, hi = int(idx[0]), int(idx[-1]) + 1
            # gcc(tau) = mean_k Re(G_k exp(j 2π f_k tau)): the same steering sign as srp_phat.
            # Re(G e^{jφ}) = G.re cos φ - G.im sin φ: one real matmul on stacked [re, im].
            phase = 2 * np.pi * freqs[lo:hi, None] * LAG_TIMES[None, :]
            mat = np.concatenate([np.cos(phase), -np.sin(phase)]) / (hi - lo)
            bands.append((lo, hi))
            mats.append(mat.astype(np.float32))
        return cls(tuple(bands), tuple(mats))

    def __call__(self, gcc: np.ndarray) -> np.ndarray:
        """``gcc [shape=(..., mics, bins)]`` → ``[shape=(..., mics, bands * N_LAGS)]`` float32."""
        parts = [np.concatenate([gcc[..., lo:hi].real, gcc[..., lo:hi].imag], axis=-1) @ mat
                 for (lo, hi), mat in zip(self.bands, self.matrices)]
        return np.concatenate(parts, axis=-1).astype(np.float32, copy=False)


def group_gcc(spectra: np.ndarray, ref: int, groups: int = GROUPS) -> np.ndarray:
    """GCC-PHAT spectra per time group, ``[shape=(groups, mics, bins)]`` complex64, from the
    window's STFT frames ``spectra [shape=(frames, mics, bins)]`` (oldest first)."""
    cross = kernels.cross_spectra(np.ascontiguousarray(spectra), ref)
    edges = np.linspace(0, cross.shape[0], groups + 1).round().astype(int)
    return np.stack([kernels.gcc_phat(np.ascontiguousarray(cross[a:b].sum(axis=0)))
                     for a, b in zip(edges[:-1], edges[1:])])


def window_tokens(window: FeatureWindow, projector: LagProjector, ref: int) -> np.ndarray:
    """Token features of one window, ``[shape=(GROUPS, mics - 1, TOKEN_FEATURES)]`` float32, the
    reference mic's row removed (it is the origin of every pair)."""
    gcc = group_gcc(window.spectra, ref)
    tokens = projector(gcc)
    return np.delete(tokens, ref, axis=1)


def clean_gcc_target(window: FeatureWindow, projector: LagProjector, ref: int) -> np.ndarray:
    """Full-window GCC at ``LAG_TIMES`` per pair, both bands averaged, ``[shape=(mics - 1, N_LAGS)]``;
    computed on the direct-path (anechoic) rendering of a scene, it is the distillation target."""
    lags = projector(window.gcc[None])[0].reshape(window.gcc.shape[0], len(BANDS_HZ), N_LAGS).mean(axis=1)
    return np.delete(lags, ref, axis=0)


def pair_baselines(relative_mics: np.ndarray, ref: int) -> np.ndarray:
    """Positions of the non-reference mics relative to the reference, ``[shape=(mics - 1, 3)]``."""
    return np.delete(relative_mics, ref, axis=0)

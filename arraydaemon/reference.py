"""Plain-numpy references of the numba kernels in :mod:`arraydaemon.kernels`.

Each function is the obvious vectorised formula, written for clarity, not speed. The kernel tests
(``tests/test_kernels.py``) check every kernel against its reference, and ``arraydaemon bench``
times each kernel against it. They live in the package, not in ``tests/``, so that the benchmark
also works from an installed wheel. Shapes and dtypes are those of the kernels' public wrappers.
"""

from __future__ import annotations

import numpy as np


def stft(signal: np.ndarray, window: np.ndarray, hop: int) -> np.ndarray:
    """Hann-windowed frames of ``signal [shape=(samples, mics)]`` every ``hop`` samples, through
    ``np.fft.rfft``: ``[shape=(frames, mics, n_fft//2+1)]`` complex64, complete frames only."""
    n_fft = window.shape[0]
    n_frames = 0 if signal.shape[0] < n_fft else 1 + (signal.shape[0] - n_fft) // hop
    starts = np.arange(n_frames) * hop
    frames = signal.astype(np.float64)[starts[:, None] + np.arange(n_fft)[None, :]]  # (frames, n_fft, mics)
    return np.fft.rfft(frames.transpose(0, 2, 1) * window, axis=-1).astype(np.complex64)


def cross_spectra(spec: np.ndarray, ref: int) -> np.ndarray:
    """``X_m * conj(X_ref)`` for ``spec [shape=(frames, mics, bins)]``, same shape."""
    return (spec * np.conj(spec[:, ref : ref + 1, :])).astype(np.complex64)


def gcc_phat(cross: np.ndarray, floor: float = 1e-20) -> np.ndarray:
    """``cross / |cross|`` ``[shape=(mics, bins)]``, 0 where ``|cross| <= floor``."""
    mag = np.abs(cross.astype(np.complex128))
    safe = np.where(mag > floor, mag, 1.0)
    return np.where(mag > floor, cross / safe, 0.0).astype(np.complex64)


def srp_phat(gcc: np.ndarray, band: tuple[int, int], bin_hz: float, tdoa: np.ndarray, ref: int) -> np.ndarray:
    """Mean over non-reference mics ``m`` and bins ``lo <= k < hi`` of
    ``Re(G_mk exp(j 2 pi f_k tdoa_dm))``: ``[shape=(directions,)]`` float32."""
    lo, hi = band
    others = np.array([m for m in range(gcc.shape[0]) if m != ref], dtype=np.intp)
    f = np.arange(lo, hi) * bin_hz
    steer = np.exp(2j * np.pi * f[None, None, :] * tdoa[:, others, None])  # (dirs, mics-1, bins)
    power = np.einsum("mk,dmk->d", gcc[others, lo:hi].astype(np.complex128), steer).real
    return (power / max(1, len(others) * (hi - lo))).astype(np.float32)


def gcc_lags(gcc: np.ndarray, n_fft: int, max_lag: int, upsample: int = 1) -> np.ndarray:
    """Time-domain GCC at lags ``-max_lag..max_lag`` (steps of 1/``upsample`` sample) by
    ``np.fft.irfft`` with zero-padding to ``n_fft * upsample``, scaled so an all-ones spectrum
    peaks near 1: ``[shape=(mics, 2*max_lag+1)]`` float32."""
    n_interp = n_fft * upsample
    corr = np.fft.irfft(gcc.astype(np.complex128), n_interp, axis=-1) * (n_interp / n_fft)
    lags = np.arange(-max_lag, max_lag + 1) % n_interp
    return corr[:, lags].astype(np.float32)

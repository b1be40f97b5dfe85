"""numba kernels of the feature and SRP-PHAT path, with checked public wrappers.

Kernels are pure and private (``_name``), compiled with ``cache=True``; each public wrapper checks
dtypes and shapes, allocates, and calls its kernel. FFTs inside kernels use numpy's FFT API, which
numba compiles through the ``rocket-fft`` extension (pocketfft, the same code numpy and scipy run).
Every kernel has a plain-numpy reference in ``arraydaemon/reference.py`` that it must match to 1e-5
(``tests/test_kernels.py``).

Conventions: audio is ``[shape=(samples, mics)]`` float32 (PortAudio's interleaved layout);
spectra are ``[shape=(frames, mics, bins)]`` complex64 with ``bins = n_fft // 2 + 1``. A TDOA
``tdoa[d, m]`` is the arrival time at mic ``m`` minus the arrival time at the reference mic for a
plane wave from grid direction ``d`` (seconds).
"""

from __future__ import annotations

import math

import numba
import numpy as np

_TWO_PI = 2.0 * math.pi


@numba.njit(cache=True, nogil=True)
def _stft(signal, window, hop, n_frames):
    n_fft = window.shape[0]
    n_mics = signal.shape[1]
    frames = np.empty((n_frames, n_mics, n_fft), dtype=np.float64)
    for f in range(n_frames):
        start = f * hop
        for m in range(n_mics):
            for i in range(n_fft):
                frames[f, m, i] = signal[start + i, m] * window[i]
    spec = np.fft.rfft(frames, axis=-1)
    return spec.astype(np.complex64)


@numba.njit(cache=True, nogil=True)
def _cross_spectra(spec, ref):
    n_frames, n_mics, n_bins = spec.shape
    out = np.empty((n_frames, n_mics, n_bins), dtype=np.complex64)
    for f in range(n_frames):
        for m in range(n_mics):
            for k in range(n_bins):
                out[f, m, k] = spec[f, m, k] * np.conj(spec[f, ref, k])
    return out


@numba.njit(cache=True, nogil=True)
def _gcc_phat(cross, floor):
    n_mics, n_bins = cross.shape
    out = np.zeros((n_mics, n_bins), dtype=np.complex64)
    for m in range(n_mics):
        for k in range(n_bins):
            c = cross[m, k]
            mag = math.sqrt(c.real * c.real + c.imag * c.imag)
            if mag > floor:
                out[m, k] = c / mag
    return out


@numba.njit(cache=True, nogil=True)
def _srp_phat(gcc, k_lo, k_hi, bin_hz, tdoa, ref):
    n_dirs, n_mics = tdoa.shape
    acc = np.zeros(n_dirs)
    # exp(j w_k tau_dm) by complex recurrence over the contiguous band: one sincos per (direction,
    # mic) instead of one per bin, exact to float64 rounding. Directions are the innermost loop so
    # that the recurrences of different directions run side by side in SIMD lanes (one recurrence
    # alone is latency-bound); per direction the sums are in the same order as a scalar loop.
    zr = np.empty(n_dirs)
    zi = np.empty(n_dirs)
    sr = np.empty(n_dirs)
    si = np.empty(n_dirs)
    for m in range(n_mics):
        if m == ref:
            continue
        for d in range(n_dirs):
            tau = tdoa[d, m]
            w0 = _TWO_PI * k_lo * bin_hz * tau
            dw = _TWO_PI * bin_hz * tau
            zr[d] = math.cos(w0)
            zi[d] = math.sin(w0)
            sr[d] = math.cos(dw)
            si[d] = math.sin(dw)
        for k in range(k_lo, k_hi):
            gr = np.float64(gcc[m, k].real)
            gi = np.float64(gcc[m, k].imag)
            for d in range(n_dirs):
                a = zr[d]
                b = zi[d]
                acc[d] += gr * a - gi * b
                zr[d] = a * sr[d] - b * si[d]
                zi[d] = a * si[d] + b * sr[d]
    norm = 1.0 / max(1, (n_mics - 1) * (k_hi - k_lo))
    out = np.empty(n_dirs, dtype=np.float32)
    for d in range(n_dirs):
        out[d] = acc[d] * norm
    return out


@numba.njit(cache=True, nogil=True)
def _gcc_lags(gcc, n_fft, upsample, max_lag):
    n_mics = gcc.shape[0]
    n_interp = n_fft * upsample
    padded = np.zeros((n_mics, n_interp // 2 + 1), dtype=np.complex128)
    padded[:, : gcc.shape[1]] = gcc
    # irfft scales by 1/n_interp; rescale so a perfectly coherent pair peaks at 1.
    corr = np.fft.irfft(padded, n_interp, axis=-1) * (n_interp / (gcc.shape[1] - 1) / 2.0)
    n_lags = 2 * max_lag + 1
    out = np.empty((n_mics, n_lags), dtype=np.float32)
    for m in range(n_mics):
        for i in range(n_lags):
            lag = i - max_lag
            out[m, i] = corr[m, lag % n_interp]
    return out


# ----------------------------------------------------------------------------------------------
# Public wrappers


def _check(arr, name, dtype, ndim):
    if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.ndim != ndim:
        got = f"{arr.dtype}, {arr.ndim}-d" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise TypeError(f"{name}: expected a {ndim}-d {np.dtype(dtype).name} array, got {got}")
    return np.ascontiguousarray(arr)


def stft(signal: np.ndarray, window: np.ndarray, hop: int) -> np.ndarray:
    """Frames ``signal [shape=(samples, mics)]`` every ``hop`` samples, applies ``window
    [shape=(n_fft,)]`` and returns the one-sided spectra ``[shape=(frames, mics, n_fft//2+1)]``.

    Only complete frames are returned: ``frames = 1 + (samples - n_fft) // hop`` (0 if too short).
    """
    signal = _check(signal, "signal", np.float32, 2)
    window = _check(window, "window", np.float64, 1)
    if hop < 1:
        raise ValueError(f"hop: expected a positive number of samples, got {hop}")
    n_fft = window.shape[0]
    n_frames = 0 if signal.shape[0] < n_fft else 1 + (signal.shape[0] - n_fft) // hop
    if n_frames == 0:
        return np.zeros((0, signal.shape[1], n_fft // 2 + 1), dtype=np.complex64)
    return _stft(signal, window, int(hop), n_frames)


def cross_spectra(spec: np.ndarray, ref: int) -> np.ndarray:
    """Cross-spectra of every mic against mic ``ref``: ``X_m * conj(X_ref)``,
    ``[shape=(frames, mics, bins)]`` from ``spec`` of the same shape."""
    spec = _check(spec, "spec", np.complex64, 3)
    if not 0 <= ref < spec.shape[1]:
        raise ValueError(f"ref: expected a mic index below {spec.shape[1]}, got {ref}")
    return _cross_spectra(spec, int(ref))


def gcc_phat(cross: np.ndarray, floor: float = 1e-20) -> np.ndarray:
    """PHAT-weighted cross-spectra ``cross / |cross|`` ``[shape=(mics, bins)]``; bins with
    magnitude at or below ``floor`` (digital silence) become 0 rather than NaN."""
    cross = _check(cross, "cross", np.complex64, 2)
    return _gcc_phat(cross, float(floor))


def srp_phat(gcc: np.ndarray, band: tuple[int, int], bin_hz: float, tdoa: np.ndarray, ref: int) -> np.ndarray:
    """Steered response power of GCC-PHAT spectra ``gcc [shape=(mics, bins)]`` over directions.

    Frequency-domain steering (exact fractional delays) over bins ``band[0] <= k < band[1]``;
    ``tdoa [shape=(directions, mics)]`` seconds. Returns ``[shape=(directions,)]`` float32, the mean
    of ``Re(G_mk exp(j 2 pi f_k tdoa_dm))`` over non-reference mics and band bins, in [-1, 1].
    """
    gcc = _check(gcc, "gcc", np.complex64, 2)
    tdoa = _check(tdoa, "tdoa", np.float64, 2)
    k_lo, k_hi = int(band[0]), int(band[1])
    if not 0 <= k_lo < k_hi <= gcc.shape[1]:
        raise ValueError(f"band: expected 0 <= lo < hi <= {gcc.shape[1]}, got {band}")
    if tdoa.shape[1] != gcc.shape[0]:
        raise ValueError(f"tdoa: expected {gcc.shape[0]} mics, got {tdoa.shape[1]}")
    if not 0 <= ref < gcc.shape[0]:
        raise ValueError(f"ref: expected a mic index below {gcc.shape[0]}, got {ref}")
    return _srp_phat(gcc, k_lo, k_hi, float(bin_hz), tdoa, int(ref))


def gcc_lags(gcc: np.ndarray, n_fft: int, max_lag: int, upsample: int = 1) -> np.ndarray:
    """Time-domain GCC-PHAT at lags ``-max_lag..max_lag`` (in samples / ``upsample``), from
    ``gcc [shape=(mics, n_fft//2+1)]``; returns ``[shape=(mics, 2*max_lag+1)]`` float32, peaking
    near 1 for a perfectly coherent pair."""
    gcc = _check(gcc, "gcc", np.complex64, 2)
    if gcc.shape[1] != n_fft // 2 + 1:
        raise ValueError(f"gcc: expected {n_fft // 2 + 1} bins for n_fft={n_fft}, got {gcc.shape[1]}")
    if upsample < 1 or max_lag < 0:
        raise ValueError(f"expected upsample >= 1 and max_lag >= 0, got {upsample} and {max_lag}")
    return _gcc_lags(gcc, int(n_fft), int(upsample), int(max_lag))

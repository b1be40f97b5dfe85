"""The kernels of the feature and SRP-PHAT path, behind checked public wrappers.

The kernels are numba code (``core/kernel_code.py``), run from the extension module compiled from it
at install, or by numba's JIT where that module is absent (``core/compiled.py``); each public wrapper
checks dtypes and shapes and calls its kernel. The FFTs are numpy's (pocketfft), on whole batches,
outside the kernels. Every kernel has a plain-numpy reference in ``arraydaemon/core/reference.py``
that both builds must match to 1e-5 (``tests/core/test_kernels.py``).

Conventions: audio is ``[shape=(samples, mics)]`` float32 (PortAudio's interleaved layout);
spectra are ``[shape=(frames, mics, bins)]`` complex64 with ``bins = n_fft // 2 + 1``. A TDOA
``tdoa[d, m]`` is the arrival time at mic ``m`` minus the arrival time at the reference mic for a
plane wave from grid direction ``d`` (seconds).
"""

from __future__ import annotations

import math

import numpy as np

from arraydaemon.core import compiled

_k = compiled.kernels()  # the compiled module, or numba's JIT (compiled.py)


# ----------------------------------------------------------------------------------------------
# Public wrappers


def check_array(arr, name, dtype, ndim):
    if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.ndim != ndim:
        got = f"{arr.dtype}, {arr.ndim}-d" if isinstance(arr, np.ndarray) else type(arr).__name__
        raise TypeError(f"{name}: expected a {ndim}-d {np.dtype(dtype).name} array, got {got}")
    return np.ascontiguousarray(arr)


def stft(signal: np.ndarray, window: np.ndarray, hop: int) -> np.ndarray:
    """Frames ``signal [shape=(samples, mics)]`` every ``hop`` samples, applies ``window
    [shape=(n_fft,)]`` and returns the one-sided spectra ``[shape=(frames, mics, n_fft//2+1)]``.

    Only complete frames are returned: ``frames = 1 + (samples - n_fft) // hop`` (0 if too short).
    """
    signal = check_array(signal, "signal", np.float32, 2)
    window = check_array(window, "window", np.float64, 1)
    if hop < 1:
        raise ValueError(f"hop: expected a positive number of samples, got {hop}")
    n_fft = window.shape[0]
    n_frames = 0 if signal.shape[0] < n_fft else 1 + (signal.shape[0] - n_fft) // hop
    if n_frames == 0:
        return np.zeros((0, signal.shape[1], n_fft // 2 + 1), dtype=np.complex64)
    return np.fft.rfft(_k.frames(signal, window, int(hop), n_frames), axis=-1).astype(np.complex64)


def gcc_phat(cross: np.ndarray, floor: float = 1e-20) -> np.ndarray:
    """PHAT-weighted cross-spectra ``cross / |cross|`` ``[shape=(mics, bins)]``; bins with
    magnitude at or below ``floor`` (digital silence) become 0 rather than NaN."""
    cross = check_array(cross, "cross", np.complex64, 2)
    return _k.gcc_phat(cross, float(floor))


def srp_phat(gcc: np.ndarray, band: tuple[int, int], bin_hz: float, tdoa: np.ndarray, ref: int | None) -> np.ndarray:
    """Steered response power of GCC-PHAT spectra ``gcc [shape=(mics, bins)]`` over directions.

    Frequency-domain steering (exact fractional delays) over bins ``band[0] <= k < band[1]``;
    ``tdoa [shape=(directions, mics)]`` seconds. Returns ``[shape=(directions,)]`` float32, the mean
    of ``Re(G_mk exp(j 2 pi f_k tdoa_dm))`` over non-reference mics and band bins, in [-1, 1].
    ``ref`` None: every row counts (rows are mic pairs, ``tdoa`` their pair delays).
    """
    gcc = check_array(gcc, "gcc", np.complex64, 2)
    tdoa = check_array(tdoa, "tdoa", np.float64, 2)
    k_lo, k_hi = int(band[0]), int(band[1])
    if not 0 <= k_lo < k_hi <= gcc.shape[1]:
        raise ValueError(f"band: expected 0 <= lo < hi <= {gcc.shape[1]}, got {band}")
    if tdoa.shape[1] != gcc.shape[0]:
        raise ValueError(f"tdoa: expected {gcc.shape[0]} mics, got {tdoa.shape[1]}")
    if ref is not None and not 0 <= ref < gcc.shape[0]:
        raise ValueError(f"ref: expected a mic index below {gcc.shape[0]} or None, got {ref}")
    return _k.srp_phat(gcc, k_lo, k_hi, float(bin_hz), tdoa, -1 if ref is None else int(ref))


def _check_band(band, n_bins: int) -> tuple[int, int]:
    k_lo, k_hi = int(band[0]), int(band[1])
    if not 0 <= k_lo < k_hi <= n_bins:
        raise ValueError(f"band: expected 0 <= lo < hi <= {n_bins}, got {band}")
    return k_lo, k_hi


def _check_pairs(pair_i, pair_j, n_mics: int) -> tuple[np.ndarray, np.ndarray]:
    pair_i = np.ascontiguousarray(pair_i, dtype=np.intp)
    pair_j = np.ascontiguousarray(pair_j, dtype=np.intp)
    if pair_i.ndim != 1 or pair_i.shape != pair_j.shape:
        raise ValueError(f"pairs: expected two 1-d index arrays of one length, got {pair_i.shape} and {pair_j.shape}")
    if pair_i.size and (min(pair_i.min(), pair_j.min()) < 0 or max(pair_i.max(), pair_j.max()) >= n_mics):
        raise ValueError(f"pairs: expected mic indices below {n_mics}")
    return pair_i, pair_j


def masked_pair_sum(spec: np.ndarray, pair_i, pair_j, keep: np.ndarray, band: tuple[int, int]) -> np.ndarray:
    """Pair cross-spectra summed over the frames ``keep [shape=(frames, bins)]`` (bool) selects:
    ``sum_t keep[t, k] X_tjk conj(X_tik)`` for the pairs ``(pair_i[p], pair_j[p])`` of ``spec
    [shape=(frames, mics, bins)]``, in band bins ``band[0] <= k < band[1]`` (0 elsewhere):
    ``[shape=(pairs, bins)]`` complex64."""
    spec = check_array(spec, "spec", np.complex64, 3)
    keep = check_array(keep, "keep", np.bool_, 2)
    pair_i, pair_j = _check_pairs(pair_i, pair_j, spec.shape[1])
    if keep.shape != (spec.shape[0], spec.shape[2]):
        raise ValueError(f"keep: expected shape {(spec.shape[0], spec.shape[2])}, got {keep.shape}")
    k_lo, k_hi = _check_band(band, spec.shape[2])
    return _k.masked_pair_sum(spec, pair_i, pair_j, keep, k_lo, k_hi)


def phase_agreement(spec: np.ndarray, pair_i, pair_j, tdoa: np.ndarray, band: tuple[int, int], bin_hz: float,
                    floor: float = 1e-20) -> np.ndarray:
    """How well each frame and bin of ``spec [shape=(frames, mics, bins)]`` agrees with a direction
    whose mic TDOAs are ``tdoa [shape=(mics,)]`` (seconds): the mean over pairs ``(i, j)`` of
    ``Re(C/|C| exp(j 2 pi f_k (tdoa_j - tdoa_i)))``, ``C = X_j conj(X_i)``, in band bins (0 outside;
    a mic with ``|X| <= floor`` adds 0): ``[shape=(frames, bins)]`` float32 in [-1, 1]."""
    spec = check_array(spec, "spec", np.complex64, 3)
    tdoa = check_array(tdoa, "tdoa", np.float64, 1)
    pair_i, pair_j = _check_pairs(pair_i, pair_j, spec.shape[1])
    if tdoa.shape[0] != spec.shape[1]:
        raise ValueError(f"tdoa: expected {spec.shape[1]} mics, got {tdoa.shape[0]}")
    k_lo, k_hi = _check_band(band, spec.shape[2])
    return _k.phase_agreement(spec, pair_i, pair_j, tdoa, k_lo, k_hi, float(bin_hz), float(floor))


def srp_lags(gcc: np.ndarray, band: tuple[int, int], upsample: int, max_lag: int) -> np.ndarray:
    """Band-limited GCC of ``gcc [shape=(pairs, n_fft//2+1)]`` in the lag domain, at lags
    ``l = -max_lag..max_lag`` in steps of ``1/upsample`` sample: ``[shape=(pairs, 2*max_lag+1)]``
    float32, ``r[p, l] = mean over band bins k of Re(G_pk exp(j 2 pi k l / (n_fft upsample)))``.

    One zero-padded inverse FFT per pair. The mean over pairs of ``r`` at lag ``tdoa * fs *
    upsample`` is :func:`srp_phat` of that direction exactly (between lags, by interpolation:
    :func:`srp_interp`). Needs ``0 < band[0]`` and, with ``upsample`` 1, ``band[1] <= n_fft//2``.
    For short lag ranges :func:`srp_lags_direct` computes the same faster.
    """
    gcc = check_array(gcc, "gcc", np.complex64, 2)
    k_lo, k_hi = _check_band(band, gcc.shape[1])
    if upsample < 1 or max_lag < 0:
        raise ValueError(f"expected upsample >= 1 and max_lag >= 0, got {upsample} and {max_lag}")
    if k_lo == 0 or (upsample == 1 and k_hi == gcc.shape[1]):
        raise ValueError(f"band {band}: bin 0 and (with upsample 1) the Nyquist bin are not supported")
    n_interp = 2 * (gcc.shape[1] - 1) * int(upsample)
    padded = np.zeros((gcc.shape[0], n_interp // 2 + 1), dtype=np.complex128)
    padded[:, k_lo:k_hi] = gcc[:, k_lo:k_hi]
    # irfft gives (1/n) (2 sum_k Re(G_k e^{j 2 pi k m / n})) for 0 < k < n/2 (the band is off bin 0
    # and the padded Nyquist bin); rescaled to the mean over band bins.
    corr = np.fft.irfft(padded, n_interp, axis=-1)
    lags = np.arange(-int(max_lag), int(max_lag) + 1) % n_interp
    return (corr[:, lags] * (n_interp / (2.0 * (k_hi - k_lo)))).astype(np.float32)


def lag_steering(band: tuple[int, int], n_fft: int, upsample: int, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary parts of ``exp(j 2 pi k l / (n_fft upsample))`` for band bins ``k`` and
    lags ``l = -max_lag..max_lag``: two ``[shape=(band bins, 2*max_lag+1)]`` float32 arrays, the
    constant operand of :func:`srp_lags_direct`."""
    if upsample < 1 or max_lag < 0:
        raise ValueError(f"expected upsample >= 1 and max_lag >= 0, got {upsample} and {max_lag}")
    k = np.arange(int(band[0]), int(band[1]), dtype=np.float64)
    lags = np.arange(-max_lag, max_lag + 1, dtype=np.float64)
    phase = 2.0 * np.pi * np.outer(k, lags) / (n_fft * upsample)
    return np.cos(phase).astype(np.float32), np.sin(phase).astype(np.float32)


def srp_lags_direct(gcc: np.ndarray, band: tuple[int, int], steering: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """:func:`srp_lags` as a product with the precomputed ``steering = lag_steering(band, n_fft,
    upsample, max_lag)``: O(pairs x band bins x lags), cheaper than the FFTs when the array is small."""
    gcc = check_array(gcc, "gcc", np.complex64, 2)
    k_lo, k_hi = _check_band(band, gcc.shape[1])
    steer_re = check_array(steering[0], "steering", np.float32, 2)
    steer_im = check_array(steering[1], "steering", np.float32, 2)
    if steer_re.shape != steer_im.shape or steer_re.shape[0] != k_hi - k_lo:
        raise ValueError(f"steering: expected two arrays of {k_hi - k_lo} band bins, got {steer_re.shape} "
                         f"and {steer_im.shape}")
    return _k.srp_lags_direct(gcc, k_lo, k_hi, steer_re, steer_im)


def lag_lookup(positions: np.ndarray, n_lags: int) -> tuple[np.ndarray, np.ndarray]:
    """Table index and interpolation weight of fractional lag ``positions [shape=(directions,
    pairs)]`` (indices into a table of ``n_lags`` lags, clipped to it): ``index`` int32 and ``frac``
    float32, each ``[shape=(pairs, directions)]`` (the layout :func:`srp_interp` reads fastest)."""
    if n_lags < 2:
        raise ValueError(f"n_lags: expected at least 2, got {n_lags}")
    pos = np.clip(np.asarray(positions, dtype=np.float64).T, 0.0, n_lags - 1.0)
    index = np.minimum(np.floor(pos), n_lags - 2)
    return np.ascontiguousarray(index, dtype=np.int32), np.ascontiguousarray(pos - index, dtype=np.float32)


def srp_interp(lags: np.ndarray, index: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """SRP by lag lookup: the mean over pairs ``p`` of ``lags [shape=(pairs, lags)]`` linearly
    interpolated between ``index`` and ``index + 1`` with weight ``frac`` (from :func:`lag_lookup`,
    each ``[shape=(pairs, directions)]``): ``[shape=(directions,)]`` float32."""
    lags = check_array(lags, "lags", np.float32, 2)
    index = check_array(index, "index", np.int32, 2)
    frac = check_array(frac, "frac", np.float32, 2)
    if index.shape != frac.shape or index.shape[0] != lags.shape[0]:
        raise ValueError(f"index, frac: expected shape ({lags.shape[0]}, directions), got {index.shape} and "
                         f"{frac.shape}")
    if lags.shape[1] < 2:
        raise ValueError("lags: expected at least two lags")
    return _k.srp_interp(lags, index, frac)


def plane_srp(gcc: np.ndarray, band: tuple[int, int], bin_hz: float, plane_delays: np.ndarray,
              points: np.ndarray) -> np.ndarray:
    """Exact SRP-PHAT of pair spectra ``gcc [shape=(pairs, bins)]`` at in-plane coordinates ``points
    [shape=(n, 2)]`` of a planar array (pair delays per coordinate and per unit height
    ``plane_delays [shape=(3, pairs)]``); ``[shape=(n,)]`` float32."""
    gcc, plane_delays, points = _check_plane(gcc, band, plane_delays, points)
    k_lo, k_hi = _check_band(band, gcc.shape[1])
    return _k.plane_srp(gcc, k_lo, k_hi, float(bin_hz), plane_delays, points)


def climb_plane(gcc: np.ndarray, band: tuple[int, int], bin_hz: float, plane_delays: np.ndarray,
                start: np.ndarray, step: float) -> tuple[np.ndarray, float]:
    """Local search for the maximum of :func:`plane_srp` from in-plane point ``start [shape=(2,)]``
    (see ``reference.climb_plane``): ``(point [shape=(2,)], SRP)``. One compiled loop instead of a
    dozen numpy calls per patch: on a refinement's 3x3 patches the calls cost more than the sums."""
    start = check_array(start, "start", np.float64, 1)
    gcc, plane_delays, _ = _check_plane(gcc, band, plane_delays, start[None])
    k_lo, k_hi = _check_band(band, gcc.shape[1])
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step: expected a positive number, got {step}")
    return _k.climb_plane(gcc, k_lo, k_hi, float(bin_hz), plane_delays, start, float(step))


def _check_plane(gcc, band, plane_delays, points):
    gcc = check_array(gcc, "gcc", np.complex64, 2)
    plane_delays = check_array(plane_delays, "plane_delays", np.float64, 2)
    points = check_array(points, "points", np.float64, 2)
    if plane_delays.shape != (3, gcc.shape[0]):
        raise ValueError(f"plane_delays: expected shape (3, {gcc.shape[0]}), got {plane_delays.shape}")
    if points.shape[1:] != (2,):
        raise ValueError(f"points: expected shape (n, 2), got {points.shape}")
    return gcc, plane_delays, points

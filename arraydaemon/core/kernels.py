"""numba kernels of the feature and SRP-PHAT path, with checked public wrappers.

Kernels are pure and private (``_name``), compiled with ``cache=True``; each public wrapper checks
dtypes and shapes, allocates, and calls its kernel. FFTs inside kernels use numpy's FFT API, which
numba compiles through the ``rocket-fft`` extension (pocketfft, the same code numpy and scipy run).
Every kernel has a plain-numpy reference in ``arraydaemon/core/reference.py`` that it must match to 1e-5
(``tests/core/test_kernels.py``).

Conventions: audio is ``[shape=(samples, mics)]`` float32 (PortAudio's interleaved layout);
spectra are ``[shape=(frames, mics, bins)]`` complex64 with ``bins = n_fft // 2 + 1``. A TDOA
``tdoa[d, m]`` is the arrival time at mic ``m`` minus the arrival time at the reference mic for a
plane wave from grid direction ``d`` (seconds).
"""

from __future__ import annotations

import math
import sys

import numba
import numpy as np

_TWO_PI = 2.0 * math.pi


def _load_rocket_fft() -> None:
    """Load rocket-fft (numba's entry point would at the first compile) without its ``scipy.fft``
    overloads, which the kernels do not use: it imports ``scipy.fft`` when scipy is installed, 0.1-0.2 s
    and 7 MB of the daemon's start-up. ``scipy.fft`` stays importable afterwards (file resampling)."""
    if "rocket_fft" in sys.modules or "scipy.fft" in sys.modules:
        return
    sys.modules["scipy.fft"] = None  # makes rocket_fft's ``import scipy.fft`` raise ImportError
    try:
        import rocket_fft  # noqa: F401  (registers the numpy.fft overloads)
    finally:
        del sys.modules["scipy.fft"]


_load_rocket_fft()


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
def _gcc_phat(cross, floor):
    n_mics, n_bins = cross.shape
    out = np.empty((n_mics, n_bins), dtype=np.complex64)
    re = np.empty(n_bins, dtype=np.float32)
    im = np.empty(n_bins, dtype=np.float32)
    scale = np.empty(n_bins, dtype=np.float32)
    floor2 = floor * floor
    for m in range(n_mics):
        for k in range(n_bins):
            c = cross[m, k]
            re[k] = c.real
            im[k] = c.imag
        for k in range(n_bins):  # branch-free, so that it vectorizes
            m2 = np.float64(re[k]) * re[k] + np.float64(im[k]) * im[k]
            scale[k] = np.float32((m2 > floor2) / math.sqrt(max(m2, 1e-300)))
        for k in range(n_bins):
            out[m, k] = complex(re[k] * scale[k], im[k] * scale[k])
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
    used = n_mics - 1 if 0 <= ref < n_mics else n_mics  # ref -1: every row is a pair
    norm = 1.0 / max(1, used * (k_hi - k_lo))
    out = np.empty(n_dirs, dtype=np.float32)
    for d in range(n_dirs):
        out[d] = acc[d] * norm
    return out


@numba.njit(cache=True, nogil=True)
def _plane_srp(gcc, k_lo, k_hi, bin_hz, plane_delays, points):
    n, n_pairs = points.shape[0], plane_delays.shape[1]
    tdoa = np.empty((n, n_pairs))
    for d in range(n):
        x, y = points[d, 0], points[d, 1]
        h = math.sqrt(max(0.0, 1.0 - (x * x + y * y)))
        for p in range(n_pairs):
            tdoa[d, p] = x * plane_delays[0, p] + y * plane_delays[1, p] + h * plane_delays[2, p]
    return _srp_phat(gcc, k_lo, k_hi, bin_hz, tdoa, -1)


@numba.njit(cache=True, nogil=True)
def _place_in_disk(out, row, cx, cy, ox, oy):
    x, y = cx + ox, cy + oy
    r = max(math.sqrt(x * x + y * y), 1.0)
    out[row, 0] = x / r
    out[row, 1] = y / r


@numba.njit(cache=True, nogil=True)
def _climb_plane(gcc, k_lo, k_hi, bin_hz, plane_delays, start, step):
    # The 3x3 patch, row-major with y outer (as reference.climb_plane's meshgrid), centre 4.
    cand = np.empty((9, 2))
    one = np.empty((1, 2))
    bx, by = start[0], start[1]
    value = -np.inf
    values = np.zeros(9, dtype=np.float32)
    have_vertex = False
    i = 0
    for level in range(2):
        s = step if level == 0 else step / 8
        for _ in range(20):
            for q in range(9):
                _place_in_disk(cand, q, bx, by, (q % 3 - 1.0) * s, (q // 3 - 1.0) * s)
            values = _plane_srp(gcc, k_lo, k_hi, bin_hz, plane_delays, cand)
            i = int(np.argmax(values))
            bx, by, value = cand[i, 0], cand[i, 1], float(values[i])
            if i == 4:
                break
        have_vertex = False
        if i == 4:  # grids.quadratic_vertex on the 3x3 patch
            f = values.astype(np.float64)
            gx, gy = 0.5 * (f[5] - f[3]), 0.5 * (f[7] - f[1])
            hxx, hyy = f[5] - 2 * f[4] + f[3], f[7] - 2 * f[4] + f[1]
            hxy = 0.25 * (f[8] - f[6] - f[2] + f[0])
            det = hxx * hyy - hxy * hxy
            if hxx < 0 and det > 0:
                vx = min(max(-(hyy * gx - hxy * gy) / det, -1.0), 1.0) * s
                vy = min(max(-(hxx * gy - hxy * gx) / det, -1.0), 1.0) * s
                _place_in_disk(one, 0, bx, by, vx, vy)
                bx, by = one[0, 0], one[0, 1]
                have_vertex = True
    if have_vertex:
        v = float(_plane_srp(gcc, k_lo, k_hi, bin_hz, plane_delays, one)[0])
        if v > value:
            value = v
        else:
            bx, by = cand[4, 0], cand[4, 1]
    return np.array([bx, by]), value


@numba.njit(cache=True, nogil=True)
def _masked_pair_sum(spec, pair_i, pair_j, keep, k_lo, k_hi):
    n_frames, n_mics, n_bins = spec.shape
    n_pairs = pair_i.shape[0]
    nb = k_hi - k_lo
    # Real and imaginary parts in separate contiguous rows, so that the pair loops vectorize; X_i
    # is weighted by the mask. Frames keeping few bins are summed over those bins only.
    re = np.empty((n_mics, nb), dtype=np.float32)
    im = np.empty((n_mics, nb), dtype=np.float32)
    wre = np.empty((n_mics, nb), dtype=np.float32)
    wim = np.empty((n_mics, nb), dtype=np.float32)
    w = np.empty(nb, dtype=np.float32)
    kept = np.empty(nb, dtype=np.intp)
    sr = np.zeros((n_pairs, nb), dtype=np.float32)
    si = np.zeros((n_pairs, nb), dtype=np.float32)
    for f in range(n_frames):
        n_kept = 0
        for k in range(nb):
            w[k] = 0.0
            if keep[f, k_lo + k]:
                w[k] = 1.0
                kept[n_kept] = k
                n_kept += 1
        if n_kept == 0:
            continue
        if 4 * n_kept < nb:  # sparse: gather the kept bins
            for m in range(n_mics):
                for q in range(n_kept):
                    c = spec[f, m, k_lo + kept[q]]
                    re[m, q] = c.real
                    im[m, q] = c.imag
            for p in range(n_pairs):
                rj, ij, ri, ii = re[pair_j[p]], im[pair_j[p]], re[pair_i[p]], im[pair_i[p]]
                for q in range(n_kept):
                    k = kept[q]
                    sr[p, k] += rj[q] * ri[q] + ij[q] * ii[q]
                    si[p, k] += ij[q] * ri[q] - rj[q] * ii[q]
            continue
        for m in range(n_mics):
            for k in range(nb):
                c = spec[f, m, k_lo + k]
                re[m, k] = c.real
                im[m, k] = c.imag
        if n_kept < nb:
            for m in range(n_mics):
                for k in range(nb):
                    wre[m, k] = re[m, k] * w[k]
                    wim[m, k] = im[m, k] * w[k]
        for p in range(n_pairs):  # X_j conj(w X_i)
            rj, ij = re[pair_j[p]], im[pair_j[p]]
            ri, ii = (re[pair_i[p]], im[pair_i[p]]) if n_kept == nb else (wre[pair_i[p]], wim[pair_i[p]])
            a, b = sr[p], si[p]
            for k in range(nb):
                a[k] += rj[k] * ri[k] + ij[k] * ii[k]
                b[k] += ij[k] * ri[k] - rj[k] * ii[k]
    out = np.zeros((n_pairs, n_bins), dtype=np.complex64)
    for p in range(n_pairs):
        for k in range(nb):
            out[p, k_lo + k] = complex(sr[p, k], si[p, k])
    return out


@numba.njit(cache=True, nogil=True)
def _phase_agreement(spec, pair_i, pair_j, tdoa, k_lo, k_hi, bin_hz, floor):
    n_frames, n_mics, n_bins = spec.shape
    n_pairs = pair_i.shape[0]
    nb = k_hi - k_lo
    # C/|C| of a pair is (X_j/|X_j|) conj(X_i/|X_i|), and its steering exp(j w (tau_j - tau_i))
    # splits the same way: normalize and steer each mic once, then sum the pairs' products.
    st_r = np.empty((n_mics, nb), dtype=np.float32)
    st_i = np.empty((n_mics, nb), dtype=np.float32)
    for m in range(n_mics):
        w0 = _TWO_PI * k_lo * bin_hz * tdoa[m]
        dw = _TWO_PI * bin_hz * tdoa[m]
        zr, zi = math.cos(w0), math.sin(w0)
        cr, ci = math.cos(dw), math.sin(dw)
        for k in range(nb):
            st_r[m, k] = zr
            st_i[m, k] = zi
            zr, zi = zr * cr - zi * ci, zr * ci + zi * cr
    re = np.empty(nb, dtype=np.float32)
    im = np.empty(nb, dtype=np.float32)
    vr = np.empty((n_mics, nb), dtype=np.float32)
    vi = np.empty((n_mics, nb), dtype=np.float32)
    acc = np.empty(nb, dtype=np.float32)
    out = np.zeros((n_frames, n_bins), dtype=np.float32)
    norm = np.float32(1.0 / max(1, n_pairs))
    floor2 = floor * floor
    for f in range(n_frames):
        for m in range(n_mics):
            for k in range(nb):
                c = spec[f, m, k_lo + k]
                re[k] = c.real
                im[k] = c.imag
            for k in range(nb):
                r = re[k]
                i = im[k]
                m2 = np.float64(r) * r + np.float64(i) * i
                inv = np.float32((m2 > floor2) / math.sqrt(max(m2, 1e-300)))  # branch-free: vectorizes
                vr[m, k] = (r * st_r[m, k] - i * st_i[m, k]) * inv
                vi[m, k] = (r * st_i[m, k] + i * st_r[m, k]) * inv
        acc[:] = 0.0
        for p in range(n_pairs):
            i = pair_i[p]
            j = pair_j[p]
            for k in range(nb):
                acc[k] += vr[j, k] * vr[i, k] + vi[j, k] * vi[i, k]
        for k in range(nb):
            out[f, k_lo + k] = acc[k] * norm
    return out


@numba.njit(cache=True, nogil=True)
def _srp_lags(gcc, k_lo, k_hi, upsample, max_lag):
    n_pairs, n_bins = gcc.shape
    n_fft = 2 * (n_bins - 1)
    n_interp = n_fft * upsample
    padded = np.zeros((n_pairs, n_interp // 2 + 1), dtype=np.complex128)
    padded[:, k_lo:k_hi] = gcc[:, k_lo:k_hi]
    # irfft gives (1/n) (2 sum_k Re(G_k e^{j 2 pi k m / n})) for 0 < k < n/2 (the wrapper keeps the
    # band off bin 0 and the padded Nyquist bin); rescale to the mean over band bins.
    corr = np.fft.irfft(padded, n_interp, axis=-1)
    scale = n_interp / (2.0 * (k_hi - k_lo))
    n_lags = 2 * max_lag + 1
    out = np.empty((n_pairs, n_lags), dtype=np.float32)
    for p in range(n_pairs):
        for i in range(n_lags):
            out[p, i] = corr[p, (i - max_lag) % n_interp] * scale
    return out


@numba.njit(cache=True, nogil=True)
def _srp_lags_direct(gcc, k_lo, k_hi, steer_re, steer_im):
    n_pairs = gcc.shape[0]
    nb = k_hi - k_lo
    n_lags = steer_re.shape[1]
    out = np.empty((n_pairs, n_lags), dtype=np.float32)
    acc = np.empty(n_lags, dtype=np.float32)
    norm = np.float32(1.0 / nb)
    for p in range(n_pairs):
        acc[:] = 0.0
        for k in range(nb):
            c = gcc[p, k_lo + k]
            gr = c.real
            gi = c.imag
            if gr == 0.0 and gi == 0.0:
                continue  # a bin masked out of every frame (residual searches)
            for i in range(n_lags):  # contiguous over lags: vectorizes
                acc[i] += gr * steer_re[k, i] - gi * steer_im[k, i]
        for i in range(n_lags):
            out[p, i] = acc[i] * norm
    return out


@numba.njit(cache=True, nogil=True)
def _srp_interp(lags, index, frac):
    n_pairs, n_dirs = index.shape
    top = lags.shape[1] - 2
    acc = np.zeros(n_dirs, dtype=np.float32)
    for p in range(n_pairs):
        for d in range(n_dirs):
            i = min(max(index[p, d], 0), top)  # never read outside the table
            a = lags[p, i]
            acc[d] += a + frac[p, d] * (lags[p, i + 1] - a)
    out = np.empty(n_dirs, dtype=np.float32)
    norm = np.float32(1.0 / max(1, n_pairs))
    for d in range(n_dirs):
        out[d] = acc[d] * norm
    return out



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
    return _stft(signal, window, int(hop), n_frames)


def gcc_phat(cross: np.ndarray, floor: float = 1e-20) -> np.ndarray:
    """PHAT-weighted cross-spectra ``cross / |cross|`` ``[shape=(mics, bins)]``; bins with
    magnitude at or below ``floor`` (digital silence) become 0 rather than NaN."""
    cross = check_array(cross, "cross", np.complex64, 2)
    return _gcc_phat(cross, float(floor))


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
    return _srp_phat(gcc, k_lo, k_hi, float(bin_hz), tdoa, -1 if ref is None else int(ref))


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
    return _masked_pair_sum(spec, pair_i, pair_j, keep, k_lo, k_hi)


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
    return _phase_agreement(spec, pair_i, pair_j, tdoa, k_lo, k_hi, float(bin_hz), float(floor))


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
    return _srp_lags(gcc, k_lo, k_hi, int(upsample), int(max_lag))


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
    return _srp_lags_direct(gcc, k_lo, k_hi, steer_re, steer_im)


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
    return _srp_interp(lags, index, frac)


def plane_srp(gcc: np.ndarray, band: tuple[int, int], bin_hz: float, plane_delays: np.ndarray,
              points: np.ndarray) -> np.ndarray:
    """Exact SRP-PHAT of pair spectra ``gcc [shape=(pairs, bins)]`` at in-plane coordinates ``points
    [shape=(n, 2)]`` of a planar array (pair delays per coordinate and per unit height
    ``plane_delays [shape=(3, pairs)]``); ``[shape=(n,)]`` float32."""
    gcc, plane_delays, points = _check_plane(gcc, band, plane_delays, points)
    k_lo, k_hi = _check_band(band, gcc.shape[1])
    return _plane_srp(gcc, k_lo, k_hi, float(bin_hz), plane_delays, points)


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
    return _climb_plane(gcc, k_lo, k_hi, float(bin_hz), plane_delays, start, float(step))


def _check_plane(gcc, band, plane_delays, points):
    gcc = check_array(gcc, "gcc", np.complex64, 2)
    plane_delays = check_array(plane_delays, "plane_delays", np.float64, 2)
    points = check_array(points, "points", np.float64, 2)
    if plane_delays.shape != (3, gcc.shape[0]):
        raise ValueError(f"plane_delays: expected shape (3, {gcc.shape[0]}), got {plane_delays.shape}")
    if points.shape[1:] != (2,):
        raise ValueError(f"points: expected shape (n, 2), got {points.shape}")
    return gcc, plane_delays, points

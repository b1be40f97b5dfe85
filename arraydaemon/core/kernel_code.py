"""The numba kernels' code: compiled ahead of time into one extension module when the package is
installed (``compiled.py``), or by numba's JIT where that module is absent.

Pure functions, called only through the checked wrappers of :mod:`arraydaemon.core.kernels` (the
feature and SRP-PHAT path) and :mod:`arraydaemon.core.assignment` (the tracker's assignment), which
document their operands; ``compiled.EXPORTS`` gives each its one signature. Every kernel has a
plain-numpy reference (``core/reference.py``, scipy's assignment) that both builds must match
(``tests/core/test_kernels.py``, ``tests/core/test_assignment.py``). No FFT in here: numba's FFT
(rocket-fft) cannot be compiled ahead of time, and numpy's on the framed batch gives the same bits.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_TWO_PI = 2.0 * math.pi


@numba.njit(cache=True, nogil=True)
def frames(signal, window, hop, n_frames):
    n_fft = window.shape[0]
    n_mics = signal.shape[1]
    out = np.empty((n_frames, n_mics, n_fft), dtype=np.float64)
    for f in range(n_frames):
        start = f * hop
        for m in range(n_mics):
            for i in range(n_fft):
                out[f, m, i] = signal[start + i, m] * window[i]
    return out


@numba.njit(cache=True, nogil=True)
def gcc_phat(cross, floor):
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
def srp_phat(gcc, k_lo, k_hi, bin_hz, tdoa, ref):
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
def plane_srp(gcc, k_lo, k_hi, bin_hz, plane_delays, points):
    n, n_pairs = points.shape[0], plane_delays.shape[1]
    tdoa = np.empty((n, n_pairs))
    for d in range(n):
        x, y = points[d, 0], points[d, 1]
        h = math.sqrt(max(0.0, 1.0 - (x * x + y * y)))
        for p in range(n_pairs):
            tdoa[d, p] = x * plane_delays[0, p] + y * plane_delays[1, p] + h * plane_delays[2, p]
    return srp_phat(gcc, k_lo, k_hi, bin_hz, tdoa, -1)


@numba.njit(cache=True, nogil=True)
def place_in_disk(out, row, cx, cy, ox, oy):
    x, y = cx + ox, cy + oy
    r = max(math.sqrt(x * x + y * y), 1.0)
    out[row, 0] = x / r
    out[row, 1] = y / r


@numba.njit(cache=True, nogil=True)
def climb_plane(gcc, k_lo, k_hi, bin_hz, plane_delays, start, step):
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
                place_in_disk(cand, q, bx, by, (q % 3 - 1.0) * s, (q // 3 - 1.0) * s)
            values = plane_srp(gcc, k_lo, k_hi, bin_hz, plane_delays, cand)
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
                place_in_disk(one, 0, bx, by, vx, vy)
                bx, by = one[0, 0], one[0, 1]
                have_vertex = True
    if have_vertex:
        v = float(plane_srp(gcc, k_lo, k_hi, bin_hz, plane_delays, one)[0])
        if v > value:
            value = v
        else:
            bx, by = cand[4, 0], cand[4, 1]
    return np.array([bx, by]), value


@numba.njit(cache=True, nogil=True)
def masked_pair_sum(spec, pair_i, pair_j, keep, k_lo, k_hi):
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
def phase_agreement(spec, pair_i, pair_j, tdoa, k_lo, k_hi, bin_hz, floor):
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
def srp_lags_direct(gcc, k_lo, k_hi, steer_re, steer_im):
    n_pairs = gcc.shape[0]
    nb = k_hi - k_lo
    n_lags = steer_re.shape[1]
    out = np.empty((n_pairs, n_lags), dtype=np.float32)
    acc = np.empty((4, n_lags), dtype=np.float32)
    norm = np.float32(1.0 / nb)
    # Four pairs at a time share each steering row's loads (~20 % faster at 8 mics); each output
    # is still summed over the bins in order, so the result is the one-pair loop's to the bit. A
    # zero bin adds +-0 to a sum that is never -0, which leaves it as it is: skipping it is exact.
    p0 = 0
    while p0 + 4 <= n_pairs:
        acc[:] = 0.0
        for k in range(nb):
            c0 = gcc[p0, k_lo + k]
            c1 = gcc[p0 + 1, k_lo + k]
            c2 = gcc[p0 + 2, k_lo + k]
            c3 = gcc[p0 + 3, k_lo + k]
            r0, i0, r1, i1 = c0.real, c0.imag, c1.real, c1.imag
            r2, i2, r3, i3 = c2.real, c2.imag, c3.real, c3.imag
            if (r0 == 0.0 and i0 == 0.0 and r1 == 0.0 and i1 == 0.0 and r2 == 0.0 and i2 == 0.0
                    and r3 == 0.0 and i3 == 0.0):
                continue  # a bin masked out of every frame (residual searches)
            for i in range(n_lags):  # contiguous over lags: vectorizes
                sr = steer_re[k, i]
                si = steer_im[k, i]
                acc[0, i] += r0 * sr - i0 * si
                acc[1, i] += r1 * sr - i1 * si
                acc[2, i] += r2 * sr - i2 * si
                acc[3, i] += r3 * sr - i3 * si
        for q in range(4):
            for i in range(n_lags):
                out[p0 + q, i] = acc[q, i] * norm
        p0 += 4
    for p in range(p0, n_pairs):
        acc[0, :] = 0.0
        for k in range(nb):
            c = gcc[p, k_lo + k]
            gr = c.real
            gi = c.imag
            if gr == 0.0 and gi == 0.0:
                continue
            for i in range(n_lags):
                acc[0, i] += gr * steer_re[k, i] - gi * steer_im[k, i]
        for i in range(n_lags):
            out[p, i] = acc[0, i] * norm
    return out


@numba.njit(cache=True, nogil=True)
def srp_interp(lags, index, frac):
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
# The tracker's assignment (core/assignment.py): scipy's linear_sum_assignment algorithm


@numba.njit(cache=True, nogil=True)
def assign(cost, col4row):
    """Fills ``col4row [shape=(nr,)]`` with each row's column for ``cost [shape=(nr, nc)]``, nr <= nc,
    finite. Returns False if no complete matching exists (cannot happen for finite costs)."""
    nr, nc = cost.shape
    u = np.zeros(nr)
    v = np.zeros(nc)
    shortest = np.empty(nc)
    path = np.empty(nc, dtype=np.int64)
    row4col = np.full(nc, -1, dtype=np.int64)
    remaining = np.empty(nc, dtype=np.int64)
    seen_rows = np.zeros(nr, dtype=np.bool_)
    seen_cols = np.zeros(nc, dtype=np.bool_)
    for i in range(nr):
        col4row[i] = -1
    for cur_row in range(nr):
        for j in range(nc):
            shortest[j] = np.inf
            path[j] = -1
            remaining[j] = nc - j - 1  # scipy's order, so ties resolve as scipy's do
            seen_cols[j] = False
        for i in range(nr):
            seen_rows[i] = False
        n_remaining = nc
        min_val = 0.0
        i = cur_row
        sink = -1
        while sink == -1:
            seen_rows[i] = True
            index = -1
            lowest = np.inf
            for it in range(n_remaining):
                j = remaining[it]
                r = min_val + cost[i, j] - u[i] - v[j]
                if r < shortest[j]:
                    path[j] = i
                    shortest[j] = r
                if shortest[j] < lowest or (shortest[j] == lowest and row4col[j] == -1):
                    lowest = shortest[j]
                    index = it
            min_val = lowest
            if min_val == np.inf:
                return False
            j = remaining[index]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            seen_cols[j] = True
            n_remaining -= 1
            remaining[index] = remaining[n_remaining]
        u[cur_row] += min_val
        for i in range(nr):
            if seen_rows[i] and i != cur_row:
                u[i] += min_val - shortest[col4row[i]]
        for j in range(nc):
            if seen_cols[j]:
                v[j] -= min_val - shortest[j]
        j = sink
        while True:
            i = path[j]
            row4col[j] = i
            previous = col4row[i]
            col4row[i] = j
            j = previous
            if i == cur_row:
                break
    return True

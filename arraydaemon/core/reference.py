"""Plain-numpy references of the numba kernels in :mod:`arraydaemon.core.kernels`.

Each function is the obvious vectorised formula, written for clarity, not speed. The kernel tests
(``tests/core/test_kernels.py``) check every kernel against its reference, and ``arraydaemon bench``
times each kernel against it. They live in the package, not in ``tests/``, so that the benchmark
also works from an installed wheel. Shapes and dtypes are those of the kernels' public wrappers.
"""

from __future__ import annotations

import numpy as np

from arraydaemon.core.grids import climb_patches


def stft(signal: np.ndarray, window: np.ndarray, hop: int) -> np.ndarray:
    """Hann-windowed frames of ``signal [shape=(samples, mics)]`` every ``hop`` samples, through
    ``np.fft.rfft``: ``[shape=(frames, mics, n_fft//2+1)]`` complex64, complete frames only."""
    n_fft = window.shape[0]
    n_frames = 0 if signal.shape[0] < n_fft else 1 + (signal.shape[0] - n_fft) // hop
    starts = np.arange(n_frames) * hop
    frames = signal.astype(np.float64)[starts[:, None] + np.arange(n_fft)[None, :]]  # (frames, n_fft, mics)
    return np.fft.rfft(frames.transpose(0, 2, 1) * window, axis=-1).astype(np.complex64)


def gcc_phat(cross: np.ndarray, floor: float = 1e-20) -> np.ndarray:
    """``cross / |cross|`` ``[shape=(mics, bins)]``, 0 where ``|cross| <= floor``."""
    mag = np.abs(cross.astype(np.complex128))
    safe = np.where(mag > floor, mag, 1.0)
    return np.where(mag > floor, cross / safe, 0.0).astype(np.complex64)


def srp_phat(gcc: np.ndarray, band: tuple[int, int], bin_hz: float, tdoa: np.ndarray, ref: int | None) -> np.ndarray:
    """Mean over non-reference mics ``m`` (all rows if ``ref`` is None) and bins ``lo <= k < hi`` of
    ``Re(G_mk exp(j 2 pi f_k tdoa_dm))``: ``[shape=(directions,)]`` float32."""
    lo, hi = band
    others = np.array([m for m in range(gcc.shape[0]) if m != ref], dtype=np.intp)
    f = np.arange(lo, hi) * bin_hz
    steer = np.exp(2j * np.pi * f[None, None, :] * tdoa[:, others, None])  # (dirs, mics-1, bins)
    power = np.einsum("mk,dmk->d", gcc[others, lo:hi].astype(np.complex128), steer).real
    return (power / max(1, len(others) * (hi - lo))).astype(np.float32)


def masked_pair_sum(spec: np.ndarray, pair_i, pair_j, keep: np.ndarray, band: tuple[int, int]) -> np.ndarray:
    """``sum_t keep[t] X_tj conj(X_ti)`` per pair, band bins only (0 elsewhere):
    ``[shape=(pairs, bins)]`` complex64."""
    lo, hi = band
    out = np.zeros((len(pair_i), spec.shape[2]), dtype=np.complex64)
    cross = spec[:, pair_j, lo:hi] * np.conj(spec[:, pair_i, lo:hi])  # (frames, pairs, band bins)
    out[:, lo:hi] = (cross * keep[:, None, lo:hi]).sum(axis=0)
    return out


def phase_agreement(spec: np.ndarray, pair_i, pair_j, tdoa: np.ndarray, band: tuple[int, int], bin_hz: float,
                    floor: float = 1e-20) -> np.ndarray:
    """Mean over pairs of ``Re(C/|C| exp(j 2 pi f_k (tdoa_j - tdoa_i)))`` with ``C = X_j conj(X_i)``,
    taking ``C/|C|`` as 0 where either mic's ``|X| <= floor``; band bins only (0 elsewhere):
    ``[shape=(frames, bins)]`` float32."""
    lo, hi = band
    x = spec[:, :, lo:hi].astype(np.complex128)
    mag = np.abs(x)
    silent = (mag[:, pair_i] <= floor) | (mag[:, pair_j] <= floor)
    cross = x[:, pair_j] * np.conj(x[:, pair_i])
    phase = np.where(silent, 0.0, cross / np.where(silent, 1.0, np.abs(cross)))
    pair_tdoa = tdoa[pair_j] - tdoa[pair_i]
    steer = np.exp(2j * np.pi * np.arange(lo, hi)[None, :] * bin_hz * pair_tdoa[:, None])  # (pairs, bins)
    out = np.zeros((spec.shape[0], spec.shape[2]), dtype=np.float32)
    out[:, lo:hi] = (phase * steer).real.mean(axis=1)
    return out


def srp_lags(gcc: np.ndarray, band: tuple[int, int], upsample: int, max_lag: int) -> np.ndarray:
    """The direct sum ``r[p, l] = mean_k Re(G_pk exp(j 2 pi k l / (n_fft upsample)))`` over band bins
    ``k`` and lags ``l = -max_lag..max_lag``: ``[shape=(pairs, 2*max_lag+1)]`` float32 (the reference
    of both ``srp_lags`` and ``srp_lags_direct``)."""
    lo, hi = band
    n_interp = 2 * (gcc.shape[1] - 1) * upsample
    k = np.arange(lo, hi)
    lags = np.arange(-max_lag, max_lag + 1)
    steer = np.exp(2j * np.pi * np.outer(k, lags) / n_interp)  # (bins, lags)
    return ((gcc[:, lo:hi].astype(np.complex128) @ steer).real / (hi - lo)).astype(np.float32)


def srp_interp(lags: np.ndarray, index: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Mean over pairs of ``(1 - frac) lags[p, index] + frac lags[p, index + 1]``:
    ``[shape=(directions,)]`` float32."""
    rows = np.arange(lags.shape[0])[:, None]
    a = lags[rows, index].astype(np.float64)
    b = lags[rows, index + 1].astype(np.float64)
    return (a + frac * (b - a)).mean(axis=0).astype(np.float32)


def plane_srp(gcc: np.ndarray, band: tuple[int, int], bin_hz: float, plane_delays: np.ndarray,
              points: np.ndarray) -> np.ndarray:
    """Exact SRP-PHAT of pair spectra ``gcc [shape=(pairs, bins)]`` at in-plane coordinates ``points
    [shape=(n, 2)]`` (inside the unit disk; the height above the plane is what is left of unit length)
    of a planar array whose pair delays per coordinate are ``plane_delays [shape=(3, pairs)]``."""
    height = np.sqrt(np.maximum(0.0, 1.0 - np.einsum("ij,ij->i", points, points)))
    tdoa = points @ plane_delays[:2] + np.outer(height, plane_delays[2])
    return srp_phat(gcc, band, bin_hz, tdoa, None)


def climb_plane(gcc: np.ndarray, band: tuple[int, int], bin_hz: float, plane_delays: np.ndarray,
                start: np.ndarray, step: float) -> tuple[np.ndarray, float]:
    """Local search for the maximum of :func:`plane_srp` from in-plane point ``start [shape=(2,)]``;
    (point, SRP). Two levels, at ``step`` and ``step / 8``: at each, a 3x3 patch moves to its best
    point until the centre is best (at most 20 moves), then jumps to the vertex of the quadratic
    through the patch; the last vertex is kept only if it is better than the patch's centre."""

    def place(center, offsets):  # pulled into the unit disk
        p = center + offsets
        return p / np.maximum(np.sqrt(np.einsum("ij,ij->i", p, p)), 1.0)[:, None]

    unit = np.stack(np.meshgrid([-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]), axis=-1).reshape(-1, 2)
    return climb_patches(place, lambda points: plane_srp(gcc, band, bin_hz, plane_delays, points),
                         np.asarray(start, dtype=np.float64), unit, step)

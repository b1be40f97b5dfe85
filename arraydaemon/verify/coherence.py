"""Pair distances from diffuse noise: the coherence of a diffuse sound field between two mics is
``sinc(2 f d / c)`` (``np.sinc``; spherically isotropic field), whatever the direction of anything.

Over the quiet frames of a recording (room noise, reverberant tails: :func:`pairs.noise_frames`)
the complex coherence of every channel pair is ``G_ab(f) = S_ab / sqrt(S_aa S_bb)``. Sensor noise,
uncorrelated between channels, scales it down by ``alpha(f)`` = diffuse / (diffuse + sensor)
power, which varies with frequency (room noise is pinkish, sensor noise white) but is the same
for every pair. The fit alternates between ``alpha(f)`` (least squares over all pairs, smooth:
piecewise linear in log frequency between octave-band values, so it cannot cancel the sinc's
zeros) and each pair's distance (a 0.5 mm grid search), minimising ``sum_f (Re G_ab(f) - alpha(f)
sinc(2 f d_ab / c))^2``; it starts from ``alpha = 1`` (no sensor noise). A fit counts only when the field is diffuse: the imaginary part is small
(a directional sound has ``|G|`` near 1 with a turning phase), there is enough diffuse power
(``alpha`` well above 0 at low frequencies) and the residual is small.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arraydaemon.verify.pairs import Frames

F_LO_HZ = 80.0
F_HI_FRACTION = 0.45  # of the sample rate
STEP_M = 0.0005
MIN_FRAMES = 200  # ~3 s at 16 kHz
MAX_IMAG = 0.15  # mean |Im G| above this: not a diffuse field
MIN_ALPHA = 0.25  # mean alpha below 1 kHz below this: too little diffuse noise
MAX_RESIDUAL = 0.12  # RMS residual of a pair's fit


@dataclass
class CoherenceFit:
    """Fitted distance per pair ``distance [shape=(pairs,)]`` m (NaN where the fit does not count),
    its RMS residual, the pairs' coherence ``real [shape=(pairs, bins)]`` at ``freqs [shape=(bins,)]``
    and the fitted ``alpha [shape=(bins,)]``; ``frames`` used and why nothing counts (``reason``)."""

    distance: np.ndarray
    residual: np.ndarray
    freqs: np.ndarray
    real: np.ndarray
    alpha: np.ndarray
    frames: int
    reason: str = ""

    def model(self, p: int, speed: float) -> np.ndarray:
        """The fitted coherence of pair ``p`` ``[shape=(bins,)]`` (NaN when it does not count)."""
        return self.alpha * np.sinc(2.0 * self.freqs * self.distance[p] / speed)


def _octave_basis(freqs: np.ndarray) -> np.ndarray:
    """Hat functions in log frequency centred an octave apart from the lowest frequency:
    ``[shape=(bins, bands)]`` (rows sum to 1)."""
    lf = np.log2(freqs / freqs[0])
    centres = np.arange(0.0, float(lf[-1]) + 1.0)
    return np.clip(1.0 - np.abs(lf[:, None] - centres[None, :]), 0.0, 1.0)


def coherence_fit(frames: Frames, quiet: np.ndarray, pair_a: np.ndarray, pair_b: np.ndarray, speed: float,
                  max_distance_m: float, iterations: int = 4, use: np.ndarray | None = None) -> CoherenceFit:
    """Fit the distance of every pair ``(pair_a[p], pair_b[p])`` (columns of ``frames``) from the
    ``quiet`` frames; distances are searched up to ``max_distance_m``. Only the pairs ``use``
    ``[shape=(pairs,)]`` (default all: e.g. the mics', not a loopback channel's) are fitted."""
    lay = frames.layout
    k_lo = max(1, int(np.ceil(F_LO_HZ / lay.bin_hz)))
    k_hi = int(np.floor(F_HI_FRACTION * lay.sample_rate / lay.bin_hz))
    freqs = np.arange(k_lo, k_hi) * lay.bin_hz
    n_pairs = len(pair_a)
    empty = CoherenceFit(np.full(n_pairs, np.nan), np.full(n_pairs, np.nan), freqs, np.zeros((n_pairs, len(freqs))),
                         np.zeros(len(freqs)), len(quiet))
    if n_pairs == 0 or len(quiet) == 0:
        empty.reason = "no quiet frames" if n_pairs else "no pairs"
        return empty
    x = frames.spec[quiet][:, :, k_lo:k_hi].astype(np.complex128)  # (F, C, bins)
    auto = np.mean(np.abs(x) ** 2, axis=0)  # (C, bins)
    cross = np.mean(x[:, pair_b] * np.conj(x[:, pair_a]), axis=0)  # (pairs, bins)
    g = cross / np.sqrt(np.maximum(auto[pair_a] * auto[pair_b], 1e-30))
    real, imag = g.real, np.abs(g.imag)
    empty.real = real
    use = np.ones(n_pairs, dtype=bool) if use is None else np.asarray(use, dtype=bool)
    if use.sum() == 0:
        empty.reason = "no pairs of working mics"
        return empty
    all_real, real, imag = real, real[use], imag[use]
    if len(quiet) < MIN_FRAMES:
        empty.reason = f"too few quiet frames ({len(quiet)}, need {MIN_FRAMES})"
        return empty
    grid = np.arange(STEP_M, max(max_distance_m, 4 * STEP_M) + STEP_M, STEP_M)
    table = np.sinc(2.0 * grid[:, None] * freqs[None, :] / speed)  # (D, bins)
    table2 = table**2
    basis = _octave_basis(freqs)  # (bins, bands)
    alpha = np.ones(len(freqs))
    idx = np.zeros(n_pairs, dtype=np.intp)
    for it in range(iterations + 1):
        # distances given alpha: minimise sum_k (r - a s)^2 = const - 2 s.(a r) + s^2.a^2 over the grid
        cost = -2.0 * (table @ (alpha[None, :] * real).T) + (table2 @ (alpha**2))[:, None]  # (D, pairs)
        idx = np.argmin(cost, axis=0)
        if it == iterations:
            break
        s = table[idx]  # (pairs, bins)
        # alpha given distances: least squares over pairs and bins of the octave-band values
        normal = basis.T @ (np.sum(s * s, axis=0)[:, None] * basis) + 1e-6 * np.eye(basis.shape[1])
        alpha = np.clip(basis @ np.linalg.solve(normal, basis.T @ np.sum(s * real, axis=0)), 0.0, 1.0)
    s = table[idx]
    residual = np.full(n_pairs, np.nan)
    residual[use] = np.sqrt(np.mean((real - alpha[None] * s) ** 2, axis=1))
    distance = np.full(n_pairs, np.nan)
    distance[use] = grid[idx]
    low = freqs < 1000.0
    fit = CoherenceFit(distance, residual, freqs, all_real, alpha, len(quiet))
    mean_imag = float(np.mean(imag))
    mean_alpha = float(np.mean(alpha[low])) if low.any() else 0.0
    if mean_imag > MAX_IMAG:
        fit.reason = f"the quiet parts are not a diffuse field (mean |Im coherence| {mean_imag:.2f})"
    elif mean_alpha < MIN_ALPHA:
        fit.reason = f"too little diffuse noise above the sensor noise (coherence scale {mean_alpha:.2f})"
    if fit.reason:
        fit.distance = np.full(n_pairs, np.nan)
    else:
        fit.distance = np.where(np.nan_to_num(residual, nan=np.inf) <= MAX_RESIDUAL, distance, np.nan)
    return fit

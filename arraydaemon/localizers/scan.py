"""The SRP-PHAT scan over a run-time direction grid: a part both estimators compose.

An :class:`SrpScan` knows the array's mic pairs, forms their cross-spectra from a window's STFT
frames, whitens them (PHAT) and scores every scan direction by the steered response power.

Speed: the scan works in the lag domain. Each pair's band-limited GCC is computed once per window
at fine lags (1/4 sample at 16 kHz, see :func:`lag_upsample`; by zero-padded inverse FFTs,
:func:`kernels.srp_lags`, or for small arrays, whose lags are few, a product with fixed steering
vectors, :func:`kernels.srp_lags_direct`), and the SRP of a direction is the mean over pairs of that
GCC at the direction's delay, linearly interpolated (:func:`kernels.srp_interp`, lag positions
precomputed at start-up): one table lookup per (direction, pair) instead of a sum over ~200 bins.

Pairs: the SRP sums every mic pair (``pairs="all"``, the default up to 8 mics), not only the pairs
with the reference mic: the extra pairs lower the sidelobes, which is what makes secondary peaks
trustworthy (reverberant single-talker MAE 5.4° → 3.4° on a 6-mic ring). The pairs' cross-spectra
are formed from the window's STFT frames, at O(mics²) cost; above 8 mics the reference pairs are
used (``pairs="auto"``).

Planar arrays: a planar array measures only a direction's projection onto its plane (the length of
that projection is cos(elevation)), and the in-plane ring grid alone cannot find a source well above
the plane: its delays are shorter than those of any ring direction, and on a small array the ring's
best match is often an aliased, wrong azimuth. The scan therefore adds rings above the plane, evenly
spaced in the plane projection (:func:`grids.hemisphere_rings`). The published spectrum stays the
ring grid's (the first ``len(grid)`` scan points).

Prominence: diffuse noise is coherent at low frequencies, so its SRP is high (0.2-0.35) but flat
over the grid; a source must stand ``min_prominence`` above the median of the scanned SRP (diffuse
noise: ≲ 0.11 with 4 mics, ≲ 0.06 with 6; a talker: typically 0.15-0.4). For planar arrays the
median is that of the source's elevation ring, as diffuse noise peaks towards the normal; so a
source within ~10° of a planar array's normal is not reported (its delays hardly differ from those
of diffuse noise, and its azimuth is undefined anyway).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from arraydaemon.core import grids, kernels
from arraydaemon.core.options import LocalizerConfig
from arraydaemon.core.profiles import ArrayProfile
from arraydaemon.stages.features import FrameLayout


def lag_upsample(sample_rate: int, band_top_hz: float) -> int:
    """Lag-table resolution of the grid scan, as an upsampling factor of the sample rate: at least 9
    lags per period of the band's top frequency, so linear interpolation between lags is off by at
    most (2π/9)²/8 ≈ 6 % of a peak at that frequency, and much less for broadband sound (4 at 16 kHz
    up to 7 kHz)."""
    return int(max(2, math.ceil(9.0 * band_top_hz / sample_rate)))


def planar_scan_step(geometry, band_hz: float, speed_of_sound: float = 343.0) -> float:
    """In-plane spacing of the off-plane scan rings of a planar array (see the module doc).

    A quarter of the SRP main lobe's in-plane width ``c / (f_max aperture)`` at the band's top, so
    the lobe of any source is sampled near its top; at most 0.15, and at least 0.03 (≈ 3500 points)
    for very large arrays.
    """
    lobe = speed_of_sound / (max(band_hz, 1.0) * max(geometry.aperture_m, 1e-3))
    return float(min(0.15, max(0.03, lobe / 4.0)))


def choose_pairs(profile: ArrayProfile, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Mic indices ``(i, j)`` of the SRP pairs, ``[shape=(pairs,)]`` each (see the module doc)."""
    n, ref = profile.num_mics, profile.reference_mic
    if mode not in ("all", "reference", "auto"):
        raise ValueError(f"localizer pairs: expected 'all', 'reference' or 'auto', got {mode!r}")
    if mode == "all" or (mode == "auto" and n <= 8):
        pairs = list(itertools.combinations(range(n), 2))
    else:
        pairs = [(ref, m) for m in range(n) if m != ref]
    return np.array([p[0] for p in pairs], dtype=np.intp), np.array([p[1] for p in pairs], dtype=np.intp)


def _median(values: np.ndarray):
    """``np.median`` of a non-empty 1-d array, to the bit (its partition, then the mean of the middle one
    or two in the array's dtype), without its argument handling: a fifth of the call."""
    n = len(values)
    k = n // 2
    if n % 2:
        return np.partition(values, k)[k]
    part = np.partition(values, (k - 1, k))
    return (part[k - 1] + part[k]) / 2


class SrpScan:
    """SRP-PHAT of a profile's mic pairs over the scan directions ``points [shape=(scan, 3)]``: the
    grid's directions first, then (planar arrays) the off-plane rings.

    Public state a caller may read: ``grid``, ``points``, ``pair_i``/``pair_j`` ``[shape=(pairs,)]``,
    ``baselines [shape=(pairs, 3)]``, ``upsample``, ``max_lag``, ``lag_steering`` (None when the
    lag table is made by FFTs), ``lookup`` (the scan's lag-table positions) and, for ring grids,
    ``plane_step`` and ``plane_delays``.
    """

    def __init__(self, profile: ArrayProfile, layout: FrameLayout, config: LocalizerConfig, noise=None):
        self.profile = profile
        # a noise.whiten.NoiseWhitener: the pair cross-spectra are those of the talkers, the robot's
        # own noise cleaned out of them (None: as recorded)
        self.noise = noise
        self.layout = layout
        self.geometry = profile.geometry
        self.grid = grids.make_grid(self.geometry, config.resolution_deg, config.sphere_points)
        self.relative_mics = profile.relative_mics
        self.pair_i, self.pair_j = choose_pairs(profile, config.pairs)
        self.baselines = profile.mics[self.pair_j] - profile.mics[self.pair_i]  # (pairs, 3)
        self._keep_all = np.ones((layout.window_frames, layout.bins), dtype=bool)
        lay, c = layout, profile.speed_of_sound
        band_top_hz = (lay.band[1] - 1) * lay.bin_hz
        self.upsample = lag_upsample(lay.sample_rate, band_top_hz)
        self._lag_rate = lay.sample_rate * self.upsample
        longest = float(np.max(np.linalg.norm(self.baselines, axis=1))) if len(self.baselines) else 0.0
        self.max_lag = int(math.ceil(longest / c * self._lag_rate)) + 1
        n_lags, n_interp = 2 * self.max_lag + 1, lay.n_fft * self.upsample
        # The table by a product with fixed steering vectors when that is cheaper than the FFTs
        # (small arrays: few lags), else by zero-padded inverse FFTs.
        direct = (lay.band[1] - lay.band[0]) * n_lags <= 1.5 * n_interp * math.log2(n_interp)
        self.lag_steering = (kernels.lag_steering(lay.band, lay.n_fft, self.upsample, self.max_lag)
                             if direct else None)
        points = self.grid.vectors
        # Prominence baselines (see prominence): each scan point's group, as index arrays.
        self._baseline_of = np.zeros(len(points), dtype=np.intp)
        self.plane_step = None
        if self.grid.kind == "ring":
            self.plane_step = planar_scan_step(self.geometry, band_top_hz, c)
            points = np.concatenate([points, grids.hemisphere_rings(self.grid, self.plane_step)])
            inplane = grids.to_plane(points, self.grid)
            length = np.linalg.norm(inplane, axis=1)
            # unit in-plane directions, for the in-plane separation of sources
            self._inplane = inplane / np.maximum(length, 1e-9)[:, None]
            self._on_normal = length <= 1e-9
            # pair delays (s) per unit of the in-plane coordinates and of the height above the plane
            self.plane_delays = -np.stack([self.baselines @ self.grid.plane_u, self.baselines @ self.grid.plane_v,
                                           self.baselines @ np.asarray(self.grid.normal)]) / c
            # prominence groups: the elevation rings (equal in-plane length); the normal joins the innermost
            levels, ring = np.unique(np.round(length, 6), return_inverse=True)
            ring[ring == 0] = min(1, len(levels) - 1)
            self._baseline_of = ring.ravel()
        self._groups = [np.flatnonzero(self._baseline_of == r) for r in range(self._baseline_of.max() + 1)]
        self.points = points
        self.lookup = kernels.lag_lookup(self._lag_positions(points), n_lags)

    # -- delays

    def mic_tdoa(self, vectors: np.ndarray) -> np.ndarray:
        """Every mic's TDOA against the reference mic, ``[shape=(n, mics)]`` seconds."""
        return grids.tdoa_table(vectors, self.relative_mics, self.profile.speed_of_sound)

    def pair_delays(self, vectors: np.ndarray) -> np.ndarray:
        """Pair TDOAs ``tau_j - tau_i`` in seconds, ``[shape=(directions, pairs)]``."""
        return grids.pair_delays(vectors, self.baselines, self.profile.speed_of_sound)

    def _lag_positions(self, vectors: np.ndarray) -> np.ndarray:
        """Fractional indices into the lag table of each direction's pair delays, ``[shape=(n, pairs)]``."""
        return self.pair_delays(vectors) * self._lag_rate + self.max_lag

    # -- spectra

    def pair_sum(self, spectra: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
        """Pair cross-spectra of STFT frames ``spectra [shape=(frames, mics, bins)]`` summed over the
        frames ``keep [shape=(frames, bins)]`` selects (all by default): ``[shape=(pairs, bins)]``
        complex64, 0 outside the band."""
        if self.noise is not None:
            return self.noise.pair_sum(spectra, keep, self.pair_i, self.pair_j, self.layout.bins)
        if keep is None:
            keep = self._keep_all if self._keep_all.shape[0] == spectra.shape[0] else \
                np.ones(spectra.shape[::2], dtype=bool)
        return kernels.masked_pair_sum(spectra, self.pair_i, self.pair_j, keep, self.layout.band)

    def lags(self, summed_cross: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """PHAT-weighted pair spectra ``[shape=(pairs, bins)]`` of summed pair cross-spectra, and their
        lag-domain GCC table ``[shape=(pairs, lags)]`` (see :func:`kernels.srp_lags`)."""
        gcc = kernels.gcc_phat(summed_cross)
        if self.lag_steering is not None:
            return gcc, kernels.srp_lags_direct(gcc, self.layout.band, self.lag_steering)
        return gcc, kernels.srp_lags(gcc, self.layout.band, self.upsample, self.max_lag)

    def scan(self, lags: np.ndarray, grid_only: bool = False) -> np.ndarray:
        """SRP of every scan point ``[shape=(scan,)]`` (or of the grid's points only) from a lag table."""
        if grid_only:
            return kernels.srp_interp(lags, *(a[:, :len(self.grid)] for a in self.lookup))
        return kernels.srp_interp(lags, *self.lookup)

    def exact(self, gcc: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Exact SRP (frequency-domain steering) of pair spectra ``gcc [shape=(pairs, bins)]`` at
        ``vectors [shape=(n, 3)]``: ``[shape=(n,)]``."""
        return kernels.srp_phat(gcc, self.layout.band, self.layout.bin_hz, self.pair_delays(vectors), None)

    # -- peaks

    def prominence(self, values: np.ndarray, idx: int) -> float:
        """How far scan point ``idx`` stands above the median of ``values [shape=(scan,)]``; for
        planar arrays, the median of its elevation ring. Diffuse noise has a planar array's SRP
        rise towards the normal (short delays are coherent at low frequencies), evenly in azimuth:
        the ring median follows that rise, so an elevated talker still stands out and noise does not."""
        return float(values[idx] - _median(values[self._groups[self._baseline_of[idx]]]))

    def gated_peak(self, values: np.ndarray, config: LocalizerConfig) -> int | None:
        """Index of the highest peak of ``values [shape=(scan,)]`` if it passes the absolute
        (``min_confidence``) and the prominence gates, else None."""
        peaks = grids.pick_peaks(values, self.points, 1, config.min_separation_deg, config.min_confidence, 0.0)
        if not peaks or self.prominence(values, peaks[0]) < config.min_prominence:
            return None
        return peaks[0]

    def separation_cos_to_points(self, b: np.ndarray) -> np.ndarray:
        """:meth:`separation_cos` of every scan point and ``b [shape=(3,)]``: ``[shape=(scan,)]``."""
        if self.grid.kind != "ring":
            return self.points @ b
        pb = grids.to_plane(b, self.grid)
        norm = float(np.linalg.norm(pb))
        if norm <= 1e-9:
            return np.ones(len(self.points))
        return np.where(self._on_normal, 1.0, self._inplane @ (pb / norm))

    def separation_cos(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cosine of the angle between ``a [shape=(n, 3)]`` and ``b [shape=(3,)]``, in the array
        plane for planar arrays (their out-of-plane angle is poorly determined)."""
        if self.grid.kind != "ring":
            return a @ b
        n = self.grid.normal
        pa, pb = a - np.outer(a @ n, n), b - (b @ n) * n
        norm = np.linalg.norm(pa, axis=-1) * np.linalg.norm(pb)
        return np.where(norm > 1e-9, (pa @ pb) / np.maximum(norm, 1e-9), 1.0)

"""Localizer stage (SRP-PHAT): FeatureWindow → Estimate.

The steered response power of the window's GCC-PHAT spectra is scanned over a run-time direction
grid, the best direction is refined below the grid spacing by a local search, and further sources
are searched after masking the time-frequency bins the ones found explain. Confidence is the SRP
value at the peak: the mean phase agreement across mic pairs and band bins, in [-1, 1] (clipped to
[0, 1]).

Speed: the grid scan works in the lag domain. Each pair's band-limited GCC is computed once per
window at fine lags (1/4 sample at 16 kHz, see :func:`lag_upsample`; by zero-padded inverse FFTs,
:func:`kernels.srp_lags`, or for small arrays, whose lags are few, a product with fixed steering
vectors, :func:`kernels.srp_lags_direct`), and the SRP of a direction is the mean over pairs of that
GCC at the direction's delay, linearly interpolated (:func:`kernels.srp_interp`, lag positions
precomputed at start-up): one table lookup per (direction, pair) instead of a sum over ~200 bins.
The local refinement steers exactly in the frequency domain (:func:`kernels.srp_phat`), so
directions stay sub-degree accurate: a pattern search of 3x3 patches that moves until its centre is
best (interpolation can shift the scan's peak by more than the grid spacing when the peak is broad),
at two scales, each finished by a quadratic fit. The searches for further sources (below) use the
same scan and refinement, and are skipped when too few time-frequency bins remain to reach their
thresholds.

Planar arrays: a planar array measures only a direction's projection onto its plane (the length of
that projection is cos(elevation)), and the in-plane ring grid alone cannot find a source well above
the plane: its delays are shorter than those of any ring direction, and on a small array the ring's
best match is often an aliased, wrong azimuth. The scan therefore adds rings above the plane, evenly
spaced in the plane projection (:func:`grids.hemisphere_rings`), and the refinement searches in those
in-plane coordinates. The published spectrum stays the ring grid's.

The activity gate publishes an empty source list when the window is too quiet or no direction
stands out (sensor noise gives SRP values ≲ 0.1; for diffuse noise see "Prominence" below).

Pairs: the SRP sums every mic pair (``pairs="all"``, the default up to 8 mics), not only the pairs
with the reference mic the features carry: the extra pairs lower the sidelobes, which is what makes
secondary peaks trustworthy (reverberant single-talker MAE 5.4° → 3.4° on a 6-mic ring). The pairs'
cross-spectra are formed here from the window's STFT frames, at O(mics²) cost; above 8 mics the
reference pairs are used (``pairs="auto"``).

Several sources: speech mixtures are sparse in time-frequency, so after each peak the STFT bins
that agree with it (mean pair phase agreement ≥ ``mask_agreement``) are removed and the SRP of the
remaining bins is searched for the next source, away from the ones found. A secondary source must
reach ``min_confidence`` and ``relative_threshold`` × the first source's SRP on that residual (its
confidence is that residual SRP). Secondary peaks of the plain SRP, by contrast, are mostly
sidelobes and reflections of the first.

Prominence: diffuse noise is coherent at low frequencies, so its SRP is high (0.2-0.35) but flat
over the grid; every source must stand ``min_prominence`` above the median of the scanned SRP
(diffuse noise: ≲ 0.11 with 4 mics, ≲ 0.06 with 6; a talker: typically 0.15-0.4). For planar
arrays the median is that of the source's elevation ring, as diffuse noise peaks towards the normal;
so a source within ~10° of a planar array's normal is not reported (its delays hardly differ from
those of diffuse noise, and its azimuth is undefined anyway).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from arraydaemon.core import grids, kernels
from arraydaemon.service.settings import INTEGRATION_S
from arraydaemon.stages.features import FrameLayout
from arraydaemon.core.messages import Estimate, FeatureWindow, SourceDirection
from arraydaemon.core.profiles import ArrayProfile



@dataclass(frozen=True)
class LocalizerConfig:
    resolution_deg: float | None = None  # None: 1° rings, and a sphere of sphere_points (3-D)
    sphere_points: int = 2000
    max_sources: int = 4
    min_separation_deg: float = 25.0
    min_confidence: float = 0.12  # absolute SRP gate for any source
    relative_threshold: float = 0.5  # secondary peaks must reach this fraction of the first
    min_level_db: float = -75.0  # windows quieter than this are inactive
    pairs: str = "auto"  # SRP-PHAT mic pairs: "all", "reference" or "auto" (all up to 8 mics)
    mask_agreement: float = 0.5  # STFT bins agreeing this well with a found source are removed
    min_prominence: float = 0.1  # a peak must stand this far above the spectrum's median (diffuse noise: < 0.1)
    # Time constant of the exponential integration of the pair cross-spectra (and of the neural
    # spectrum) over past windows; 0 localizes every window on its own. See SrpPhatLocalizer.
    integration_s: float = INTEGRATION_S


def pick_peaks(spectrum: np.ndarray, vectors: np.ndarray, max_peaks: int, min_separation_deg: float,
               threshold: float, relative_threshold: float) -> list[int]:
    """Greedy peak picking on a grid spectrum ``[shape=(directions,)]`` over ``vectors``.

    Each pick is the grid maximum among directions at least ``min_separation_deg`` from earlier
    picks, and must be a local maximum (no higher direction within half the separation), above
    ``threshold`` and above ``relative_threshold`` × the first pick.
    """
    peaks: list[int] = []
    if max_peaks < 1 or len(spectrum) == 0:
        return peaks
    idx = int(np.argmax(spectrum))
    if max_peaks == 1:  # the global maximum is a local one: no neighbourhoods needed
        return [idx] if spectrum[idx] >= threshold else peaks
    cos_sep = np.cos(np.radians(min_separation_deg))
    cos_local = np.cos(np.radians(min_separation_deg / 2))
    available = np.ones(len(spectrum), dtype=bool)
    while len(peaks) < max_peaks and available.any():
        idx = int(np.argmax(np.where(available, spectrum, -np.inf)))
        value = spectrum[idx]
        if value < threshold or (peaks and value < relative_threshold * spectrum[peaks[0]]):
            break
        cos_to = vectors @ vectors[idx]
        available &= cos_to < cos_sep
        if np.any(spectrum[cos_to >= cos_local] > value):
            continue  # on the flank of a stronger, already-suppressed peak
        peaks.append(idx)
    return peaks


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


class SrpPhatLocalizer:
    """Stage: FeatureWindow → Estimate with up to ``max_sources`` directions.

    Temporal integration (``config.integration_s`` = tau > 0): the first source is searched in the
    pair cross-spectra summed over the window's frames *plus* the integrated sums of earlier windows
    decayed by ``exp(-dt / tau)``, before PHAT whitening. Unwhitened sums weight loud frames more, so
    a talker's direct path adds up over windows while reverberation and noise, which change from
    window to window, do not; silence contributes little. Activity decisions stay per window (level
    and prominence gates on the window's own SRP here, the activity head in the neural stage), and
    further sources are searched in the window alone. Causal; :meth:`reset` forgets the past, and a
    window whose time does not advance (a new stream) starts afresh.
    """

    name = "srp-phat"

    def __init__(self, profile: ArrayProfile, layout: FrameLayout, config: LocalizerConfig = LocalizerConfig()):
        self.profile = profile
        self.layout = layout
        self.config = config
        self.geometry = profile.geometry
        self.grid = grids.make_grid(self.geometry, config.resolution_deg, config.sphere_points)
        self._rel = profile.relative_mics
        self._tdoa = self._tdoa_of(self.grid.vectors)
        self._pair_i, self._pair_j = self._choose_pairs(config.pairs)
        self._baselines = profile.mics[self._pair_j] - profile.mics[self._pair_i]  # (pairs, 3)
        self._keep_all = np.ones((layout.window_frames, layout.bins), dtype=bool)
        self.reset()
        self._init_scan()
        self._init_refinement()

    def _init_scan(self) -> None:
        """The lag-domain scan: a table of every pair's GCC at 1/upsample-sample lags (centred on lag
        0, covering the longest pair), and each scanned direction's pair delays as indices into it."""
        lay, c = self.layout, self.profile.speed_of_sound
        band_top_hz = (lay.band[1] - 1) * lay.bin_hz
        self._upsample = lag_upsample(lay.sample_rate, band_top_hz)
        self._lag_rate = lay.sample_rate * self._upsample
        longest = float(np.max(np.linalg.norm(self._baselines, axis=1))) if len(self._baselines) else 0.0
        self._max_lag = int(math.ceil(longest / c * self._lag_rate)) + 1
        n_lags, n_interp = 2 * self._max_lag + 1, lay.n_fft * self._upsample
        # The table by a product with fixed steering vectors when that is cheaper than the FFTs
        # (small arrays: few lags), else by zero-padded inverse FFTs.
        direct = (lay.band[1] - lay.band[0]) * n_lags <= 1.5 * n_interp * math.log2(n_interp)
        self._lag_steering = (kernels.lag_steering(lay.band, lay.n_fft, self._upsample, self._max_lag)
                              if direct else None)
        scan = self.grid.vectors
        # Prominence baselines (see _prominence): each scan point's group, as index arrays.
        self._baseline_of = np.zeros(len(scan), dtype=np.intp)
        self._plane_step = None
        if self.grid.kind == "ring":
            self._plane_step = planar_scan_step(self.geometry, band_top_hz, c)
            scan = np.concatenate([scan, grids.hemisphere_rings(self.grid, self._plane_step)])
            inplane = grids.to_plane(scan, self.grid)
            length = np.linalg.norm(inplane, axis=1)
            # unit in-plane directions, for the in-plane separation of sources
            self._scan_inplane = inplane / np.maximum(length, 1e-9)[:, None]
            self._scan_on_normal = length <= 1e-9
            # pair delays (s) per unit of the in-plane coordinates and of the height above the plane
            self._plane_delays = -np.stack([self._baselines @ self.grid.plane_u, self._baselines @ self.grid.plane_v,
                                            self._baselines @ np.asarray(self.grid.normal)]) / c
            # prominence groups: the elevation rings (equal in-plane length); the normal joins the innermost
            levels, ring = np.unique(np.round(length, 6), return_inverse=True)
            ring[ring == 0] = min(1, len(levels) - 1)
            self._baseline_of = ring.ravel()
        self._baselines_idx = [np.flatnonzero(self._baseline_of == r) for r in range(self._baseline_of.max() + 1)]
        self._scan = scan  # [shape=(scan, 3)]: the grid first, then (planar) the off-plane rings
        self._scan_lookup = kernels.lag_lookup(self._lag_positions(scan), n_lags)

    def _init_refinement(self) -> None:
        """Patches of the local searches: _refine (3x3, unit steps) and refine_with."""
        # _refine: in-plane coordinates for planar arrays, degrees (along azimuth, elevation) otherwise
        unit = np.stack(np.meshgrid([-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]), axis=-1).reshape(-1, 2)
        if self.grid.kind == "half-ring":
            unit = unit[unit[:, 1] == 0]  # a line: one dimension
        self._unit_patch = unit
        self._refine_step = self._plane_step / 2 if self.grid.kind == "ring" else self.grid.spacing_deg / 2
        # tangent patches turn about this axis: +z (sphere) or the normal of a half ring's plane
        self._patch_up = np.cross(self.grid.plane_u, self.grid.plane_v) if self.grid.kind == "half-ring" else None
        # refine_with: 5x5 patches in degrees along azimuth/elevation, coarse to fine
        offsets = np.arange(-2, 3, dtype=np.float64)
        step = self.grid.spacing_deg / 2
        if self.grid.kind == "ring":
            az_off, el_off = np.meshgrid(np.arange(-15.0, 16.0, 3.0), np.arange(0.0, 81.0, 10.0))
            self._planar_scan = np.stack([az_off.ravel(), el_off.ravel()], axis=1)
            step = 2.5
        if self.grid.kind == "half-ring":
            self._patches = [np.stack([offsets * s, np.zeros(5)], axis=1)
                             for s in (step, step / 4, step / 16, step / 64)]
        else:
            mesh = np.stack(np.meshgrid(offsets, offsets), axis=-1).reshape(-1, 2)
            self._patches = [mesh * s for s in (step, step / 4, step / 16, step / 64)]

    def reset(self) -> None:
        self._integrated: np.ndarray | None = None  # [shape=(pairs, bins)] complex64
        self._last_t_end: float | None = None

    def _decay(self, window: FeatureWindow) -> float:
        """Weight of the integrated past at ``window``: ``exp(-dt / tau)`` for the time since the
        previous window, 0 without integration or when time did not advance (a new stream)."""
        last, self._last_t_end = self._last_t_end, window.t_end
        tau = self.config.integration_s
        if tau <= 0.0 or last is None or not window.t_end > last:
            return 0.0
        return math.exp(-(window.t_end - last) / tau)

    def _integrate(self, sums: np.ndarray, decay: float) -> np.ndarray:
        """``sums [shape=(pairs, bins)]`` plus the decayed integral of the earlier windows' sums."""
        if self.config.integration_s <= 0.0:
            return sums
        if decay > 0.0 and self._integrated is not None and self._integrated.shape == sums.shape:
            self._integrated *= np.float32(decay)
            self._integrated += sums
        else:
            self._integrated = np.array(sums, dtype=np.complex64)
        return self._integrated

    def _tdoa_of(self, vectors: np.ndarray) -> np.ndarray:
        return grids.tdoa_table(vectors, self._rel, self.profile.speed_of_sound)

    def _choose_pairs(self, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """Mic indices ``(i, j)`` of the SRP pairs, ``[shape=(pairs,)]`` each."""
        n, ref = self.profile.num_mics, self.profile.reference_mic
        if mode not in ("all", "reference", "auto"):
            raise ValueError(f"localizer pairs: expected 'all', 'reference' or 'auto', got {mode!r}")
        if mode == "all" or (mode == "auto" and n <= 8):
            pairs = list(itertools.combinations(range(n), 2))
        else:
            pairs = [(ref, m) for m in range(n) if m != ref]
        return np.array([p[0] for p in pairs], dtype=np.intp), np.array([p[1] for p in pairs], dtype=np.intp)

    def _pair_delays(self, vectors: np.ndarray) -> np.ndarray:
        """Pair TDOAs ``tau_j - tau_i`` in seconds, ``[shape=(directions, pairs)]``."""
        return pair_delays(vectors, self._baselines, self.profile.speed_of_sound)

    def _lag_positions(self, vectors: np.ndarray) -> np.ndarray:
        """Fractional indices into the lag table of each direction's pair delays, ``[shape=(n, pairs)]``."""
        return self._pair_delays(vectors) * self._lag_rate + self._max_lag

    def _pair_srp(self, gcc: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Exact SRP (frequency-domain steering) of pair spectra ``gcc [shape=(pairs, bins)]``."""
        return kernels.srp_phat(gcc, self.layout.band, self.layout.bin_hz, self._pair_delays(vectors), None)

    def _lags(self, summed_cross: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """PHAT-weighted pair spectra ``[shape=(pairs, bins)]`` of summed pair cross-spectra, and their
        lag-domain GCC table ``[shape=(pairs, lags)]`` (see :func:`kernels.srp_lags`)."""
        gcc = kernels.gcc_phat(summed_cross)
        if self._lag_steering is not None:
            return gcc, kernels.srp_lags_direct(gcc, self.layout.band, self._lag_steering)
        return gcc, kernels.srp_lags(gcc, self.layout.band, self._upsample, self._max_lag)

    def _pair_sum(self, window: FeatureWindow, keep: np.ndarray | None = None) -> np.ndarray:
        """Pair cross-spectra of ``window`` summed over the frames ``keep [shape=(frames, bins)]``
        selects (all by default): ``[shape=(pairs, bins)]`` complex64, 0 outside the band."""
        if keep is None:
            keep = self._keep_all if self._keep_all.shape[0] == window.spectra.shape[0] else \
                np.ones(window.spectra.shape[::2], dtype=bool)
        return kernels.masked_pair_sum(window.spectra, self._pair_i, self._pair_j, keep, self.layout.band)

    def spatial_spectrum(self, window: FeatureWindow) -> np.ndarray:
        """SRP-PHAT over the grid (lag-domain scan), ``[shape=(directions,)]`` float32."""
        _, lags = self._lags(self._pair_sum(window))
        return kernels.srp_interp(lags, *(a[:, :len(self.grid)] for a in self._scan_lookup))

    def _prominence(self, scan: np.ndarray, idx: int) -> float:
        """How far scan direction ``idx`` stands above the median of ``scan [shape=(scan,)]``; for
        planar arrays, the median of its elevation ring. Diffuse noise has a planar array's SRP
        rise towards the normal (short delays are coherent at low frequencies), evenly in azimuth:
        the ring median follows that rise, so an elevated talker still stands out and noise does not."""
        return float(scan[idx] - np.median(scan[self._baselines_idx[self._baseline_of[idx]]]))

    def _scan_separation_cos(self, b: np.ndarray) -> np.ndarray:
        """:meth:`_separation_cos` of every scan direction and ``b [shape=(3,)]``."""
        if self.grid.kind != "ring":
            return self._scan @ b
        pb = grids.to_plane(b, self.grid)
        norm = float(np.linalg.norm(pb))
        if norm <= 1e-9:
            return np.ones(len(self._scan))
        return np.where(self._scan_on_normal, 1.0, self._scan_inplane @ (pb / norm))

    def _separation_cos(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cosine of the angle between ``a [shape=(n, 3)]`` and ``b [shape=(3,)]``, in the array
        plane for planar arrays (their out-of-plane angle is poorly determined)."""
        if self.grid.kind != "ring":
            return a @ b
        n = self.grid.normal
        pa, pb = a - np.outer(a @ n, n), b - (b @ n) * n
        norm = np.linalg.norm(pa, axis=-1) * np.linalg.norm(pb)
        return np.where(norm > 1e-9, (pa @ pb) / np.maximum(norm, 1e-9), 1.0)

    def _secondary_sources(self, window: FeatureWindow, first: np.ndarray, first_value: float) -> list[SourceDirection]:
        """Further sources after ``first``: masks the STFT bins each found source explains and
        searches the SRP of the rest."""
        cfg = self.config
        lay = self.layout
        keep = np.ones((window.spectra.shape[0], lay.bins), dtype=bool)
        vectors = self._scan
        cos_sep = np.cos(np.radians(cfg.min_separation_deg))
        near = np.zeros(len(vectors), dtype=bool)
        found, out = [first], []
        while len(found) < cfg.max_sources:
            near |= self._scan_separation_cos(found[-1]) >= cos_sep
            agreement = kernels.phase_agreement(window.spectra, self._pair_i, self._pair_j,
                                                self._tdoa_of(found[-1][None])[0], lay.band, lay.bin_hz)
            keep &= agreement < cfg.mask_agreement
            # A bin masked in every frame has G = 0, and the SRP is a mean over band bins of terms
            # |.| <= 1: the residual cannot reach the thresholds unless enough bins are left.
            left = float(np.mean(keep[:, lay.band[0]:lay.band[1]].any(axis=0)))
            if left < max(cfg.min_confidence, cfg.relative_threshold * first_value, 1e-9):
                break
            gcc, lags = self._lags(self._pair_sum(window, keep))
            spectrum = kernels.srp_interp(lags, *self._scan_lookup)
            masked = np.where(near, -np.inf, spectrum)
            peaks = pick_peaks(masked, vectors, 1, cfg.min_separation_deg, cfg.min_confidence, 0.0)
            if (not peaks or spectrum[peaks[0]] < cfg.relative_threshold * first_value
                    or self._prominence(spectrum, peaks[0]) < cfg.min_prominence):
                break
            vec, value = self._refine(gcc, vectors[peaks[0]])
            if any(self._separation_cos(vec[None], f)[0] >= cos_sep for f in found):
                break  # the refinement slid back onto a source already found
            out.append(make_source(vec, value))
            found.append(vec)
        return out

    def _refine(self, gcc: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, float]:
        """Local search from scan direction ``start`` for the maximum of the exact SRP of pair
        spectra ``gcc [shape=(pairs, bins)]``; (vector, SRP).

        Two levels, at half the scan spacing and an eighth of that: at each, a 3x3 patch moves to
        its best point until the centre is best (so the search also undoes the lag-domain scan's
        interpolation bias, which can exceed the grid spacing on small arrays with broad peaks),
        then jumps to the vertex of the quadratic through the patch. Planar arrays search in-plane
        coordinates (the scan already covered elevation)."""
        lay = self.layout
        if self.grid.kind == "ring":
            def place(center, offsets):  # in-plane coordinates, pulled into the unit disk
                p = center + offsets
                return p / np.maximum(np.sqrt(np.einsum("ij,ij->i", p, p)), 1.0)[:, None]

            def score(points):
                height = np.sqrt(np.maximum(0.0, 1.0 - np.einsum("ij,ij->i", points, points)))
                tdoa = points @ self._plane_delays[:2] + np.outer(height, self._plane_delays[2])
                return kernels.srp_phat(gcc, lay.band, lay.bin_hz, tdoa, None)

            best = grids.to_plane(start, self.grid)
        else:
            def place(center, offsets):
                return grids.fold(grids.tangent_patch(center, offsets, up=self._patch_up), self.geometry)

            def score(points):
                return self._pair_srp(gcc, points)

            best = start
        centre = len(self._unit_patch) // 2
        for step in (self._refine_step, self._refine_step / 8):
            patch = self._unit_patch * step
            for _ in range(20):
                cand = place(best, patch)
                values = score(cand)
                i = int(np.argmax(values))
                best, value = cand[i], float(values[i])
                if i == centre:
                    break
            vertex = quadratic_vertex(values, patch) if i == centre else None
            if vertex is not None:
                best = place(best, vertex[None])[0]  # the centre of the next patch
        if vertex is not None:  # the last vertex is kept only if it is better
            v = float(score(best[None])[0])
            if v > value:
                value = v
            else:
                best = cand[centre]
        if self.grid.kind == "ring":
            best = grids.from_plane(best[None], self.grid)[0]
        return best, value

    def refine_with(self, score, start: np.ndarray) -> tuple[np.ndarray, float]:
        """Local search maximizing ``score(vectors [shape=(n, 3)]) -> [shape=(n,)]`` from ``start``."""
        best = start
        if self.grid.kind == "ring":
            # A planar array sees the out-of-plane angle only through the shrinking in-plane delays,
            # and the in-plane peak of an elevated source is biased: scan a coarse (azimuth,
            # elevation) patch around the ring peak before the fine local search.
            scan = grids.tangent_patch(start, self._planar_scan, up=self.grid.normal)
            best = scan[int(np.argmax(score(scan)))]
        value = -np.inf
        for patch in self._patches:
            cand = grids.fold(grids.tangent_patch(best, patch), self.geometry)
            values = score(cand)
            i = int(np.argmax(values))
            best, value = cand[i], float(values[i])
        return best, value

    def _gated_peak(self, scan: np.ndarray) -> int | None:
        """Index of the highest peak of ``scan [shape=(scan,)]`` if it passes the absolute and the
        prominence gates, else None."""
        peaks = pick_peaks(scan, self._scan, 1, self.config.min_separation_deg, self.config.min_confidence, 0.0)
        if not peaks or self._prominence(scan, peaks[0]) < self.config.min_prominence:
            return None
        return peaks[0]

    def process(self, window: FeatureWindow) -> Estimate:
        cfg = self.config
        sums = self._pair_sum(window)
        gcc, lags = self._lags(sums)
        scan = kernels.srp_interp(lags, *self._scan_lookup)
        peak = self._gated_peak(scan) if window.level_db >= cfg.min_level_db else None
        if cfg.integration_s > 0.0:
            # Whether: this window's gates (an integrated diffuse field converges to its coherence,
            # whose fixed phases make a steadier peak than any one window shows). Where: the integral.
            gcc, lags = self._lags(self._integrate(sums, self._decay(window)))
            scan = kernels.srp_interp(lags, *self._scan_lookup)
            if peak is not None:
                peak = int(np.argmax(scan))
        spectrum = scan[:len(self.grid)].copy()
        sources: list[SourceDirection] = []
        if peak is not None:
            vec, value = self._refine(gcc, self._scan[peak])
            sources.append(make_source(vec, value))
            if cfg.max_sources > 1:
                sources.extend(self._secondary_sources(window, vec, value))
        return Estimate.of_window(window, self.name, sources, spectrum)


def pair_delays(vectors: np.ndarray, baselines: np.ndarray, speed_of_sound: float) -> np.ndarray:
    """TDOAs ``tau_j - tau_i`` (s) of plane waves from unit ``vectors [shape=(D, 3)]`` at mic pairs with
    baselines ``r_j - r_i [shape=(P, 3)]``: ``[shape=(D, P)]``."""
    return -(np.asarray(vectors, dtype=np.float64) @ baselines.T) / speed_of_sound


def quadratic_vertex(values: np.ndarray, patch: np.ndarray) -> np.ndarray | None:
    """Offset ``[shape=(2,)]`` of the maximum of the quadratic through ``values`` on the 3x3 (or 3x1)
    ``patch`` of offsets (from :class:`SrpPhatLocalizer`, row-major, centre in the middle), within
    one step of the centre; None where the values do not curve down."""
    h = float(np.max(np.abs(patch[:, 0])))
    f = np.asarray(values, dtype=np.float64)
    if len(f) == 3:  # along one dimension
        curve = f[0] - 2 * f[1] + f[2]
        return None if curve >= 0 else np.array([float(np.clip(0.5 * (f[0] - f[2]) / curve, -1, 1)) * h, 0.0])
    f = f.reshape(3, 3)  # [y, x]
    gx, gy = 0.5 * (f[1, 2] - f[1, 0]), 0.5 * (f[2, 1] - f[0, 1])
    hxx, hyy = f[1, 2] - 2 * f[1, 1] + f[1, 0], f[2, 1] - 2 * f[1, 1] + f[0, 1]
    hxy = 0.25 * (f[2, 2] - f[2, 0] - f[0, 2] + f[0, 0])
    det = hxx * hyy - hxy * hxy
    if hxx >= 0 or det <= 0:
        return None
    x = -(hyy * gx - hxy * gy) / det
    y = -(hxx * gy - hxy * gx) / det
    return np.clip([x, y], -1.0, 1.0) * h


def make_source(vector: np.ndarray, confidence: float) -> SourceDirection:
    """A SourceDirection from a unit vector; confidence clipped to [0, 1]."""
    v = np.asarray(vector, dtype=np.float64)
    v = v / np.linalg.norm(v)
    az, el = grids.vector_to_azel(v)
    return SourceDirection(
        azimuth_deg=float(az),
        elevation_deg=float(el),
        vector=(float(v[0]), float(v[1]), float(v[2])),
        confidence=float(min(1.0, max(0.0, confidence))),
    )

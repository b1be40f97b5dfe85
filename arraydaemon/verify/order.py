"""The channel order: is the declared ``channel_map`` the one the recording's sound agrees with, and
if not, which map is.

A map is scored by how coherent the directions it implies are across the mic pairs: with the right
map every window's delays are those of one plane wave on the declared geometry; with a wrong one
the pairs disagree. In three steps:

1. **Arrival times** (map-free): per active window, each channel's arrival time is fitted to all
   pairs' GCC-PHAT peak delays (robustly: iteratively reweighted least squares with Tukey's
   weights, so a pair fooled by a reflection drops out); the share of pair weight that agrees is
   the window's quality.
2. **Every map** (exhaustive when there are at most :data:`EXHAUSTIVE_LIMIT`, i.e. any map of up
   to 8 mics on up to 8 channels; a beam search above): the arrival times are fitted by a plane
   wave on the mapped geometry (:func:`kernels.tdoa_scores`); the best :data:`SHORTLIST` go on.
3. **SRP-PHAT** of the shortlist, the declared map and the symmetric variants of the leaders
   (:func:`kernels.srp_scores`): the mean over active windows of each window's SRP peak (0-1) is
   the map's score, and the per-window differences between two maps give a paired z-score.

The declared map is *wrong* when the best map beats it by at least :data:`MIN_GAIN` with
``z >= Z_WRONG``, and it is not one of the best map's symmetric variants (the maps a rotation or
reflection of the array makes indistinguishable, :mod:`.symmetry`), or statistically tied with it.
Those are reported as ambiguous; ``--source-azimuth`` (where the talker stood during the first
seconds of speech) picks the one whose direction there matches, and the difference that remains
is the rotation offset (:mod:`.azimuth`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from arraydaemon.core import grids
from arraydaemon.core.profiles import analyse_geometry
from arraydaemon.verify import azimuth, kernels, symmetry
from arraydaemon.verify.pairs import PairObservations

EXHAUSTIVE_LIMIT = 60000
SHORTLIST = 48
FINALISTS = 8
COARSE_WINDOWS = 64
TDOA_WINDOWS = 80  # the exhaustive plane-wave fit uses the clearest windows only
BEAM = 3000
Z_WRONG = 4.0
MIN_GAIN = 0.0001
MIN_WINDOWS = 8
SIGMA_SAMPLES = 0.75  # delay tolerance of the plane-wave fit, in samples
NORM_SLACK = 0.2  # |s| c may exceed 1 by this much before the fit is penalised (and 3-D: fall below 1)
EXACT_TOL_M = 0.0005  # symmetries: distances equal within this


# ----------------------------------------------------------------------------------------------
# Geometry of a (sub-)array


@dataclass(eq=False)
class MapGeometry:
    """What scoring needs of mic positions ``mics [shape=(M, 3)]``: centred positions, their
    pseudo-inverse on the geometry's span ``pinv [shape=(3, M)]``, the slowness-norm range, and a
    direction grid with each direction's mic-pair delays ``pair_delays [shape=(D, M(M-1)/2)]`` s."""

    mics: np.ndarray
    speed: float
    kind: str
    pos: np.ndarray
    pinv: np.ndarray
    norm_range: tuple[float, float]
    vectors: np.ndarray
    pair_delays: np.ndarray

    @classmethod
    def build(cls, mics: np.ndarray, speed: float, band_top_hz: float = 7000.0, fine: bool = False) -> MapGeometry:
        mics = np.asarray(mics, dtype=np.float64)
        pos = mics - mics.mean(axis=0)
        u, s, vt = np.linalg.svd(pos, full_matrices=False)
        aperture = float(np.max(symmetry.distance_matrix(mics)))
        keep = s > max(1e-3, 1e-2 * aperture)
        pinv = (vt[keep].T / s[keep]) @ u[:, keep].T
        info = analyse_geometry(mics, speed)
        norm_range = (1.0 - NORM_SLACK, 1.0 + NORM_SLACK) if info.kind == "3d" else (0.0, 1.0 + NORM_SLACK)
        vectors = search_grid(info, aperture, speed, band_top_hz, fine)
        i, j = np.triu_indices(len(mics), 1)
        delays = grids.pair_delays(vectors, mics[j] - mics[i], speed)
        return cls(mics, speed, info.kind, pos, pinv, norm_range, vectors, delays)

    def sub(self, keep: np.ndarray, band_top_hz: float = 7000.0) -> MapGeometry:
        return MapGeometry.build(self.mics[np.asarray(keep)], self.speed, band_top_hz)


def search_grid(info, aperture: float, speed: float, band_top_hz: float, fine: bool = False) -> np.ndarray:
    """Directions ``[shape=(D, 3)]`` for the SRP score, spaced a third of the SRP main lobe at the
    band's top (2-10°; ``fine``: an eighth, 1-4°, and a fifth on spheres, 2-5°): a ring plus
    off-plane rings (planar), a half ring (linear), a sphere (3-D)."""
    lobe = math.degrees(speed / (band_top_hz * max(aperture, 1e-3)))
    if fine:
        step = float(np.clip(lobe / 4.0, 2.5, 5.0) if info.kind == "3d" else np.clip(lobe / 8.0, 1.0, 4.0))
    else:
        step = float(np.clip(lobe / 2.0, 3.0, 10.0) if info.kind == "3d" else np.clip(lobe / 3.0, 2.0, 10.0))
    if info.kind == "3d":
        return grids.fibonacci_sphere(int(math.ceil(4 * math.pi / math.radians(step) ** 2)))
    grid = grids.make_grid(info, resolution_deg=step)
    if info.kind == "planar":
        return np.concatenate([grid.vectors, grids.hemisphere_rings(grid, float(np.clip(math.radians(step) * 1.5,
                                                                                           0.05, 0.25)))])
    return grid.vectors


# ----------------------------------------------------------------------------------------------
# Step 1: arrival times


@dataclass(eq=False)
class ArrivalTimes:
    """Per active window: each analysed channel's arrival time ``tau [shape=(W, C)]`` s (up to a
    constant), the window's weight ``[shape=(W,)]`` (agreeing share of pair weight × mean peak),
    and which pairs agreed ``inlier [shape=(W, pairs)]``."""

    tau: np.ndarray
    weight: np.ndarray
    inlier: np.ndarray
    peak_delay: np.ndarray
    peak_value: np.ndarray


def arrival_times(obs: PairObservations, reach_s: float, sigma_s: float, iterations: int = 5) -> ArrivalTimes:
    """Fit every window's channel arrival times to its pairs' GCC peaks within ``±reach_s``."""
    delay, value = obs.peaks(reach_s)
    n_win, n_pairs = delay.shape
    c = len(obs.channels)
    a_mat = np.zeros((n_pairs, c))
    a_mat[np.arange(n_pairs), obs.pair_b] = 1.0
    a_mat[np.arange(n_pairs), obs.pair_a] = -1.0
    h = np.clip(value, 0.0, 1.0) ** 2
    w = h.copy()
    tau = np.zeros((n_win, c))
    k = 3.0 * sigma_s
    for _ in range(iterations):
        normal = np.einsum("pc,wp,pd->wcd", a_mat, w, a_mat)
        normal += (1e-6 * np.maximum(w.sum(axis=1), 1e-12) / max(c, 1))[:, None, None] * np.eye(c)
        rhs = np.einsum("pc,wp->wc", a_mat, w * delay)
        tau = np.linalg.solve(normal, rhs[..., None])[..., 0]
        r = tau @ a_mat.T - delay
        w = h * np.where(np.abs(r) < k, (1.0 - (r / k) ** 2) ** 2, 0.0)
    inlier = w > 0.0
    share = w.sum(axis=1) / np.maximum(h.sum(axis=1), 1e-12)
    weight = share * np.mean(np.clip(value, 0.0, 1.0), axis=1)
    tau -= tau.mean(axis=1, keepdims=True)
    return ArrivalTimes(tau, weight, inlier, delay, value)


# ----------------------------------------------------------------------------------------------
# Step 2: every map, or a beam search


def count_maps(n_channels: int, n_mics: int) -> int:
    return math.perm(n_channels, n_mics) if n_channels >= n_mics else 0


def all_maps(n_channels: int, n_mics: int) -> np.ndarray:
    """Every injective map of ``n_mics`` mics onto ``n_channels`` channels ``[shape=(N, n_mics)]``."""
    return np.array(list(itertools.permutations(range(n_channels), n_mics)), dtype=np.intp).reshape(-1, n_mics)


def _score(times: ArrivalTimes, maps: np.ndarray, geo: MapGeometry, sigma_s: float) -> np.ndarray:
    top = np.sort(np.argsort(-times.weight, kind="stable")[:TDOA_WINDOWS])
    return kernels.tdoa_scores(np.ascontiguousarray(times.tau[top]), np.ascontiguousarray(times.weight[top]), np.ascontiguousarray(maps, dtype=np.intp), geo.pos,
                               geo.pinv, sigma_s, geo.speed, geo.norm_range, 0.1)


def shortlist(times: ArrivalTimes, geo: MapGeometry, n_channels: int, sigma_s: float,
              size: int = SHORTLIST) -> tuple[np.ndarray, bool]:
    """The ``size`` best maps by the plane-wave fit ``[shape=(size, M)]``, and whether the search
    was exhaustive."""
    m = len(geo.mics)
    if count_maps(n_channels, m) <= EXHAUSTIVE_LIMIT:
        maps = all_maps(n_channels, m)
        scores = _score(times, maps, geo, sigma_s)
        return maps[np.argsort(-scores, kind="stable")[:size]], True
    # beam search: mics in farthest-first order, a few at a time
    order = [int(np.argmax(np.linalg.norm(geo.pos, axis=1)))]
    while len(order) < m:
        dist = np.min(np.linalg.norm(geo.mics[:, None] - geo.mics[order][None], axis=-1), axis=1)
        dist[order] = -1
        order.append(int(np.argmax(dist)))
    k0 = min(m, 4)
    partial = all_maps(n_channels, k0)
    while True:
        k = partial.shape[1]
        sub = geo.sub(order[:k])
        scores = _score(times, partial, sub, sigma_s)
        partial = partial[np.argsort(-scores, kind="stable")[:BEAM if k < m else size]]
        if k == m:
            break
        ext = [np.concatenate([p, [ch]]) for p in partial for ch in range(n_channels) if ch not in p]
        partial = np.array(ext, dtype=np.intp)
    out = np.empty_like(partial)
    out[:, order] = partial  # columns back to mic order
    return out, False


# ----------------------------------------------------------------------------------------------
# Step 3: SRP scores and the decision


@dataclass
class OrderResult:
    """The channel-order verdict. Maps are device channels per mic (profile convention); ``mics``
    are the mics that took part (all, unless a mic's channel is dead)."""

    status: str  # "consistent" | "wrong" | "undetermined"
    mics: list[int]
    declared: list[int]
    best: list[int] | None = None
    ambiguous: list[list[int]] = field(default_factory=list)
    declared_score: float | None = None
    best_score: float | None = None
    runner_up_score: float | None = None
    z_declared: float | None = None
    gain_declared: float | None = None
    confidence: float | None = None
    exhaustive: bool = True
    maps_scored: int = 0
    windows: int = 0
    source_azimuth_deg: float | None = None
    measured_azimuth_deg: float | None = None
    rotation_offset_deg: float | None = None
    reason: str = ""


def lag_positions(geo: MapGeometry, lag_rate: float) -> np.ndarray:
    return np.ascontiguousarray(geo.pair_delays * lag_rate)


def paired_z(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean of ``a - b`` over windows and its z-score (mean over standard error)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(d) < 2:
        return float(d.mean()) if len(d) else 0.0, 0.0
    se = float(d.std(ddof=1)) / math.sqrt(len(d))
    return float(d.mean()), float(d.mean() / se) if se > 1e-12 else (math.inf if d.mean() > 0 else 0.0)


def _unique_rows(maps: np.ndarray) -> np.ndarray:
    _, first = np.unique(maps, axis=0, return_index=True)
    return maps[np.sort(first)]


def check_order(obs: PairObservations, times: ArrivalTimes, geo: MapGeometry, mics: list[int],
                declared_cols: np.ndarray, sigma_s: float, source_azimuth: float | None = None) -> OrderResult:
    """Score maps of the mics ``mics`` (their geometry ``geo``) onto the analysed channels of
    ``obs``; ``declared_cols [shape=(len(mics),)]`` are the declared channels as columns of ``obs``."""
    channels = obs.channels
    to_device = lambda cols: [int(channels[c]) for c in cols]
    declared_cols = np.asarray(declared_cols, dtype=np.intp)
    result = OrderResult("undetermined", list(mics), to_device(declared_cols), windows=obs.n_windows)
    good = times.weight > 0.05
    if int(good.sum()) < MIN_WINDOWS or len(mics) < 3:
        result.reason = (f"too few windows with a clear direction ({int(good.sum())}, need {MIN_WINDOWS})"
                         if len(mics) >= 3 else "fewer than 3 working mics")
        return result
    syms = symmetry.symmetries(geo.mics, tol=EXACT_TOL_M)
    short, exhaustive = shortlist(times, geo, len(channels), sigma_s)
    leaders = [symmetry.orbit(m, syms) for m in short[:3]]
    candidates = _unique_rows(np.concatenate([declared_cols[None], short] + leaders))
    weight = times.weight
    top = np.sort(np.argsort(-weight, kind="stable")[:COARSE_WINDOWS])
    coarse = kernels.srp_scores(np.ascontiguousarray(obs.tables[top]), obs.pair_index(), candidates,
                                lag_positions(geo, obs.layout.lag_rate), obs.layout.max_lag)
    coarse_mean = (coarse * weight[top][None]).sum(axis=1) / max(float(weight[top].sum()), 1e-12)
    # the finalists, on a finer grid: the leaders, the declared map and the leader's symmetric variants
    lead = np.argsort(-coarse_mean, kind="stable")[:FINALISTS]
    candidates = _unique_rows(np.concatenate([declared_cols[None], candidates[lead],
                                              symmetry.orbit(candidates[lead[0]], syms)]))
    fine = MapGeometry.build(geo.mics, geo.speed, fine=True)
    srp = kernels.srp_scores(obs.tables, obs.pair_index(), candidates, lag_positions(fine, obs.layout.lag_rate),
                             obs.layout.max_lag)
    mean = (srp * weight[None]).sum(axis=1) / max(float(weight.sum()), 1e-12)
    best_i = int(np.argmax(mean))
    weighted = srp * np.sqrt(weight / max(float(weight.mean()), 1e-12))[None]
    stats = np.array([paired_z(weighted[best_i], weighted[n]) for n in range(len(candidates))])  # (N, 2)
    orbit = symmetry.orbit(candidates[best_i], syms)
    in_orbit = (candidates[:, None, :] == orbit[None]).all(axis=2).any(axis=1)
    tied = in_orbit | (stats[:, 0] < MIN_GAIN) | (stats[:, 1] < Z_WRONG)
    decl_i = int(np.flatnonzero((candidates == declared_cols).all(axis=1))[0])
    result.exhaustive = exhaustive
    result.maps_scored = int(count_maps(len(channels), len(mics))) if exhaustive else len(short)
    result.declared_score, result.best_score = float(mean[decl_i]), float(mean[best_i])
    result.z_declared = float(stats[decl_i, 1])
    result.gain_declared = float(stats[decl_i, 0])
    outside = np.flatnonzero(~tied)
    if len(outside):
        r = int(outside[np.argmax(mean[outside])])
        result.runner_up_score = float(mean[r])
        result.confidence = float(np.mean(srp[best_i] - srp[r] > 0))
    pool = np.flatnonzero(tied)
    pool = np.concatenate([[best_i], pool[pool != best_i]])
    best = candidates[best_i]
    if source_azimuth is not None:
        chosen, measured, same = azimuth.resolve_by_azimuth(obs, geo, candidates[pool], source_azimuth, weight)
        result.source_azimuth_deg = float(source_azimuth)
        result.measured_azimuth_deg = measured
        if measured is not None:
            best = candidates[pool[chosen]]
            result.rotation_offset_deg = float((measured - source_azimuth + 180.0) % 360.0 - 180.0)
            pool = pool[same]
    result.best = to_device(best)
    shown = declared_cols if tied[decl_i] and result.measured_azimuth_deg is None else best
    result.ambiguous = [to_device(candidates[n]) for n in pool if not np.array_equal(candidates[n], shown)]
    if result.measured_azimuth_deg is not None:
        wrong = not np.array_equal(best, declared_cols) and decl_i not in set(pool.tolist())
    else:
        wrong = not tied[decl_i]
    result.status = "wrong" if wrong else "consistent"
    if not wrong:
        result.reason = ("the declared map is the best" if np.array_equal(best, declared_cols) else
                         "the declared map is a symmetric variant of the best" if in_orbit[decl_i] else
                         f"no map is clearly better than the declared one (z {stats[decl_i, 1]:.1f})")
    return result

"""``--source-azimuth``: pick, among channel maps the recording cannot tell apart, the one that
puts the talker where the user says they stood during the first seconds of speech.

Maps that differ by a symmetry of the array (a ring's rotations and reflections) explain every
delay equally well, each with every direction turned by that symmetry; so the talker's direction
at the start of the recording (:data:`START_S` seconds after the first clear window; the peak of
their summed SRP) differs between them, and the stated azimuth
picks one. What remains between that direction and the stated one is the rotation offset: the
array turned against its profile, or the talker not quite where stated. A talker standing on one
of the array's mirror lines (within :data:`SAME_AZIMUTH_DEG`) cannot tell a map from its mirror
image; 3-D arrays cannot tell above from below by azimuth, and the talker is then taken as above.
"""

from __future__ import annotations

import numpy as np

from arraydaemon.core import grids
from arraydaemon.core.profiles import analyse_geometry
from arraydaemon.verify.pairs import PairObservations

START_S = 3.0  # the talker's position during the first seconds of speech
SAME_AZIMUTH_DEG = 2.0


def summed_srp(obs: PairObservations, geo, cmap: np.ndarray, windows: np.ndarray, weight: np.ndarray,
               vectors: np.ndarray) -> np.ndarray:
    """SRP-PHAT at ``vectors [shape=(D, 3)]`` with the map ``cmap`` (columns of ``obs``), summed
    over ``windows`` with their ``weight``: ``[shape=(D,)]``."""
    m = len(cmap)
    i, j = np.triu_indices(m, 1)
    delays = grids.pair_delays(vectors, geo.mics[j] - geo.mics[i], geo.speed) * obs.layout.lag_rate
    rows = obs.pair_index()[cmap[i], cmap[j]]
    sign = np.where(cmap[i] < cmap[j], 1.0, -1.0)
    n_lags = obs.tables.shape[2]
    x = np.clip(obs.layout.max_lag + sign[None] * delays, 0, n_lags - 1.001)
    k = np.floor(x).astype(np.intp)
    f = x - k
    t = np.tensordot(weight[windows], obs.tables[windows][:, rows], axes=1)  # (pairs, lags)
    p = np.arange(len(rows))[None]
    return (t[p, k] * (1 - f) + t[p, k + 1] * f).mean(axis=1)


def start_direction(obs: PairObservations, geo, cmap: np.ndarray, windows: np.ndarray,
                    weight: np.ndarray) -> np.ndarray:
    """The peak of the SRP summed over ``windows`` with the map ``cmap``: a unit vector, from a 1°
    grid (ring plus off-plane rings, half ring, or a 6000-point sphere) refined to 0.1°."""
    info = analyse_geometry(geo.mics, geo.speed)
    up = None
    if info.kind == "3d":
        vectors = grids.fibonacci_sphere(6000)
    else:
        grid = grids.make_grid(info, resolution_deg=1.0)
        vectors = grid.vectors
        if info.kind == "planar":
            vectors = np.concatenate([vectors, grids.hemisphere_rings(grid, 0.05)])
            up = np.asarray(info.normal)
    best = vectors[int(np.argmax(summed_srp(obs, geo, cmap, windows, weight, vectors)))]
    span = 3.0 if info.kind == "3d" else 1.0
    offsets = np.stack(np.meshgrid(np.linspace(-span, span, 21), np.linspace(-span, span, 21)), -1).reshape(-1, 2)
    patch = grids.tangent_patch(best, offsets, up)
    if info.kind != "3d":
        patch = grids.fold(patch, info)
    return patch[int(np.argmax(summed_srp(obs, geo, cmap, windows, weight, patch)))]


def start_windows(obs: PairObservations, weight: np.ndarray) -> np.ndarray:
    """Active windows in the first :data:`START_S` seconds after the first clear one."""
    good = np.flatnonzero(weight > 0.05)
    if not len(good):
        return good
    t0 = obs.times_s[good[0]]
    return good[obs.times_s[good] <= t0 + START_S]


def stated_azimuth(geo, azimuth: float) -> float:
    """The stated azimuth (elevation 0) as the array can report it: folded onto the side of the
    plane a vertical planar array reports, or onto a linear array's front (see :func:`grids.fold`)."""
    info = analyse_geometry(geo.mics, geo.speed)
    v = grids.fold(grids.azel_to_vector(azimuth, 0.0), info)
    return float(grids.vector_to_azel(v)[0])


def resolve_by_azimuth(obs: PairObservations, geo, maps: np.ndarray, azimuth: float,
                       weight: np.ndarray) -> tuple[int, float | None, np.ndarray]:
    """Of the indistinguishable ``maps [shape=(S, M)]``, the one whose start direction
    (:func:`start_direction` of the :func:`start_windows`) has the azimuth nearest ``azimuth`` (as the array can report it,
    :func:`stated_azimuth`); where several are within :data:`SAME_AZIMUTH_DEG` of that (the talker
    on a mirror line of the array, or 3-D arrays: above or below it), the one with the talker
    above. Returns its index, its measured azimuth, and which maps remain indistinguishable from
    it ``[shape=(S,)]`` bool."""
    windows = start_windows(obs, weight)
    if not len(windows):
        return 0, None, np.ones(len(maps), dtype=bool)
    target = stated_azimuth(geo, azimuth)
    az = np.zeros(len(maps))
    el = np.zeros(len(maps))
    for n, cmap in enumerate(maps):
        a, e = grids.vector_to_azel(start_direction(obs, geo, cmap, windows, weight))
        az[n], el[n] = float(a), float(e)
    diff = np.abs((az - target + 180.0) % 360.0 - 180.0)
    near = diff <= diff.min() + SAME_AZIMUTH_DEG
    rank = np.where(near, np.where(el >= -5.0, 0.0, 1000.0) + diff, np.inf)
    chosen = int(np.argmin(rank))
    return chosen, float(az[chosen] + (azimuth - target)), near

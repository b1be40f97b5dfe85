"""Peak refinement below the scan spacing: a part both estimators compose.

:meth:`Refiner.exact` climbs the exact SRP-PHAT (frequency-domain steering) from a scan point, so
directions stay sub-degree accurate whatever the scan's spacing and interpolation;
:meth:`Refiner.score` climbs any score function of directions (the neural spectrum alone).
"""

from __future__ import annotations

import numpy as np

from arraydaemon.core import grids, kernels
from arraydaemon.localizers.scan import SrpScan


class Refiner:
    """Local searches around scan points of an :class:`SrpScan`."""

    def __init__(self, scan: SrpScan):
        self.scan = scan
        grid = scan.grid
        self.grid = grid
        self.geometry = scan.geometry
        # exact(): 3x3 unit patches in in-plane coordinates for planar arrays, degrees (along
        # azimuth, elevation) otherwise
        unit = np.stack(np.meshgrid([-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]), axis=-1).reshape(-1, 2)
        if grid.kind == "half-ring":
            unit = unit[unit[:, 1] == 0]  # a line: one dimension
        self._unit_patch = unit
        self._step = scan.plane_step / 2 if grid.kind == "ring" else grid.spacing_deg / 2
        # tangent patches turn about this axis: +z (sphere) or the normal of a half ring's plane
        self._patch_up = np.cross(grid.plane_u, grid.plane_v) if grid.kind == "half-ring" else None
        # score(): 5x5 patches in degrees along azimuth/elevation, coarse to fine
        offsets = np.arange(-2, 3, dtype=np.float64)
        step = grid.spacing_deg / 2
        if grid.kind == "ring":
            az_off, el_off = np.meshgrid(np.arange(-15.0, 16.0, 3.0), np.arange(0.0, 81.0, 10.0))
            self._planar_scan = np.stack([az_off.ravel(), el_off.ravel()], axis=1)
            step = 2.5
        if grid.kind == "half-ring":
            self._patches = [np.stack([offsets * s, np.zeros(5)], axis=1)
                             for s in (step, step / 4, step / 16, step / 64)]
        else:
            mesh = np.stack(np.meshgrid(offsets, offsets), axis=-1).reshape(-1, 2)
            self._patches = [mesh * s for s in (step, step / 4, step / 16, step / 64)]

    def exact(self, gcc: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, float]:
        """Local search from scan direction ``start [shape=(3,)]`` for the maximum of the exact SRP
        of pair spectra ``gcc [shape=(pairs, bins)]``; (unit vector, SRP).

        Two levels, at half the scan spacing and an eighth of that: at each, a 3x3 patch moves to
        its best point until the centre is best (so the search also undoes the lag-domain scan's
        interpolation bias, which can exceed the grid spacing on small arrays with broad peaks),
        then jumps to the vertex of the quadratic through the patch. Planar arrays search in-plane
        coordinates (the scan already covered elevation)."""
        lay = self.scan.layout
        if self.grid.kind == "ring":  # in-plane coordinates (the scan already covered elevation)
            best, value = kernels.climb_plane(gcc, lay.band, lay.bin_hz, self.scan.plane_delays,
                                              grids.to_plane(start, self.grid), self._step)
            return grids.from_plane(best[None], self.grid)[0], value

        def place(center, offsets):
            return grids.fold(grids.tangent_patch(center, offsets, up=self._patch_up), self.geometry)

        return grids.climb_patches(place, lambda points: self.scan.exact(gcc, points), start, self._unit_patch,
                                   self._step)

    def score(self, score, start: np.ndarray) -> tuple[np.ndarray, float]:
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

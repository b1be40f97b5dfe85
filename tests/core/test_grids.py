"""Direction grids (core/grids.py): default and explicit resolutions, and the hemisphere scan of a
planar array."""

from __future__ import annotations

import math

import numpy as np
import pytest

from arraydaemon.core import grids
from arraydaemon.core.profiles import load_profile
from tests.helpers import TETRAHEDRON, make_profile


def test_hemisphere_scan_covers_the_half_space_evenly():
    grid = grids.make_grid(load_profile("respeaker_4mic_hat").geometry)
    step = 0.1
    rings = grids.hemisphere_rings(grid, step)
    np.testing.assert_allclose(np.linalg.norm(rings, axis=1), 1.0)
    assert np.all(rings @ grid.normal >= 0)
    scan = np.concatenate([grid.vectors, rings])
    rng = np.random.default_rng(0)
    probe = grids.fold(rng.standard_normal((2000, 3)), load_profile("respeaker_4mic_hat").geometry)
    probe /= np.linalg.norm(probe, axis=1, keepdims=True)
    inplane_probe, inplane_scan = grids.to_plane(probe, grid), grids.to_plane(scan, grid)
    nearest = np.min(np.linalg.norm(inplane_probe[:, None] - inplane_scan[None], axis=-1), axis=1)
    assert nearest.max() <= 0.75 * step  # every direction's in-plane delays are near a scanned one
    np.testing.assert_allclose(grids.from_plane(inplane_probe, grid), probe, atol=1e-9)


def test_default_grids_and_explicit_resolution():
    planar, linear = load_profile("respeaker_4mic_hat").geometry, load_profile("ps3_eye").geometry
    sphere = make_profile("tetrahedron", TETRAHEDRON).geometry
    assert [len(grids.make_grid(g)) for g in (planar, linear, sphere)] == [360, 181, 2000]
    assert [len(grids.make_grid(g, 2.0)) for g in (planar, linear, sphere)] == [180, 91, 10314]
    assert len(grids.make_grid(sphere, 10.0)) == 2000  # never coarser than sphere_points
    fine = grids.make_grid(sphere, sphere_points=5000)
    assert len(fine) == 5000 and fine.spacing_deg == pytest.approx(math.degrees(math.sqrt(4 * math.pi / 5000)))
    np.testing.assert_allclose(np.linalg.norm(fine.vectors, axis=1), 1.0)

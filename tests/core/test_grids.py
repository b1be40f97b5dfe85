"""Direction grids (core/grids.py): default and explicit resolutions, and the hemisphere scan of a
planar array."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@settings(deadline=None, max_examples=200)
@given(st.lists(st.one_of(st.floats(-1.0, 1.0), st.just(-math.inf)), min_size=2, max_size=40),
       st.integers(1, 5), st.floats(0.0, 0.5))
def test_peak_picking_ends_and_keeps_its_promises_on_masked_spectra(values, max_peaks, threshold):
    """Masked directions are -inf (the further-source search masks found sources): peak picking must
    still end, and every pick is a finite value above the threshold, apart from the others."""
    n = len(values)
    vectors = np.stack([np.cos(2 * np.pi * np.arange(n) / n), np.sin(2 * np.pi * np.arange(n) / n),
                        np.zeros(n)], axis=1)
    spectrum = np.asarray(values)
    peaks = grids.pick_peaks(spectrum, vectors, max_peaks, 25.0, threshold, 0.0)
    assert len(peaks) <= max_peaks and len(set(peaks)) == len(peaks)
    assert all(math.isfinite(spectrum[i]) and spectrum[i] >= threshold for i in peaks)
    for a in peaks:
        for b in peaks:
            assert a == b or vectors[a] @ vectors[b] < math.cos(math.radians(25.0)) + 1e-9

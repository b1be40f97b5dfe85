"""Symmetries of array geometries: the channel maps sound cannot tell apart."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from arraydaemon.verify import symmetry
from tests.helpers import CUBE, TETRAHEDRON, ring
from tests.verify.scenes import IRREGULAR, SQUARE


def test_known_symmetry_groups():
    assert len(symmetry.symmetries(SQUARE)) == 8  # 4 rotations, 4 reflections
    assert len(symmetry.symmetries(ring(6, 0.0463))) == 12
    assert len(symmetry.symmetries(IRREGULAR)) == 1
    assert len(symmetry.symmetries(TETRAHEDRON)) == 24  # every permutation of a regular tetrahedron
    assert len(symmetry.symmetries(CUBE)) == 48
    line = np.array([[0, -0.03, 0], [0, 0.01, 0], [0, -0.01, 0], [0, 0.03, 0]])  # the PS3 Eye
    syms = symmetry.symmetries(line)
    assert len(syms) == 2 and syms[1].tolist() == [3, 2, 1, 0]
    assert symmetry.symmetries(SQUARE)[0].tolist() == [0, 1, 2, 3]  # the identity first


def test_orbit_and_same_up_to_symmetry():
    syms = symmetry.symmetries(SQUARE)
    orbit = symmetry.orbit([4, 5, 6, 7], syms)
    assert len(orbit) == 8 and [5, 6, 7, 4] in orbit.tolist() and [7, 6, 5, 4] in orbit.tolist()
    assert symmetry.same_up_to_symmetry([4, 5, 6, 7], [6, 7, 4, 5], syms)
    assert not symmetry.same_up_to_symmetry([4, 5, 6, 7], [5, 4, 6, 7], syms)  # adjacent corners swapped


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 8), st.floats(0.02, 0.2), st.floats(-np.pi, np.pi), st.floats(-0.1, 0.1))
def test_symmetries_do_not_depend_on_placement(n, radius, yaw, shift):
    """Rotating and moving a ring changes none of its 2n symmetries; relabelling its mics conjugates them."""
    mics = ring(n, radius)
    rot = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    moved = mics @ rot.T + shift
    assert len(symmetry.symmetries(moved)) == 2 * n
    perm = np.random.default_rng(n).permutation(n)
    assert len(symmetry.symmetries(moved[perm])) == len(symmetry.symmetries(mics))

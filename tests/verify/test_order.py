"""The channel order: a swapped pair, a rotated or reversed order are found, with the map that
fits; a symmetric array's own rotations need --source-azimuth, which then picks the right one."""

from __future__ import annotations

import numpy as np
import pytest

from arraydaemon.research import verify_scenes as vs
from arraydaemon.verify import from_array, verify_recording
from tests.verify.scenes import IRREGULAR, SQUARE, profile, room_talker, walking_noise


def scrambled(audio, perm):
    """Mic ``i``'s signal on channel ``perm[i]``: the true channel_map is ``perm``."""
    out = np.empty_like(audio)
    out[:, list(perm)] = audio
    return out


def test_free_field_swap_is_found_and_fixed():
    prof = profile(IRREGULAR)
    report = verify_recording(from_array(scrambled(walking_noise(IRREGULAR, seed=3), [0, 3, 2, 1, 4]), prof), prof)
    assert report.order.status == "wrong"
    assert report.suggested_map == [0, 3, 2, 1, 4]
    assert report.order.exhaustive and report.order.maps_scored == 120
    assert report.to_json()["suggested_channel_map"] == [0, 3, 2, 1, 4]


@pytest.fixture(scope="module")
def room():
    return room_talker(IRREGULAR, seed=11)


@pytest.mark.sim
@pytest.mark.parametrize("kind", ["swap", "rotate", "reverse"])
def test_room_order_faults_are_found_with_the_right_map(room, kind):
    fault = vs.draw_fault(kind, 5, np.random.default_rng(4))
    audio = vs.apply_fault(room.device, room.setup, fault, np.random.default_rng(0))
    prof = profile(IRREGULAR)
    report = verify_recording(from_array(audio, prof), prof)
    inverse = np.argsort(fault.perm)
    assert report.order.status == "wrong", fault.detail
    assert report.suggested_map == [int(inverse[i]) for i in range(5)]
    assert not report.ok and report.order.confidence > 0.6


@pytest.mark.sim
def test_room_correct_order_is_ok(room):
    prof = profile(IRREGULAR)
    report = verify_recording(from_array(room.device, prof), prof)
    assert report.ok, report.problems


def test_symmetric_array_rotation_needs_source_azimuth():
    """A square's order rotated by one mic is the square turned by 90°: indistinguishable, listed as
    ambiguous; --source-azimuth picks the right map and reports no rotation left."""
    prof = profile(SQUARE)
    audio = scrambled(walking_noise(SQUARE, seed=5, start_azimuth=30.0), [1, 2, 3, 0])
    plain = verify_recording(from_array(audio, prof), prof)
    assert plain.order.status == "consistent" and plain.ok
    assert [1, 2, 3, 0] in plain.ambiguous_maps and len(plain.ambiguous_maps) == 7
    told = verify_recording(from_array(audio, prof), prof, source_azimuth=30.0)
    assert told.order.status == "wrong" and told.suggested_map == [1, 2, 3, 0]
    assert abs(told.order.rotation_offset_deg) < 3.0
    assert told.to_json()["channel_order"]["rotation_offset_deg"] is not None


def test_source_azimuth_reports_a_turned_array():
    """The array is turned by 25° against its profile (not a symmetry): order fine, rotation flagged."""
    prof = profile(IRREGULAR)
    report = verify_recording(from_array(walking_noise(IRREGULAR, seed=6, start_azimuth=55.0), prof), prof,
                              source_azimuth=30.0)
    assert report.order.status == "consistent"
    assert report.order.rotation_offset_deg == pytest.approx(25.0, abs=3.0)
    assert not report.ok and any("off the stated --source-azimuth" in p for p in report.problems)


def test_dead_mic_is_left_out_of_the_order_search():
    prof = profile(IRREGULAR)
    audio = scrambled(walking_noise(IRREGULAR, seed=7), [1, 0, 2, 3, 4])
    audio[:, 4] = 0.0
    report = verify_recording(from_array(audio, prof), prof)
    assert report.order.mics == [0, 1, 2, 3]
    assert report.order.status == "wrong" and report.suggested_map == [1, 0, 2, 3, 4]

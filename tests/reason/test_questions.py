"""The question parser (reason/questions.py) and what an array can tell (reason/geometry.py)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arraydaemon.core.angles import unit_vector
from arraydaemon.reason.answers import answer
from arraydaemon.reason.geometry import ArrayView, side_verdict
from arraydaemon.reason.questions import KINDS, parse
from tests.reason.test_answers import memory_with


@pytest.mark.parametrize("text, kind, yes_no, side", [
    ("Is anyone on your left?", "sides", True, "left"),
    ("Anyone to the right?", "sides", True, "right"),
    ("Is it on the left or the right?", "sides", False, None),
    ("Who is on the left?", "sides", False, "left"),
    ("Is anyone behind you?", "front-back", True, "behind"),
    ("Is anybody ahead of you?", "front-back", True, "front"),
    ("Is it in front or behind?", "front-back", False, None),
    ("Is anyone above you?", "above-below", True, "above"),
    ("Is there a source underneath?", "above-below", True, "below"),
    ("Is it above or below the robot?", "above-below", False, None),
    ("Is anyone walking?", "moving", True, None),
    ("Is someone walking around?", "moving", True, None),
    ("Did anyone move?", "moved", True, None),
    ("Has anybody moved?", "moved", True, None),
    ("How many people are talking?", "count", False, None),
    ("Count the speakers.", "count", False, None),
    ("Who is nearest to the front-left?", "nearest", False, None),
    ("Who started talking last?", "started", False, None),
    ("Did someone new start talking?", "started", True, None),
    ("Did anyone stop talking?", "stopped", True, None),
    ("Where was the talker who stopped?", "stopped", False, None),
    ("How many degrees apart are the two voices?", "angle", False, None),
    ("What is the angle between the two talkers?", "angle", False, None),
    ("Where is the speaker?", "where", False, None),
    ("What's the weather like?", "unknown", False, None),
])
def test_kinds_and_forms(text, kind, yes_no, side):
    q = parse(text)
    assert (q.kind, q.yes_no, q.side) == (kind, yes_no, side)


def test_who_and_directions():
    assert parse("Is source 3 on the left?").source_id == 3 and parse("is #3 moving").who == "id"
    assert parse("Is everyone in front of you?").who == "all" and parse("Is anybody moving?").who == "any"
    assert parse("Which speaker is closest to -120 degrees?").direction == (-120.0, "azimuth -120°")
    assert parse("Who is nearest to the back-right?").direction == (-135.0, "back-right")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_and_gets_an_answer(text):
    q = parse(text)
    assert q.kind in (*KINDS, "unknown")
    m = memory_with([(0.1 * k, [(1, 40.0, 1.0), (2, -150.0, 1.0)]) for k in range(1, 5)])
    assert isinstance(answer(text, m), str) and answer(text, m)


def test_a_planar_array_cannot_tell_across_its_plane():
    flat = ArrayView.from_mics([[0.05, 0, 0], [0, 0.05, 0], [-0.05, 0, 0], [0, -0.05, 0]], "up-down")
    assert flat.kind == "planar" and flat.normal == pytest.approx((0, 0, 1))
    v = unit_vector(30.0, 40.0)
    assert side_verdict(flat, v, "above") is None and side_verdict(flat, v, "below") is None
    assert side_verdict(flat, v, "left") is True and side_verdict(flat, v, "right") is False
    # a planar array on a wall (the y-z plane) cannot tell front from behind, but can tell above
    wall = ArrayView.from_mics([[0, 0.05, 0], [0, 0, 0.05], [0, -0.05, 0], [0, 0, -0.05]], "up-down")
    assert wall.normal == pytest.approx((1, 0, 0))
    assert side_verdict(wall, v, "front") is None and side_verdict(wall, v, "above") is True


@pytest.mark.parametrize("yaw", [0.0, 30.0, 90.0, 135.0])
def test_a_line_hears_the_angle_to_its_axis(yaw):
    a = math.radians(yaw)
    line = ArrayView.from_mics([[k * 0.03 * math.cos(a), k * 0.03 * math.sin(a), 0.0] for k in range(-2, 3)],
                               "front-back")
    assert line.kind == "linear"
    for az in range(-180, 180, 15):
        v = unit_vector(float(az), 0.0)
        mirror = unit_vector(2 * yaw - az, 0.0)  # the same angle to the axis, in the horizontal plane
        assert line.distance_deg(v, mirror) == pytest.approx(0.0, abs=1e-6)
        for side in ("left", "right", "front", "behind"):
            verdict = side_verdict(line, v, side)
            if verdict is not None:  # whatever it claims holds for the mirror image too
                assert side_verdict(ArrayView(), mirror, side) is verdict

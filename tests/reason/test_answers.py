"""The reasoning subscriber's built-in answerer (reason/answers.py) on a scene memory
(reason/memory.py) fed hand-made tracks messages. The whole path from a replaying daemon through
ZeroMQ to `arraydaemon reason`, and the LLM path: tests/integration/test_reason.py."""

from __future__ import annotations

import re

import pytest

from arraydaemon.core.angles import unit_vector
from arraydaemon.io import wire
from arraydaemon.reason.answers import answer
from arraydaemon.reason.memory import SceneMemory

# --- the built-in answerer on hand-made messages ------------------------------------------------


def tracks_message(t: float, tracks: list[tuple[int, float, float]], ambiguity: str = "up-down",
                   level_db: float = -30.0) -> dict:
    """A tracks payload at stream time ``t`` with ``(id, azimuth, age_s)`` entries, via the wire module."""
    base = wire.common(int(t * 10), "test_array", "test_frame", t, 1.7e9 + t)
    entries = [wire.track_entry(tid, az, 0.0, unit_vector(az), 0.9, age, 0.0, 0.0, 0.0, level_db - tid)
               for tid, az, age in tracks]
    return wire.tracks_payload(base, ambiguity, entries)


def memory_with(frames, ambiguity: str = "up-down") -> SceneMemory:
    memory = SceneMemory()
    for t, tracks in frames:
        memory.update("tracks", tracks_message(t, tracks, ambiguity))
    return memory


@pytest.fixture
def two_still_sources():
    # #1 front-left at +40°, #2 behind-right at -150°, both present for 3 s
    return memory_with([(0.1 * k, [(1, 40.0, 0.1 * k + 1), (2, -150.0, 0.1 * k + 1)]) for k in range(1, 31)])


def test_how_many_where_and_sides(two_still_sources):
    m = two_still_sources
    assert answer("How many sources are there?", m).startswith("2 sources now")
    where = answer("Where is the speaker?", m)
    assert "#1" in where and "+40°" in where and "front-left" in where and "-150°" in where
    assert answer("Is source 1 on the left or the right?", m) == "#1 is on the left (+40°)."
    assert answer("is #2 left or right", m) == "#2 is on the right (-150°)."
    assert answer("Is source 2 in front or behind?", m) == "#2 is behind (-150°)."
    assert "in front (+40°)" in answer("is it in front of me or behind?", m)
    assert "cannot tell above from below" in answer("Is it above or below the robot?", m)
    assert "not moved" in answer("Did source 1 move?", m) and answer("Did anything move?", m).startswith("No")
    assert "#1" in answer("Which source is the loudest?", m)
    assert "I do not know that source id" in answer("where is source 7", m)


@pytest.mark.parametrize("question, expected_id", [
    ("Which source is nearest to the front-left?", 1),
    ("which one is closest to the left", 1),
    ("Which source is nearest to 30 degrees?", 1),
    ("Which source is closest to -120 deg?", 2),
    ("which source is nearest behind", 2),
    ("Which source is at the back right?", 2),
])
def test_nearest_to_a_direction(two_still_sources, question, expected_id):
    text = answer(question, two_still_sources)
    assert text.startswith(f"Source #{expected_id},"), text


def test_did_it_move_and_is_it_moving():
    # #3 walks from +10° to +100° at 30°/s, then stands still for 2 s; #4 stays at -60°
    frames = []
    for k in range(1, 51):
        t = 0.1 * k
        az = 10.0 + 30.0 * min(t, 3.0)
        frames.append((t, [(3, az, t), (4, -60.0, t)]))
    m = memory_with(frames[:25])
    text = answer("Is anything moving?", m)
    assert text.startswith("Yes") and "#3 is moving" in text and "#4 has not moved" in text
    m = memory_with(frames)
    text = answer("did source 3 move?", m)
    assert text.startswith("Yes") and "moved from +13° to +100°" in text and "still now" in text


def test_linear_array_cannot_tell_front_from_behind():
    m = memory_with([(0.1 * k, [(1, 60.0, 1.0)]) for k in range(1, 10)], ambiguity="front-back")
    assert "cannot tell front from behind" in answer("Is it in front or behind?", m)
    assert answer("Is it left or right?", m) == "#1 is on the left (+60°)."


def test_above_or_below_with_a_3d_array():
    m = SceneMemory()
    base = wire.common(1, "cube", "cube", 1.0, 1.7e9)
    entry = wire.track_entry(1, 30.0, 40.0, unit_vector(30.0, 40.0), 0.9, 1.0, 0.0, 0.0, 0.0, -30.0)
    m.update("tracks", wire.tracks_payload(base, "none", [entry]))
    assert answer("Is it above or below?", m) == "#1 is above the array (elevation +40°)."


def test_retired_sources_are_remembered_and_a_restart_forgets():
    m = memory_with([(0.1 * k, [(5, -90.0, 0.1 * k)]) for k in range(1, 20)]
                    + [(0.1 * k, []) for k in range(20, 40)])
    assert answer("how many sources?", m).startswith("No sources now. The last one, #5, was at -90°")
    assert "gone" in m.describe() and "#5" in m.scene_text()
    assert answer("where is source 5?", m) == "Source #5 is gone: it was last at -90° (to the right), 1.9 s ago."
    m.update("tracks", tracks_message(0.1, [(1, 10.0, 0.1)]))  # stream time went back: a new stream
    assert [r.id for r in m.present()] == [1] and m.gone() == []


def test_scene_text_carries_the_scene(two_still_sources):
    text = two_still_sources.scene_text()
    assert "sources present now: 2" in text
    assert re.search(r"source #1: azimuth \+40\.0 deg \(front-left\)", text)
    assert re.search(r"source #2: azimuth -150\.0 deg \(back-right\)", text)
    assert "cannot tell above from below" in text

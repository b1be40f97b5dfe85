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
    assert answer("How many sources are there?", m) == "2: #1 at +40° (front-left) and #2 at -150° (back-right)."
    where = answer("Where is the speaker?", m)
    assert "#1" in where and "+40°" in where and "front-left" in where and "-150°" in where
    assert answer("Is source 1 on the left or the right?", m) == "#1 is on the left (+40°)."
    assert answer("is #2 left or right", m) == "#2 is on the right (-150°)."
    assert answer("Is source 2 in front or behind?", m) == "#2 is behind (-150°)."
    assert "#1 is in front (+40°)" in answer("is it in front of me or behind?", m)
    assert answer("Is it above or below the robot?", m).startswith(
        "I can't tell: this planar array cannot tell above from below its plane")
    assert answer("Did source 1 move?", m).startswith("No: #1 has not moved")
    assert answer("Did anything move?", m).startswith("No")
    assert "#1" in answer("Which source is the loudest?", m)
    assert "I do not know that source id" in answer("where is source 7", m)


@pytest.mark.parametrize("question, first", [
    # sides, several phrasings: yes/no first, then the evidence
    ("Is anyone on your left?", "Yes: #1 at +40° (front-left) is on the left; #2 at -150° (back-right) is not."),
    ("Is there someone to the right?", "Yes: #2 at -150° (back-right) is on the right"),
    ("Anybody on the left side?", "Yes: #1"),
    ("anyone to your right", "Yes: #2"),
    ("Is source 1 on the right?", "No: #1 is on the right"),
    ("Is #2 on the right?", "Yes: #2 at -150° (back-right) is on the right."),
    # behind / in front
    ("Is anyone behind you?", "Yes: #2 at -150° (back-right) is behind"),
    ("Is somebody in front of you?", "Yes: #1 at +40° (front-left) is in front"),
    ("Is anybody ahead of the robot?", "Yes: #1"),
    ("Is everyone in front of you?", "No: #2 at -150° (back-right) is not in front."),
    ("Is there anyone at your back?", "Yes: #2"),
    # above / below on a planar array: the array cannot tell
    ("Is anyone above you?", "I can't tell: this planar array cannot tell above from below its plane"),
    ("Is there a source underneath?", "I can't tell"),
    # moving, moved
    ("Is anyone walking?", "No: #1 is still at +40° (front-left); #2 is still at -150° (back-right)."),
    ("Is anybody moving right now?", "No"),
    ("Has anybody moved?", "No: #1 has not moved"),
    ("Did anyone change position?", "No"),
    # counting
    ("How many people are talking?", "2: "),
    ("How many talkers can you hear?", "2: "),
    ("Count the speakers.", "2: "),
    # started / stopped: both heard from the start, both still talking
    ("Did anyone start talking after the others?", "No: "),
    ("Who started talking last?", "Nobody started later than the others"),
    ("Did anyone stop talking?", "No: everyone heard is still talking"),
    ("Has anybody gone quiet?", "No"),
    # the angle between the two
    ("What is the angle between the two talkers?", "About 170° apart in azimuth: #1 at +40°"),
    ("How far apart are the two speakers?", "About 170° apart"),
    ("How many degrees apart are the two voices?", "About 170° apart"),
])
def test_answers_in_the_form_asked(two_still_sources, question, first):
    assert answer(question, two_still_sources).startswith(first), answer(question, two_still_sources)


def test_started_and_stopped_talking():
    # #1 talks throughout at +30°; #2 joins at t=2 s at -60°; #3 talks until t=1.5 s at 170°, then is retired
    frames = []
    for k in range(1, 51):
        t = 0.1 * k
        tracks = [(1, 30.0, t)]
        if t >= 2.0:
            tracks.append((2, -60.0, t - 2.0))
        if t <= 1.5:
            tracks.append((3, 170.0, t))
        frames.append((t, tracks))
    m = memory_with(frames)
    assert answer("Who started talking last?", m).startswith("#2 started talking last, 3.0 s ago, at -60° (front-right)")
    assert answer("Did someone new start talking?", m).startswith("Yes: #2 at -60° (front-right) started 3.0 s ago")
    assert answer("Did anyone stop talking?", m) == "Yes: #3 stopped talking 3.4 s ago; it was at +170° (behind)."
    assert answer("Which speaker went quiet?", m).startswith("#3 stopped talking")
    assert answer("How many people are talking?", m).startswith("2: ")


def test_a_track_heard_for_a_moment_is_not_who_stopped_or_started_talking():
    # #1 talks throughout at +30°; #3 talks until t=1.5 s at 176° (retired then); #4 is a track the
    # tracker confirmed for 0.5 s near +4° (a reflection), born at 3.5 s and retired at 4.0 s
    frames = []
    for k in range(1, 51):
        t = 0.1 * k
        tracks = [(1, 30.0, t)]
        if t <= 1.5:
            tracks.append((3, 176.0, t))
        if 3.5 <= t <= 4.0:
            tracks.append((4, 4.0, t - 3.5))
        frames.append((t, tracks))
    m = memory_with(frames)
    assert answer("Who stopped talking?", m) == "#3 stopped talking 3.4 s ago; it was at +176° (behind)."
    assert answer("Did anyone start talking after the others?", m).startswith("No: ")
    # without #3, the brief track alone is nobody who stopped talking
    m = memory_with([(t, [tr for tr in tracks if tr[0] != 3]) for t, tracks in frames])
    assert answer("Did anyone stop talking?", m).startswith("No: "), answer("Did anyone stop talking?", m)
    # asked about by its id, it is still answered
    assert answer("Did #4 stop talking?", m).startswith("Yes: #4 stopped talking 0.9 s ago")


def test_a_track_the_tracker_lost_and_found_again_is_one_talker():
    # #1 talks throughout at +30°; the talker at -60° is tracked as #2 until t=3.0 s, retired, and
    # found again 0.4 s later as #5 at -64° (a new id, the same talker)
    frames = []
    for k in range(1, 61):
        t = 0.1 * k
        tracks = [(1, 30.0, t)]
        if t <= 3.0:
            tracks.append((2, -60.0, t))
        if t >= 3.4:
            tracks.append((5, -64.0, t - 3.4))
        frames.append((t, tracks))
    m = memory_with(frames)
    assert m.successor(m.sources[2]) is m.sources[5]
    assert m.talker_start(m.sources[5]) == pytest.approx(0.0, abs=1e-9)
    assert answer("Did anyone stop talking?", m).startswith("No: ")
    assert answer("Did someone new start talking?", m).startswith("No: ")
    snap = m.snapshot()
    assert [g["continued_by"] for g in snap["gone"]] == [5]
    # the same break far from #2's direction is a talker who stopped and another who started
    far = [(t, [(tid, 120.0 if tid == 5 else az, age) for tid, az, age in tracks]) for t, tracks in frames]
    m = memory_with(far)
    assert m.successor(m.sources[2]) is None
    assert answer("Did anyone stop talking?", m).startswith("Yes: #2 stopped talking")
    assert answer("Who started talking last?", m).startswith("#5 started talking last")
    # and so is one found again too late to be the same talker (2 s after)
    late = [(t, [(tid, az, t - 5.0 if tid == 5 else age) for tid, az, age in tracks if tid != 5 or t >= 5.0])
            for t, tracks in frames]
    m = memory_with(late)
    assert m.successor(m.sources[2]) is None


def test_a_track_retired_where_another_still_talks_is_not_who_stopped():
    # #1 walks from -40° to +30° onto #2 (still at +30°) and is retired there: the array cannot tell
    # whether its talker stopped or is hidden behind #2
    frames = []
    for k in range(1, 61):
        t = 0.1 * k
        tracks = [(2, 30.0, t)]
        if t <= 4.0:
            tracks.append((1, min(30.0, -40.0 + 20.0 * t), t))
        frames.append((t, tracks))
    m = memory_with(frames)
    assert m.successor(m.sources[1]) is m.sources[2]
    assert answer("Has anybody gone quiet?", m).startswith("No: ")


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
    assert text.startswith("Yes") and "#3 is moving" in text and "#4 is still at -60°" in text
    assert answer("Is anyone walking?", m).startswith("Yes: #3 is moving (30°/s counter-clockwise)")
    assert answer("Is #4 walking?", m).startswith("No: #4 is still")
    m = memory_with(frames)
    text = answer("did source 3 move?", m)
    assert text.startswith("Yes") and "moved from +13° to +100°" in text and "still now" in text


def test_linear_array_cannot_tell_front_from_behind():
    # no array topic heard: the wire format's reading of front-back, a line from left to right
    m = memory_with([(0.1 * k, [(1, 60.0, 1.0)]) for k in range(1, 10)], ambiguity="front-back")
    cant = "I can't tell: this linear array hears only the angle to its axis (a cone of directions); " \
           "#1 at +60° or its mirror image +120°."
    assert answer("Is it in front or behind?", m) == cant
    assert answer("Is anyone behind you?", m) == cant
    assert answer("Is anyone above you?", m) == cant
    assert answer("Is it left or right?", m) == "#1 is on the left (+60°)."
    assert answer("Is anyone on the left?", m).startswith("Yes: #1")


def test_a_line_along_x_can_tell_front_from_behind_but_not_left_from_right():
    # the array topic gives the mics: a line along x (forward), so the cone is around x
    m = memory_with([(0.1 * k, [(1, 60.0, 1.0)]) for k in range(1, 10)], ambiguity="front-back")
    m.update("array", wire.array_payload(wire.common(9, "line_x", "f", 0.9, 1.7e9), [[-0.1, 0, 0], [0, 0, 0], [0.1, 0, 0]],
                                         "linear", "front-back", 16000, "srp-phat"))
    assert m.view.kind == "linear" and m.view.axis == pytest.approx((1.0, 0.0, 0.0))
    assert answer("Is anyone in front of you?", m).startswith("Yes: #1 at +60° (front-left) is in front")
    assert answer("Is anyone behind you?", m).startswith("No: nobody is behind")
    assert answer("Is anyone on your left?", m).startswith("I can't tell: this linear array")
    assert "+60° or its mirror image -60°" in answer("Is it on the left or the right?", m)


def test_above_or_below_with_a_3d_array():
    m = SceneMemory()
    base = wire.common(1, "cube", "cube", 1.0, 1.7e9)
    entry = wire.track_entry(1, 30.0, 40.0, unit_vector(30.0, 40.0), 0.9, 1.0, 0.0, 0.0, 0.0, -30.0)
    m.update("tracks", wire.tracks_payload(base, "none", [entry]))
    assert answer("Is it above or below?", m) == "#1 is above the array (elevation +40°)."
    assert answer("Is anyone above you?", m) == "Yes: #1 at +30° (front-left), elevation +40° is above the array."
    assert answer("Is anyone below you?", m).startswith("No: nobody is below the array")


def test_retired_sources_are_remembered_and_a_restart_forgets():
    m = memory_with([(0.1 * k, [(5, -90.0, 0.1 * k)]) for k in range(1, 20)]
                    + [(0.1 * k, []) for k in range(20, 40)])
    assert answer("how many sources?", m).startswith("0: nobody is heard now. The last one, #5, was at -90°")
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

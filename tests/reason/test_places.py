"""The built-in answerer with places (reason/places.py): a scene memory fed ``positions`` and
``room`` messages as ``arraydaemon fuse`` publishes them (built by the wire module). The whole path,
daemons -> fuse -> reason: ``arraydaemon eval --reasoning`` (research/reasoning/places.py) and
tests/integration/test_reason_places.py."""

from __future__ import annotations

import pytest

from arraydaemon.io import wire
from arraydaemon.reason.answers import answer
from arraydaemon.reason.memory import SceneMemory
from arraydaemon.research.reasoning import truth


def positions_message(t: float, entries, bearings=(), held=()) -> dict:
    """``(id, x, y, vx)`` entries at fuse time ``t``; ``bearings``: ``(array, id, azimuth)``; ``held``: the ids
    held on array a's bearing (``bearing_only``)."""
    base = wire.common(int(t * 10), "office", "room", t, 1.7e9 + t)
    ps = [{"id": i, "x": x, "y": y, "z": 1.3, "z_known": False, "velocity": [vx, 0.0, 0.0], "sigma_m": 0.2,
           "covariance_xy": [0.04, 0.0, 0.04], "sigma_z_m": 1e3, "age_s": t, "silent_s": 0.0,
           "fused_arrays": ["a"] if i in held else ["a", "b"], "fused_tracks": [1, 2], "bearing_only": i in held}
          for i, x, y, vx in entries]
    bs = [{"array": a, "id": i, "array_position": [0.1, 2.0, 1.2], "azimuth_deg": az, "elevation_deg": 0.0,
           "direction": [1.0, 0.0, 0.0], "ambiguity": "up-down"} for a, i, az in bearings]
    payload = wire.positions_payload(base, ps, bs, [])
    wire.validate("positions", payload)
    return payload


ROOM = wire.room_payload(wire.common(0, "office", "room", 0.5, 1.7e9), [6.0, 5.0, 2.7], [],
                         [{"name": "door", "position": [0.0, 2.5, 0.0]}, {"name": "big table", "position": [3.0, 2.5, 0.75]}])


@pytest.fixture
def office():
    """#1 standing 0.8 m from the door; #2 walking at 0.5 m/s along +x, 2 m past the table; a
    bearing only array a has."""
    m = SceneMemory()
    m.update("room", ROOM)
    for k in range(1, 30):
        t = 0.1 * k
        m.update("positions", positions_message(t, [(1, 0.8, 2.4, 0.0), (2, 3.5 + 0.5 * t, 2.0, 0.5)], [("a", 5, 30.0)]))
    return m


@pytest.mark.parametrize("question, first", [
    ("How many people are in the room?", "2: #1 at (0.8, 2.4) m, 0.8 m from the door and #2 at (5.0, 2.0) m"),
    ("Who is near the door?", "#1, at (0.80, 2.40) m, is nearest to the door (0.8 m from it); then #2 (5.0 m)."),
    ("Where is the talker near the door?", "#1, at (0.80, 2.40) m, is nearest to the door"),
    ("Is anyone near the door?", "Yes: #1 at (0.8, 2.4) m is 0.8 m from the door."),
    ("Is anybody near the big table?", "No: nobody is within 1.5 m of the big table; the nearest, #2"),
    ("Which talker is closest to the big table?", "#2, at (4.95, 2.00) m, is nearest to the big table (2.0 m from it)"),
    ("How far apart are they?", "About 4.2 m apart on the floor: #1 at (0.8, 2.4) m and #2 at (5.0, 2.0) m."),
    ("What is the distance between #1 and #2 in metres?", "About 4.2 m apart on the floor"),
    ("Is anyone walking?", "Yes: #2 is walking (0.5 m/s)"),
    ("Is #1 standing still?", "Yes"),
    ("Is anyone near the window?", "I can't tell: I do not know where the window is (the room file names door, big table)"),
    ("Is anyone on your left?", "I can't tell: these are places in the room"),
    ("Did anyone stop talking?", "No: every placed talker is still placed"),
])
def test_answers_with_places_and_landmarks(office, question, first):
    got = answer(question, office)
    assert got.startswith(first), got


def test_a_bearing_only_talker_is_counted_apart_and_never_placed(office):
    got = answer("How many talkers are there?", office)
    assert got.endswith("1 more direction heard by one array only (a): a bearing, no place."), got
    assert truth.said_count(got) == 2


def test_a_position_held_on_one_bearing_says_so_in_answers_text_and_snapshot():
    m = SceneMemory()
    m.update("room", ROOM)
    for k in range(1, 20):
        m.update("positions", positions_message(0.1 * k, [(1, 0.8, 2.4, 0.0), (2, 4.0, 1.0, 0.0)], held={2} if k > 15 else ()))
    got = answer("How many people are in the room?", m)
    assert "#2 at (4.0, 1.0) m (held on a's bearing, range not measured)" in got and "#1 at (0.8, 2.4) m," in got, got
    assert truth.said_count(got) == 2
    text = m.scene_text()
    assert "talkers placed now: 2 (two or more arrays agree on 1; 1 held on one array's bearing" in text, text
    assert "held on array a's bearing" in text and "from arrays a, b" in text
    assert [p["bearing_only"] for p in m.snapshot()["places"]] == [False, True]


def test_a_talker_who_is_no_longer_placed_stopped_and_the_scene_text_has_the_room():
    m = SceneMemory()
    m.update("room", ROOM)
    for k in range(1, 20):
        m.update("positions", positions_message(0.1 * k, [(1, 0.8, 2.4, 0.0), (2, 4.0, 1.0, 0.0)]))
    for k in range(20, 40):
        m.update("positions", positions_message(0.1 * k, [(1, 0.8, 2.4, 0.0)]))
    assert answer("Did anyone stop talking?", m).startswith("Yes: #2 was last placed 1.9 s ago, at (4.0, 1.0) m")
    assert answer("How far apart are they?", m).startswith("Only one talker is placed now (#1 at (0.8, 2.4) m)")
    text = m.scene_text()
    assert "landmark door at (0.00, 2.50)" in text and "position #1: (0.80, 2.40) m" in text
    assert "sources present now" not in text  # no directions from fuse: only places
    snap = m.snapshot()
    assert [p["id"] for p in snap["places"]] == [1] and [p["id"] for p in snap["places_gone"]] == [2]
    assert snap["landmarks"][0] == {"name": "door", "position": [0.0, 2.5, 0.0]}
    assert m.describe().startswith("t=3.9s: 1 talker placed in the room: #1 at (0.8, 2.4) m")

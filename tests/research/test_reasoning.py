"""The spatial-QA benchmark's truth and scoring (research/reasoning/truth.py) on hand-made scenes:
which questions are asked, what their true answers are under each array's ambiguity, and how an
answer's text is read. The whole path (replay → ZeroMQ → reason): tests/integration/test_reason_llm.py
and `arraydaemon eval --reasoning`."""

from __future__ import annotations

import numpy as np
import pytest

from arraydaemon.core.angles import unit_vector
from arraydaemon.reason.geometry import ArrayView
from arraydaemon.research.reasoning import truth
from arraydaemon.research.tracking.scenes import ACTIVITY_FRAME_S, TrackingScene

T = 6.0


def scene(talkers: list[dict]) -> TrackingScene:
    """``talkers``: dicts of ``az`` (or ``az0``, ``az1``: walking over the scene), ``el``, ``on``, ``off`` (s)."""
    times = np.arange(0.0, T + 0.05, 0.1)
    frames = int(T / ACTIVITY_FRAME_S)
    az = [np.linspace(t.get("az0", t.get("az")), t.get("az1", t.get("az")), len(times)) for t in talkers]
    speaking = np.zeros((len(talkers), frames), dtype=bool)
    for k, t in enumerate(talkers):
        speaking[k, int(t.get("on", 0.0) / ACTIVITY_FRAME_S):int(t.get("off", T) / ACTIVITY_FRAME_S)] = True
    return TrackingScene("hand", np.zeros((0, 4), np.float32), np.zeros((4, 3)), "circle", 0.3,
                         np.tile(times, (len(talkers), 1)), np.array(az),
                         np.array([np.full(len(times), t.get("el", 0.0)) for t in talkers]), speaking,
                         np.zeros(len(talkers)), False, -1)


def asked(sc: TrackingScene, view: ArrayView) -> dict[str, list[truth.Item]]:
    out: dict[str, list[truth.Item]] = {}
    for seed in range(20):  # every phrasing draw asks the same kinds with the same truth
        for item in truth.make_questions(sc, view, T, np.random.default_rng(seed)):
            out.setdefault(item.key + item.params.get("side", ""), []).append(item)
    return out


PLANAR = ArrayView("planar", normal=(0.0, 0.0, 1.0))
LINE_Y = ArrayView("linear", axis=(0.0, 1.0, 0.0))


def test_truth_on_a_planar_array():
    sc = scene([{"az": 60.0, "el": 20.0}, {"az": -90.0, "on": 2.0}, {"az": 170.0, "off": 2.0}])
    got = asked(sc, PLANAR)
    expect = {k: {i.expect for i in v} for k, v in got.items() if k not in ("nearest", "started", "stopped")}
    assert expect["count"] == {2}
    assert expect["sidesleft"] == {"yes"} and expect["sidesright"] == {"yes"}
    assert expect["front"] == {"yes"} and expect["behind"] == {"no"}  # the one behind stopped: not present
    assert expect["above"] == {"cant"} and expect["below"] == {"cant"}  # a planar array cannot tell
    assert expect["moving"] == {"no"} and expect["moved"] == {"no"}
    assert expect["started-yn"] == {"yes"} and expect["stopped-yn"] == {"yes"}
    (started,) = {tuple(np.round(i.expect, 3)) for i in got["started"]}
    assert started == pytest.approx(unit_vector(-90.0, 0.0), abs=1e-3)
    (stopped,) = {tuple(np.round(i.expect, 3)) for i in got["stopped"]}
    assert stopped == pytest.approx(unit_vector(170.0, 0.0), abs=1e-3)
    assert "angle" not in got  # one talker is gone: "the two talkers" is not clear


def test_truth_on_a_line_from_left_to_right_and_borders_left_out():
    sc = scene([{"az": 60.0}, {"az0": -20.0, "az1": -120.0}])
    got = asked(sc, LINE_Y)
    assert {i.expect for i in got["front"]} == {"cant"} and {i.expect for i in got["behind"]} == {"cant"}
    assert {i.expect for i in got["sidesleft"]} == {"yes"} and {i.expect for i in got["sidesright"]} == {"yes"}
    assert {i.expect for i in got["moving"]} == {"yes"}
    (angle,) = {i.expect for i in got["angle"]}
    assert angle[0] == pytest.approx(180.0) and angle[1] is True  # the mirror image gives another angle
    # a talker 4° off straight ahead: "is anyone on the left/right" is too near the border to ask
    assert "sidesleft" not in asked(scene([{"az": 4.0}]), PLANAR)


def test_answers_are_read_from_text():
    assert truth.said_verdict("Yes: #1 at +40° is on the left.") == "yes"
    assert truth.said_verdict("I can't tell: this planar array ...") == "cant"
    assert truth.said_verdict("There is no one on the left.") == "no"
    assert truth.said_verdict("The array cannot tell whether it is behind.") == "cant"
    assert truth.said_verdict("Source #2 is at +40 deg.") is None
    assert truth.said_count("2: #1 at +40° and #2 at -90°.") == 2
    assert truth.said_count("There are three people talking.") == 3
    assert truth.said_count("Nobody is heard now.") == 0
    snap = {"present": [{"id": 4, "vector": list(unit_vector(-90.0))}], "gone": []}
    assert truth.said_direction("Source #4, at -90°, is nearest.", snap) == pytest.approx(unit_vector(-90.0))
    assert truth.said_direction("The one at 30 degrees.", snap) == pytest.approx(unit_vector(30.0))
    assert truth.said_angles("About 85° apart (+40° and -45°)") == [85.0, 40.0, 45.0]


def test_tracks_right_reads_the_snapshot_with_the_answerers_rules():
    item = truth.Item("s", "sides", "Is anyone on your left?", "yes", {"side": "left"})
    left = {"id": 1, "vector": list(unit_vector(60.0)), "moving": False, "moved_deg": 0.0, "first_t": 0.0,
            "silent_s": 0.0}
    right = {**left, "id": 2, "vector": list(unit_vector(-60.0))}
    assert truth.tracks_right(item, {"present": [left], "gone": []}, PLANAR)
    assert not truth.tracks_right(item, {"present": [right], "gone": []}, PLANAR)
    count = truth.Item("s", "count", "How many?", 2)
    assert truth.tracks_right(count, {"present": [left, right], "gone": []}, PLANAR)
    assert not truth.tracks_right(count, {"present": [left], "gone": []}, PLANAR)

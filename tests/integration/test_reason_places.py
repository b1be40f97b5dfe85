"""Questions about places through the real path: three replay daemons publishing over ZeroMQ TCP
into a real ``arraydaemon fuse`` process, a real ``arraydaemon reason FUSE_ENDPOINT --json``
answering (research/reasoning/places.py, the benchmark's own run). Where the positions were right
the answer must be right, every answer in the form asked, and the talker placed."""

from __future__ import annotations

import pytest

from arraydaemon.research.reasoning import bench, truth

pytestmark = [pytest.mark.live, pytest.mark.sim, pytest.mark.slow]


def test_place_questions_through_daemons_fuse_and_reason(tmp_path):
    asked = bench.run_places_scene(1, tmp_path, None)  # one talker, three wall arrays
    keys = {a.item.key for a in asked}
    assert {"room-count", "near-yn", "near-who"} <= keys, keys
    for a in asked:
        assert a.origin == "built-in"
        if a.item.yes_no:
            assert truth.said_verdict(a.answer) in ("yes", "no") and a.answer.startswith(("Yes", "No")), a.answer
        if a.item.key == "room-count":
            assert a.answer[:1].isdigit(), a.answer
        if a.tracks_right:  # the positions allowed the right answer: the answerer gives it
            assert a.right, (a.item.text, a.item.expect, a.answer)
    assert sum(a.tracks_right for a in asked) >= 0.6 * len(asked), [(a.item.text, a.answer) for a in asked]
    who = [a for a in asked if a.item.key == "near-who"]
    assert any(a.right for a in who), [(a.item.text, a.item.expect, a.answer) for a in who]

"""``reason`` against a hostile publisher: badly typed messages are counted and skipped, a flood
cannot stop ``--ask`` from answering on time, and the scene memory stays bounded whatever arrives."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import msgpack
import pytest
import zmq
from hypothesis import given
from hypothesis import strategies as st

from arraydaemon.io import wire
from arraydaemon.reason.answers import answer
from arraydaemon.reason.memory import MAX_SOURCES, SceneMemory


def tracks_message(seq: int, t: float, ids=(1,), change: dict | None = None) -> dict:
    base = wire.common(seq, "demo", "demo_array", t, 1_700_000_000.0 + t)
    entries = [wire.track_entry(i, 90.0, 0.0, (0.0, 1.0, 0.0), 0.9, 1.0, 0.0, 0.0, 0.0, -30.0) for i in ids]
    return {**wire.tracks_payload(base, "up-down", entries), **(change or {})}


BAD = [{"t_end": "12.5"}, {"tracks": 5}, {"seq": float("nan")}, {"tracks": [{"id": float("nan")}]},
       {"array": None}]


def publish_while(port_holder: list, stop: threading.Event, flood: bool) -> None:
    sock = zmq.Context.instance().socket(zmq.PUB)
    port_holder.append(sock.bind_to_random_port("tcp://127.0.0.1"))
    seq = 0
    try:
        while not stop.is_set():
            for change in BAD:
                sock.send_multipart([b"tracks", msgpack.packb(tracks_message(seq, seq * 0.1, change=change))], zmq.NOBLOCK)
            sock.send_multipart(wire.encode("tracks", tracks_message(seq, seq * 0.1)), zmq.NOBLOCK)
            seq += 1
            if not flood:
                time.sleep(0.05)
    finally:
        sock.close(0)


@pytest.mark.live
@pytest.mark.parametrize("flood", [False, True])
def test_reason_survives_bad_messages_and_answers_on_time_under_a_flood(flood):
    port, stop = [], threading.Event()
    thread = threading.Thread(target=publish_while, args=(port, stop, flood), daemon=True)
    thread.start()
    while not port:
        time.sleep(0.01)
    try:
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "arraydaemon", "reason", f"tcp://127.0.0.1:{port[0]}", "--ask",
                               "is it left or right?", "--json", "--listen-seconds", "1", "--wait-seconds", "5"],
                              capture_output=True, text=True, timeout=60)
        took = time.monotonic() - start
    finally:
        stop.set()
        thread.join(5)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["answer"] == "#1 is on the left (+90°)."
    assert took < 15.0


def test_memory_is_bounded_whatever_ids_arrive():
    memory = SceneMemory(memory_s=1e9)
    for seq in range(50):
        memory.update("tracks", tracks_message(seq, float(seq), ids=range(seq * 100 + 1, seq * 100 + 101)))
    assert len(memory.sources) <= MAX_SOURCES


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6)


@given(st.lists(st.tuples(st.integers(1, 50), finite, st.floats(-180, 180), st.floats(-90, 90), st.floats(0, 1)),
                max_size=30))
def test_any_valid_sequence_of_messages_keeps_the_memory_answering(events):
    memory = SceneMemory(memory_s=5.0)
    for seq, (tid, t, az, el, activity) in enumerate(events):
        base = wire.common(seq, "demo", "demo_array", t, 1_700_000_000.0)
        entry = wire.track_entry(tid, az, el, (1.0, 0.0, 0.0), activity, 1.0, 0.0, 0.0, 0.0, -30.0)
        memory.update("tracks", wire.tracks_payload(base, "none", [entry]))
    for question in ("where is the speaker?", "how many sources?", "did it move?", "which is loudest?",
                     "is it left or right?", "what is nearest -30 degrees?", "since when?"):
        assert isinstance(answer(question, memory), str)
    assert isinstance(memory.scene_text(), str)

"""The reasoning subscriber: the built-in answerer on a scene memory, the whole path from a replaying
daemon through a real ZeroMQ socket to `arraydaemon reason`, and the LLM path against a
chat-completions server started here (recording what it is sent), a dead one, a broken one and a
slow one."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from arraydaemon.core.angles import unit_vector
from arraydaemon.io import wire
from arraydaemon.reason.answers import answer
from arraydaemon.reason.memory import SceneMemory

FS = 16000
PROFILE = "respeaker_6mic_hat"


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


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]\d+(?=°)", text)]


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


# --- light imports ------------------------------------------------------------------------------


def test_reason_imports_neither_torch_nor_numba_nor_numpy():
    # The command as a user runs it, to its end (no daemon: a one-line error after 0.3 s), then
    # the answerer on a message: none of the heavy modules may have been imported.
    code = (
        "import sys, json\n"
        "from arraydaemon import cli\n"
        "rc = cli.main(['reason', 'tcp://127.0.0.1:9', '--ask', 'where?', '--wait-seconds', '0.3'])\n"
        "from arraydaemon.reason.memory import SceneMemory\n"
        "from arraydaemon.reason.answers import answer\n"
        "from arraydaemon.io import wire\n"
        "m = SceneMemory()\n"
        "base = wire.common(1, 'a', 'f', 1.0, 2.0)\n"
        "m.update('tracks', wire.tracks_payload(base, 'none', [wire.track_entry(1, 90.0, 0.0, (0.0, 1.0, 0.0), "
        "0.9, 1.0, 0.0, 0.0, 0.0, -30.0)]))\n"
        "answer('is it left or right?', m); m.scene_text()\n"
        "heavy = sorted(x for x in ('numpy', 'numba', 'torch', 'scipy', 'sounddevice') if x in sys.modules)\n"
        "print(json.dumps({'rc': rc, 'heavy': heavy, 'answer': answer('is it left or right?', m)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"rc": 2, "heavy": [], "answer": "#1 is on the left (+90°)."}
    assert done.stderr.strip().startswith("arraydaemon: error: no messages from tcp://127.0.0.1:9")


@pytest.mark.parametrize("args, message", [
    (["--llm-url", "http://127.0.0.1:1/v1"], "--llm-url needs --llm-model"),
    (["--llm-url", "ftp://example.org", "--llm-model", "m"], "expected http://HOST:PORT/v1"),
    (["--endpoint", "localhost:5570"], "expected tcp://HOST:PORT"),
])
def test_reason_user_errors_are_one_line(args, message):
    done = subprocess.run([sys.executable, "-m", "arraydaemon", "reason", "--ask", "where?", *args],
                          capture_output=True, text=True, timeout=60, env=_env_without_llm())
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr and "Traceback" not in done.stderr


def _env_without_llm() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("ARRAYDAEMON_LLM")}


# --- end to end: a replaying daemon, subscribers answering, LLM servers ----------------------------


class ChatServer:
    """A chat-completions server: ``/v1`` answers and records, ``/bad/v1`` sends non-JSON,
    ``/slow/v1`` answers after 3 s."""

    REPLY = "There are two sources: one on your left and one moving on your right."

    def __init__(self):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/v1/chat/completions":
                    outer.requests.append({"headers": dict(self.headers), "body": json.loads(body)})
                    reply = json.dumps({"id": "x", "object": "chat.completion", "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": outer.REPLY},
                         "finish_reason": "stop"}]}).encode()
                elif self.path == "/bad/v1/chat/completions":
                    reply = b"<html>502 upstream model crashed</html>"
                elif self.path == "/slow/v1/chat/completions":
                    time.sleep(3.0)
                    reply = b"{}"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


QUESTIONS = ["How many sources are there?", "Which source is nearest to the left?", "Did anything move?",
             "Is the speaker on the left or the right?", "Which source is closest to -100 degrees?"]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """Replays a 5 s scene (a talker at +70°, another walking from -20° to -110°) in real time while
    five `arraydaemon reason` subscribers listen and answer; returns their outputs."""
    import soundfile

    from arraydaemon.research import simulate
    from arraydaemon.core.profiles import load_profile

    rng = np.random.default_rng(4242)
    mics = load_profile(PROFILE).mics
    talker, walker = simulate.speech_source(rng, 5.0, FS), simulate.speech_source(rng, 5.0, FS)
    scene = simulate.moving_source_scene(
        mics, walker, [(0.5, -20.0, 0.0), (4.5, -110.0, 0.0)], sample_rate=FS, rt60=0.3, rng=rng,
        static_sources=[simulate.SourceSpec(talker, 70.0, 5.0, 1.5)], room_dim=(6.0, 5.0, 3.0),
        array_centre=np.array([3.0, 2.5, 1.2]), snr_db=25.0, max_order=10)
    path = tmp_path_factory.mktemp("reason") / "scene.flac"
    soundfile.write(path, scene.scene.audio / np.max(np.abs(scene.scene.audio)) * 0.5, FS, subtype="PCM_16")

    server = ChatServer()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    common = [sys.executable, "-m", "arraydaemon", "reason", endpoint, "--json", "--listen-seconds", "4.0",
              "--wait-seconds", "60"]
    llm = ["--llm-model", "test-model", "--llm-timeout", "0.5", "--ask", QUESTIONS[0]]
    commands = {
        "builtin": common + [arg for q in QUESTIONS for arg in ("--ask", q)],
        "llm": common + ["--llm-url", server.url + "/v1"] + llm,
        "dead": common + ["--llm-url", f"http://127.0.0.1:{free_port()}/v1"] + llm,
        "bad": common + ["--llm-url", server.url + "/bad/v1/"] + llm,
        "slow": common + ["--llm-url", server.url + "/slow/v1"] + llm,
    }
    env = _env_without_llm()
    subscribers = {name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                   for name, cmd in commands.items()}
    try:
        daemon = subprocess.run([sys.executable, "-m", "arraydaemon", "replay", str(path), "--profile", PROFILE,
                                 "--endpoint", endpoint, "--estimator", "srp-phat", "--quiet"],
                                capture_output=True, text=True, timeout=120)
        assert daemon.returncode == 0, daemon.stderr
        outputs = {name: p.communicate(timeout=60) for name, p in subscribers.items()}
    finally:
        for p in subscribers.values():
            if p.poll() is None:
                p.kill()
                p.communicate()
        server.close()
    truth = {"talker": scene.scene.sources[0][0], "walker_end": float(scene.direction_at(4.5)[0])}
    return outputs, {name: p.returncode for name, p in subscribers.items()}, server.requests, truth


def json_answers(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_builtin_answers_over_zeromq(replayed):
    outputs, codes, _, truth = replayed
    stdout, stderr = outputs["builtin"]
    assert codes["builtin"] == 0, stderr
    answers = {a["question"]: a for a in json_answers(stdout)}
    assert list(answers) == QUESTIONS and all(a["origin"] == "built-in" for a in answers.values())
    assert answers[QUESTIONS[0]]["answer"].startswith("2 sources now"), answers[QUESTIONS[0]]
    # nearest to the left: the talker at +70°
    near_left = answers[QUESTIONS[1]]["answer"]
    assert abs(numbers(near_left)[0] - truth["talker"]) <= 12.0, near_left
    # the walker moved (90° in 4 s), the talker did not
    moved = answers[QUESTIONS[2]]["answer"]
    assert moved.startswith("Yes"), moved
    walker_id = int(re.search(r"#(\d+) (?:is moving|moved from)", moved).group(1))
    talker_id = int(re.search(r"#(\d+) has not moved", moved).group(1))
    assert walker_id != talker_id
    sides = answers[QUESTIONS[3]]["answer"]
    assert f"#{talker_id} is on the left" in sides and f"#{walker_id} is on the right" in sides, sides
    closest = answers[QUESTIONS[4]]["answer"]
    assert closest.startswith(f"Source #{walker_id},") and abs(numbers(closest)[0] - truth["walker_end"]) <= 20.0
    assert stderr == ""


def test_llm_endpoint_gets_the_scene_and_its_answer_is_printed(replayed):
    outputs, codes, requests, truth = replayed
    stdout, stderr = outputs["llm"]
    assert codes["llm"] == 0 and stderr == ""
    (reply,) = json_answers(stdout)
    assert reply == {**reply, "origin": "llm", "answer": ChatServer.REPLY, "question": QUESTIONS[0]}
    (request,) = requests
    body = request["body"]
    assert body["model"] == "test-model" and body["stream"] is False
    system, user = body["messages"]
    assert system["role"] == "system" and user["role"] == "user" and user["content"].startswith(QUESTIONS[0])
    scene = system["content"]
    assert "sources present now: 2" in scene and "array: respeaker_6mic_hat" in scene
    azimuths = [float(a) for a in re.findall(r"source #\d+: azimuth ([-+][\d.]+) deg", scene)]
    assert len(azimuths) == 2
    assert min(abs(a - truth["talker"]) for a in azimuths) <= 12.0
    assert min(abs(a - truth["walker_end"]) for a in azimuths) <= 25.0
    assert "cannot tell above from below" in scene  # the planar array's ambiguity is explained


@pytest.mark.parametrize("name, reason_text", [
    ("dead", "cannot connect"),
    ("bad", "not a chat-completions response"),
    ("slow", "no answer within 0.5 s"),
])
def test_llm_failure_is_one_line_and_falls_back_to_the_builtin_answer(replayed, name, reason_text):
    outputs, codes, _, _ = replayed
    stdout, stderr = outputs[name]
    assert codes[name] == 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("arraydaemon: llm error: http://127.0.0.1:") and reason_text in lines[0], lines[0]
    assert lines[0].endswith("answering with the built-in answerer")
    (reply,) = json_answers(stdout)
    assert reply["origin"] == "built-in" and reply["answer"].startswith("2 sources now")

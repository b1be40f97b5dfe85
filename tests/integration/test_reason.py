"""`arraydaemon reason` end to end: a daemon replays a simulated scene in real time through a real
ZeroMQ socket while subscribers answer with the built-in answerer, or ask a chat-completions server
started here (recording what it is sent), a dead one, a broken one and a slow one."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile

from arraydaemon.core.profiles import load_profile
from arraydaemon.research import simulate
from tests.helpers import ARRAYDAEMON, env_without_llm, free_port

# One scene replayed in real time (5 s) to five subscriber processes over ZeroMQ.
pytestmark = [pytest.mark.live, pytest.mark.sim, pytest.mark.slow]

FS = 16000
PROFILE = "respeaker_6mic_hat"


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]\d+(?=°)", text)]


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


QUESTIONS = ["How many sources are there?", "Which source is nearest to the left?", "Did anything move?",
             "Is the speaker on the left or the right?", "Which source is closest to -100 degrees?"]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """Replays a 5 s scene (a talker at +70°, another walking from -20° to -110°) in real time while
    five `arraydaemon reason` subscribers listen and answer; returns their outputs."""
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
    common = [*ARRAYDAEMON, "reason", endpoint, "--json", "--listen-seconds", "4.0",
              "--wait-seconds", "60"]
    llm = ["--llm-model", "test-model", "--llm-timeout", "0.5", "--llm-route", "all", "--ask", QUESTIONS[0]]
    commands = {
        "builtin": common + [arg for q in QUESTIONS for arg in ("--ask", q)],
        "llm": common + ["--llm-url", server.url + "/v1"] + llm,
        "dead": common + ["--llm-url", f"http://127.0.0.1:{free_port()}/v1"] + llm,
        "bad": common + ["--llm-url", server.url + "/bad/v1/"] + llm,
        "slow": common + ["--llm-url", server.url + "/slow/v1"] + llm,
    }
    env = env_without_llm()
    subscribers = {name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                   for name, cmd in commands.items()}
    try:
        daemon = subprocess.run([*ARRAYDAEMON, "replay", str(path), "--profile", PROFILE,
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
    assert answers[QUESTIONS[0]]["answer"].startswith("2: "), answers[QUESTIONS[0]]
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
    assert reply["origin"] == "built-in" and reply["answer"].startswith("2: ")

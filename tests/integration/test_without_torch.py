"""The daemon and its subscribers run without torch: every command a plain install serves (``run``,
``replay``, ``demo``, ``web``, ``reason``, ``listen``, ``profile verify``) runs as a real process with a
``torch`` (and ``onnx``, ``ml_dtypes``) first on PYTHONPATH that raises ImportError when imported, on
short inputs, and does its work."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from arraydaemon.core.paths import DATA_DIR, SHIPPED_WEIGHTS
from arraydaemon.core.profiles import load_profile
from tests.helpers import ARRAYDAEMON, needs_weights
from tests.helpers import plane_wave as free_field_plane_wave

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("torch", "onnx", "ml_dtypes")

pytestmark = [needs_weights]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """The environment of a process that cannot import torch, onnx or ml_dtypes."""
    poison = tmp_path_factory.mktemp("poison")
    for name in FORBIDDEN:
        (poison / name).mkdir()
        (poison / name / "__init__.py").write_text(f"raise ImportError('{name} imported at run time')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(poison), str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))  # no graph cached from elsewhere
    return env


def plane_wave(mics, seconds: float) -> np.ndarray:
    """White noise from azimuth 30°, elevation 10° at 20 dB SNR, seed 0, at 16 kHz."""
    return free_field_plane_wave(mics, 16000, 30.0, 10.0, seconds, np.random.default_rng(0), amplitude=0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(env, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(ARRAYDAEMON + [str(a) for a in args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_poisoned_path_does_stop_torch(env):
    done = subprocess.run([ARRAYDAEMON[0], "-c", "import torch"], env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "torch imported at run time" in done.stderr


def test_replay_and_profile_verify_run_the_neural_default_without_torch(env, tmp_path):
    profile = load_profile("respeaker_4mic_hat")
    path = tmp_path / "rec.wav"
    sf.write(path, plane_wave(profile.mics, seconds=1.0), 16000)
    done = run(env, "replay", path, "--profile", "respeaker_4mic_hat", "--fast", "--jsonl", "-", "--no-publish")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert records and all(r["estimator"] == "neural" for r in records)
    assert any(r["sources"] for r in records)
    done = run(env, "profile", "verify", "demo", "--file", DATA_DIR / "demo.flac", "--json")
    assert "imported at run time" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0 and json.loads(done.stdout)["ok"] is True, done.stdout + done.stderr


def test_own_weights_without_their_graph_are_refused_in_one_line(env, tmp_path):
    weights = tmp_path / "mine.safetensors"
    weights.write_bytes(SHIPPED_WEIGHTS.read_bytes()[:-1] + b" ")  # other bytes: no graph matches them
    profile = load_profile("demo")
    path = tmp_path / "rec.wav"
    sf.write(path, plane_wave(profile.mics, seconds=0.5), 16000)
    done = run(env, "replay", path, "--profile", "demo", "--fast", "--no-publish", "--weights", weights)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "mine.safetensors: no graph mine.onnx beside it" in lines[0], done.stderr
    assert f"arraydaemon export-onnx --weights {weights}" in lines[0]


@pytest.mark.live
@pytest.mark.slow
def test_demo_publishes_to_listen_reason_and_web_without_torch(env):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    http = free_port()
    listen = subprocess.Popen(ARRAYDAEMON + ["listen", endpoint, "--json", "--topics", "doa", "--count", "3",
                                             "--timeout", "60"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    reason = subprocess.Popen(ARRAYDAEMON + ["reason", endpoint, "--ask", "where is the talker?", "--json",
                                             "--wait-seconds", "60", "--listen-seconds", "1"],
                              env=dict(env, ARRAYDAEMON_LLM_URL=""), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    web = subprocess.Popen(ARRAYDAEMON + ["web", endpoint, "--http", f"127.0.0.1:{http}"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    demo = None
    try:
        page = None
        for _ in range(100):
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{http}/", timeout=2).read().decode()
                break
            except OSError:
                assert web.poll() is None, web.communicate()[1]
                time.sleep(0.1)
        assert page and "<html" in page.lower()
        time.sleep(1.0)  # the subscribers are connected before the first message
        demo = subprocess.Popen(ARRAYDAEMON + ["demo", "--endpoint", endpoint], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = listen.communicate(timeout=90)
        assert listen.returncode == 0, err
        doa = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert len(doa) == 3 and all(m["topic"] == "doa" and m["estimator"] == "neural" for m in doa), out
        out, err = reason.communicate(timeout=90)
        assert reason.returncode == 0, err
        assert out.strip(), err
        for proc in (demo, web):
            assert proc.poll() is None or proc.returncode == 0, proc.communicate()[1]
    finally:
        for proc in (listen, reason, web, demo):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    for proc in (web, demo):
        assert "imported at run time" not in proc.stderr.read()


@pytest.mark.live
@pytest.mark.sim
@pytest.mark.slow
def test_run_captures_and_publishes_the_neural_default_without_torch(env, tmp_path):
    from arraydaemon.research.jack import GEOMETRIES, RATE, JackServer, Player, loopback_profile, talker_scene

    jack = JackServer(tmp_path, rate=RATE)
    jack.start()
    player = daemon = None
    try:
        player = Player(talker_scene(4, tmp_path / "scene.npy"), RATE, jack.env)
        profile = loopback_profile(tmp_path / "loop.yaml", "loop4", GEOMETRIES[4])
        endpoint = f"tcp://127.0.0.1:{free_port()}"
        jack_env = dict(env, **{k: v for k, v in jack.env.items() if k not in ("PYTHONPATH",)})
        listen = subprocess.Popen(ARRAYDAEMON + ["listen", endpoint, "--json", "--topics", "doa", "--count", "5",
                                                 "--timeout", "60"], env=jack_env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        daemon = subprocess.Popen(ARRAYDAEMON + ["run", "--profile", profile, "--endpoint", endpoint],
                                  env=jack_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = listen.communicate(timeout=90)
        assert listen.returncode == 0, err
        doa = [json.loads(line) for line in out.splitlines() if line.strip()]
        assert len(doa) == 5 and all(m["topic"] == "doa" and m["estimator"] == "neural" for m in doa), out
        assert sum(bool(m["sources"]) for m in doa) >= 3, out
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=20)
        assert daemon.returncode == 0, err
        assert "imported at run time" not in err
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        if player is not None:
            player.kill()
        jack.stop()

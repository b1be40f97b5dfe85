"""``profile verify --device`` on a real PortAudio device: a JACK server (dummy backend) with a
``loopback`` client into which a second process plays a simulated talker walking around an
irregular 5-mic array, its mics on 5 of the 8 channels in a scrambled order. Verify records
through the capture child and must name the channel_map the player used."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from arraydaemon.research.jack import JackServer, Player
from tests.helpers import ARRAYDAEMON
from tests.verify.scenes import IRREGULAR, room_talker

pytestmark = [pytest.mark.live, pytest.mark.sim]

RATE = 16000
TRUE_MAP = [5, 0, 3, 6, 1]


@pytest.fixture
def jack(tmp_path):
    server = JackServer(tmp_path, rate=RATE, period=256)
    yield server
    server.stop()


def write_profile(path, channel_map):
    mics = "\n".join(f"  - [{x}, {y}, {z}]" for x, y, z in IRREGULAR)
    path.write_text(f"name: livetest\nsample_rate: {RATE}\nchannels: 8\nchannel_map: {list(channel_map)}\n"
                    f"device: loopback\nmics:\n{mics}\n")
    return path


def test_verify_records_a_device_and_finds_its_channel_map(jack, tmp_path):
    scene = room_talker(IRREGULAR, seed=31, seconds=8.0, diffuse_db=None)
    device = np.zeros((len(scene.device), 8), dtype=np.float32)
    device[:, TRUE_MAP] = scene.device
    np.save(tmp_path / "scene.npy", device)
    jack.start()
    player = Player(tmp_path / "scene.npy", RATE, jack.env)
    try:
        wrong = write_profile(tmp_path / "wrong.yaml", [0, 1, 3, 5, 6])
        out = subprocess.run([*ARRAYDAEMON, "profile", "verify", str(wrong), "--device", "loopback", "--seconds", "8",
                              "--json"], env=jack.env, capture_output=True, text=True, timeout=180)
        assert out.returncode == 1, out.stderr
        report = json.loads(out.stdout)
        assert report["recording"]["source"] == "device 'loopback'" and report["recording"]["duration_s"] == 8.0
        assert report["suggested_channel_map"] == TRUE_MAP, report["problems"]
        silent = [c["channel"] for c in report["channels"] if "dead" in c["problems"]]
        assert silent == [2, 4, 7]  # the channels without a mic carry nothing
        right = write_profile(tmp_path / "right.yaml", TRUE_MAP)
        out = subprocess.run([*ARRAYDAEMON, "profile", "verify", str(right), "--device", "loopback", "--seconds", "8"],
                             env=jack.env, capture_output=True, text=True, timeout=180)
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.startswith("ok: the recording agrees with profile 'livetest'")
        assert "note: recording 8 s from 'loopback'" in out.stderr
    finally:
        player.kill()


def test_missing_device_is_one_line(jack, tmp_path):
    jack.start()
    prof = write_profile(tmp_path / "p.yaml", TRUE_MAP)
    out = subprocess.run([*ARRAYDAEMON, "profile", "verify", str(prof), "--device", "no-such-array"], env=jack.env,
                         capture_output=True, text=True, timeout=120)
    lines = [line for line in out.stderr.splitlines() if line.startswith("arraydaemon: error:")]
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "no input device matching 'no-such-array'" in lines[0]

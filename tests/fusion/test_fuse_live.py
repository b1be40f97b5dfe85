"""``arraydaemon fuse`` as a user runs it: real replay daemons publishing over ZeroMQ TCP on
127.0.0.1 into a real fuse process; one daemon killed mid-scene and restarted; an endpoint where
nothing ever listens."""

from __future__ import annotations

import math
import signal
import subprocess
import time

import numpy as np
import pytest
import yaml

from arraydaemon.io.subscriber import Subscriber
from tests.helpers import ARRAYDAEMON, REPO_ROOT, free_port, replay_array

pytestmark = [pytest.mark.live, pytest.mark.sim, pytest.mark.slow]
SCENE_S = 10.0


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    from arraydaemon.research.fusion.scenes import load_scene

    return load_scene("dev", 1, tmp_path_factory.mktemp("fusion"), arrays=3, talkers=1, duration=SCENE_S)


def test_fuse_degrades_when_a_daemon_dies_and_takes_it_back(scene, tmp_path):
    import json

    from arraydaemon.research.fusion.scenes import position_at

    room = yaml.safe_load((scene / "room.yaml").read_text())
    for a in room["arrays"]:
        a["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
        a["profile"] = str(scene / a["profile"])
    never = {"name": "never", "profile": "respeaker_4mic_hat", "endpoint": f"tcp://127.0.0.1:{free_port()}",
             "position": [0.3, 0.3, 1.0], "yaw_deg": 45}
    room["arrays"].append(never)
    path = tmp_path / "room.yaml"
    path.write_text(yaml.safe_dump(room))
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    fuse = subprocess.Popen([*ARRAYDAEMON, "fuse", str(path), "--endpoint", endpoint], cwd=REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    arrays = room["arrays"][:3]
    victim = arrays[1]["name"]
    wall_start = time.time() + 8.0
    daemons = [replay_array(scene, a, wall_start) for a in arrays]
    sub = Subscriber(endpoint, ["positions"])
    got = []  # (scene time, payload)
    restarted = None
    killed_at = restarted_at = None
    try:
        while time.time() < wall_start + SCENE_S + 1.0:
            for _, payload in sub.receive(time.monotonic() + 0.1):
                got.append((payload["wall_time"] - wall_start, time.time() - wall_start, payload))
            now = time.time() - wall_start
            if now > 3.5 and daemons[1].returncode is None and restarted is None:
                daemons[1].kill()  # mid-scene, no goodbye
                daemons[1].wait()
                killed_at = now
            if now > 6.0 and restarted is None:
                restarted = replay_array(scene, arrays[1], wall_start)  # the same clock: it catches up, then real time
                restarted_at = now
        assert fuse.poll() is None, fuse.stderr.read()
    finally:
        sub.close()
        for d in daemons + [restarted]:
            if d is not None and d.poll() is None:
                d.send_signal(signal.SIGTERM)
                d.wait(timeout=30)
        fuse.send_signal(signal.SIGTERM)
        fuse.wait(timeout=20)
    assert fuse.returncode == 0
    log = fuse.stderr.read()
    (tmp_path / "fuse.log").write_text(log)
    assert f"array 'never': nothing received from {never['endpoint']} in 3 s: nothing accepts connections there" in log
    assert f"array '{victim}' ({arrays[1]['endpoint']}) is down (nothing for 2 s); fusing without it" in log
    assert log.count(f"array '{victim}' ({arrays[1]['endpoint']}) is up") == 2, log

    def state(payload, name):
        return next(s["state"] for s in payload["array_states"] if s["name"] == name)

    truth = json.loads((scene / "truth.json").read_text())["talkers"][0]
    path_xyz = np.array(truth["path"])
    all_up = min(arrival for s, arrival, p in got if all(state(p, a["name"]) == "up" for a in arrays))
    assert all_up < 3.0, "the daemons took too long to start"
    phases = {"before": (all_up + 0.3, killed_at), "down": (killed_at + 2.2, restarted_at),
              "after": (restarted_at + 2.5, SCENE_S)}
    for phase, (lo, hi) in phases.items():
        sel = [(s, p) for s, arrival, p in got if lo <= arrival <= hi and lo <= s <= hi]
        assert sel, f"no positions messages {phase} the kill"
        assert all(state(p, "never") == "waiting" for _, p in sel)
        want = "down" if phase == "down" else "up"
        assert all(state(p, victim) == want for _, p in sel), (phase, [(round(s, 2), state(p, victim)) for s, p in sel])
        fused = [(s, e) for s, p in sel for e in p["positions"]]
        assert len(fused) >= 0.6 * len(sel), f"{phase}: a position in {len(fused)} of {len(sel)} messages"
        errors = [math.dist((e["x"], e["y"]), position_at(path_xyz, s)[:2]) for s, e in fused]
        assert np.median(errors) < 0.6, f"{phase}: median floor error {np.median(errors):.2f} m"
        with_victim = [victim in e["fused_arrays"] for _, e in fused]
        if phase == "down":
            assert not any(with_victim)
        else:
            assert np.mean(with_victim) > 0.5, phase
    ids = {e["id"] for s, arrival, p in got for e in p["positions"] if arrival > 1.0}
    assert len(ids) <= 2, f"ids {ids}: one talker"


def test_fuse_steps_once_per_window_when_the_arrays_send_them_in_bursts(tmp_path):
    """Three publishers on real ZeroMQ TCP sockets send one talker's ``tracks`` out of step (one in
    bursts of three windows, one window by window, one in bursts of four): the real fuse process
    publishes one ``positions`` message per window, in capture order, each fused from all three."""
    from arraydaemon.fusion.room import parse_room
    from arraydaemon.io.publisher import ZmqPublisher
    from tests.helpers import tracks_message

    data = {"name": "bursts", "size": [6.0, 5.0, 2.7], "arrays": [
        {"name": f"a{k}", "profile": "respeaker_4mic_hat", "endpoint": f"tcp://127.0.0.1:{free_port()}",
         "position": list(pos), "yaw_deg": yaw}
        for k, (pos, yaw) in enumerate([((0.2, 2.5, 1.2), 0.0), ((3.0, 0.2, 1.5), 90.0), ((5.8, 4.0, 1.0), 200.0)])]}
    room = parse_room(data, "<test>")
    path = tmp_path / "room.yaml"
    path.write_text(yaml.safe_dump(data))
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    pubs = [ZmqPublisher(a.endpoint) for a in room.arrays]
    fuse = subprocess.Popen([*ARRAYDAEMON, "fuse", str(path), "--endpoint", endpoint], cwd=REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sub = Subscriber(endpoint, ["positions"])
    talker = np.array([2.5, 2.0, 1.6])
    t0 = time.time()
    got = []
    sent = [0, 0, 0]
    bursts = [3, 1, 4]
    first_burst = None
    try:
        k = 0
        deadline = time.monotonic() + 40.0
        while time.monotonic() < deadline:
            if first_burst is None:  # window by window until fuse has all three up
                for pub, a in zip(pubs, room.arrays):
                    pub.send("tracks", tracks_message(a, talker, t0 + 0.1 * k, k))
                sent = [k + 1] * 3
                if any(all(s["state"] == "up" for s in p["array_states"]) for p in got):
                    first_burst = k + 1
            else:
                for j, (pub, a) in enumerate(zip(pubs, room.arrays)):
                    if (k - first_burst) % bursts[j] == bursts[j] - 1:
                        for w in range(sent[j], k + 1):
                            pub.send("tracks", tracks_message(a, talker, t0 + 0.1 * w, w))
                        sent[j] = k + 1
                if k >= first_burst + 36:
                    break
            k += 1
            until = time.monotonic() + 0.1
            while time.monotonic() < until:
                got.extend(payload for _, payload in sub.receive(until))
        assert first_burst is not None, "fuse never had the three arrays up"
        until = time.monotonic() + 1.0
        while time.monotonic() < until:
            got.extend(payload for _, payload in sub.receive(until))
    finally:
        sub.close()
        fuse.send_signal(signal.SIGTERM)
        fuse.wait(timeout=20)
        for pub in pubs:
            pub.close()
    assert fuse.returncode == 0, fuse.stderr.read()
    # the windows every array had sent: up to the last burst of the four-window array
    last = first_burst + 36
    common = min(sent)
    window = lambda p: t0 + 0.1 * first_burst - 1e-6 <= p["wall_time"] <= t0 + 0.1 * (common - 1) + 1e-6
    times = [p["wall_time"] for p in got if window(p)]  # not the idle messages once the publishers stop
    want = [t0 + 0.1 * w for w in range(first_burst, common)]
    assert common >= last - 4
    np.testing.assert_allclose(times[:len(want)], want, atol=1e-6)
    assert len(times) == len(want), (len(times), len(want))
    fused = [p for p in got if window(p)]
    assert all(len(p["positions"]) == 1 and sorted(p["positions"][0]["fused_arrays"]) == ["a0", "a1", "a2"]
               for p in fused)
    assert all(math.dist((p["positions"][0]["x"], p["positions"][0]["y"]), talker[:2]) < 0.05 for p in fused)

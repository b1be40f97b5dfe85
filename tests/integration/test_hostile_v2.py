"""What a hostile or careless user can try, against the real processes: each case names the one
line it must get, and none may reach a Python traceback, kill a running daemon or wedge a command.

(Subscription floods and oversized frames: tests/io/test_guard.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import aiohttp
import numpy as np
import pytest
import soundfile as sf
import yaml
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arraydaemon.core.errors import UserError
from arraydaemon.core.feasibility import check_runnable
from arraydaemon.core.messages import AudioBlock
from arraydaemon.core.options import FeatureConfig, LocalizerConfig, PipelineOptions
from arraydaemon.core.profiles import ProfileError, parse_profile
from arraydaemon.io import wire
from arraydaemon.pipeline import Pipeline
from tests.helpers import ARRAYDAEMON, REPO_ROOT, free_port
from tests.integration.test_live import (  # noqa: F401 - jack and scene_file are fixtures
    MICS,
    NotifyListener,
    Subscriber,
    clean_up,
    jack,
    scene_file,
    start_daemon,
    terminate,
    write_profile,
)
from tests.web.processes import WebServer

DEMO = REPO_ROOT / "arraydaemon" / "data" / "demo.flac"
DEMO_PROFILE = REPO_ROOT / "array_profiles" / "demo.yaml"


def one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> str:
    """The single error line of a command that failed as a user mistake should (exit 2)."""
    err = done.stderr if isinstance(done.stderr, str) else done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("arraydaemon: error:")]
    assert done.returncode == 2 and len(lines) == 1, (done.returncode, err[-2000:])
    assert len(lines[0]) < 400, lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def cli(*args, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*ARRAYDAEMON, *args], capture_output=True, text=True, timeout=timeout, **kwargs)


def profile_text(**changes) -> str:
    data = {"name": "hostile", "sample_rate": 16000, "mics": [list(m) for m in MICS]}
    data.update(changes)
    return yaml.safe_dump(data)


# --- 2, 5: settings a check passes must run; a reload keeps the running pipeline -------------


def test_a_band_without_bins_is_refused_by_every_entry(tmp_path):
    config = tmp_path / "band.yaml"
    config.write_text(f"band: [7990, 8000]\nprofile: {DEMO_PROFILE}\n")
    one_line_error(cli("config", "check", str(config)), "7990..8000 Hz holds fewer than 2 bins")
    one_line_error(cli("replay", str(DEMO), "--profile", "demo", "--fast", "--no-publish", "--fmin", "7990",
                       "--fmax", "8000"), "fewer than 2 bins")
    one_line_error(cli("run", "--config", str(config), "--endpoint", "tcp://127.0.0.1:*"), "fewer than 2 bins")
    one_line_error(cli("run", "--profile", "demo", "--fmin", "7990", "--fmax", "8000",
                       "--endpoint", "tcp://127.0.0.1:*"), "fewer than 2 bins")


@pytest.mark.parametrize("resolution, said", [("1000", "expected degrees in [0.1, 30]"),
                                              ("1e-7", "expected degrees in [0.1, 30]"),
                                              ("1e-4", "expected degrees in [0.1, 30]")])
def test_grid_resolutions_the_scan_cannot_hold_are_one_line(resolution, said):
    start = time.monotonic()
    one_line_error(cli("replay", str(DEMO), "--profile", "demo", "--fast", "--no-publish", "--resolution", resolution),
                   said)
    assert time.monotonic() - start < 30  # refused before anything is allocated


def test_a_3d_sphere_too_fine_for_the_scan_is_refused_before_it_is_built():
    cube = parse_profile({"name": "cube", "sample_rate": 16000,
                          "mics": [[x, y, z] for x in (-0.03, 0.03) for y in (-0.03, 0.03) for z in (-0.03, 0.03)]})
    options = PipelineOptions(localizer=LocalizerConfig(resolution_deg=0.5))
    with pytest.raises(UserError, match="directions"):
        check_runnable(cube, options)


@pytest.mark.parametrize("changes, said", [
    ({"frame_id": "f" * 300}, "frame_id"),  # cannot travel: subscribers refuse strings over 256 characters
    ({"mics": [[1e20, 0, 0], [1e20, 0.05, 0], [1e20, 0, 0.05]]}, "within ±10 m"),
    ({"mics": [[1e308, 0, 0], [1e308, 0.05, 0], [1e308, 0, 0.05]]}, "within ±10 m"),  # wedged svd before
    ({"gain": [1.0e300, 1, 1, 1]}, "gain"),
    ({"channel_map": [0, 1, 2, 10**18]}, "channel_map"),
])
def test_profiles_whose_numbers_or_names_cannot_run_or_travel_are_refused_at_load(tmp_path, changes, said):
    path = tmp_path / "hostile.yaml"
    path.write_text(profile_text(**changes))
    one_line_error(cli("profile", "check", str(path), timeout=30), said)
    one_line_error(cli("replay", str(DEMO), "--profile", str(path), "--fast", "--no-publish", timeout=30), said)


# Generated settings: whatever passes the check runs through the pipeline to the end.
_positions = st.lists(st.tuples(*[st.floats(-0.2, 0.2, allow_nan=False)] * 3), min_size=2, max_size=8, unique=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mics=_positions, rate=st.sampled_from([8000, 16000, 44100, 48000]),
       fmin=st.floats(0, 20000, allow_nan=False), width=st.floats(1, 20000, allow_nan=False),
       hop=st.floats(0.001, 0.25, allow_nan=False), resolution=st.none() | st.floats(0.05, 60, allow_nan=False),
       sources=st.integers(0, 10))
def test_any_settings_the_check_passes_run_to_the_end(mics, rate, fmin, width, hop, resolution, sources):
    try:
        profile = parse_profile({"name": "gen", "sample_rate": rate, "mics": [list(m) for m in mics]})
    except ProfileError:
        return
    options = PipelineOptions(estimator="srp-phat",
                              features=FeatureConfig(hop_s=hop, fmin_hz=fmin, fmax_hz=fmin + width),
                              localizer=LocalizerConfig(resolution_deg=resolution, max_sources=sources))
    try:
        check_runnable(profile, options)
    except UserError as exc:
        assert "\n" not in str(exc)
        return
    pipeline = Pipeline(profile, options)
    rng = np.random.default_rng(0)
    audio = (0.05 * rng.standard_normal((int(0.6 * rate), profile.num_mics))).astype(np.float32)
    results = pipeline.process(AudioBlock(0, rate, 0.0, 1e9, audio))
    assert results
    for result in results:
        for topic, payload in result.payloads:
            wire.encode(topic, payload)  # publishable: what a subscriber accepts


@pytest.mark.live
@pytest.mark.sim
@pytest.mark.slow
def test_a_reload_onto_settings_that_cannot_run_keeps_the_running_daemon(jack, scene_file, tmp_path):  # noqa: F811
    from arraydaemon.research.jack import Player

    jack.start()
    player = Player(scene_file, 16000, jack.env)
    profile = write_profile(tmp_path / "looptest.yaml")
    config = tmp_path / "arraydaemon.yaml"
    config.write_text(f"profile: {profile}\nband: [200, 7000]\n")
    notify = NotifyListener(str(tmp_path / "notify.sock"))
    log = tmp_path / "daemon.log"
    proc = start_daemon(jack.env, "--config", str(config), "--endpoint", "tcp://127.0.0.1:*",
                        notify=notify.address, log=log)
    sub = None
    try:
        notify.wait_for("READY=1", timeout=90)
        status = next(line for line in notify.lines() if line.startswith("STATUS=capturing"))
        endpoint = status.rsplit("publishing on ", 1)[1].strip()
        sub = Subscriber(endpoint)
        sub.wait_until(lambda s: len(s.of("doa")) >= 5, 30, "doa before the reloads")
        config.write_text(f"profile: {profile}\nband: [7990, 8000]\n")  # `config check` passed it before
        proc.send_signal(signal.SIGHUP)
        time.sleep(2.0)
        config.write_text(f"profile: {profile}\nband: [200, 7000]\n")
        # ... and a profile whose offsets overflowed the centroid (a wedged svd before)
        text = profile.read_text()
        for x, y, z in MICS:  # every mic 1e308 m out, the geometry intact: the aperture alone passes
            text = text.replace(f"[{x}, {y}, {z}]", f"[1.0e+308, {y}, {z + x}]")
        profile.write_text(text)
        proc.send_signal(signal.SIGHUP)
        time.sleep(2.0)
        n = len(sub.of("doa"))
        sub.wait_until(lambda s: len(s.of("doa")) >= n + 10, 15, "doa after the failed reloads")
        assert proc.poll() is None
        text = log.read_text()
        assert text.count("reload failed, keeping the running configuration") == 2, text[-3000:]
        assert "fewer than 2 bins" in text and "within ±10 m" in text and "Traceback" not in text
        assert terminate(proc, log) < 5.0
    finally:
        clean_up(proc, sub, notify, player)


# --- 6: every signal that ends a replay flushes it and says stopping -------------------------


@pytest.mark.live
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_ends_a_replay_with_every_window_written_and_a_stopping_health(tmp_path, sig):
    demo, rate = sf.read(DEMO, dtype="float32")
    long = tmp_path / "long.wav"
    sf.write(long, np.tile(demo, (5, 1)), rate)
    out = tmp_path / "out.jsonl"
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.subscribe(b"health")
    sub.connect(endpoint)
    proc = subprocess.Popen([*ARRAYDAEMON, "replay", str(long), "--profile", "demo", "--jsonl", str(out), "--quiet",
                             "--endpoint", endpoint, "--estimator", "srp-phat"], stderr=subprocess.PIPE, text=True)
    try:
        states = []
        deadline = time.monotonic() + 60
        while "replay" not in states and time.monotonic() < deadline:
            if sub.poll(200):
                states.append(wire.receive(sub.recv_multipart())[1]["state"])
        time.sleep(1.5)
        proc.send_signal(sig)
        err = proc.communicate(timeout=30)[1]
        while sub.poll(1000):
            states.append(wire.receive(sub.recv_multipart())[1]["state"])
    finally:
        sub.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    assert "Traceback" not in err and f"stopped by {signal.Signals(sig).name}" in err
    windows = int(re.search(r"(\d+) windows, estimator", err).group(1))
    lines = out.read_text().splitlines()
    assert windows >= 10 and len(lines) == windows  # nothing buffered was lost
    assert all(json.loads(line)["seq"] == i for i, line in enumerate(lines))
    assert states[-1] == "stopping"


# --- 7: write errors, names and YAML a user can give -------------------------------------------


def test_write_errors_and_full_outputs_are_one_line():
    one_line_error(cli("replay", str(DEMO), "--profile", "demo", "--fast", "--no-publish", "--quiet",
                       "--estimator", "srp-phat", "--jsonl", "/dev/full"), "/dev/full: cannot write")
    with open("/dev/full", "w") as full:
        done = subprocess.run([*ARRAYDAEMON, "replay", str(DEMO), "--profile", "demo", "--fast", "--no-publish",
                               "--estimator", "srp-phat", "--jsonl", "-"], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    one_line_error(done, "standard output: cannot write")


def test_names_the_file_system_holds_but_utf8_cannot_work(tmp_path):
    odd = os.fsencode(tmp_path) + b"/rec\xff.flac"
    with open(odd, "wb") as f:
        f.write(DEMO.read_bytes())
    done = subprocess.run([*map(os.fsencode, ARRAYDAEMON), b"replay", odd, b"--profile", b"demo", b"--fast",
                           b"--no-publish", b"--quiet", b"--estimator", b"srp-phat",
                           b"--jsonl", os.fsencode(tmp_path) + b"/out\xfe.jsonl"], capture_output=True, timeout=120)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr[-2000:]
    missing = subprocess.run([*map(os.fsencode, ARRAYDAEMON), b"replay", os.fsencode(tmp_path) + b"/no\xff.wav",
                              b"--profile", b"demo"], capture_output=True, timeout=60)
    one_line_error(subprocess.CompletedProcess(missing.args, missing.returncode, "", missing.stderr.decode()),
                   "no\\xff.wav: file not found")


def test_very_long_names_are_one_short_line():
    for ref in ("a" * 100_000, "a" * 3000 + ".yaml", "/" + "b/" * 2000 + "p.yaml"):
        one_line_error(cli("replay", str(DEMO), "--profile", ref, "--fast", "--no-publish"))
    one_line_error(cli("replay", "x" * 100_000 + ".wav", "--profile", "demo"))


@pytest.mark.parametrize("text, said", [("name: x\nsample_rate: " + "1" * 5000 + "\n", "invalid profile"),
                                        ("[" * 20_000 + "]" * 20_000 + "\n", "nested too deeply")])
def test_yaml_beyond_the_parsers_limits_is_one_line(tmp_path, text, said):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    one_line_error(cli("profile", "check", str(path)), said)
    (tmp_path / "c.yaml").write_text(text)
    one_line_error(cli("config", "check", str(tmp_path / "c.yaml")))


# --- 3: the web view on any binding answers only its own names ----------------------------------


@pytest.mark.live
def test_the_web_view_off_loopback_refuses_rebound_names_and_malformed_headers():
    web = WebServer("tcp://127.0.0.1:1", http="0.0.0.0:0")
    try:
        url = f"http://127.0.0.1:{web.port}/"

        async def run():
            async with aiohttp.ClientSession() as session:
                async with session.get(url, headers={"Host": f"evil.example:{web.port}"}) as r:
                    rebound = r.status
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:  # DNS rebinding: name + its origin
                    await session.ws_connect(url + "ws", headers={"Host": f"evil.example:{web.port}"},
                                             origin=f"http://evil.example:{web.port}")
                async with session.get(url, headers={"Host": f"{socket.gethostname()}:{web.port}"}) as r:
                    own_name = r.status
                async with session.get(url) as r:
                    by_address = r.status
            return rebound, refused.value.status, own_name, by_address

        rebound, ws_refused, own_name, by_address = asyncio.run(run())
        assert rebound == 421 and ws_refused == 421 and own_name == 200 and by_address == 200
        with socket.create_connection(("127.0.0.1", web.port)) as raw:  # an Origin no URL parser takes
            raw.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{web.port}\r\nOrigin: http://[\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n").encode())
            assert raw.recv(100).startswith(b"HTTP/1.1 400")
    finally:
        web.stop()
    assert "Traceback" not in "".join(web.stderr)


@pytest.mark.live
def test_the_machines_own_name_is_not_reported_beyond_loopback():
    from arraydaemon.web.server import is_loopback_host

    if not is_loopback_host(socket.gethostname()):
        pytest.skip("this machine's name resolves beyond loopback")
    web = WebServer("tcp://127.0.0.1:1", http=f"{socket.gethostname()}:0")
    try:
        assert not any("beyond loopback" in line for line in web.stderr)
    finally:
        web.stop()


# --- 9: listen at something that is not a publisher --------------------------------------------


@pytest.mark.live
def test_listen_says_when_nothing_arrives_and_why():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    try:
        done = cli("listen", f"tcp://127.0.0.1:{port}", "--timeout", "7")
        assert done.returncode == 0 and "Traceback" not in done.stderr
        assert f"nothing received from tcp://127.0.0.1:{port}" in done.stderr
        assert "not a ZeroMQ publisher" in done.stderr or "does not speak ZeroMQ" in done.stderr
        closed = cli("listen", f"tcp://127.0.0.1:{free_port()}", "--timeout", "7")
        assert "nothing accepts connections there" in closed.stderr
    finally:
        server.close()
        for conn, _ in accepted:
            conn.close()


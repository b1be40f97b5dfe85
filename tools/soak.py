#!/usr/bin/env python3
"""Soak test of ``arraydaemon run``: an hour of live capture with hostile subscribers and a JACK
device killed every minute (not CI).

It starts its own JACK server (jackd2, dummy backend, 16 kHz, 256-frame periods, a ``loopback``
client; :mod:`arraydaemon.research.jack`), loops a simulated talker (or the bundled demo recording,
``--scene demo``) into ``loopback`` from a ``nice``'d player process, and runs ``arraydaemon run
--wait`` on it as a subprocess, publishing on a TCP port on 127.0.0.1. Against that port, for the
whole run:

- **stalled**: a SUB on every topic that never reads, and a raw TCP connection that never speaks;
- **churn**: SUB sockets that connect, subscribe (sometimes to a hundred random prefixes), read a
  little or nothing and close, in a loop;
- **garbage**: raw TCP connections that send junk to the PUB port: random bytes, a bad ZMTP
  greeting, a valid greeting then junk frames, a frame declaring 256 MiB then 2 MiB of it;
- **flooded**: the package's validating :class:`arraydaemon.io.subscriber.Subscriber` (as
  ``reason`` receives) with a receive high-water mark of 1, reading slowly, so it is always flooded.

Every ``--kill-every`` seconds the JACK server is killed (SIGKILL) together with the player and
restarted at once; the recovery time is from the kill to the first ``doa`` message whose window was
captured after the kill (``wall_time`` later than the kill: only a reopened stream can produce it),
and to the first ``health`` in ``running`` after that window (the daemon often reopens within one
health period, so a ``device-lost`` health is seen only sometimes; it is recorded when it is). A loss
counts as recovered when both arrive before the next kill. A monitoring subscriber (this process) validates every
message; the daemon's RSS (and its capture child's) is read from /proc every 10 s; overflows and
dropped blocks come from ``health``; the daemon's stderr is searched for ``Traceback``.

At the end it prints a markdown table (RSS growth per hour is a least-squares line through the
samples after ``--warmup`` seconds) and exits 1 if a target fails: RSS growth >= 5 MB/h, a loss not
recovered, a traceback, the daemon exiting early or not exiting 0 on SIGTERM.

Usage: python tools/soak.py [--minutes 60] [--kill-every 60] [--mics 4|8] [--estimator srp-phat|neural]
       [--scene simulated|demo] [--out soak.json] [--logs DIR]
Needs jackd (Debian jackd2) and the package installed. Cleans up jackd, the daemon, the player and
this server's /dev/shm files on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import zmq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arraydaemon.io import wire  # noqa: E402
from arraydaemon.research.jack import (  # noqa: E402
    GEOMETRIES,
    PERIOD,
    RATE,
    JackServer,
    Player,
    loopback_profile,
    talker_scene,
)

SAMPLE_EVERY_S = 10.0
RSS_TARGET_MB_PER_H = 5.0


class Interrupted(Exception):
    """SIGINT/SIGTERM/SIGHUP: stop, clean up, report what was measured."""


# ------------------------------------------------------------------------------------------------
# The device side: scene, profile, player


def make_scene(kind: str, mics: int, work: Path) -> Path:
    """``[samples, mics]`` float32 in a .npy file for the player."""
    path = work / "scene.npy"
    if kind != "demo":
        return talker_scene(mics, path)
    import soundfile as sf

    audio, rate = sf.read(str(ROOT / "arraydaemon" / "data" / "demo.flac"), dtype="float32", always_2d=True)
    if rate != RATE or audio.shape[1] != mics:
        raise SystemExit(f"the demo recording is {audio.shape[1]} channels at {rate} Hz: use --mics {audio.shape[1]}")
    np.save(path, np.ascontiguousarray(audio, dtype=np.float32))
    return path


def make_profile(mics: int, work: Path) -> Path:
    return loopback_profile(work / f"soak{mics}.yaml", f"soak{mics}", GEOMETRIES[mics], frame_id="soak_array")


# ------------------------------------------------------------------------------------------------
# /proc


def rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid: int, marker: str = "") -> list[int]:
    """Processes whose parent is ``pid`` (and whose command line contains ``marker``)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
            if ppid != pid:
                continue
            if marker:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() not in f.read():
                        continue
            out.append(int(entry))
        except (OSError, ValueError):
            continue
    return out


# ------------------------------------------------------------------------------------------------
# The monitor: what the daemon publishes, and the recovery of each device loss


class Episode:
    """One device loss: kill → (a health not ``running``, if one is published meanwhile) → first
    doa captured after the kill → a health ``running`` after it."""

    def __init__(self, n: int, kill_mono: float, kill_wall: float):
        self.n = n
        self.kill_mono, self.kill_wall = kill_mono, kill_wall
        self.restart_s: float | None = None  # jackd + player back
        self.lost_s: float | None = None  # first health not running
        self.lost_state: str | None = None
        self.doa_s: float | None = None  # first doa captured after the kill
        self.running_s: float | None = None  # first health running after that doa

    @property
    def recovered(self) -> bool:
        return self.doa_s is not None and self.running_s is not None

    def as_dict(self) -> dict:
        return {"n": self.n, "kill_wall": self.kill_wall, "restart_s": self.restart_s, "lost_s": self.lost_s,
                "lost_state": self.lost_state, "doa_s": self.doa_s, "running_s": self.running_s,
                "recovered": self.recovered}


class Monitor(threading.Thread):
    def __init__(self, endpoint: str):
        super().__init__(name="monitor", daemon=True)
        self.endpoint = endpoint
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = {t: 0 for t in wire.TOPICS}
        self.invalid = 0
        self.invalid_examples: list[str] = []
        self.counter_changes: list[dict] = []  # health whenever overflows or dropped_blocks changed
        self.health: list[dict] = []  # (mono, payload) as dicts, trimmed to what we need
        self.last_health: dict | None = None
        self.first_health: dict | None = None
        self.last_doa_mono: float | None = None
        self.max_gap_s = 0.0
        self.seq_regressions = 0
        self._last_doa_seq = -1
        self.episode: Episode | None = None
        self.error: str | None = None

    def run(self) -> None:
        sock = zmq.Context.instance().socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 100000)
        sock.setsockopt(zmq.MAXMSGSIZE, wire.MAX_MESSAGE_BYTES + 64)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(self.endpoint)
        try:
            while not self.stop.is_set():
                if not sock.poll(100):
                    continue
                frames = sock.recv_multipart()
                now = time.monotonic()
                try:
                    topic, payload = wire.receive(frames)
                except wire.WireError as exc:
                    with self.lock:
                        self.invalid += 1
                        if len(self.invalid_examples) < 5:
                            self.invalid_examples.append(str(exc)[:300])
                    continue
                with self.lock:
                    self.counts[topic] += 1
                    if topic == "doa":
                        self._on_doa(now, payload)
                    elif topic == "health":
                        self._on_health(now, payload)
        except Exception as exc:  # noqa: BLE001 - reported, fails the run
            self.error = repr(exc)
        finally:
            sock.close()

    def _on_doa(self, now: float, p: dict) -> None:
        if self.last_doa_mono is not None:
            self.max_gap_s = max(self.max_gap_s, now - self.last_doa_mono)
        self.last_doa_mono = now
        if p["seq"] <= self._last_doa_seq:
            self.seq_regressions += 1
        self._last_doa_seq = p["seq"]
        ep = self.episode
        if ep is not None and ep.doa_s is None and p["wall_time"] > ep.kill_wall + 0.02:
            ep.doa_s = now - ep.kill_mono

    def _on_health(self, now: float, p: dict) -> None:
        keep = {k: p[k] for k in ("seq", "state", "uptime_s", "windows", "overflows", "dropped_blocks",
                                  "bad_blocks", "queue_depth", "cpu_percent")}
        keep["mono"] = now
        last = self.last_health
        if last is None or (last["overflows"], last["dropped_blocks"]) != (p["overflows"], p["dropped_blocks"]):
            self.counter_changes.append({"mono": now, "overflows": p["overflows"],
                                         "dropped_blocks": p["dropped_blocks"], "state": p["state"]})
        if self.first_health is None:
            self.first_health = keep
        self.last_health = keep
        self.health.append(keep)
        ep = self.episode
        if ep is None:
            return
        if p["state"] != "running" and ep.lost_s is None:
            ep.lost_s, ep.lost_state = now - ep.kill_mono, p["state"]
        elif p["state"] == "running" and ep.doa_s is not None and ep.running_s is None:
            # (the daemon may reopen within one health period: a ``device-lost`` health is not
            # guaranteed, a ``running`` one after a window captured after the kill is)
            ep.running_s = now - ep.kill_mono

    def wait_running(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                h = self.last_health
                if h is not None and h["state"] == "running" and self.counts["doa"] > 0:
                    return True
            time.sleep(0.1)
        return False


# ------------------------------------------------------------------------------------------------
# Hostile subscribers (threads of this process; each counts what it did)


def zmtp_greeting(version: bytes = b"\x03\x00") -> bytes:
    return b"\xff" + b"\x00" * 8 + b"\x7f" + version + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31


def zmtp_ready_sub() -> bytes:
    body = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 3) + b"SUB"
    return b"\x04" + bytes([len(body)]) + body


class Hostile(threading.Thread):
    def __init__(self, name: str, endpoint: str, stop: threading.Event):
        super().__init__(name=name, daemon=True)
        self.endpoint = endpoint
        host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
        self.addr = (host, int(port))
        self.stop_event = stop
        self.counts: dict[str, int] = {}
        self.errors: list[str] = []
        self.rng = random.Random(hash(name) & 0xFFFF)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - a hostile client's own trouble is only counted
                self.count("client_errors")
                if len(self.errors) < 5:
                    self.errors.append(repr(exc)[:200])
                self.stop_event.wait(0.5)

    def step(self) -> None:
        raise NotImplementedError


class Stalled(Hostile):
    """A SUB on every topic that never reads, and a TCP connection that never speaks."""

    def run(self) -> None:
        sub = zmq.Context.instance().socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(self.endpoint)
        silent = None
        try:
            while not self.stop_event.is_set():
                if silent is None:  # the daemon's handshake timeout may close it: reconnect
                    silent = socket.create_connection(self.addr, timeout=5)
                    silent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    self.count("silent_connections")
                self.stop_event.wait(5.0)
                try:
                    silent.settimeout(0)
                    if silent.recv(1, socket.MSG_PEEK) == b"":
                        silent.close()
                        silent = None
                except BlockingIOError:
                    pass
                except OSError:
                    silent.close()
                    silent = None
        finally:
            sub.close()
            if silent is not None:
                silent.close()


class Churn(Hostile):
    """Connect, subscribe (sometimes to 100 random prefixes), read a little, close; again."""

    def step(self) -> None:
        sub = zmq.Context.instance().socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, self.rng.choice([1, 10, 1000]))
        if self.rng.random() < 0.3:
            for _ in range(100):
                sub.setsockopt(zmq.SUBSCRIBE, os.urandom(self.rng.randint(1, 32)))
            self.count("random_subscriptions", 100)
        sub.setsockopt(zmq.SUBSCRIBE, self.rng.choice([b"", b"doa", b"health", b"tracks", b"embedding"]))
        sub.connect(self.endpoint)
        end = time.monotonic() + self.rng.uniform(0.0, 0.5)
        while time.monotonic() < end and not self.stop_event.is_set():
            if self.rng.random() < 0.5 and sub.poll(20):
                sub.recv_multipart()
                self.count("messages_read")
            else:
                time.sleep(0.02)
        sub.close()
        self.count("cycles")


class Garbage(Hostile):
    """Raw TCP junk to the PUB port."""

    def step(self) -> None:
        kind = self.rng.choice(["random", "bad_greeting", "greeting_then_junk", "huge_frame"])
        s = socket.create_connection(self.addr, timeout=2)
        try:
            if kind == "random":
                s.sendall(os.urandom(self.rng.randint(1, 65536)))
            elif kind == "bad_greeting":
                s.sendall(zmtp_greeting(version=bytes([self.rng.randint(4, 255), 0])) + os.urandom(256))
            elif kind == "greeting_then_junk":
                s.sendall(zmtp_greeting())
                s.sendall(zmtp_ready_sub())
                for _ in range(self.rng.randint(1, 50)):  # short frames: flag byte, size, junk
                    body = os.urandom(self.rng.randint(0, 255))
                    s.sendall(bytes([self.rng.choice([0, 1, 4, 0x55])]) + bytes([len(body)]) + body)
            else:  # a long frame declaring 256 MiB, 2 MiB of it sent, then gone
                s.sendall(zmtp_greeting())
                s.sendall(zmtp_ready_sub())
                s.sendall(b"\x02" + struct.pack(">Q", 256 << 20))
                chunk = os.urandom(64 << 10)
                for _ in range(32):
                    s.sendall(chunk)
            self.count(kind)
        except OSError:
            self.count(f"{kind}_refused")  # the daemon closed on us: fine
        finally:
            if self.rng.random() < 0.5:  # half of them end with a reset
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        self.stop_event.wait(self.rng.uniform(0.05, 0.2))


class Flooded(Hostile):
    """The package's validating Subscriber (as ``reason`` uses) with RCVHWM 1, reading slowly."""

    def run(self) -> None:
        from arraydaemon.io.subscriber import Subscriber

        sub = Subscriber(self.endpoint, list(wire.TOPICS), high_water_mark=1)
        try:
            while not self.stop_event.is_set():
                got = sub.receive(time.monotonic() + 0.05, limit=10)
                self.count("received", len(got))
                self.stop_event.wait(0.5)
            self.counts["rejected"] = sub.rejected
        finally:
            sub.close()


# ------------------------------------------------------------------------------------------------
# The run


def scan_tracebacks(path: Path) -> list[str]:
    """Each traceback in the log, with the lines that follow it up to the exception line."""
    if not path.exists():
        return []
    lines = path.read_text(errors="replace").splitlines()
    out = []
    for i, line in enumerate(lines):
        if "Traceback" in line:
            block = [line]
            for nxt in lines[i + 1:i + 60]:
                block.append(nxt)
                if nxt and not nxt.startswith((" ", "Traceback")) and not nxt.startswith("During handling"):
                    break
            out.append("\n".join(block))
    return out


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "model": model, "kernel": platform.release()}


def fmt(x, spec=".2f", unit=""):
    return "-" if x is None else f"{x:{spec}}{unit}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="duration of the soak (default 60)")
    ap.add_argument("--kill-every", type=float, default=60.0, help="seconds between JACK server kills (default 60)")
    ap.add_argument("--mics", type=int, default=4, choices=sorted(GEOMETRIES))
    ap.add_argument("--estimator", default="srp-phat", choices=["srp-phat", "neural"])
    ap.add_argument("--scene", default="simulated", choices=["simulated", "demo"],
                    help="a simulated talker, or the bundled demo recording (4 mics), looped")
    ap.add_argument("--warmup", type=float, default=120.0,
                    help="seconds before the RSS baseline (default 120)")
    ap.add_argument("--out", type=Path, help="write every figure and sample here as JSON")
    ap.add_argument("--logs", type=Path, help="keep the daemon, player and jackd logs in this directory")
    args = ap.parse_args()
    if shutil.which("jackd") is None:
        raise SystemExit("jackd not found: apt-get install jackd2")
    if args.scene == "demo" and args.mics != 4:
        raise SystemExit("--scene demo is a 4-mic recording: use --mics 4")

    def interrupt(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)

    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="soak_", dir=args.logs))
    else:
        work = Path(tempfile.mkdtemp(prefix="soak_"))
    daemon_log, player_log = work / "daemon.log", work / "player.log"
    jack = JackServer(work, prefix="soak", rate=RATE, period=PERIOD)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    result: dict = {"started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "machine": machine(),
                    "config": {"minutes": args.minutes, "kill_every_s": args.kill_every, "mics": args.mics,
                               "estimator": args.estimator, "scene": args.scene, "warmup_s": args.warmup,
                               "endpoint": endpoint, "rate": RATE, "period": PERIOD}}
    player = daemon = monitor = None
    hostile_stop = threading.Event()
    hostiles: list[Hostile] = []
    episodes: list[Episode] = []
    rss: list[tuple[float, int, int | None]] = []  # (seconds since start, daemon kB, capture child kB)
    failures: list[str] = []
    interrupted = None
    t0 = time.monotonic()
    daemon_exit = None
    sigterm_exit_s = None
    try:
        scene = make_scene(args.scene, args.mics, work)
        profile = make_profile(args.mics, work)
        jack.start()
        player = Player(scene, RATE, jack.env, nice=10, log=player_log, own_session=True)
        with open(daemon_log, "ab") as out:
            daemon = subprocess.Popen([sys.executable, "-m", "arraydaemon", "--log-level", "info", "run",
                                       "--profile", str(profile), "--estimator", args.estimator, "--wait",
                                       "--endpoint", endpoint],
                                      env=jack.env, stdout=out, stderr=subprocess.STDOUT)
        monitor = Monitor(endpoint)
        monitor.start()
        if not monitor.wait_running(180):
            raise RuntimeError(f"the daemon did not start within 180 s; see {daemon_log}:\n"
                               f"{daemon_log.read_text(errors='replace')[-3000:]}")
        hostiles = [Stalled("stalled", endpoint, hostile_stop), Churn("churn", endpoint, hostile_stop),
                    Garbage("garbage", endpoint, hostile_stop), Flooded("flooded", endpoint, hostile_stop)]
        for h in hostiles:
            h.start()
        t0 = time.monotonic()  # the soak proper starts with the daemon running and the hostiles on
        print(f"soak: daemon pid {daemon.pid} on {endpoint}, {args.minutes:g} min, a JACK kill every "
              f"{args.kill_every:g} s; logs in {work}", file=sys.stderr, flush=True)
        end = t0 + args.minutes * 60.0
        next_sample = t0
        next_kill = t0 + args.kill_every
        while True:
            now = time.monotonic()
            if daemon.poll() is not None:
                daemon_exit = daemon.returncode
                failures.append(f"the daemon exited (code {daemon_exit}) after {now - t0:.0f} s")
                break
            if now >= next_sample:
                child = children(daemon.pid, "arraydaemon.io.capture.child")
                rss.append((now - t0, rss_kb(daemon.pid) or 0, rss_kb(child[0]) if child else None))
                next_sample += SAMPLE_EVERY_S
            if now >= end:
                break
            if now >= next_kill:
                next_kill += args.kill_every
                # The previous loss must have been recovered by now.
                ep = Episode(len(episodes) + 1, time.monotonic(), time.time())
                with monitor.lock:
                    monitor.episode = ep
                episodes.append(ep)
                jack.kill()  # SIGKILL, then this server's /dev/shm files
                player.kill()
                jack.start()
                player = Player(scene, RATE, jack.env, nice=10, log=player_log, own_session=True)
                ep.restart_s = time.monotonic() - ep.kill_mono
                done = len(episodes)
                print(f"soak: {(now - t0) / 60:5.1f} min, JACK kill {done}", file=sys.stderr, flush=True)
            prev = episodes[-1] if episodes else None
            if prev is not None and prev.recovered and getattr(prev, "_reported", False) is False:
                prev._reported = True
                print(f"soak:   recovered in {prev.doa_s:.2f} s (doa), {prev.running_s:.2f} s (health running); "
                      f"RSS {rss[-1][1] / 1024:.1f} MB", file=sys.stderr, flush=True)
            time.sleep(0.1)
        # The last loss gets its time too (up to 30 s past the end).
        if episodes and daemon.poll() is None:
            deadline = time.monotonic() + 30
            while not episodes[-1].recovered and time.monotonic() < deadline:
                time.sleep(0.1)
    except Interrupted as exc:
        interrupted = str(exc)
        failures.append(f"interrupted ({interrupted})")
    except RuntimeError as exc:
        failures.append(str(exc))
        print(f"soak: {exc}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # clean up in peace
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        duration_s = time.monotonic() - t0
        hostile_stop.set()
        if monitor is not None:
            with monitor.lock:
                monitor.episode = None  # the last health says ``stopping``: not a loss
        for h in hostiles:
            h.join(5)
        if daemon is not None and daemon.poll() is None:
            capture_children = children(daemon.pid, "arraydaemon.io.capture.child")
            t = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon_exit = daemon.wait(10)
                sigterm_exit_s = time.monotonic() - t
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon_exit = daemon.wait()
                failures.append("the daemon did not exit within 10 s of SIGTERM")
            for pid in capture_children:  # in their own session: gone with the daemon, or now
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if daemon_exit != 0 and not failures:
                failures.append(f"the daemon exited {daemon_exit} on SIGTERM")
        if monitor is not None:
            monitor.stop.set()
            monitor.join(2)
        if player is not None:
            player.kill()
        jack.stop()

    # ---------------------------------------------------------------- figures
    tracebacks = scan_tracebacks(daemon_log)
    player_tracebacks = scan_tracebacks(player_log)
    recovered = [e for e in episodes if e.recovered]
    doa_times = [e.doa_s for e in recovered]
    run_times = [e.running_s for e in recovered]
    base = [(t, d) for t, d, _ in rss if t >= args.warmup]
    growth = None
    if len(base) >= 2:
        ts = np.array([t for t, _ in base]) / 3600.0
        mb = np.array([d for _, d in base]) / 1024.0
        growth = float(np.polyfit(ts, mb, 1)[0])
    child_rss = [c for _, _, c in rss if c]
    h0, h1 = (monitor.first_health, monitor.last_health) if monitor else (None, None)
    figures = {
        "duration_s": duration_s,
        "device_losses": len(episodes),
        "recovered": len(recovered),
        "recovery_doa_s": {"p50": float(np.median(doa_times)) if doa_times else None,
                           "max": max(doa_times) if doa_times else None},
        "recovery_running_s": {"p50": float(np.median(run_times)) if run_times else None,
                               "max": max(run_times) if run_times else None},
        "rss_start_mb": base[0][1] / 1024 if base else None,
        "rss_end_mb": base[-1][1] / 1024 if base else None,
        "rss_max_mb": max(d for _, d, _ in rss) / 1024 if rss else None,
        "rss_growth_mb_per_h": growth,
        "capture_child_rss_mb": {"min": min(child_rss) / 1024, "max": max(child_rss) / 1024} if child_rss else None,
        "overflows": h1["overflows"] if h1 else None,
        "dropped_blocks": h1["dropped_blocks"] if h1 else None,
        "bad_blocks": h1["bad_blocks"] if h1 else None,
        "windows": h1["windows"] if h1 else None,
        "cpu_percent_mean": float(np.mean([h["cpu_percent"] for h in monitor.health])) if monitor and monitor.health else None,
        "messages": dict(monitor.counts) if monitor else None,
        "invalid_messages": monitor.invalid if monitor else None,
        "invalid_examples": monitor.invalid_examples if monitor else None,
        "doa_seq_regressions": monitor.seq_regressions if monitor else None,
        "tracebacks": len(tracebacks),
        "traceback_texts": tracebacks[:5],
        "player_tracebacks": len(player_tracebacks),
        "player_traceback_texts": player_tracebacks[:3],
        "daemon_exit_code": daemon_exit,
        "sigterm_exit_s": sigterm_exit_s,
        "load_average_end": os.getloadavg(),
        "hostile": {h.name: {**h.counts, **({"errors": h.errors} if h.errors else {})} for h in hostiles},
        "monitor_error": monitor.error if monitor else None,
    }
    if growth is None:
        failures.append(f"too short for an RSS trend: fewer than 2 samples after the {args.warmup:g} s warm-up")
    elif growth >= RSS_TARGET_MB_PER_H:
        failures.append(f"RSS grows {growth:.2f} MB/h (target < {RSS_TARGET_MB_PER_H:g})")
    unrecovered = [e.n for e in episodes if not e.recovered]
    if unrecovered:
        failures.append(f"device losses not recovered: {unrecovered}")
    if tracebacks:
        failures.append(f"{len(tracebacks)} traceback(s) in the daemon's log")
    if monitor is not None and (monitor.invalid or monitor.error):
        failures.append(f"{monitor.invalid} invalid message(s) from the daemon; monitor error {monitor.error}")
    result.update(figures=figures, episodes=[e.as_dict() for e in episodes],
                  rss_samples=[{"t_s": t, "daemon_kb": d, "child_kb": c} for t, d, c in rss],
                  health_first=h0, health_last=h1, failures=failures,
                  counter_changes=[{**c, "t_s": c["mono"] - t0} for c in monitor.counter_changes] if monitor else [],
                  kills_t_s=[e.kill_mono - t0 for e in episodes],
                  ended_utc=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), logs=str(work) if args.logs else None)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=str))

    f = figures
    m = result["machine"]
    print(f"\nsoak {result['started_utc']} – {result['ended_utc']} UTC; {m['cpus']} CPUs ({m['model']}); "
          f"{args.mics} mics, {args.estimator}, {args.scene} scene, JACK dummy device {PERIOD}-frame periods at "
          f"{RATE} Hz, killed every {args.kill_every:g} s; load average at the end "
          f"{f['load_average_end'][0]:.1f}\n")
    rows = [
        ("duration", f"{duration_s / 60:.1f} min", ""),
        ("device losses (JACK server SIGKILLed)", str(len(episodes)), ""),
        ("recovered", f"{len(recovered)} / {len(episodes)}", "all"),
        ("recovery, kill → first doa captured after it, p50 / max",
         f"{fmt(f['recovery_doa_s']['p50'])} / {fmt(f['recovery_doa_s']['max'])} s", ""),
        ("recovery, kill → health `running`, p50 / max",
         f"{fmt(f['recovery_running_s']['p50'])} / {fmt(f['recovery_running_s']['max'])} s", ""),
        (f"daemon RSS at {args.warmup / 60:g} min / at the end",
         f"{fmt(f['rss_start_mb'], '.1f')} / {fmt(f['rss_end_mb'], '.1f')} MB", ""),
        ("daemon RSS growth (linear fit)", f"{fmt(growth, '+.2f')} MB/h", f"< {RSS_TARGET_MB_PER_H:g} MB/h"),
        ("capture child RSS (one per device open)",
         f"{f['capture_child_rss_mb']['min']:.1f}–{f['capture_child_rss_mb']['max']:.1f} MB"
         if f["capture_child_rss_mb"] else "-", ""),
        ("overflows / dropped blocks", f"{f['overflows']} / {f['dropped_blocks']}", ""),
        ("windows published / invalid messages", f"{f['windows']} / {f['invalid_messages']}", "0 invalid"),
        ("tracebacks in the daemon's log", str(len(tracebacks)), "0"),
    ]
    print("| measure | value | target |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    hostile = "; ".join(f"{name}: " + ", ".join(f"{k} {v}" for k, v in c.items() if k != "errors")
                        for name, c in f["hostile"].items())
    print(f"\nhostile clients: {hostile}")
    if failures:
        print("\nFAILED: " + "; ".join(failures))
        for tb in tracebacks[:3]:
            print("\n" + tb)
    else:
        print("\nall targets met")
    if not args.logs:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""End-to-end latency of ``arraydaemon run`` on a real PortAudio device (JACK loopback).

For each configuration (4 and 8 mics; srp-phat, and neural when its shipped weights exist) this
starts its own JACK server (dummy backend, 16 kHz, 256-frame periods, a ``loopback`` client),
loops a simulated talker into ``loopback`` from a player process, runs the daemon on it, and
measures at a ZeroMQ subscriber (this process) the delay from each window's last captured sample
(``wall_time`` of the ``doa`` message) to the message's arrival: p50, p99 and max.

What it includes: the capture callback's scheduling, the hop to the daemon, the pipeline, ZeroMQ
over TCP on 127.0.0.1. What it cannot include: a real device's own buffering before PortAudio's
callback (one period, e.g. 16 ms at 256 frames / 16 kHz), which comes on top.

Usage: python tools/bench_latency.py [--seconds 60] [--mics 4 8] [--estimators srp-phat neural]
Needs jackd (Debian jackd2), espeak-ng and the package installed. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
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
    TALKER_AZIMUTH,
    JackServer,
    Player,
    loopback_profile,
    talker_scene,
)


def measure(mics: int, estimator: str, seconds: float, work: Path) -> dict:
    jack = JackServer(work, prefix="bench", rate=RATE, period=PERIOD)
    name, env = jack.name, jack.env
    try:
        jack.start()
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None
    player = daemon = None
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = work / f"{name}.notify"
    notify.bind(str(notify_path))
    notify.settimeout(120)
    try:
        player = Player(talker_scene(mics, work / f"scene{mics}.npy"), RATE, env)
        profile = loopback_profile(work / f"bench{mics}.yaml", f"bench{mics}", GEOMETRIES[mics])
        daemon = subprocess.Popen([sys.executable, "-m", "arraydaemon", "run", "--profile", str(profile),
                                   "--estimator", estimator, "--endpoint", "tcp://127.0.0.1:*"],
                                  env={**env, "NOTIFY_SOCKET": str(notify_path)},
                                  stdout=(work / f"{name}.daemon.log").open("ab"), stderr=subprocess.STDOUT)
        endpoint = None
        while endpoint is None:
            text = notify.recv(4096).decode()
            m = re.search(r"publishing on (tcp://\S+)", text)
            if "READY=1" in text and m:
                endpoint = m.group(1)
        sub = zmq.Context.instance().socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(endpoint)
        delays, health, errors = [], [], []
        warmup_end = time.monotonic() + 3.0
        end = warmup_end + seconds
        while time.monotonic() < end:
            if not sub.poll(200):
                continue
            frames = sub.recv_multipart()
            arrived = time.time()
            topic, payload = wire.decode(frames)
            if time.monotonic() < warmup_end:
                continue
            if topic == "doa":
                delays.append(arrived - payload["wall_time"])
                if payload["sources"]:
                    errors.append(abs((payload["sources"][0]["azimuth_deg"] - TALKER_AZIMUTH + 180) % 360 - 180))
            elif topic == "health":
                health.append(payload)
        sub.close(0)
        d = np.array(delays) * 1e3
        return {"mics": mics, "estimator": estimator, "windows": len(d), "p50": np.percentile(d, 50),
                "p99": np.percentile(d, 99), "max": d.max(), "min": d.min(),
                "overflows": health[-1]["overflows"] - health[0]["overflows"],
                "dropped": health[-1]["dropped_blocks"] - health[0]["dropped_blocks"],
                "cpu": float(np.mean([h["cpu_percent"] for h in health])),
                "az_err": float(np.median(errors)) if errors else float("nan")}
    finally:
        if daemon is not None:
            daemon.terminate()
            try:
                daemon.wait(5)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        if player is not None:
            player.kill()
        jack.stop()
        notify.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="measured seconds per configuration (after 3 s)")
    ap.add_argument("--mics", type=int, nargs="+", default=[4, 8], choices=sorted(GEOMETRIES))
    ap.add_argument("--estimators", nargs="+", default=["srp-phat", "neural"], choices=["srp-phat", "neural"])
    ap.add_argument("--keep", action="store_true", help="keep the daemon and jackd logs")
    args = ap.parse_args()
    if shutil.which("jackd") is None:
        raise SystemExit("jackd not found: apt-get install jackd2")
    estimators = list(args.estimators)
    if "neural" in estimators:
        from arraydaemon.core.paths import SHIPPED_WEIGHTS

        if not SHIPPED_WEIGHTS.is_file():
            print(f"skipping neural: no shipped weights at {SHIPPED_WEIGHTS}", file=sys.stderr)
            estimators.remove("neural")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_latency_") as tmp:
        if args.keep:
            tmp = tempfile.mkdtemp(prefix="bench_latency_")
            print(f"logs in {tmp}", file=sys.stderr)
        for estimator in estimators:
            for mics in args.mics:
                r = measure(mics, estimator, args.seconds, Path(tmp))
                rows.append(r)
                print(f"{mics} mics {estimator}: p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms, max {r['max']:.2f} ms "
                      f"({r['windows']} windows)", file=sys.stderr, flush=True)
    print(f"\n{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; "
          f"{args.seconds:g} s per row; JACK dummy device, {PERIOD}-frame periods at {RATE} Hz\n")
    print("| mics | estimator | windows | p50 ms | p99 ms | max ms | overflows | dropped | CPU % | median az error |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mics']} | {r['estimator']} | {r['windows']} | {r['p50']:.2f} | {r['p99']:.2f} | {r['max']:.2f} "
              f"| {r['overflows']} | {r['dropped']} | {r['cpu']:.0f} | {r['az_err']:.1f}° |")


if __name__ == "__main__":
    main()

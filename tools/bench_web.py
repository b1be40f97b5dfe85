#!/usr/bin/env python3
"""What the live view costs and how late it is: `arraydaemon run` on a JACK loopback device with four
simulated talkers, `arraydaemon web`, and the page in headless Debian chromium (Playwright).

It starts its own JACK server (dummy backend, 16 kHz, 256-frame periods), loops a free-field scene
of four espeak-ng talkers (azimuths +60°, -30°, +150°, -120°) into an 8-mic circle (r = 4.63 cm)
from a player process, runs the daemon on it (``--hop 0.1``: 10 windows/s, ``--max-sources 4``),
`arraydaemon web` subscribed to it and the page in chromium, waits until the page shows tracks and
then measures for ``--seconds``:

- the page's CPU: Chrome's own ``Performance.getMetrics`` over CDP (``TaskDuration``: the renderer
  main thread's busy time) and the CPU time of chromium's processes from /proc (renderer, GPU
  process, browser and utilities), each in % of one core;
- `arraydaemon web`'s CPU (/proc) and the daemon's (its `health` messages);
- end-to-end latency of every `tracks` message: the browser's ``Date.now()`` at arrival minus the
  window's ``wall_time`` (its last sample's capture), and the part after the web server received it
  (minus ``web_time``): p50, p99, max; all on this machine, one clock.

Usage: python tools/bench_web.py [--seconds 60] [--estimator srp-phat|neural] [--screenshot docs/web.png]
Needs jackd (Debian jackd2), espeak-ng, chromium (/usr/bin/chromium) and playwright (the test extra).
Prints a markdown row and, with --json, writes every number.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arraydaemon.io.subscriber import Subscriber  # noqa: E402
from arraydaemon.research import simulate  # noqa: E402
from arraydaemon.research.jack import PERIOD, RATE, JackServer, Player, loopback_profile  # noqa: E402

MICS = 8
RADIUS = 0.0463
TALKERS = [(60.0, 10.0), (-30.0, 5.0), (150.0, 0.0), (-120.0, 15.0)]  # azimuth, elevation
SCENE_S = 30.0  # looped by the player
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
TICK = os.sysconf("SC_CLK_TCK")


def geometry() -> np.ndarray:
    a = 2 * np.pi * np.arange(MICS) / MICS
    return np.round(np.stack([RADIUS * np.cos(a), RADIUS * np.sin(a), np.zeros(MICS)], axis=1), 5)


def write_scene(work: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(17)
    sources = [(simulate.speech_source(rng, SCENE_S, RATE), az, el) for az, el in TALKERS]
    audio = simulate.free_field_scene(geometry(), sources, RATE, snr_db=30.0, rng=rng)
    audio = (audio / np.max(np.abs(audio)) * 0.5).astype(np.float32)
    scene = work / "scene.npy"
    np.save(scene, audio)
    return scene, loopback_profile(work / "benchweb.yaml", "benchweb", geometry())


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            out.append(child)
            todo.append(child)
    return out


def chromium_processes() -> dict[int, str]:
    """This process's chromium descendants by pid: ``renderer``, ``gpu-process``, ``browser``, ..."""
    out = {}
    for pid in descendants(os.getpid()):
        try:  # chromium rewrites its command line into one string
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "chromium" not in cmd.split(" ", 1)[0]:
            continue
        m = re.search(r"--type=(\S+)", cmd)
        out[pid] = m.group(1) if m else "browser"
    return out


def percentiles(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"n": int(v.size), "p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99)),
            "max": float(v.max())}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(args, work: Path) -> dict:
    from playwright.sync_api import sync_playwright

    scene, profile = write_scene(work)
    jack = JackServer(work, prefix="benchweb", rate=RATE, period=PERIOD)
    jack.start()
    player = daemon = web = None
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    try:
        player = Player(scene, RATE, jack.env)
        daemon = subprocess.Popen([sys.executable, "-m", "arraydaemon", "run", "--profile", str(profile),
                                   "--estimator", args.estimator, "--hop", "0.1", "--max-sources", "4",
                                   "--endpoint", endpoint], env=jack.env,
                                  stdout=(work / "daemon.log").open("ab"), stderr=subprocess.STDOUT)
        web = subprocess.Popen([sys.executable, "-m", "arraydaemon", "web", endpoint, "--http", "127.0.0.1:0"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        url = re.search(r"serving (http://\S+)", web.stderr.readline()).group(1)
        health = Subscriber(endpoint, ["health"])
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_context(viewport={"width": 1200, "height": 760}).new_page()
            page.goto(url)
            deadline = time.monotonic() + 180
            while page.evaluate("document.querySelectorAll('[data-track-id]').length") < 1:
                if time.monotonic() > deadline:
                    raise SystemExit(f"no track on the page within 180 s; see {work}/daemon.log")
                time.sleep(0.5)
            time.sleep(args.warmup)
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            procs = chromium_processes()
            health.receive(time.monotonic() + 0.1)  # drop what was queued

            def snapshot():
                metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                return (time.monotonic(), metrics, {pid: cpu_seconds(pid) for pid in procs}, cpu_seconds(web.pid),
                        page.evaluate("window.arraydaemonView.latencyCount"))

            start = snapshot()
            counts, daemon_cpu = [], []
            end_at = start[0] + args.seconds
            while time.monotonic() < end_at:
                counts.append(page.evaluate("document.querySelectorAll('[data-track-id]').length"))
                for _, payload in health.receive(time.monotonic() + 1.0):
                    daemon_cpu.append(payload["cpu_percent"])
            end = snapshot()
            wall = end[0] - start[0]
            n = end[4] - start[4]
            latency = page.evaluate(f"window.arraydaemonView.latencySamples('latency').slice(-{n})")
            hop = page.evaluate(f"window.arraydaemonView.latencySamples('hop').slice(-{n})")
            if args.screenshot:
                page.screenshot(path=args.screenshot)
            browser.close()
        health.close()
        by_kind: dict[str, float] = {}
        for pid, kind in procs.items():
            by_kind[kind] = by_kind.get(kind, 0.0) + 100.0 * (end[2][pid] - start[2][pid]) / wall
        m0, m1 = start[1], end[1]
        return {
            "seconds": wall, "estimator": args.estimator, "windows": n, "windows_per_s": n / wall,
            "tracks_mean": float(np.mean(counts)), "tracks_min": int(np.min(counts)),
            "tracks_share_4": float(np.mean(np.array(counts) >= 4)),
            "page_main_thread_percent": 100.0 * (m1["TaskDuration"] - m0["TaskDuration"]) / wall,
            "page_script_percent": 100.0 * (m1["ScriptDuration"] - m0["ScriptDuration"]) / wall,
            "chromium_percent": by_kind, "chromium_total_percent": sum(by_kind.values()),
            "web_percent": 100.0 * (end[3] - start[3]) / wall,
            "daemon_percent": float(np.mean(daemon_cpu)) if daemon_cpu else float("nan"),
            "latency_ms": percentiles(latency), "web_to_browser_ms": percentiles(hop),
            "capture_to_web_ms": percentiles(np.asarray(latency) - np.asarray(hop)),
            "load_average": os.getloadavg()[0], "cpus": os.cpu_count(),
        }
    finally:
        for proc in (web, daemon):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if player is not None:
            player.kill()
        jack.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="measured seconds (after the warm-up)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds after the first track before measuring")
    ap.add_argument("--estimator", default="srp-phat", choices=["srp-phat", "neural"])
    ap.add_argument("--screenshot", metavar="PNG", help="save a screenshot of the page at the end")
    ap.add_argument("--json", metavar="OUT", help="write every number to OUT")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_web_") as tmp:
        r = measure(args, Path(tmp))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    c = r["chromium_percent"]
    print(f"\n{r['cpus']} CPUs, load average {r['load_average']:.1f} at the end; {r['seconds']:.0f} s, "
          f"{r['windows']} windows ({r['windows_per_s']:.1f}/s), tracks on the page: mean {r['tracks_mean']:.1f}, "
          f"4 in {100 * r['tracks_share_4']:.0f} % of the seconds\n")
    print("| estimator | page main thread % | renderer % | GPU process % | all chromium % | web % | daemon % "
          "| capture→browser p50 / p99 / max ms | of which web→browser p50 / p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    lat, hop = r["latency_ms"], r["web_to_browser_ms"]
    print(f"| {r['estimator']} | {r['page_main_thread_percent']:.1f} | {c.get('renderer', 0):.1f} "
          f"| {c.get('gpu-process', 0):.1f} | {r['chromium_total_percent']:.1f} | {r['web_percent']:.1f} "
          f"| {r['daemon_percent']:.0f} | {lat['p50']:.1f} / {lat['p99']:.1f} / {lat['max']:.1f} "
          f"| {hop['p50']:.1f} / {hop['p99']:.1f} |")


if __name__ == "__main__":
    main()

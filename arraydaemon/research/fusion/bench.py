"""``arraydaemon eval --fusion``: every array's recording replayed by its own ``arraydaemon replay``
process (real time, publishing over ZeroMQ TCP on 127.0.0.1, all started on one ``--wall-start``,
as NTP-synchronised daemons would stamp them) into a real ``arraydaemon fuse`` process; this process
subscribes to fuse's ``positions`` and ``health`` and to every array's ``tracks`` (for latency), and
scores the positions against the truth. Each scene runs with all its arrays, then without its
first one.

Scoring, at every ``positions`` message (scene time = its ``wall_time`` less the start): a talker
is active when it spoke in the last 0.3 s; positions are paired with talkers (Hungarian, floor-plane
distance, gate 1 m). Error: of paired active talkers (floor plane and 3-D). Coverage: paired active
talker-steps over active talker-steps. Ghosts: positions paired with no talker (active or not)
over all positions. Id switches: changes of the position id paired with a talker. Latency: the
``positions`` message's arrival less the arrival of the last array's ``tracks`` for the same
window, and less its capture time (``wall_time``; includes the daemons' own windowing and work).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from arraydaemon.research.fusion.scenes import load_scene, position_at

GATE_M = 1.0
ACTIVE_S = 0.3
START_MARGIN_S = 8.0  # replay processes start (imports, numba cache) before the common wall start
MAX_MARGIN_S = 40.0  # the margin grows after a run whose daemons started late (a busy machine), up to this


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunRecord:
    scene: str
    arrays: list[str]
    wall_start: float
    positions: list = field(default_factory=list)  # (arrival, payload)
    tracks: dict = field(default_factory=dict)  # array -> {wall_time: arrival}
    fuse_cpu: list = field(default_factory=list)
    fuse_log: str = ""
    replay_logs: list = field(default_factory=list)


def run_scene(scene_dir: Path, drop: int | None = None, estimator: str = "srp-phat", log=None,
              margin_s: float = START_MARGIN_S) -> RunRecord:
    """Replays the scene's arrays (all, or all but index ``drop``) into a fuse process, started
    ``margin_s`` before their common wall start; the record."""
    from arraydaemon.io.subscriber import Subscriber

    room = yaml.safe_load((scene_dir / "room.yaml").read_text())
    truth = json.loads((scene_dir / "truth.json").read_text())
    arrays = [a for k, a in enumerate(room["arrays"]) if k != drop]
    for a in arrays:
        a["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    run_room = dict(room, arrays=arrays)
    room_path = scene_dir / f"run{'' if drop is None else f'-without-{drop}'}.yaml"
    room_path.write_text(yaml.safe_dump(run_room, sort_keys=False))
    fuse_endpoint = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "arraydaemon"]
    duration = truth["duration_s"]
    fuse = subprocess.Popen([*cmd, "fuse", str(room_path), "--endpoint", fuse_endpoint,
                             "--seconds", str(duration + margin_s + 15)], env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    fuse_sub = Subscriber(fuse_endpoint, ["positions", "health"])
    ready = time.monotonic() + 60.0
    while not fuse_sub.receive(time.monotonic() + 0.2) and time.monotonic() < ready:
        if fuse.poll() is not None:
            raise RuntimeError(f"fuse exited {fuse.returncode}: {fuse.stderr.read()[-300:]}")
    # fuse is up (on a cold start it can take longer than the daemons): now the common clock
    wall_start = time.time() + margin_s
    replays = [subprocess.Popen([*cmd, "replay", str(scene_dir / f"{a['name']}.wav"), "--profile",
                                 str(scene_dir / a["profile"]), "--endpoint", a["endpoint"], "--wall-start",
                                 f"{wall_start:.6f}", "--quiet", "--estimator", estimator], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for a in arrays]
    record = RunRecord(room["name"], [a["name"] for a in arrays], wall_start)
    subs = [fuse_sub]
    subs += [Subscriber(a["endpoint"], ["tracks"]) for a in arrays]
    names = [None] + [a["name"] for a in arrays]
    record.tracks = {a["name"]: {} for a in arrays}
    try:
        end = wall_start + duration + 3.0
        while time.time() < end or any(p.poll() is None for p in replays):
            if time.time() > end + 20:
                break
            for name, sub in zip(names, subs):
                for topic, payload in sub.receive(time.monotonic() + 0.005):
                    now = time.time()
                    if name is not None:
                        record.tracks[name][payload["wall_time"]] = now
                    elif topic == "positions":
                        record.positions.append((now, payload))
                    elif topic == "health" and payload["uptime_s"] > margin_s + 1:
                        record.fuse_cpu.append(payload["cpu_percent"])
    finally:
        for sub in subs:
            sub.close()
        for p in replays:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
        fuse.send_signal(signal.SIGTERM)
        try:
            fuse.wait(timeout=10)
        except subprocess.TimeoutExpired:
            fuse.kill()
    record.fuse_log = fuse.stderr.read()
    room_path.with_suffix(".fuse.log").write_text(record.fuse_log)
    record.replay_logs = [p.stderr.read() for p in replays]
    for p, text in zip(replays, record.replay_logs):
        if p.returncode not in (0, 128 + signal.SIGTERM) and log:
            log(f"replay exited {p.returncode}: {text[-300:]}")
    return record


def warm_up(scene_dirs: list[Path], estimator: str, log=None) -> None:
    """Replays one recording of every distinct array profile of ``scene_dirs`` as fast as it goes,
    without publishing, one after the other: the numba kernels compile (into their on-disk cache)
    for each geometry before the timed runs, whose daemons would otherwise compile while the others
    run (a new geometry's first windows came 1.5-4 s late on the shared 2-core machine)."""
    seen = set()
    for scene_dir in scene_dirs:
        room = yaml.safe_load((scene_dir / "room.yaml").read_text())
        for a in room["arrays"]:
            text = (scene_dir / a["profile"]).read_text()
            if text in seen:
                continue
            seen.add(text)
            env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
            done = subprocess.run([sys.executable, "-m", "arraydaemon", "replay", str(scene_dir / f"{a['name']}.wav"),
                                   "--profile", str(scene_dir / a["profile"]), "--fast", "--no-publish", "--quiet",
                                   "--estimator", estimator], env=env, capture_output=True, text=True)
            if done.returncode != 0 and log:
                log(f"warm-up replay of {a['name']} exited {done.returncode}: {done.stderr[-300:]}")


def late_start_s(record: RunRecord) -> float:
    """How late the slowest daemon's first window arrived (arrival less its ``wall_time``): a daemon
    that was not ready at the wall start catches up, and until then fuse has fewer arrays."""
    firsts = [d[min(d)] - min(d) for d in record.tracks.values() if d]
    return max(firsts) if firsts else math.inf


def _active(truth: dict, k: int, s: float) -> bool:
    frames = truth["talkers"][k]["speaking"]
    lo, hi = int(max(0.0, s - ACTIVE_S) / truth["frame_s"]), int(max(0.0, s) / truth["frame_s"]) + 1
    return bool(any(frames[lo:hi]))


def score_run(record: RunRecord, truth: dict) -> dict:
    from scipy.optimize import linear_sum_assignment

    errs_xy, errs_3d, lat_last, lat_capture = [], [], [], []
    active_steps = covered = n_positions = ghosts = 0
    last_id: dict[int, int] = {}
    switches = 0
    lone_walker_switches = 0
    walkers = [k for k, t in enumerate(truth["talkers"]) if t["walking"]]
    for arrival, msg in record.positions:
        s = msg["wall_time"] - record.wall_start
        if s < 0 or s > truth["duration_s"]:
            continue
        truths = [position_at(np.array(t["path"]), s) for t in truth["talkers"]]
        active = [_active(truth, k, s) for k in range(len(truths))]
        pos = msg["positions"]
        n_positions += len(pos)
        active_steps += sum(active)
        last = [d[msg["wall_time"]] for d in record.tracks.values() if msg["wall_time"] in d]
        if last:
            lat_last.append(arrival - max(last))
        lat_capture.append(arrival - msg["wall_time"])
        if not pos:
            continue
        cost = np.array([[math.dist((p["x"], p["y"]), tr[:2]) for tr in truths] for p in pos])
        rows, cols = linear_sum_assignment(cost)
        paired = {c: r for r, c in zip(rows, cols) if cost[r, c] <= GATE_M}
        ghosts += len(pos) - len(paired)
        for k, r in paired.items():
            if k in last_id and last_id[k] != pos[r]["id"]:
                switches += 1
                if len(truths) == 1 and k in walkers:
                    lone_walker_switches += 1
            last_id[k] = pos[r]["id"]
            if active[k]:
                covered += 1
                errs_xy.append(cost[r, k])
                p = pos[r]
                errs_3d.append(math.dist((p["x"], p["y"], p["z"]), truths[k]))
    return {"errors_xy": errs_xy, "errors_3d": errs_3d, "active_steps": active_steps, "covered": covered,
            "positions": n_positions, "ghosts": ghosts, "switches": switches,
            "lone_walker_switches": lone_walker_switches, "lat_last": lat_last, "lat_capture": lat_capture,
            "fuse_cpu": record.fuse_cpu, "arrays": len(record.arrays), "talkers": len(truth["talkers"])}


def summarize(scores: list[dict]) -> dict:
    cat = lambda key: np.array([v for s in scores for v in s[key]], dtype=float)
    xy, xyz, lat, cap, cpu = cat("errors_xy"), cat("errors_3d"), cat("lat_last"), cat("lat_capture"), cat("fuse_cpu")
    q = lambda a, p: float(np.percentile(a, p)) if a.size else math.nan
    active = sum(s["active_steps"] for s in scores)
    positions = sum(s["positions"] for s in scores)
    return {"scenes": len(scores), "median_xy_m": q(xy, 50), "p90_xy_m": q(xy, 90), "median_3d_m": q(xyz, 50),
            "p90_3d_m": q(xyz, 90), "coverage_pct": 100.0 * sum(s["covered"] for s in scores) / max(active, 1),
            "ghost_pct": 100.0 * sum(s["ghosts"] for s in scores) / max(positions, 1),
            "id_switches": sum(s["switches"] for s in scores),
            "lone_walker_switches": sum(s["lone_walker_switches"] for s in scores),
            "latency_last_tracks_ms_p50": 1e3 * q(lat, 50), "latency_last_tracks_ms_p99": 1e3 * q(lat, 99),
            "latency_capture_ms_p50": 1e3 * q(cap, 50), "fuse_cpu_pct_median": q(cpu, 50)}


COLUMNS = (("median_xy_m", "median floor error", "{:.2f} m"), ("p90_xy_m", "p90 floor", "{:.2f} m"),
           ("median_3d_m", "median 3-D", "{:.2f} m"), ("p90_3d_m", "p90 3-D", "{:.2f} m"),
           ("coverage_pct", "coverage", "{:.0f} %"), ("ghost_pct", "ghosts", "{:.1f} %"),
           ("id_switches", "id switches", "{:d}"), ("lone_walker_switches", "lone walker switches", "{:d}"),
           ("latency_last_tracks_ms_p50", "after last tracks p50", "{:.1f} ms"),
           ("latency_last_tracks_ms_p99", "p99", "{:.1f} ms"),
           ("latency_capture_ms_p50", "after capture p50", "{:.0f} ms"),
           ("fuse_cpu_pct_median", "fuse CPU", "{:.1f} %"))


def table(rows: dict[str, dict]) -> str:
    head = "| run | scenes | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for name, row in rows.items():
        cells = []
        for key, _, fmt in COLUMNS:
            v = row[key]
            cells.append("n/a" if isinstance(v, float) and math.isnan(v) else fmt.format(v))
        lines.append(f"| {name} | {row['scenes']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_map(scene_dir: Path, record: RunRecord, path: Path) -> Path:
    """The room from above: arrays with their +x, the true paths, the fused positions by id."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    room = yaml.safe_load((scene_dir / "room.yaml").read_text())
    truth = json.loads((scene_dir / "truth.json").read_text())
    fig, ax = plt.subplots(figsize=(6, 5))
    w, h = room["size"][:2]
    ax.plot([0, w, w, 0, 0], [0, 0, h, h, 0], color="0.4")
    for a in room["arrays"]:
        x, y = a["position"][:2]
        used = a["name"] in record.arrays
        ax.plot(x, y, "s", color="k" if used else "0.7", ms=7)
        yaw = math.radians(a["yaw_deg"])
        ax.arrow(x, y, 0.4 * math.cos(yaw), 0.4 * math.sin(yaw), head_width=0.1, color="k" if used else "0.7")
        ax.annotate(a["name"], (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    for k, t in enumerate(truth["talkers"]):
        p = np.array(t["path"])
        ax.plot(p[:, 1], p[:, 2], "--", color="0.3", lw=2, label="truth" if k == 0 else None)
        ax.plot(p[0, 1], p[0, 2], "o", color="0.3", mfc="none")
    ids: dict[int, list] = {}
    for _, msg in record.positions:
        for p in msg["positions"]:
            ids.setdefault(p["id"], []).append((p["x"], p["y"]))
    for i, pts in sorted(ids.items()):
        pts = np.array(pts)
        ax.plot(pts[:, 0], pts[:, 1], ".", ms=3, label=f"position id {i}")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"{room['name']}: {len(record.arrays)} arrays, RT60 {truth['rt60']:.2f} s", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_fusion_eval(set_name: str, scenes: int, cache: Path, out_dir: Path, estimator: str = "srp-phat",
                    first: int = 0, log=print) -> str:
    """Runs ``scenes`` scenes (from index ``first``) with all arrays and with the first removed; the
    markdown tables, also written to ``out_dir/fusion.md`` with a PNG map of the first scene with the
    most arrays."""
    out_dir.mkdir(parents=True, exist_ok=True)
    full, without = [], []
    margin = START_MARGIN_S

    def adapt(margin: float, late: float) -> float:
        """The next run's start margin: wider by how late this one's daemons were (and a second)."""
        return min(MAX_MARGIN_S, margin + late + 1.0) if late > 0.5 else margin

    most = 0
    scene_dirs = [load_scene(set_name, index, cache) for index in range(first, first + scenes)]
    warm_up(scene_dirs, estimator, log)
    for scene_dir in scene_dirs:
        truth = json.loads((scene_dir / "truth.json").read_text())
        record = run_scene(scene_dir, None, estimator, log, margin)
        late = late_start_s(record)
        full.append(score_run(record, truth))
        if len(record.arrays) > most:  # the map: the first scene with the most arrays
            most = len(record.arrays)
            plot_map(scene_dir, record, out_dir / "fusion_map.png")
        margin = adapt(margin, late)
        record = run_scene(scene_dir, 0, estimator, log, margin)
        late_without = late_start_s(record)
        without.append(score_run(record, truth))
        margin = adapt(margin, late_without)
        s = full[-1]
        log(f"{scene_dir.name}: {s['arrays']} arrays, {s['talkers']} talkers, RT60 {truth['rt60']:.2f} s: "
            f"median {np.median(s['errors_xy']) if s['errors_xy'] else math.nan:.2f} m, "
            f"coverage {100 * s['covered'] / max(s['active_steps'], 1):.0f} %; first windows late by "
            f"{late:.2f} s ({late_without:.2f} s without the first array); load {os.getloadavg()[0]:.1f}")
    rows = {"all arrays": summarize(full), "first array removed": summarize(without)}
    text = table(rows)
    (out_dir / "fusion.md").write_text(text + "\n")
    (out_dir / "fusion.json").write_text(json.dumps({"full": full, "without": without}))
    return text

"""Questions about places, through the real path: daemons → ``arraydaemon fuse`` → ``reason``.

Each scene is a fusion-benchmark room (research/fusion/scenes.py; a seed set of its own,
``places``, never used for tuning) with three arrays on its walls and 1–3 talkers inside their hull,
given three landmarks in its room file: a ``door`` and a ``window`` on walls, a ``table`` near the
middle. Every array's recording is replayed in real time by its own ``arraydaemon replay`` process
(SRP-PHAT, as the fusion benchmark runs them) into one ``arraydaemon fuse`` process, and
``arraydaemon reason FUSE_ENDPOINT --json`` listens to fuse; 0.3 s before the scene's end fuse is
stopped (reason's memory keeps the scene as it was then, live) and the questions, drawn from the
truth at that instant, are piped to ``reason``.

Questions (one phrasing drawn per kind) are asked only where
the truth is clear: how many talk (no talker silent 0.8–2.5 s); is anyone near a landmark (yes
within 1 m of it, no beyond 2.2 m: the answerer's "near" is 1.5 m); who is nearest to a landmark
(the nearest talker 1 m or more nearer than the next); how far apart the two talkers are (exactly
two). Scoring: a count's first number; a yes/no's first verdict; "who" by the position id the
answer names first, right when that position (in the ``--json`` snapshot) is within
:data:`PLACE_TOL_M` of the true talker; a distance's first number in metres within 0.5 m or 25 %.
**Places right**: the snapshot's positions, read with the answerer's own rules, give the truth.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from arraydaemon.reason.places import NEAR_M, floor_distance
from arraydaemon.research.reasoning.truth import Item, said_count, said_verdict

SEED = 31_000_000  # research/fusion/scenes.py's "places" set
ARRAYS = 3
PLACE_TOL_M = 0.75
NEAR_YES_M = 1.0
NEAR_NO_M = 2.2
NEAREST_GAP_M = 1.0
PRESENT_S = 1.5
GONE_S = 2.5
ARRAYDAEMON = [sys.executable, "-m", "arraydaemon"]
START_MARGIN_S = 6.0
STOP_BEFORE_END_S = 0.3
CAPTURE_LAG_S = 0.1  # the last positions fuse published were captured about this long before it stopped

PHRASINGS = {
    "room-count": ["How many people are talking in the room?", "How many talkers are in the room?",
                   "Count the people talking."],
    "near-yn": ["Is anyone near the {mark}?", "Is somebody close to the {mark}?", "Is there a talker near the {mark}?"],
    "near-who": ["Who is nearest to the {mark}?", "Which talker is closest to the {mark}?",
                 "Where is the talker near the {mark}?"],
    "apart-m": ["How far apart are the two talkers?", "How far apart are they (m)?",
                "What is the distance between the two speakers?"],
}
_METRES = re.compile(r"(\d+(?:\.\d+)?)\s*(?:m|metres?|meters?)\b")


def landmarks(room: dict, rng: np.random.Generator) -> list[dict]:
    """A door and a window on two different walls, a table near the middle (``[x, y, z]``)."""
    w, h = room["size"][0], room["size"][1]
    walls = rng.permutation(4)[:2]

    def on_wall(wall: int) -> list[float]:
        along = float(rng.uniform(0.1, 0.9))
        return [[0.0, along * h], [along * w, 0.0], [w, along * h], [along * w, h]][wall] + [0.0]

    table = [float(w / 2 + rng.uniform(-0.7, 0.7)), float(h / 2 + rng.uniform(-0.7, 0.7)), 0.75]
    down = lambda p: [math.floor(v * 100) / 100 for v in p]  # centimetres, never past a wall
    return [{"name": "door", "position": down(on_wall(int(walls[0])))},
            {"name": "window", "position": down(on_wall(int(walls[1])))},
            {"name": "table", "position": down(table)}]


def _position(path: list, t: float) -> np.ndarray:
    p = np.asarray(path, dtype=np.float64)
    return np.array([np.interp(t, p[:, 0], p[:, k]) for k in (1, 2, 3)])


def make_questions(name: str, truth: dict, marks: list[dict], t: float, rng: np.random.Generator) -> list[Item]:
    """The place questions whose truth is clear at scene time ``t`` (module doc)."""
    frame = truth["frame_s"]
    hi = int(t / frame)
    last = []
    for talker in truth["talkers"]:
        spoke = np.flatnonzero(np.asarray(talker["speaking"][:hi], dtype=bool))
        last.append((spoke[-1] + 1) * frame if spoke.size else -math.inf)
    present = [k for k, s in enumerate(last) if s >= t - PRESENT_S]
    unclear = [k for k, s in enumerate(last) if t - GONE_S <= s < t - PRESENT_S + 0.7]
    where = {k: _position(truth["talkers"][k]["path"], t) for k in present}
    out: list[Item] = []

    def add(key: str, expect, **params) -> None:
        out.append(Item(name, key, str(rng.choice(PHRASINGS[key])).format(**params), expect, params))

    if not unclear:
        add("room-count", len(present))
    if not present:
        return out
    for mark in marks:
        d = sorted(floor_distance(where[k], mark["position"]) for k in present)
        if d[0] <= NEAR_YES_M or d[0] >= NEAR_NO_M:
            add("near-yn", "yes" if d[0] <= NEAR_YES_M else "no", mark=mark["name"])
    for idx in rng.permutation(len(marks))[:2]:
        mark = marks[int(idx)]
        ranked = sorted(present, key=lambda k: floor_distance(where[k], mark["position"]))
        if len(ranked) == 1 or (floor_distance(where[ranked[1]], mark["position"])
                                - floor_distance(where[ranked[0]], mark["position"]) >= NEAREST_GAP_M):
            add("near-who", [float(v) for v in where[ranked[0]][:2]], mark=mark["name"])
    if len(present) == 2:
        a, b = (where[k] for k in present)
        add("apart-m", floor_distance(a, b))
    return out


def _said_place(text: str, snapshot: dict) -> tuple[float, float] | None:
    places = {p["id"]: p for p in snapshot.get("places", [])}
    for m in re.finditer(r"#(\d+)", text):
        if int(m.group(1)) in places:
            p = places[int(m.group(1))]
            return p["x"], p["y"]
    return None


def _apart_ok(got: float, want: float) -> bool:
    return abs(got - want) <= max(0.5, 0.25 * want)


def answer_right(item: Item, text: str, snapshot: dict) -> bool:
    """Whether ``text`` gives ``item``'s true answer (module doc)."""
    if item.key == "room-count":
        return said_count(text) == item.expect
    if item.key == "near-yn":
        return said_verdict(text) == item.expect
    if item.key == "near-who":
        got = _said_place(text, snapshot)
        return got is not None and floor_distance(got, item.expect) <= PLACE_TOL_M
    if item.key == "apart-m":
        m = _METRES.search(text)
        return m is not None and _apart_ok(float(m.group(1)), item.expect)
    raise ValueError(item.key)


def places_right(item: Item, snapshot: dict) -> bool:
    """Whether the snapshot's positions, read with the answerer's rules, give ``item``'s answer."""
    places = snapshot.get("places", [])
    marks = {m["name"]: m["position"] for m in snapshot.get("landmarks", [])}
    if item.key == "room-count":
        return len(places) == item.expect
    if item.key == "apart-m":
        return len(places) == 2 and _apart_ok(floor_distance((places[0]["x"], places[0]["y"]),
                                                             (places[1]["x"], places[1]["y"])), item.expect)
    mark = marks.get(item.params["mark"])
    if mark is None or not places:
        return item.key == "near-yn" and item.expect == "no" and mark is not None
    d = {p["id"]: floor_distance((p["x"], p["y"]), mark) for p in places}
    if item.key == "near-yn":
        return (min(d.values()) <= NEAR_M) == (item.expect == "yes")
    best = min(places, key=lambda p: d[p["id"]])
    return floor_distance((best["x"], best["y"]), item.expect) <= PLACE_TOL_M


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_scene(index: int, cache: Path, paths: dict[str, list[str]], llm_timeout: float = 120.0,
              question_seed: int = 31) -> list[tuple[Item, str, dict, str]]:
    """Places scene ``index`` through replays → fuse → ``reason`` (one per entry of ``paths``: its
    extra flags); ``(item, path, answer json, geometry)`` per question and path."""
    from arraydaemon.io.subscriber import Subscriber
    from arraydaemon.research.fusion.scenes import load_scene

    scene = load_scene("places", index, cache, arrays=ARRAYS)
    room = yaml.safe_load((scene / "room.yaml").read_text())
    truth = json.loads((scene / "truth.json").read_text())
    rng = np.random.default_rng([question_seed, SEED, index])
    room["landmarks"] = landmarks(room, rng)
    for a in room["arrays"]:
        a["endpoint"] = f"tcp://127.0.0.1:{_free_port()}"
    room_path = scene / "places-run.yaml"
    room_path.write_text(yaml.safe_dump(room, sort_keys=False))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    fuse_endpoint = f"tcp://127.0.0.1:{_free_port()}"
    fuse = subprocess.Popen([*ARRAYDAEMON, "fuse", str(room_path), "--endpoint", fuse_endpoint], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    procs: dict[str, subprocess.Popen] = {}
    replays: list[subprocess.Popen] = []
    try:
        probe = Subscriber(fuse_endpoint, ["health"])
        ready = time.monotonic() + 60.0
        while not probe.receive(time.monotonic() + 0.2) and time.monotonic() < ready:
            if fuse.poll() is not None:
                raise RuntimeError(f"fuse exited {fuse.returncode}: {fuse.stderr.read()[-300:]}")
        probe.close()
        for name, extra in paths.items():
            p = subprocess.Popen([*ARRAYDAEMON, "reason", fuse_endpoint, "--json", *extra], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            line = p.stderr.readline()
            if not line.startswith("listening on"):
                raise RuntimeError(f"arraydaemon reason did not start: {line.strip()}")
            procs[name] = p
        wall_start = time.time() + START_MARGIN_S
        replays = [subprocess.Popen([*ARRAYDAEMON, "replay", str(scene / f"{a['name']}.wav"), "--profile",
                                     str(scene / a["profile"]), "--endpoint", a["endpoint"], "--wall-start",
                                     f"{wall_start:.6f}", "--quiet", "--estimator", "srp-phat"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                   for a in room["arrays"]]
        # Fuse is stopped just before the scene ends, while every array still publishes: reason's
        # memory keeps the scene as it was then, live (after the end, fuse would retire the positions).
        stop_at = wall_start + truth["duration_s"] - STOP_BEFORE_END_S
        while time.time() < stop_at:
            if any(p.poll() not in (None, 0) for p in replays):
                raise RuntimeError(f"a replay of {scene.name} failed: "
                                   + " ".join(p.stderr.read()[-300:] for p in replays if p.poll() not in (None, 0)))
            time.sleep(0.02)
        fuse.send_signal(signal.SIGTERM)
        asked_at = time.time() - wall_start - CAPTURE_LAG_S
        fuse.wait(timeout=20)
        items = make_questions(room["name"], truth, room["landmarks"], asked_at, rng)
        for p in replays:
            p.wait(timeout=120)
        answers = ask(procs, items, scene.name, llm_timeout)
    finally:
        for p in [*replays, *procs.values(), fuse]:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [(item, name, a, "3 arrays") for name, said in answers.items() for item, a in zip(items, said)]


def ask(procs: dict, items: list[Item], scene_name: str, llm_timeout: float) -> dict[str, list[dict]]:
    """Every question of ``items`` to each running ``reason --json`` process of ``procs`` (by name)
    on its standard input; the answers each gave, one per question (a RuntimeError otherwise)."""
    questions = "".join(item.text + "\n" for item in items)
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(questions, timeout=60 + llm_timeout * len(items))
        answers = [json.loads(line) for line in stdout.splitlines() if line.strip()]
        if len(answers) != len(items):
            raise RuntimeError(f"{scene_name}, {name}: {len(answers)} answers to {len(items)} questions; "
                               f"{stderr.strip()[-500:]}")
        out[name] = answers
    return out

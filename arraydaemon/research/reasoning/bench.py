"""``arraydaemon eval --reasoning``: the spatial-QA benchmark, through the real path.

Each scene (reasoning/scenes.py) is replayed in real time by ``arraydaemon replay`` on a ZeroMQ
endpoint while ``arraydaemon reason ENDPOINT --json`` processes listen: the built-in answerer, and
with an LLM server given, the same questions sent to the model (``--llm-route all``) and routed
(``--llm-route auto``: the built-in answerer answers what it understands). When the replay is done
the questions (reasoning/truth.py: drawn from the truth at the scene's end, in several phrasings per
kind) are piped to each subscriber's standard input, and each answer is scored, with whether the
tracks it was answered from allowed the right answer. Questions about places (the talker near the
door, how far apart in metres) go through daemons → ``arraydaemon fuse`` → ``reason``
(research/reasoning/places.py), scored the same way ("tracks right" is then "places right").
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arraydaemon.core.profiles import analyse_geometry
from arraydaemon.reason.geometry import ArrayView
from arraydaemon.research.reasoning import places, truth
from arraydaemon.research.reasoning.scenes import SCENE_S, scene_files

PHASECODER_PCT = 76.8  # PhaseCoder: yes/no spatial QA, Gemma 3n + LoRA (published; another task and data)
ARRAYDAEMON = [sys.executable, "-m", "arraydaemon"]
QUESTION_SEED = 31


@dataclass
class Asked:
    item: truth.Item
    path: str  # built-in, llm (every question to the model), routed
    answer: str
    origin: str
    seconds: float
    right: bool
    tracks_right: bool
    geometry: str
    snapshot: dict  # the scene the answer was given from (reason --json's "scene")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_reason(endpoint: str, extra: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen([*ARRAYDAEMON, "reason", endpoint, "--json", *extra], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()  # "listening on ...": its socket is connecting
    if not line.startswith("listening on"):
        proc.kill()
        raise RuntimeError(f"arraydaemon reason did not start: {line.strip()} {proc.stderr.read()[:500]}")
    return proc


LLM_PATHS = {  # reason's flags per path: the model given the scene and the built-in reading, the scene
    # only, and routed (the built-in answerer answers what it understands)
    "llm": ["--llm-route", "all"], "llm, scene only": ["--llm-route", "all", "--llm-without-reading"],
    "routed": ["--llm-route", "auto"],
}


def run_scene(index: int, cache: Path, estimator: str | None, llm: tuple[str, str] | None,
              llm_timeout: float = 120.0, llm_paths=("llm", "routed")) -> list[Asked]:
    """Scene ``index`` through replay → ZeroMQ → ``reason``; the answers, scored."""
    scene, audio, profile = scene_files(index, cache)
    info = analyse_geometry(scene.mics, 343.0)
    view = ArrayView.from_mics(scene.mics.tolist(), info.ambiguity)
    items = truth.make_questions(scene, view, SCENE_S, np.random.default_rng([QUESTION_SEED, index]))
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    paths = {"built-in": []}
    if llm is not None:
        url, model = llm
        common = ["--llm-url", url, "--llm-model", model, "--llm-timeout", f"{llm_timeout:g}"]
        for name in llm_paths:
            paths[name] = common + LLM_PATHS[name]
    procs = {name: _start_reason(endpoint, extra) for name, extra in paths.items()}
    try:
        cmd = [*ARRAYDAEMON, "replay", str(audio), "--profile", str(profile), "--endpoint", endpoint, "--quiet"]
        if estimator:
            cmd += ["--estimator", estimator]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"replay of {scene.name} failed: {done.stderr.strip()[-500:]}")
        time.sleep(0.3)  # the last messages reach the subscribers
        answers = places.ask(procs, items, scene.name, llm_timeout)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.communicate()
    out = []
    for name, said in answers.items():
        for item, a in zip(items, said):
            snap = a["scene"]
            out.append(Asked(item, name, a["answer"], a["origin"], a["seconds"],
                             truth.answer_right(item, a["answer"], snap, view),
                             truth.tracks_right(item, snap, view), info.kind, snap))
    return out


def run_places_scene(index: int, cache: Path, llm: tuple[str, str] | None, llm_timeout: float = 120.0,
                     llm_paths=("llm", "routed")) -> list[Asked]:
    """Places scene ``index`` through replays → fuse → ``reason``; the answers, scored."""
    paths = {"built-in": []}
    if llm is not None:
        url, model = llm
        common = ["--llm-url", url, "--llm-model", model, "--llm-timeout", f"{llm_timeout:g}"]
        for name in llm_paths:
            paths[name] = common + LLM_PATHS[name]
    return [Asked(item, name, a["answer"], a["origin"], a["seconds"], places.answer_right(item, a["answer"], a["scene"]),
                  places.places_right(item, a["scene"]), geometry, a["scene"])
            for item, name, a, geometry in places.run_scene(index, cache, paths, llm_timeout, QUESTION_SEED)]


def _pct(n: int, d: int) -> str:
    return f"{100.0 * n / d:.0f} % ({n}/{d})" if d else "–"


def summary_rows(asked: list[Asked]) -> dict[str, dict]:
    """Per kind group and overall: counts of questions, answers right, tracks right, and answers right
    where the tracks were, per path; the LLM's median seconds."""
    rows: dict[str, dict] = {}
    groups = list(dict.fromkeys(truth.GROUPS.values()))
    for label in groups + ["yes/no, counting, motion", "all"]:
        def keep(a: Asked, label: str = label) -> bool:
            if label == "all":
                return True
            if label == "yes/no, counting, motion":
                return a.item.yes_no or a.item.key == "count"
            return a.item.group == label
        row = {}
        for path in ("built-in", *LLM_PATHS):
            sel = [a for a in asked if a.path == path and keep(a)]
            if not sel:
                continue
            good = [a for a in sel if a.tracks_right]
            row[path] = {"n": len(sel), "right": sum(a.right for a in sel), "tracks_right": len(good),
                         "right_given_tracks": sum(a.right for a in good),
                         "median_s": statistics.median(a.seconds for a in sel),
                         "by_llm": sum(a.origin == "llm" for a in sel)}
        if row:
            rows[label] = row
    return rows


def report(asked: list[Asked], scenes: int, estimator: str, model: str | None, places_scenes: int = 0) -> str:
    rows = summary_rows(asked)
    kinds = sorted({a.geometry for a in asked})
    llm_paths = [p for p in LLM_PATHS if any(a.path == p for a in asked)]
    head = "| question | asked | tracks right | built-in right | built-in right, tracks right |"
    rule = "|---|---|---|---|---|"
    for p in llm_paths:
        if p == "routed":
            head += " routed right | answered by the LLM |"
            rule += "---|---|"
        else:
            head += f" {p} right | {p}, tracks right | {p} median s |"
            rule += "---|---|---|"
    lines = [f"# Spatial questions: {scenes} scenes ({', '.join(kinds)} arrays), estimator {estimator}"
             + (f", and {places_scenes} rooms of 3 arrays through fuse (SRP-PHAT)" if places_scenes else "")
             + (f", LLM {model}" if model else ""), "",
             "Asked through replay → ZeroMQ → `arraydaemon reason --json` at each scene's end; the truth, phrasings "
             "and scoring: `arraydaemon/research/reasoning/truth.py`; questions about places through replays → "
             "`arraydaemon fuse` → `reason` (research/reasoning/places.py), where \"tracks right\" means the "
             "positions were.", "", head, rule]
    for label, row in rows.items():
        b = row["built-in"]
        cells = [label, str(b["n"]), _pct(b["tracks_right"], b["n"]), _pct(b["right"], b["n"]),
                 _pct(b["right_given_tracks"], b["tracks_right"])]
        for p in llm_paths:
            m = row.get(p)
            if m is None:
                cells += ["–"] * (2 if p == "routed" else 3)
            elif p == "routed":
                cells += [_pct(m["right"], m["n"]), f"{m['by_llm']}/{m['n']}"]
            else:
                cells += [_pct(m["right"], m["n"]), _pct(m["right_given_tracks"], m["tracks_right"]),
                          f"{m['median_s']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    yes_no = {p: [a for a in asked if a.path == p and a.item.yes_no] for p in ("built-in", *llm_paths)}
    lines += ["", f"Reference: PhaseCoder (Gemma 3n + LoRA) answers {PHASECODER_PCT} % of its yes/no spatial "
              "questions right (published, on its own data and questions). Here, yes/no questions: "
              + "; ".join(f"{p} {_pct(sum(a.right for a in v), len(v))}" for p, v in yes_no.items()) + "."]
    core = rows["yes/no, counting, motion"]["built-in"]
    overall = rows["all"]["built-in"]
    directions = [a for a in asked if a.path == "built-in" and not a.item.group.startswith("places")]
    if places_scenes and directions:
        lines += ["", f"Directions only (without the places questions): "
                  f"{_pct(sum(a.right for a in directions), len(directions))}."]
    given = core["right_given_tracks"] / core["tracks_right"] if core["tracks_right"] else float("nan")
    lines += ["", "Targets (built-in answerer):",
              f"- yes/no, counting and motion where the tracks were right: {100 * given:.0f} % (target ≥ 95 %) — "
              f"{'met' if given >= 0.95 else 'NOT met'}",
              f"- all questions through the real path: {100 * overall['right'] / overall['n']:.0f} % (target ≥ 90 %) — "
              f"{'met' if overall['right'] >= 0.9 * overall['n'] else 'NOT met'}"]
    for p in ("built-in", *llm_paths):
        claims = [a for a in asked if a.path == p and a.item.yes_no and a.item.expect == "cant"
                  and truth.said_verdict(a.answer) in ("yes", "no")]
        cant = sum(1 for a in asked if a.path == p and a.item.yes_no and a.item.expect == "cant")
        lines.append(f"- {p}: answers claiming what the array cannot tell (a yes or no where the truth is "
                     f"\"I can't tell\"): {len(claims)} of {cant}")
    return "\n".join(lines)


def run_reasoning_eval(count: int, cache: Path, out_dir: Path, estimator: str, llm: tuple[str, str] | None,
                       llm_timeout: float = 120.0, progress=None, llm_paths=("llm", "routed"), first: int = 0,
                       places_count: int = 0, places_first: int = 0, places_cache: Path | None = None) -> str:
    """The benchmark on scenes ``first..first+count-1`` and places scenes ``places_first..`` (``places_count``
    of them): writes ``reasoning.md`` and ``reasoning.json`` (every question and answer) under
    ``out_dir``; returns the report."""
    asked: list[Asked] = []
    runs = [("scene", index) for index in range(first, first + count)]
    runs += [("places scene", index) for index in range(places_first, places_first + places_count)]
    for what, index in runs:
        start = time.monotonic()
        if what == "scene":
            got = run_scene(index, cache, estimator, llm, llm_timeout, llm_paths)
        else:
            got = run_places_scene(index, places_cache or cache.parent / "places-scenes", llm, llm_timeout, llm_paths)
        asked += got
        if progress:
            b = [a for a in got if a.path == "built-in"]
            progress(f"{what} {index}: {sum(a.right for a in b)}/{len(b)} right ({time.monotonic() - start:.0f} s)")
    text = report(asked, count, estimator, llm[1] if llm else None, places_count)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "reasoning.md").write_text(text + "\n")
    (out_dir / "reasoning.json").write_text(json.dumps(
        {"summary": summary_rows(asked),
         "asked": [{"scene": a.item.scene, "kind": a.item.key, "question": a.item.text, "path": a.path,
                    "answer": a.answer, "origin": a.origin, "seconds": a.seconds, "right": a.right,
                    "tracks_right": a.tracks_right, "geometry": a.geometry,
                    "snapshot": None if a.right else a.snapshot,  # what a wrong answer was given from
                    "expect": a.item.expect if not isinstance(a.item.expect, tuple) or len(a.item.expect) != 3
                    else [round(v, 3) for v in a.item.expect]} for a in asked]}, indent=1))
    return text

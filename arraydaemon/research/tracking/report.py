"""``arraydaemon eval --tracking``: the multi-talker tracking benchmark, one row per estimator."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from arraydaemon.core.options import PipelineOptions
from arraydaemon.research.tracking.plot import plot_scene
from arraydaemon.research.tracking.scenes import PLANAR_KINDS, TrackingScene, load_scenes
from arraydaemon.research.tracking.score import (
    MATCH_DEG,
    SceneScore,
    TalkerScore,
    score_scene,
    summarize,
    talker_figures,
)

COLUMNS = (
    ("coverage_pct", "coverage", "{:.0f} %"),
    ("covered_70_pct", "talkers covered ≥ 70 %", "{:.0f} %"),
    ("switches_per_10", "id switches / 10 talkers", "{:.1f}"),
    ("ghost_pct", "ghost reports", "{:.1f} %"),
    ("duplicate_pct", "duplicates", "{:.1f} %"),
    ("median_error_deg", "median error", "{:.1f}°"),
    ("lag_30_deg", "lag at 20–40 °/s", "{:.1f}°"),
    ("found_median_s", "found after (median)", "{:.2f} s"),
    ("mota", "MOTA", "{:.2f}"),
    ("motp_deg", "MOTP", "{:.1f}°"),
    ("idf1", "IDF1", "{:.2f}"),
)
TALKER_COLUMNS = tuple(c for c in COLUMNS if c[0] in ("coverage_pct", "covered_70_pct", "median_error_deg",
                                                      "found_median_s"))
# The share of the active time-frequency cells a talker dominates (scenes.dominated_share), in
# scenes with other talkers: a talker who owns few cells owns little of any window's evidence.
DOMINANCE = {
    "≥ 45 %": (0.45, 1.01), "30–45 %": (0.30, 0.45), "20–30 %": (0.20, 0.30), "< 20 %": (0.0, 0.20),
}
TARGETS = {"coverage_pct": (">=", 90.0), "covered_70_pct": (">=", 90.0), "switches_per_10": ("<=", 1.0),
           "ghost_pct": ("<=", 5.0), "median_error_deg": ("<=", 3.0), "lag_30_deg": ("<=", 5.0)}


def _cells(row: dict, columns) -> str:
    return " | ".join(fmt.format(row[key]) if not math.isnan(row[key]) else "–" for key, _, fmt in columns)


def markdown_rows(rows: dict[str, dict]) -> str:
    """One markdown table: a row per variant name."""
    head = "| estimator | scenes | talkers | " + " | ".join(label for _, label, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (3 + len(COLUMNS))]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['scenes']} | {row['talkers']} | {_cells(row, COLUMNS)} |")
    return "\n".join(lines)


def by_dominance(talkers: list[TalkerScore]) -> dict[str, dict]:
    """The per-talker figures of ``talkers`` in groups: alone in its scene, then by the share of cells
    it dominates among others (``DOMINANCE``); empty groups are left out."""
    groups = {"alone": [tk for tk in talkers if tk.alone]}
    for label, (lo, hi) in DOMINANCE.items():
        groups[f"{label} of the cells"] = [tk for tk in talkers if not tk.alone and lo <= tk.dominance < hi]
    rows = {label: talker_figures(group) for label, group in groups.items()}
    return {label: row for label, row in rows.items() if row["talkers"]}


def talker_markdown(rows: dict[str, dict]) -> str:
    """One markdown table of per-talker figures (:func:`by_dominance`), a row per group."""
    lines = ["| talker dominates | talkers | " + " | ".join(label for _, label, _ in TALKER_COLUMNS) + " |",
             "|" + "---|" * (2 + len(TALKER_COLUMNS))]
    for label, row in rows.items():
        lines.append(f"| {label} | {row['talkers']} | {_cells(row, TALKER_COLUMNS)} |")
    return "\n".join(lines)


def target_lines(row: dict) -> list[str]:
    out = []
    for key, (op, bound) in TARGETS.items():
        value = row[key]
        met = value >= bound if op == ">=" else value <= bound
        label = next(lbl for k, lbl, _ in COLUMNS if k == key)
        out.append(f"- {label}: {value:.2f} (target {op} {bound:g}) — {'met' if met else 'NOT met'}")
    return out


def _subset(scores: list[SceneScore], scenes: list[TrackingScene], keep) -> list[SceneScore]:
    return [s for s, sc in zip(scores, scenes) if keep(sc)]


def run_tracking_eval(set_name: str, count: int, estimators: list[str], cache: Path | None, out_dir: Path,
                      base: PipelineOptions = PipelineOptions(), plot_index: int = 0) -> str:
    """Renders (or loads) the scenes, replays them through the pipeline with each estimator, writes
    ``tracking.md``, ``tracking.json`` and a PNG of one scene under ``out_dir``; returns the report."""
    scenes = load_scenes(set_name, count, cache)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, breakdown, results = {}, [], {}
    for name in estimators:
        scores = [score_scene(scene, replace(base, estimator=name)) for scene in scenes]
        results[name] = scores
        rows[name] = summarize(scores)
    first = estimators[0]
    groups = {
        "1 talker": lambda sc: sc.talkers == 1, "2 talkers": lambda sc: sc.talkers == 2,
        "3–4 talkers": lambda sc: sc.talkers >= 3,
        "2 talkers, no fan": lambda sc: sc.talkers == 2 and sc.fan_azimuth_deg is None,
        "3–4 talkers, no fan": lambda sc: sc.talkers >= 3 and sc.fan_azimuth_deg is None,
        "crossings": lambda sc: sc.crossing,
        "planar arrays": lambda sc: sc.geometry in PLANAR_KINDS,
        "linear arrays": lambda sc: sc.geometry == "line",
        "3-D arrays": lambda sc: sc.geometry not in PLANAR_KINDS and sc.geometry != "line",
        "RT60 ≥ 0.5 s": lambda sc: sc.rt60 >= 0.5,
        "a fan in the room": lambda sc: sc.fan_azimuth_deg is not None,
        "no fan": lambda sc: sc.fan_azimuth_deg is None,
    }
    for label, keep in groups.items():
        subset = _subset(results[first], scenes, keep)
        if subset:
            breakdown.append((label, summarize(subset)))
    dominance = by_dominance([tk for score in results[first] for tk in score.talkers])
    plot = plot_scene(results[first][plot_index], out_dir / "tracks.png")
    text = [f"# Tracking benchmark: {len(scenes)} scenes of set '{set_name}'", "",
            f"Through the pipeline and the `tracks` topic; a track covers a talker within {MATCH_DEG:g}° "
            "(definitions: `arraydaemon/research/tracking/score.py`).", "", markdown_rows(rows), "",
            f"## By scene kind ({first})", "", markdown_rows(dict(breakdown)), "",
            f"## By the share of time-frequency cells a talker dominates ({first})", "",
            talker_markdown(dominance), "", f"## Targets ({first})", "",
            *target_lines(rows[first]), "", f"Tracks against truth, scene {scenes[plot_index].name}: {plot}"]
    (out_dir / "tracking.md").write_text("\n".join(text) + "\n")
    figures = {"rows": rows, "breakdown": dict(breakdown), "by_dominance": dominance}
    (out_dir / "tracking.json").write_text(json.dumps(figures, indent=1))
    return "\n".join(text)

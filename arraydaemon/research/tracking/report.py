"""``arraydaemon eval --tracking``: the multi-talker tracking benchmark, one row per estimator."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from arraydaemon.core.options import PipelineOptions
from arraydaemon.research.tracking.plot import plot_scene
from arraydaemon.research.tracking.scenes import PLANAR_KINDS, TrackingScene, load_scenes, with_levels
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
    ("ghost_late_pct", "ghosts after 2 s", "{:.1f} %"),
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


# Per-talker conditions (``condition_rows``): the room, the talker's level against the loudest, its
# distance, and the share of cells it owns (the issue-29 targets are stated per row).
DRY_RT60_S = 0.3
LEVELS = {"the loudest": (-0.01, 1.0), "0–6 dB below": (-6.0, -0.01), "6–10 dB below": (-10.0, -6.0),
          "> 10 dB below": (-1e9, -10.0)}


def condition_groups(scenes: list[TrackingScene]) -> dict[str, list[tuple[int, int]]]:
    """(scene index, talker) pairs per condition, among scenes of several talkers."""
    groups: dict[str, list[tuple[int, int]]] = {}

    def add(label, s, k):
        groups.setdefault(label, []).append((s, k))

    for s, sc in enumerate(scenes):
        if sc.talkers < 2:
            continue
        room = "dry room" if sc.rt60 <= DRY_RT60_S else "reverberant room"
        for k in range(sc.talkers):
            add(room, s, k)
            if sc.levels_db is not None:
                level = float(sc.levels_db[k])
                for label, (lo, hi) in LEVELS.items():
                    if lo <= level < hi:
                        add(f"{room}, {label}", s, k)
                if room == "dry room" and level >= -10.0 and level < -0.01:
                    add("dry room, up to 10 dB below another", s, k)
            if sc.distances_m is not None:
                add("near (≤ 1 m)" if sc.distances_m[k] <= 1.0 else "far (> 1 m)", s, k)
            if sc.dominance is not None and sc.fan_azimuth_deg is None:
                add("no fan, owns ≥ 30 % of the cells" if sc.dominance[k] >= 0.3 else "no fan, owns < 30 %", s, k)
    return groups


def condition_rows(scores: list[SceneScore], scenes: list[TrackingScene]) -> dict[str, dict]:
    """Per condition (:func:`condition_groups`): the per-talker figures, and the ghost reports and id
    switches of the scenes those talkers are in."""
    rows = {}
    groups = condition_groups(scenes)
    order = ["dry room", *(f"dry room, {lv}" for lv in LEVELS), "dry room, up to 10 dB below another",
             "reverberant room", *(f"reverberant room, {lv}" for lv in LEVELS), "near (≤ 1 m)", "far (> 1 m)",
             "no fan, owns ≥ 30 % of the cells", "no fan, owns < 30 %"]
    for label in sorted(groups, key=lambda g: order.index(g) if g in order else len(order)):
        members = groups[label]
        talkers = [scores[s].talkers[k] for s, k in members]
        row = talker_figures(talkers)
        in_scenes = sorted({s for s, _ in members})
        whole = summarize([scores[s] for s in in_scenes])
        row.update(scenes=len(in_scenes), ghost_pct=whole["ghost_pct"], switches_per_10=whole["switches_per_10"])
        if row["talkers"]:
            rows[label] = row
    return rows


CONDITION_COLUMNS = TALKER_COLUMNS + tuple(c for c in COLUMNS if c[0] in ("ghost_pct", "switches_per_10"))


def condition_markdown(rows: dict[str, dict]) -> str:
    """One markdown table of :func:`condition_rows`; ghosts and switches are of the rows' scenes."""
    lines = ["| talkers in | scenes | talkers | " + " | ".join(label for _, label, _ in CONDITION_COLUMNS) + " |",
             "|" + "---|" * (3 + len(CONDITION_COLUMNS))]
    for label, row in rows.items():
        lines.append(f"| {label} | {row['scenes']} | {row['talkers']} | {_cells(row, CONDITION_COLUMNS)} |")
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


ROBOT_TARGETS = {"coverage_pct": (">=", 85.0), "covered_70_pct": (">=", 85.0), "ghost_pct": ("<=", 5.0),
                 "median_error_deg": ("<=", 3.0)}
ROBOT_ONLINE_TARGETS = {"ghost_late_pct": ("<=", 10.0)}


def noise_model_of(scene: TrackingScene, models: Path, base: PipelineOptions) -> str:
    """The noise model learned from ``scene``'s installation recording (``noise learn``), written
    once under ``models``; its path."""
    from arraydaemon.noise.learn import learn
    from arraydaemon.noise.model import save_noise_model
    from arraydaemon.research import dataset
    from arraydaemon.stages.features import FrameLayout

    path = models / f"{scene.name}.noise.npz"
    if not path.is_file():
        profile = dataset.geometry_profile(scene.mics, "tracking")
        layout = FrameLayout.from_config(base.features, profile.sample_rate)
        covariance, _ = learn(scene.install, layout, source=scene.name)
        models.mkdir(parents=True, exist_ok=True)
        save_noise_model(path, covariance, profile, layout)
    return str(path)


ODAS_ROW = "ODAS (stock)"


def odas_scores(scenes: list[TrackingScene], odaslive: str, base: PipelineOptions) -> list:
    """Each scene's score for ODAS's tracked sources (``peer.py``), ODAS run by ``odaslive``."""
    from arraydaemon.research.tracking.peer import odas_messages

    return [score_scene(scene, base, odas_messages(scene, odaslive, base)) for scene in scenes]


def robot_report(set_name: str, count: int, estimators: list[str], cache: Path | None, out_dir: Path,
                 base: PipelineOptions = PipelineOptions(), odaslive: str | None = None) -> str:
    """The robot condition (``robot.py``): each estimator online only and with the installation
    recording's noise model, and ODAS (``odaslive`` given: stock, no noise model); per-condition
    tables. Writes ``robot.md`` and ``robot.json``."""
    from arraydaemon.research.tracking.robot import load_robot_scenes

    scenes = load_robot_scenes(set_name, count, cache)
    models = (cache or out_dir) / "noise-models"
    rows, results = {}, {}
    for name in estimators:
        for condition in ("online only", "installation recording"):
            scores = []
            for scene in scenes:
                options = replace(base, estimator=name, noise_gate="online")
                if condition != "online only":
                    options = replace(options, noise_model=noise_model_of(scene, models, base))
                scores.append(score_scene(scene, options))
            results[(name, condition)] = scores
            rows[f"{name}, {condition}"] = summarize(scores)
    if odaslive:
        results[(ODAS_ROW, "online only")] = odas_scores(scenes, odaslive, base)
        rows[ODAS_ROW] = summarize(results[(ODAS_ROW, "online only")])
    groups = {
        "fan": lambda sc: sc.robot["kind"] == "fan", "motor whine": lambda sc: sc.robot["kind"] == "whine",
        "noise −6–0 dB": lambda sc: sc.robot["level_db"] < 0, "noise 0–5 dB": lambda sc: 0 <= sc.robot["level_db"] < 5,
        "noise 5–10 dB": lambda sc: sc.robot["level_db"] >= 5,
        "1 talker": lambda sc: sc.talkers == 1, "2 talkers": lambda sc: sc.talkers == 2,
        "planar arrays": lambda sc: sc.geometry in PLANAR_KINDS, "linear arrays": lambda sc: sc.geometry == "line",
        "3-D arrays": lambda sc: sc.geometry not in PLANAR_KINDS and sc.geometry != "line",
    }
    first = estimators[0] if estimators else None  # None: ODAS alone
    text = [f"# Robot noise: {len(scenes)} scenes of set '{set_name}'", "",
            "A fan or motor whine on the robot 0.15–0.5 m from the array, −6 to +10 dB against the talkers "
            "(`arraydaemon/research/tracking/robot.py`); online only (`--noise-gate online`), and with a noise model "
            "learned from the installation recording (another room, nobody talking; `--noise-model`).", "", markdown_rows(rows), ""]
    breakdown = {}
    for condition in ("online only", "installation recording") if first else ():
        part = {}
        for label, keep in groups.items():
            subset = _subset(results[(first, condition)], scenes, keep)
            if subset:
                part[label] = summarize(subset)
        breakdown[condition] = part
        text += [f"## By condition ({first}, {condition})", "", markdown_rows(part), ""]
    if odaslive:
        part = {label: summarize(subset) for label, keep in groups.items()
                if (subset := _subset(results[(ODAS_ROW, "online only")], scenes, keep))}
        breakdown[ODAS_ROW] = part
        text += [f"## By condition ({ODAS_ROW})", "", markdown_rows(part), ""]
    text += [f"## Targets ({first or ODAS_ROW})", ""]
    for condition, targets in (("installation recording", ROBOT_TARGETS), ("online only", ROBOT_ONLINE_TARGETS)):
        row = rows[f"{first}, {condition}"] if first else rows[ODAS_ROW] if condition == "online only" else None
        if row is None:
            continue
        for key, (op, bound) in targets.items():
            value = row[key]
            met = value >= bound if op == ">=" else value <= bound
            label = next(lbl for k, lbl, _ in COLUMNS if k == key)
            text.append(f"- {condition}, {label}: {value:.2f} (target {op} {bound:g}) — {'met' if met else 'NOT met'}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "robot.md").write_text("\n".join(text) + "\n")
    (out_dir / "robot.json").write_text(json.dumps({"rows": rows, "breakdown": breakdown}, indent=1))
    return "\n".join(text)


def run_tracking_eval(set_name: str, count: int, estimators: list[str], cache: Path | None, out_dir: Path,
                      base: PipelineOptions = PipelineOptions(), plot_index: int = 0, odaslive: str | None = None) -> str:
    """Renders (or loads) the scenes, replays them through the pipeline with each estimator (and ODAS,
    ``odaslive`` given), writes ``tracking.md``, ``tracking.json`` and a PNG of one scene under
    ``out_dir``; returns the report. A robot set (``robot.ROBOT_SETS``) gives :func:`robot_report` instead."""
    if set_name.startswith("robot-"):
        return robot_report(set_name, count, estimators, cache, out_dir, base, odaslive)
    if set_name.startswith("dry-"):
        from arraydaemon.research.tracking.dry import make_dry_scene

        scenes = load_scenes(set_name, count, cache, make_dry_scene)
    else:
        scenes = [with_levels(sc) for sc in load_scenes(set_name, count, cache)]
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, breakdown, results = {}, [], {}
    for name in estimators:
        scores = [score_scene(scene, replace(base, estimator=name)) for scene in scenes]
        results[name] = scores
        rows[name] = summarize(scores)
    if odaslive:
        results[ODAS_ROW] = odas_scores(scenes, odaslive, base)
        rows[ODAS_ROW] = summarize(results[ODAS_ROW])
    first = estimators[0] if estimators else ODAS_ROW  # ODAS alone: its tables
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
    conditions = condition_rows(results[first], scenes)
    plot = plot_scene(results[first][plot_index], out_dir / "tracks.png")
    text = [f"# Tracking benchmark: {len(scenes)} scenes of set '{set_name}'", "",
            f"Through the pipeline and the `tracks` topic; a track covers a talker within {MATCH_DEG:g}° "
            "(definitions: `arraydaemon/research/tracking/score.py`).", "", markdown_rows(rows), "",
            f"## By scene kind ({first})", "", markdown_rows(dict(breakdown)), "",
            f"## By the share of time-frequency cells a talker dominates ({first})", "",
            talker_markdown(dominance), "", f"## By condition ({first}; scenes of several talkers)", "",
            condition_markdown(conditions), ""]
    figures = {"rows": rows, "breakdown": dict(breakdown), "by_dominance": dominance, "conditions": conditions}
    if odaslive and estimators:
        figures["odas_conditions"] = condition_rows(results[ODAS_ROW], scenes)
        text += [f"## By condition ({ODAS_ROW}; scenes of several talkers)", "",
                 condition_markdown(figures["odas_conditions"]), ""]
    text += [f"## Targets ({first})", "", *target_lines(rows[first]), "", f"Tracks against truth, scene {scenes[plot_index].name}: {plot}"]
    (out_dir / "tracking.md").write_text("\n".join(text) + "\n")
    (out_dir / "tracking.json").write_text(json.dumps(figures, indent=1))
    return "\n".join(text)

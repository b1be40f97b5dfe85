#!/usr/bin/env python3
"""How far is the neural estimator from its accuracy target, and could a better choice close it?

Runs the shipped neural estimator (with temporal integration, as the daemon does) over validation
scenes with unseen array geometries and reports, per condition, how often the true direction is
within 10° of (a) the estimator's answer, (b) the highest peak or one of the six highest peaks
(≥ 25° apart) of the integrated SRP-PHAT scan without gates, (c) the same of the model's integrated
spectrum. If (b) and (c) rarely contain the truth, no rule for choosing among them reaches the target.

Usage: python tools/candidates.py [--scenes 100] [--split val]
Prints a markdown table (the model card's "Where the accuracy target stands").
"""

from __future__ import annotations

import argparse

import numpy as np

from arraydaemon.core.grids import pick_peaks
from arraydaemon.core.options import FeatureConfig, LocalizerConfig
from arraydaemon.localizers.neural.stage import NeuralAnalysis, NeuralLocalizer
from arraydaemon.localizers.neural.weights import WEIGHTS_PATH, load_model
from arraydaemon.research import dataset, evaluate
from arraydaemon.stages.features import FrameLayout

TOP = 6
WITHIN_DEG = 10.0


def candidates(estimator: NeuralLocalizer, analysis: NeuralAnalysis) -> dict:
    """The candidate peaks the estimator's fused rule chooses from: the highest TOP peaks (≥ the
    minimum separation apart) of the integrated SRP-PHAT scan without gates and of the model's
    integrated spectrum, as unit vectors."""
    scan, sep = estimator.scan, estimator.config.min_separation_deg
    srp = scan.scan(scan.lags(analysis.sums)[1])
    return {"srp": [scan.points[i] for i in pick_peaks(srp, scan.points, TOP, sep, -1.0, 0.0)],
            "model": [scan.points[i] for i in pick_peaks(analysis.learned, scan.points, TOP, sep, 0.0, 0.0)]}


def scene_rows(split: str, index: int, model, layout) -> list[dict]:
    """One row per scored window of scene ``index``: whether the answer and each candidate is right."""
    scene = dataset.make_scene(split, index, stage=1, n_sources=1)
    if scene["geometry"].startswith("profile:"):
        return []  # a bundled geometry: seen in training
    profile, windows, error_deg = evaluate.scene_windows(scene)

    def right(vector) -> bool:
        return error_deg(vector) <= WITHIN_DEG

    estimator = NeuralLocalizer(profile, layout, LocalizerConfig(), model)
    rows = []
    for window, scored in windows:
        analysis = estimator.analyse(window)
        sources = estimator.sources(window, analysis)
        if not scored:
            continue
        # the fused rule chooses among candidates only in windows loud enough and called active
        active = (window.level_db >= estimator.config.min_level_db
                  and analysis.activity >= estimator.activity_threshold)
        found = candidates(estimator, analysis) if active else {"srp": [], "model": []}
        rows.append({"answer": bool(sources) and right(sources[0].vector),
                     "srp": [right(v) for v in found["srp"]], "model": [right(v) for v in found["model"]],
                     "snr": scene["snr_db"], "aperture_cm": 100.0 * profile.geometry.aperture_m})
    return rows


def table(rows: list[dict]) -> str:
    conditions = [("all", lambda r: True), ("SNR < 5 dB", lambda r: r["snr"] < 5),
                  ("SNR 5–15 dB", lambda r: 5 <= r["snr"] < 15), ("SNR ≥ 15 dB", lambda r: r["snr"] >= 15),
                  ("aperture < 10 cm", lambda r: r["aperture_cm"] < 10),
                  ("SNR ≥ 5 dB and aperture ≥ 10 cm", lambda r: r["snr"] >= 5 and r["aperture_cm"] >= 10)]
    lines = ["| windows | share | estimator | SRP-PHAT top 1 / top 6 | model top 1 / top 6 | either, top 6 |",
             "|---|---|---|---|---|---|"]
    for name, keep in conditions:
        sub = [r for r in rows if keep(r)]
        if not sub:
            continue

        def pct(hit) -> str:
            return f"{100 * np.mean([hit(r) for r in sub]):.0f} %"

        lines.append(f"| {name} | {100 * len(sub) / len(rows):.0f} % | {pct(lambda r: r['answer'])} "
                     f"| {pct(lambda r: any(r['srp'][:1]))} / {pct(lambda r: any(r['srp']))} "
                     f"| {pct(lambda r: any(r['model'][:1]))} / {pct(lambda r: any(r['model']))} "
                     f"| {pct(lambda r: any(r['srp']) or any(r['model']))} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=100)
    parser.add_argument("--split", default="val", choices=sorted(dataset.SPLIT_SEEDS))
    args = parser.parse_args()
    model = load_model(WEIGHTS_PATH)[0]
    layout = FrameLayout.from_config(FeatureConfig(), dataset.SAMPLE_RATE)
    rows = [row for i in range(args.scenes) for row in scene_rows(args.split, i, model, layout)]
    print(f"{len(rows)} windows, {args.split} scenes 0–{args.scenes - 1} with unseen geometries\n")
    print(table(rows))


if __name__ == "__main__":
    main()

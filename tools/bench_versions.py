#!/usr/bin/env python3
"""Per-window pipeline time of two checkouts of arraydaemon, alternated on one machine.

Timings on a shared machine drift by ±30 % from minute to minute, so two versions are compared by
alternating them: each round runs ``research.bench.time_pipeline`` (8-mic circular array, 10 s of
audio) for every estimator, once with ``PYTHONPATH`` set to the first checkout and once to the
second, each in a fresh process with one thread. Prints each round, then a markdown table of the
median over the rounds of each stage's median, and the per-round ratios of the whole pipeline.

Usage: python tools/bench_versions.py BEFORE_DIR AFTER_DIR [--rounds 6] [--mics 8] [--seconds 10]
(e.g. ``git worktree add /tmp/before 9a21739`` for the first).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ESTIMATORS = ("srp-phat", "neural")
STAGES = ("features", "localizer", "tracker", "pipeline")

ROUND = r"""
import json, sys
from arraydaemon.core.options import PipelineOptions
from arraydaemon.research.bench import bench_profile, time_pipeline
mics, seconds = int(sys.argv[1]), float(sys.argv[2])
out = {}
for est in sys.argv[3:]:
    stages = time_pipeline(bench_profile(mics), seconds, options=PipelineOptions(estimator=est))["stages"]
    out[est] = {name: median_p99[0] for name, median_p99 in stages.items()}
print(json.dumps(out))
"""


def one_round(checkout: Path, mics: int, seconds: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(checkout), NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", ROUND, str(mics), str(seconds), *ESTIMATORS], env=env,
                          capture_output=True, text=True, cwd="/tmp")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        sys.exit(f"{checkout}: the timing round failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--mics", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    for path in (args.before, args.after):
        if not (path / "arraydaemon" / "__init__.py").is_file():
            sys.exit(f"{path}: not an arraydaemon checkout (no arraydaemon/__init__.py)")
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for r in range(args.rounds):
        for label, path in (("before", args.before), ("after", args.after)):
            runs[label].append(one_round(path, args.mics, args.seconds))
            print(f"round {r + 1} {label}: {json.dumps(runs[label][-1])}", flush=True)
    print("\n| estimator | code | " + " | ".join(STAGES) + " |")
    print("|---|---|" + "---|" * len(STAGES))
    for est in ESTIMATORS:
        for label in ("before", "after"):
            cells = [f"{statistics.median(run[est][s] for run in runs[label]):.2f}" for s in STAGES]
            print(f"| {est} | {label} | " + " | ".join(cells) + " |")
    for est in ESTIMATORS:
        ratios = [a[est]["pipeline"] / b[est]["pipeline"] for b, a in zip(runs["before"], runs["after"])]
        print(f"\n{est}: after/before per round " + ", ".join(f"{x:.2f}" for x in ratios)
              + f"; median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()

"""Whole-process cost of arraydaemon against ODAS (introlab/odas) on the same recording.

    python tools/bench_peer.py --recording rec.wav --profile P [--odaslive /path/to/odaslive] [--rounds 5]
    python tools/bench_peer.py --simulate DIR     # writes DIR/circle8.yaml and DIR/rec60.wav, the scene of
                                                  # docs/benchmarks/cost.md (needs the train extra, espeak-ng)

For each round, in turn: ``arraydaemon replay REC --profile P --fast --no-publish --quiet`` with each
estimator, then ``odaslive -s -c CFG`` (one thread) on the same samples (raw int32 interleaved, the
profile's mics in order) with a configuration written from the profile: the same mic positions and
sample rate, ODAS's stock settings otherwise (those of its ``matrix_creator.cfg``: hop 128, frame 256,
four pots, scans at levels 2 and 4, the Kalman tracker, separation on; outputs to files). Reported,
medians over the rounds: CPU seconds (user + system, from the child's rusage), the ratio to ODAS, peak
RSS, and start-up: the whole process on the recording's first second, and for arraydaemon the time
from launch until its first ``doa`` record is written (``--jsonl -``, unbuffered). Build ODAS from its
source (MIT licence; not part of this repository): ``git clone https://github.com/introlab/odas &&
cmake -S odas -B odas/build && make -C odas/build`` (needs libfftw3-dev libconfig-dev
libasound2-dev libpulse-dev); pass ``--odaslive odas/build/bin/odaslive``. Without it only
arraydaemon's rows are measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
TIME = "/usr/bin/time"  # GNU time (Debian: apt-get install time)
sys.path.insert(0, str(REPO))

from arraydaemon.core.profiles import load_profile  # noqa: E402
from arraydaemon.research.odas import odas_config, raw_int32  # noqa: E402

def measure(command: list[str], env: dict, cwd: Path, first_line: bool = False) -> dict:
    """Runs ``command`` under GNU time (``/usr/bin/time``: its child's rusage, not inflated by this
    process's memory, which Linux carries across fork and exec into ``ru_maxrss``): CPU seconds (user +
    system), peak RSS (MB), wall seconds, and with ``first_line`` the seconds from launch until its
    first stdout line starting with ``{``."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        t0 = time.monotonic()
        proc = subprocess.Popen([TIME, "-f", "%U %S %M", "-o", report.name, *command], env=env, cwd=cwd,
                                stdout=subprocess.PIPE if first_line else subprocess.DEVNULL, stderr=subprocess.PIPE)
        first = None
        if first_line:
            for line in proc.stdout:
                if first is None and line.startswith(b"{"):
                    first = time.monotonic() - t0
            proc.stdout.close()
        err = proc.stderr.read()
        proc.wait()
        wall = time.monotonic() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}: {err.decode()[-2000:]}")
        user, system, rss_kb = report.read().split()[-3:]
    return {"cpu_s": float(user) + float(system), "rss_mb": int(rss_kb) / 1024, "wall_s": wall, "first_s": first}


def simulate(out: Path) -> None:
    """The benchmark's scene: 8 mics on a 15 cm circle at 16 kHz, 60 s of two espeak-ng talkers in the
    free field (azimuth 40°, elevation 10°; azimuth -120° at half the amplitude), 20 dB SNR, seed 1."""
    import math

    from arraydaemon.research.simulate import free_field_scene, speech_source

    out.mkdir(parents=True, exist_ok=True)
    mics = [[round(0.075 * math.cos(2 * math.pi * k / 8), 5), round(0.075 * math.sin(2 * math.pi * k / 8), 5), 0.0]
            for k in range(8)]
    rows = "".join(f"  - [{x}, {y}, {z}]\n" for x, y, z in mics)
    (out / "circle8.yaml").write_text("name: circle8\ndescription: 8 mics on a 15 cm circle (benchmark)\n"
                                      f"sample_rate: 16000\nchannels: 8\nframe_id: circle8\nmics:\n{rows}")
    rng = np.random.default_rng(1)
    a, b = speech_source(rng, 60.0, 16000), speech_source(rng, 60.0, 16000)
    audio = free_field_scene(np.array(mics), [(a, 40.0, 10.0), (0.5 * b, -120.0, 0.0)], 16000, snr_db=20, rng=rng)
    sf.write(out / "rec60.wav", audio[:60 * 16000], 16000, subtype="FLOAT")
    print(f"wrote {out / 'circle8.yaml'} and {out / 'rec60.wav'}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recording", help="the recording (any soundfile format), the profile's mics")
    parser.add_argument("--profile", help="array profile name or YAML file")
    parser.add_argument("--simulate", metavar="DIR", help="instead: write the benchmark's scene and profile to DIR")
    parser.add_argument("--odaslive", help="path to an odaslive binary built from introlab/odas")
    parser.add_argument("--estimator", action="append", choices=("neural", "srp-phat"),
                        help="arraydaemon estimators (repeatable; default both)")
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds (default 5)")
    parser.add_argument("--tree", action="append", metavar="LABEL=DIR",
                        help="also measure the arraydaemon source tree DIR (e.g. an older checkout), as LABEL")
    parser.add_argument("--json", help="also write the raw measurements here")
    args = parser.parse_args(argv)
    if args.simulate:
        simulate(Path(args.simulate))
        return 0
    if not args.recording or not args.profile:
        parser.error("--recording and --profile are required (or --simulate DIR)")
    if not Path(TIME).is_file():
        parser.error(f"{TIME} (GNU time) not found: apt-get install time")
    profile = load_profile(args.profile)
    recording = str(Path(args.recording).resolve())
    profile_arg = str(Path(args.profile).resolve()) if Path(args.profile).is_file() else args.profile
    audio, rate = sf.read(args.recording, dtype="float32", always_2d=True)
    if rate != profile.sample_rate or audio.shape[1] != profile.num_mics:
        parser.error(f"{args.recording}: {audio.shape[1]} channels at {rate} Hz; the profile has "
                     f"{profile.num_mics} mics at {profile.sample_rate} Hz")
    estimators = args.estimator or ["neural", "srp-phat"]
    trees = {"": REPO}
    for item in args.tree or []:
        label, sep, path = item.partition("=")
        if not sep or not label or not Path(path, "arraydaemon").is_dir():
            parser.error(f"--tree: expected LABEL=DIR of an arraydaemon checkout, got {item!r}")
        trees[label] = Path(path).resolve()
    work = Path(tempfile.mkdtemp(prefix="bench_peer_"))
    short = work / "first_second.wav"
    sf.write(short, audio[:rate], rate, subtype="FLOAT")
    cmds, envs, dirs = {}, {}, {}
    for label, tree in trees.items():
        for name in estimators:
            base = [sys.executable, "-m", "arraydaemon", "replay"]
            tail = ["--profile", profile_arg, "--fast", "--no-publish", "--estimator", name]
            key = f"{name} ({label})" if label else name
            cmds[key] = (base + [recording] + tail + ["--quiet"], base + [str(short)] + tail + ["--jsonl", "-"])
            dirs[key] = tree  # `python -m` puts the working directory first on sys.path
            envs[key] = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(
                p for p in (str(tree), os.environ.get("PYTHONPATH", "")) if p))
    if args.odaslive:
        odas = []
        for label, clip in (("full", audio), ("short", audio[:rate])):
            raw = raw_int32(clip, work / f"{label}.raw")
            (work / label).mkdir()
            cfg = work / f"{label}.cfg"
            cfg.write_text(odas_config(profile, raw, work / label))
            odas.append([args.odaslive, "-s", "-c", str(cfg)])
        cmds["odas"] = tuple(odas)
        envs["odas"], dirs["odas"] = dict(os.environ), work
    # one unmeasured run each: numba's cache and the page cache warm
    for name, (full, short_cmd) in cmds.items():
        measure(short_cmd, envs[name], dirs[name], first_line=name != "odas")
    runs = {name: [] for name in cmds}
    for r in range(args.rounds):
        for name, (full, short_cmd) in cmds.items():
            whole = measure(full, envs[name], dirs[name])
            start = measure(short_cmd, envs[name], dirs[name], first_line=name != "odas")
            runs[name].append({"full": whole, "short": start})
            print(f"round {r + 1}/{args.rounds} {name:9s} cpu {whole['cpu_s']:6.2f} s  rss {whole['rss_mb']:6.1f} MB  "
                  f"1 s file {start['wall_s']:.2f} s", file=sys.stderr)
    med = {name: {"cpu_s": statistics.median(x["full"]["cpu_s"] for x in rs),
                  "rss_mb": statistics.median(x["full"]["rss_mb"] for x in rs),
                  "short_s": statistics.median(x["short"]["wall_s"] for x in rs),
                  "first_s": (statistics.median(x["short"]["first_s"] for x in rs)
                              if all(x["short"]["first_s"] is not None for x in rs) else None)}
           for name, rs in runs.items()}
    seconds = len(audio) / rate
    ref = med.get("odas", {}).get("cpu_s")
    print(f"\n{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; {Path(args.recording).name}: {seconds:.0f} s, {profile.num_mics} mics at {rate} Hz; "
          f"{args.rounds} alternated rounds, medians")
    print("\n| | CPU s | ratio to ODAS | peak RSS | 1 s file, whole process | first doa after launch |")
    print("|---|---|---|---|---|---|")
    for name, m in med.items():
        label = "ODAS (odaslive -s)" if name == "odas" else f"arraydaemon, {name}"
        ratio = f"{m['cpu_s'] / ref:.2f}×" if ref else "–"
        first = f"{m['first_s']:.2f} s" if m["first_s"] is not None else "–"
        print(f"| {label} | {m['cpu_s']:.2f} | {ratio} | {m['rss_mb']:.0f} MB | {m['short_s']:.2f} s | {first} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "medians": med}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

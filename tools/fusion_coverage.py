"""Where fusion's missing coverage comes from, offline (tools/fusion_coverage.py [--hold=S] SCENE_DIR...: fusion-benchmark scene directories; --hold=S: the tracker's hold_s): each array's tracks (the pipeline in-process,
SRP-PHAT, cached) fed to the Fuser in capture order; for each active talker-step, why it was or
was not placed."""
import sys, json, math, pickle
from collections import Counter
from dataclasses import replace
from pathlib import Path
import numpy as np
import yaml
from arraydaemon.core.profiles import load_profile
from arraydaemon.core.options import PipelineOptions
from arraydaemon.io.files import FileSource
from arraydaemon.pipeline import Pipeline
from arraydaemon.fusion.room import parse_room
from arraydaemon.fusion.fuser import Fuser, position_entries, MAX_TRACK_SILENCE_S
from arraydaemon.research.fusion.scenes import position_at
from arraydaemon.research.fusion.bench import RunRecord, _active, score_run, summarize

TOL = 10.0

def tracks_of(scene, name, prof):
    cache = scene / f"{name}.tracks.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    profile = load_profile(str(scene / prof))
    opts = replace(PipelineOptions(), estimator="srp-phat")
    src = FileSource(scene / f"{name}.wav", profile)
    pipe = Pipeline(profile, opts, None)
    src.block_size = pipe.layout.hop_samples
    out = []
    for block in src.blocks(wall_start=1000.0):
        for r in pipe.process(block):
            for topic, p in r.payloads:
                if topic == "tracks":
                    out.append(p)
    cache.write_bytes(pickle.dumps(out))
    return out

def run(scene, fuser_kwargs=None, verbose=False, hold_s=None):
    room_d = yaml.safe_load((scene / "room.yaml").read_text())
    for k, a in enumerate(room_d["arrays"]):
        a["endpoint"] = f"tcp://127.0.0.1:{1 + k}"
    room = parse_room(room_d, "x", scene)
    truth = json.loads((scene / "truth.json").read_text())
    msgs = {a["name"]: tracks_of(scene, a["name"], a["profile"]) for a in room_d["arrays"]}
    fuser = Fuser(room, **(fuser_kwargs or {}))
    if hold_s is not None:
        fuser.tracker.config = replace(fuser.tracker.config, hold_s=hold_s)
    names = list(room.names)
    n = min(len(v) for v in msgs.values())
    why = Counter()
    arrays_on = Counter()
    record = RunRecord(room_d["name"], names, 1000.0)  # scored as the benchmark scores a live run
    held = []
    def score(st):
        s = st.t - 1000.0
        pos = position_entries(st)
        for e in pos:  # positions held on one array's bearing: how far from the nearest talker
            if e["bearing_only"]:
                near = min(math.dist((e["x"], e["y"]), position_at(np.array(t["path"]), s)[:2]) for t in truth["talkers"])
                held.append(near)
        for ti, t in enumerate(truth["talkers"]):
            if not _active(truth, ti, s):
                continue
            p = position_at(np.array(t["path"]), s)
            # which arrays have a fresh track within TOL of the true direction
            on = 0
            for nm in names:
                a = room.array(nm)
                m = min(fuser.buffers[nm], key=lambda m: abs(m["wall_time"] - st.t))
                d = p - a.position
                true_az = math.degrees(math.atan2(d[1], d[0]))
                ok = False
                for x in m["tracks"]:
                    if x["silent_s"] > MAX_TRACK_SILENCE_S:
                        continue
                    v = a.rotation @ [x["x"], x["y"], x["z"]]
                    az = math.degrees(math.atan2(v[1], v[0]))
                    if abs((az - true_az + 180) % 360 - 180) <= TOL:
                        ok = True
                on += ok
            arrays_on[on] += 1
            placed = any(math.dist((e["x"], e["y"]), p[:2]) <= 1.0 for e in pos)
            if placed:
                why["placed"] += 1
            elif on == 0:
                why["no array tracks it"] += 1
            elif on == 1:
                why["one array tracks it (a bearing)"] += 1
            else:
                why["2+ arrays track it, not placed"] += 1
    for k in range(n):
        for nm in names:
            fuser.add(nm, msgs[nm][k])
        for st in fuser.steps(names):
            score(st)
            record.positions.append((st.t, {"wall_time": st.t, "positions": position_entries(st)}))

    return why, arrays_on, len(truth["talkers"]), len(names), score_run(record, truth), held

if __name__ == "__main__":
    tot = Counter()
    scores = []
    held = []
    hold = [float(a.split("=", 1)[1]) for a in sys.argv[1:] if a.startswith("--hold=")]  # --hold=S: TrackerConfig.hold_s
    for sc in [a for a in sys.argv[1:] if not a.startswith("--")]:
        why, on, nt, na, score, h = run(Path(sc), hold_s=hold[0] if hold else None)
        held += h
        tot += why
        scores.append(score)
        n = sum(why.values())
        print(Path(sc).name, f"{na} arrays {nt} talkers", {k: f"{100*v/n:.0f}%" for k, v in why.items()}, dict(on))
    n = sum(tot.values())
    print("all", {k: f"{100*v/n:.0f}% ({v})" for k, v in tot.items()})
    s = summarize(scores)
    print(f"scored as the benchmark: median floor {s['median_xy_m']:.2f} m, p90 {s['p90_xy_m']:.2f} m, "
          f"coverage {s['coverage_pct']:.0f} %, ghosts {s['ghost_pct']:.1f} %, id switches {s['id_switches']}")
    if held:
        print(f"held on one bearing: {len(held)} positions, {sum(d <= 1.0 for d in held)} within 1 m of a talker, "
              f"median {np.median(held):.2f} m from the nearest")

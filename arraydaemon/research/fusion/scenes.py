"""Rooms with several arrays for the fusion benchmark.

A scene is deterministic from ``(set seed, index)``: a shoebox room (5-10 x 5-8 x 2.7-3.2 m, RT60
0.2-0.8 s; the ``test`` set 0.2-0.6 s) holding 2-4 arrays of the bundled geometries (their mics, at
16 kHz) on different walls at 1-1.5 m facing into the room (yaw within 20 degrees of the wall's
normal), one of them sometimes on a table (0.75 m) instead (the ``places`` set, for the reasoning
benchmark's questions about places: RT60 0.2-0.6 s like ``test``); 1-3 talkers inside the arrays' hull,
standing or walking a straight line at 0.3-1 m/s, mouths at 1.2-1.7 m; espeak-ng speech. Rendered
with :func:`~arraydaemon.research.simulate.room.room_scene` (image sources plus a diffuse tail at
the RT60): the mics of every array are one "array" about a point 0.4 m above the floor's centre and each talker a
source (a walker: cross-faded 0.1 s segments at its positions). Truth is each talker's position
over time and when it speaks. Scenes are cached as a directory of per-array WAVs, profiles and
a room file, so reruns skip the rendering.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import yaml

from arraydaemon.core.profiles import load_profile

SAMPLE_RATE = 16000
SCENE_S = 6.0
SETS = {"dev": 23_000_000, "test": 29_000_000, "places": 31_000_000}  # places: the reasoning benchmark's
GEOMETRIES = ("respeaker_4mic_hat", "respeaker_6mic_hat", "respeaker_usb_4mic", "minidsp_uma8", "matrix_voice",
              "ps3_eye")
SCENE_VERSION = 1
SEGMENT_S = 0.1


def _hull_inside(points_xy: np.ndarray, p: np.ndarray, margin: float) -> bool:
    """Whether ``p`` is inside the convex hull of ``points_xy`` by at least ``margin`` (hull of the
    array positions; with two arrays, within ``margin`` of the room's inside instead)."""
    from scipy.spatial import ConvexHull

    hull = ConvexHull(points_xy)
    # equations: normal . x + offset <= 0 inside
    return bool(np.all(hull.equations[:, :2] @ p + hull.equations[:, 2] <= -margin))


def _poses(rng, dim: np.ndarray, count: int) -> list[tuple[np.ndarray, float]]:
    walls = rng.permutation(4)[:count]
    out = []
    table = count >= 3 and rng.random() < 0.3
    for k, wall in enumerate(walls):
        if table and k == count - 1:
            pos = np.array([dim[0] / 2 + rng.uniform(-0.8, 0.8), dim[1] / 2 + rng.uniform(-0.8, 0.8), 0.75])
            out.append((pos, float(rng.uniform(-180, 180))))
            continue
        h = rng.uniform(1.0, 1.5)
        along = rng.uniform(0.25, 0.75)
        if wall == 0:  # x = 0, facing +x
            pos, yaw = np.array([0.15, along * dim[1], h]), 0.0
        elif wall == 1:  # y = 0, facing +y
            pos, yaw = np.array([along * dim[0], 0.15, h]), 90.0
        elif wall == 2:  # x = max, facing -x
            pos, yaw = np.array([dim[0] - 0.15, along * dim[1], h]), 180.0
        else:
            pos, yaw = np.array([along * dim[0], dim[1] - 0.15, h]), -90.0
        yaw = (yaw + rng.uniform(-20, 20) + 180.0) % 360.0 - 180.0
        out.append((pos, float(yaw)))
    return out


def _inside(rng, dim, arrays_xy, margin=0.6) -> np.ndarray:
    # arrays on adjacent walls can make a thin hull: closer to its edges before giving up
    for m in (margin, margin / 2, 0.0):
        for _ in range(1000):
            p = np.array([rng.uniform(0.8, dim[0] - 0.8), rng.uniform(0.8, dim[1] - 0.8)])
            if len(arrays_xy) < 3 or _hull_inside(arrays_xy, p, m):
                return p
    raise RuntimeError("no point inside the arrays' hull")


def _talker_path(rng, dim, arrays_xy, walking: bool, duration: float) -> np.ndarray:
    """Waypoints ``[shape=(2, 4)]``: ``(t, x, y, z)`` at the start and the end."""
    z = rng.uniform(1.2, 1.7)
    start = _inside(rng, dim, arrays_xy)
    if not walking:
        return np.array([[0.0, *start, z], [duration, *start, z]])
    speed = rng.uniform(0.3, 1.0)
    for _ in range(200):
        heading = rng.uniform(-math.pi, math.pi)
        end = start + speed * duration * np.array([math.cos(heading), math.sin(heading)])
        inside_room = np.all(end > 0.8) and np.all(end < dim[:2] - 0.8)
        if inside_room and (len(arrays_xy) < 3 or _hull_inside(arrays_xy, end, 0.6)):
            return np.array([[0.0, *start, z], [duration, *end, z]])
        speed = max(0.3, speed * 0.95)
        start = _inside(rng, dim, arrays_xy)
    return np.array([[0.0, *start, z], [duration, *start, z]])


def position_at(path: np.ndarray, t) -> np.ndarray:
    """``[x, y, z]`` of a talker at scene time(s) ``t`` (held before and after the path)."""
    return np.stack([np.interp(t, path[:, 0], path[:, k]) for k in (1, 2, 3)], axis=-1)


def make_scene(set_name: str, index: int, out_dir: Path, arrays: int | None = None, talkers: int | None = None,
               duration: float = SCENE_S) -> Path:
    """Renders scene ``index`` of ``set_name`` into ``out_dir`` (created): ``room.yaml``, one WAV and
    one 16 kHz profile per array, ``truth.json``. Returns ``out_dir``."""
    import soundfile as sf

    from arraydaemon.research.simulate.moving import path_segments
    from arraydaemon.research.simulate.room import SourceSpec, room_scene
    from arraydaemon.research.simulate.sources import speech_source
    from arraydaemon.research.tracking.scenes import speaking_frames

    rng = np.random.default_rng([SETS[set_name], index])
    dim = np.array([rng.uniform(5, 10), rng.uniform(5, 8), rng.uniform(2.7, 3.2)])
    rt60 = float(rng.uniform(0.2, 0.6 if set_name in ("test", "places") else 0.8))
    n_arrays = arrays or int(rng.integers(2, 5))
    n_talkers = talkers or int(rng.integers(1, 4))
    poses = _poses(rng, dim, n_arrays)
    names = list(rng.choice(GEOMETRIES, size=n_arrays, replace=True))
    arrays_xy = np.array([p[:2] for p, _ in poses])
    from arraydaemon.fusion.room import rotation

    mics_room, spans = [], []
    for name, (pos, yaw) in zip(names, poses):
        mics = load_profile(name).mics
        mics = mics - mics.mean(axis=0)
        spans.append((sum(len(m) for m in mics_room), sum(len(m) for m in mics_room) + len(mics)))
        mics_room.append(pos[None, :] + mics @ rotation(yaw).T)
    all_mics = np.concatenate(mics_room)
    centre = np.array([dim[0] / 2, dim[1] / 2, 0.4])  # a reference point below every mouth (>= 0.8 m away)
    specs, paths, signals = [], [], []
    for k in range(n_talkers):
        walking = rng.random() < 0.5
        path = _talker_path(rng, dim, arrays_xy, walking, duration)
        sig = speech_source(rng, duration, SAMPLE_RATE).astype(np.float64)
        paths.append(path)
        signals.append(sig)
        pieces, times = path_segments(sig, [(0.0, 0.0, 0.0), (duration, 0.0, 0.0)], 1.0, SAMPLE_RATE, SEGMENT_S)
        for piece, t in zip(pieces, times):
            d = position_at(path, t) - centre
            r = float(np.linalg.norm(d))
            specs.append(SourceSpec(piece.signal, math.degrees(math.atan2(d[1], d[0])),
                                    math.degrees(math.asin(d[2] / r)), r))
    scene = room_scene(all_mics - centre, specs, sample_rate=SAMPLE_RATE, rt60=rt60, room_dim=tuple(dim), rng=rng,
                       array_centre=centre, max_order=12, snr_db=30.0)
    out_dir.mkdir(parents=True, exist_ok=True)
    room = {"name": f"{set_name}-{index:03d}", "size": [float(v) for v in dim], "arrays": []}
    for k, (name, (pos, yaw), (lo, hi)) in enumerate(zip(names, poses, spans)):
        label = f"{chr(ord('a') + k)}-{name}"
        prof = load_profile(name)
        profile = {"name": f"{name}_16k", "sample_rate": SAMPLE_RATE, "frame_id": label,
                   "mics": [[float(v) for v in row] for row in prof.mics - prof.mics.mean(axis=0)],
                   "description": f"{name}'s geometry at 16 kHz (fusion benchmark)"}
        (out_dir / f"{label}.profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
        sf.write(out_dir / f"{label}.wav", scene.audio[:, lo:hi].astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
        room["arrays"].append({"name": label, "profile": f"{label}.profile.yaml", "endpoint": "tcp://127.0.0.1:0",
                               "position": [float(v) for v in pos], "yaw_deg": yaw})
    (out_dir / "room.yaml").write_text(yaml.safe_dump(room, sort_keys=False))
    truth = {"rt60": rt60, "duration_s": duration, "frame_s": 0.025,
             "talkers": [{"path": p.tolist(), "walking": bool(p[0, 1] != p[-1, 1] or p[0, 2] != p[-1, 2]),
                          "speaking": speaking_frames(s).astype(int).tolist()} for p, s in zip(paths, signals)]}
    (out_dir / "truth.json").write_text(json.dumps(truth))
    (out_dir / f"v{SCENE_VERSION}").write_text("")
    return out_dir


def load_scene(set_name: str, index: int, cache: Path, **kwargs) -> Path:
    """Scene directory of ``(set_name, index)``, rendered once into ``cache``."""
    tag = "".join(f"-{k}{v}" for k, v in sorted(kwargs.items()))
    path = cache / f"fusion-{set_name}-{index:03d}{tag}"
    if (path / f"v{SCENE_VERSION}").is_file():
        return path
    return make_scene(set_name, index, path, **kwargs)

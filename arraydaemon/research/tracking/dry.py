"""Dry-room scenes for the tracking benchmark: a talker 0–10 dB quieter than another, near and far.

The main scenes (``scenes.py``) draw RT60 0.2–0.9 s and talkers 1–3 m away; the case they rarely
hold is the one a measured office showed: a dry room (RT60 0.1–0.3 s), two or three talkers
speaking over each other, one of them 2–10 dB quieter at the array than the loudest, close to the
array (0.5–1 m from a 10–40 cm aperture: the wavefront is curved) or farther (1–2.5 m). Scene 0
of each set is that office's case: a 4-mic linear array 18 cm long, talkers at +10° and −61°,
0.6–0.8 m away, the second 6–9 dB quieter.

Talkers stand (a third of the scenes: one walks 10–30 °/s); none pauses for long. Levels are the
direct path's at the array (``scenes.direct_levels_db``: speech RMS over its speaking frames over
its distance), set by scaling each dry signal. Every scene is deterministic from ``(set seed,
index)``; the arrays are drawn like the main scenes' (never used in training), 4–8 mics.
"""

from __future__ import annotations

import numpy as np

from arraydaemon.research import dataset, simulate
from arraydaemon.research.tracking.scenes import (
    SAMPLE_RATE,
    TrackingScene,
    direct_levels_db,
    dominated_share,
    speaking_frames,
    walk_path,
)

DRY_SETS = {"dry-dev": 31_000_000, "dry-test": 37_000_000}  # dry-dev: tuning; dry-test: held out
DRY_SCENE_S = 6.0
KINDS = ("circle", "grid", "irregular_planar", "line", "cluster_3d")


def linear_array(mics: int, length_m: float) -> np.ndarray:
    """``mics`` evenly spaced along x, ``length_m`` end to end, centred: ``[shape=(mics, 3)]``."""
    return np.stack([np.linspace(-length_m / 2, length_m / 2, mics), np.zeros(mics), np.zeros(mics)], axis=1)


def _geometry(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    kind = str(rng.choice(KINDS))
    for _ in range(200):
        mics, kind = dataset.random_geometry(rng, kind)
        aperture = float(np.max(np.linalg.norm(mics[:, None] - mics[None], axis=-1)))
        if 4 <= len(mics) <= 8 and 0.10 <= aperture <= 0.40:
            return mics, kind
    return linear_array(4, 0.18), "line"


def _apart(mics: np.ndarray, kind: str, a: float, b: float) -> float:
    """How far apart two azimuths (in the horizontal plane) are as the geometry measures them: the
    angle from the axis for a linear array, the azimuth otherwise."""
    if kind == "line":
        axis = np.linalg.svd(mics - mics.mean(axis=0))[2][0]
        angle = [np.degrees(np.arccos(np.clip(float(simulate.direction_vector(x, 0.0) @ axis), -1.0, 1.0))) for x in (a, b)]
        return abs(angle[0] - angle[1])
    return abs((a - b + 180) % 360 - 180)


def make_dry_scene(set_name: str, index: int) -> TrackingScene:
    """Scene ``index`` of ``set_name`` (``DRY_SETS``; see the module doc)."""
    rng = np.random.default_rng([DRY_SETS[set_name], index])
    office = index == 0
    if office:
        mics, kind = linear_array(4, 0.18), "line"
        azimuths, elevations = [10.0, -61.0], [0.0, 0.0]
        distances = [float(rng.uniform(0.6, 0.8)) for _ in range(2)]
        levels = [0.0, -float(rng.uniform(6.0, 9.0))]
        rt60 = 0.15
    else:
        mics, kind = _geometry(rng)
        n = int(rng.choice([2, 3], p=[0.65, 0.35]))
        near = rng.random() < 0.5
        rt60 = float(rng.uniform(0.1, 0.3))
        azimuths = []
        while len(azimuths) < n:
            az = float(rng.uniform(-180, 180))
            if all(_apart(mics, kind, az, o) >= 35.0 for o in azimuths):
                azimuths.append(az)
        elevations = [float(rng.uniform(-10, 30)) if kind != "line" else 0.0 for _ in range(n)]
        distances = [float(rng.uniform(0.5, 1.0) if near else rng.uniform(1.0, 2.5)) for _ in range(n)]
        # the loudest, then quieter ones: the second 2-10 dB below it, a third 0-10 dB
        levels = [0.0, -float(rng.uniform(2.0, 10.0))] + [-float(rng.uniform(0.0, 10.0)) for _ in range(n - 2)]
    n = len(azimuths)
    walker = -1 if office or rng.random() >= 1 / 3 else int(rng.integers(1, n))
    signals = [simulate.speech_source(rng, DRY_SCENE_S, SAMPLE_RATE).astype(np.float64) for _ in range(n)]
    # scale each dry signal so that its direct path reaches the array at its level against the loudest
    measured = direct_levels_db(signals, distances)
    signals = [s * 10 ** ((lv - m) / 20) for s, lv, m in zip(signals, levels, measured)]
    paths, speeds = [], []
    for k in range(n):
        if k == walker:
            speed = float(rng.uniform(10, 30)) * float(rng.choice([-1, 1]))
            start = float(rng.uniform(0.5, 2.0))
            paths.append(walk_path(rng, azimuths[k], elevations[k], speed, start, start + float(rng.uniform(1.5, 3.0))))
            speeds.append(abs(speed))
        else:
            paths.append(walk_path(rng, azimuths[k], elevations[k], 0.0, 1.0, 2.0))
            speeds.append(0.0)
    statics = [simulate.SourceSpec(signals[k], azimuths[k], elevations[k], distances[k]) for k in range(n) if k != walker]
    kwargs = dict(sample_rate=SAMPLE_RATE, rt60=rt60, rng=rng, snr_db=float(rng.uniform(25, 40)),
                  diffuse_noise_db=float(rng.uniform(20, 35)) if rng.random() < 0.5 else None)
    if walker >= 0:
        audio = simulate.moving_sources_scene(mics, [(signals[walker], paths[walker], distances[walker])],
                                              static_sources=statics, **kwargs)[0].audio
    else:
        audio = simulate.room_scene(mics, statics, **kwargs).audio
    times = np.arange(0.0, DRY_SCENE_S + 0.05, 0.1)
    way = [np.asarray(p, dtype=np.float64) for p in paths]
    return TrackingScene(
        name=f"{set_name}-{index:03d}", audio=audio, mics=np.asarray(mics), geometry=kind, rt60=rt60,
        times_s=np.tile(times, (n, 1)), azimuth_deg=np.array([np.interp(times, w[:, 0], w[:, 1]) for w in way]),
        elevation_deg=np.array([np.interp(times, w[:, 0], w[:, 2]) for w in way]),
        speaking=np.array([speaking_frames(s) for s in signals]), speeds_dps=np.array(speeds), crossing=False,
        paused=-1, dominance=dominated_share(signals, distances), levels_db=direct_levels_db(signals, distances),
        distances_m=np.array(distances))

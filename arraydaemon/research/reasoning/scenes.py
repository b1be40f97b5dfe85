"""Scenes for the spatial-QA benchmark: the tracking benchmark's scenes, shorter, with talkers who
start late and talkers who stop early, so "who started / stopped talking" has an answer.

Deterministic from the scene index (a seed set of its own: neither training's nor the tracking
benchmark's); the arrays are drawn as the tracking benchmark draws them, the kinds in turn
(planar, linear, 3-D), so every kind is asked. 1–4 espeak-ng talkers 1–2.5 m away in a room of
RT60 0.2–0.6 s: half of them walking at 15–50 °/s for 2–4 s; after the first, a talker may start
talking 1.5–2.5 s in, or stop 1.5–2.5 s in (its track is retired before the end). No machine noise
(the tracking benchmark measures that). Scenes are rendered once and cached (.npz, the tracking
scenes' format) with the profile replay needs (.yaml) and the audio (.wav: FLAC holds at most 8 channels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import yaml

from arraydaemon.research import dataset, simulate
from arraydaemon.research.tracking import scenes as tracking
from arraydaemon.research.tracking.scenes import SAMPLE_RATE, TrackingScene

SEED = 29_000_000
SCENE_S = 6.0
GROUPS = (tracking.PLANAR_KINDS, ("line",), ("cluster_3d", "rings_3d"))
# 3: scenes one in three of each kind, a talker's start or stop time kept in its speaking frames
SCENE_VERSION = 3


def _geometry(rng: np.random.Generator, index: int) -> tuple[np.ndarray, str]:
    kinds = GROUPS[index % len(GROUPS)]
    while True:
        mics, kind = dataset.random_geometry(rng, str(rng.choice(kinds)))
        if len(mics) >= 4:
            return mics, kind


def make_scene(index: int) -> TrackingScene:
    """Scene ``index`` (see the module doc), rendered."""
    rng = np.random.default_rng([SEED, index])
    mics, kind = _geometry(rng, index)
    n = int(rng.choice([1, 2, 3, 4], p=[0.2, 0.35, 0.3, 0.15]))
    rt60 = float(rng.uniform(0.2, 0.6))
    taken, paths, speeds, signals = [], [], [], []
    three_d = kind not in tracking.PLANAR_KINDS and kind != "line"
    for k in range(n):
        az0 = tracking.separated_azimuth(rng, taken, 45.0)
        taken.append(az0)
        el = float(rng.uniform(-30, 45) if three_d else rng.uniform(-10, 25))
        if rng.random() < 0.5:
            speed = float(rng.uniform(15, 50)) * float(rng.choice([-1, 1]))
            start = float(rng.uniform(0.5, 2.0))
            stop = float(min(SCENE_S, start + rng.uniform(2.0, 4.0)))
            paths.append(tracking.walk_path(rng, az0, el, speed, start, stop))
            speeds.append(abs(speed))
        else:
            paths.append(tracking.walk_path(rng, az0, el, 0.0, 1.0, 2.0))
            speeds.append(0.0)
        signal = simulate.speech_source(rng, SCENE_S, SAMPLE_RATE).astype(np.float64) * 10 ** (rng.uniform(-4, 0) / 20)
        if k > 0:  # the first talker speaks throughout; the others may start late or stop early
            u = rng.random()
            if u < 0.3:
                signal[:int(rng.uniform(1.5, 2.5) * SAMPLE_RATE)] = 0.0
            elif u < 0.55:
                signal[int(rng.uniform(1.5, 2.5) * SAMPLE_RATE):] = 0.0
        signals.append(signal)
    distances = [float(rng.uniform(1.0, 2.5)) for _ in signals]
    movers = [(signals[k], paths[k], distances[k]) for k in range(n) if speeds[k] > 0]
    statics = [simulate.SourceSpec(signals[k], paths[k][0][1], paths[k][0][2], distances[k])
               for k in range(n) if speeds[k] == 0]
    kwargs = {"sample_rate": SAMPLE_RATE, "rt60": rt60, "rng": rng, "snr_db": float(rng.uniform(20, 35)),
                  "diffuse_noise_db": float(rng.uniform(15, 30)) if rng.random() < 0.5 else None}
    if movers:
        audio = simulate.moving_sources_scene(mics, movers, static_sources=statics, **kwargs)[0].audio
    else:
        audio = simulate.room_scene(mics, statics, **kwargs).audio
    times = np.arange(0.0, SCENE_S + 0.05, 0.1)
    way = [np.asarray(p, dtype=np.float64) for p in paths]
    return TrackingScene(
        name=f"reasoning-{index:03d}", audio=audio, mics=np.asarray(mics), geometry=kind, rt60=rt60,
        times_s=np.tile(times, (n, 1)), azimuth_deg=np.array([np.interp(times, w[:, 0], w[:, 1]) for w in way]),
        elevation_deg=np.array([np.interp(times, w[:, 0], w[:, 2]) for w in way]),
        speaking=np.array([tracking.speaking_frames(s) for s in signals]), speeds_dps=np.array(speeds),
        crossing=False, paused=-1)


def scene_files(index: int, cache: Path) -> tuple[TrackingScene, Path, Path]:
    """Scene ``index``, its audio file and its profile file under ``cache`` (rendered on first use)."""
    cache.mkdir(parents=True, exist_ok=True)
    stem = cache / f"reasoning-{index:03d}-v{SCENE_VERSION}"
    npz, wav, profile = stem.with_suffix(".npz"), stem.with_suffix(".wav"), stem.with_suffix(".yaml")
    if npz.is_file() and wav.is_file() and profile.is_file():
        return TrackingScene.load(npz), wav, profile
    scene = make_scene(index)
    audio = scene.audio / max(float(np.max(np.abs(scene.audio))), 1e-9) * 0.5
    soundfile.write(wav, audio, SAMPLE_RATE, subtype="PCM_16")
    profile.write_text(yaml.safe_dump({"name": scene.name, "sample_rate": SAMPLE_RATE,
                                       "mics": [[round(float(v), 6) for v in m] for m in scene.mics],
                                       "description": f"random {scene.geometry} array of the reasoning benchmark"}))
    scene.save(npz)
    return scene, wav, profile

"""Multi-talker scenes for the tracking benchmark: 1–4 talkers, some walking, crossings, pauses.

Every scene is deterministic from ``(set seed, index)`` and is drawn on an array never used in
training (the training set draws from other seeds; random geometries are continuous draws, so no
two coincide): planar, linear or 3-D, 4–16 mics, apertures 4–30 cm. A reverberant shoebox room
(RT60 0.2–0.9 s) holds 1–4 talkers (espeak-ng speech: phrases with natural pauses) 1–3 m away:

- a talker is static, or walks at 10–60 °/s around the array, starting and stopping at random;
- in a "crossing" scene two talkers walk towards each other and pass, their paths apart by
  15–30° in elevation (a 3-D array can tell them apart throughout; a planar or linear array sees
  them meet in azimuth);
- one talker may fall silent for 0.8–1.4 s mid-scene (under the tracker's ``max_silence_s``);
- sometimes a machine noise (a robot's fan) and diffuse noise.

The truth per talker is its direction at every sample time and when it speaks (frame energy of its
own dry signal). Scenes are cached as .npz under a directory so reruns skip the rendering.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arraydaemon.core.options import FeatureConfig
from arraydaemon.research import dataset, simulate
from arraydaemon.stages.features import FrameLayout, hann

SAMPLE_RATE = 16000
SCENE_S = 8.0
SETS = {"dev": 13_000_000, "test": 17_000_000}  # dev: tuning; test: reported, never tuned on
PLANAR_KINDS = ("circle", "circle_centre", "grid", "irregular_planar")
KINDS = PLANAR_KINDS + ("line", "cluster_3d", "rings_3d")
ACTIVITY_FRAME_S = 0.025
# 2: the fan azimuth is stored (version 1 caches lost it, so scenes with a fan looked fan-free);
# 3: each talker's share of dominated time-frequency cells is stored (the same audio as version 2)
SCENE_VERSION = 3


@dataclass(eq=False)
class TrackingScene:
    """One rendered scene.

    ``audio`` float32 ``[shape=(samples, mics)]``; ``mics [shape=(mics, 3)]``; per talker,
    ``times_s [shape=(talkers, steps)]`` with ``azimuth_deg`` / ``elevation_deg`` of the same shape
    (the true direction over time) and ``speaking [shape=(talkers, frames)]`` booleans per
    ``ACTIVITY_FRAME_S`` frame; ``speeds_dps [shape=(talkers,)]``: the walking speed (0: static).
    """

    name: str
    audio: np.ndarray
    mics: np.ndarray
    geometry: str
    rt60: float
    times_s: np.ndarray
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    speaking: np.ndarray
    speeds_dps: np.ndarray
    crossing: bool
    paused: int  # index of the talker with a long pause, or -1
    fan_azimuth_deg: float | None = None  # a machine noise's azimuth (not a talker), if any
    dominance: np.ndarray | None = None  # None: not known (a scene built by hand)
    # robot scenes (robot.py): the installation recording [shape=(samples, mics)] of the robot's own
    # noise alone, and what that noise is (kind, level_db, distance_m, azimuth_deg, elevation_deg)
    install: np.ndarray | None = None
    robot: dict | None = None
    # per talker, its direct path's level at the array against the loudest talker's (dB, 0 for the
    # loudest; speech RMS over its active frames / distance) and its distance (m); None: not known
    levels_db: np.ndarray | None = None
    distances_m: np.ndarray | None = None

    @property
    def talkers(self) -> int:
        return int(self.azimuth_deg.shape[0])

    def directions_at(self, t_s: float) -> np.ndarray:
        """True unit directions ``[shape=(talkers, 3)]`` at time ``t_s``."""
        az = [np.interp(t_s, self.times_s[k], self.azimuth_deg[k]) for k in range(self.talkers)]
        el = [np.interp(t_s, self.times_s[k], self.elevation_deg[k]) for k in range(self.talkers)]
        return np.array([simulate.direction_vector(a, e) for a, e in zip(az, el)]).reshape(-1, 3)

    def speaking_in(self, t0: float, t1: float) -> np.ndarray:
        """Whether each talker speaks at some time in ``[t0, t1)``: ``[shape=(talkers,)]`` bool."""
        lo = max(0, int(t0 / ACTIVITY_FRAME_S))
        hi = max(lo + 1, int(np.ceil(t1 / ACTIVITY_FRAME_S)))
        return self.speaking[:, lo:hi].any(axis=1)

    def last_spoke(self, t: float) -> np.ndarray:
        """Seconds since each talker last spoke before ``t`` (inf: not yet): ``[shape=(talkers,)]``."""
        hi = int(t / ACTIVITY_FRAME_S)
        out = np.full(self.talkers, np.inf)
        for k in range(self.talkers):
            idx = np.flatnonzero(self.speaking[k, :hi])
            if idx.size:
                out[k] = t - (idx[-1] + 1) * ACTIVITY_FRAME_S
        return np.maximum(out, 0.0)

    def save(self, path: Path) -> None:
        meta = {"name": self.name, "geometry": self.geometry, "rt60": self.rt60, "crossing": self.crossing,
                "paused": self.paused, "fan_azimuth_deg": self.fan_azimuth_deg, "version": SCENE_VERSION,
                "robot": self.robot}
        extra = {} if self.dominance is None else {"dominance": self.dominance}
        if self.install is not None:
            extra["install"] = self.install
        if self.levels_db is not None:
            extra["levels_db"] = self.levels_db
        if self.distances_m is not None:
            extra["distances_m"] = self.distances_m
        np.savez_compressed(path, audio=self.audio, mics=self.mics, times_s=self.times_s,
                            azimuth_deg=self.azimuth_deg, elevation_deg=self.elevation_deg, speaking=self.speaking,
                            speeds_dps=self.speeds_dps, meta=json.dumps(meta), **extra)

    @classmethod
    def load(cls, path: Path) -> "TrackingScene":
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("version") != SCENE_VERSION:
                raise ValueError(f"{path}: scene version {meta.get('version')}, expected {SCENE_VERSION}")
            return cls(meta["name"], z["audio"], z["mics"], meta["geometry"], meta["rt60"], z["times_s"],
                       z["azimuth_deg"], z["elevation_deg"], z["speaking"], z["speeds_dps"], meta["crossing"],
                       meta["paused"], meta.get("fan_azimuth_deg"), z["dominance"] if "dominance" in z else None,
                       z["install"] if "install" in z else None, meta.get("robot"),
                       z["levels_db"] if "levels_db" in z else None,
                       z["distances_m"] if "distances_m" in z else None)


def speaking_frames(signal: np.ndarray) -> np.ndarray:
    """``ACTIVITY_FRAME_S`` frames of a dry ``signal`` within 30 dB of its loudest frame: ``[shape=(frames,)]``."""
    frame = int(ACTIVITY_FRAME_S * SAMPLE_RATE)
    n = len(signal) // frame
    power = np.mean(signal[:n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1)
    return power > power.max() * 1e-3


def direct_levels_db(signals: list[np.ndarray], distances_m: list[float]) -> np.ndarray:
    """Per talker, its direct path's level at the array against the loudest talker's, in dB (0 for
    the loudest): the RMS of its dry signal over its speaking frames over its distance
    ``[shape=(talkers,)]``."""
    levels = []
    for signal, distance in zip(signals, distances_m):
        frame = int(ACTIVITY_FRAME_S * SAMPLE_RATE)
        x = np.asarray(signal, dtype=np.float64)
        n = len(x) // frame
        power = np.mean(x[:n * frame].reshape(n, frame) ** 2, axis=1)
        active = speaking_frames(x)
        levels.append(10 * np.log10(max(float(power[active[:n]].mean()) if active[:n].any() else 0.0, 1e-20))
                      - 20 * np.log10(distance))
    levels = np.array(levels)
    return levels - levels.max()


def dominated_share(signals: list[np.ndarray], distances_m: list[float]) -> np.ndarray:
    """Per talker, the share of the scene's active time-frequency cells where its direct path is at
    least 3 dB above the other talkers' together: ``[shape=(talkers,)]``.

    ``signals``: each talker's dry signal ``[shape=(samples,)]``, heard at ``1 / distance`` at the
    array (the distance asked for: a source the room simulation had to move closer to fit inside the
    room is somewhat louder than assumed here). Cells are those of the features' STFT (default
    ``FeatureConfig``: 32 ms Hann frames, half overlap, 200-7000 Hz); a cell is active when the
    talkers' summed power is within 40 dB of the loudest cell. SRP-PHAT weighs every cell alike and
    each cell's phase follows whoever dominates it, so this share, more than the loudness, says how
    much of a window's evidence a talker owns.
    """
    layout = FrameLayout.from_config(FeatureConfig(), SAMPLE_RATE)
    lo, hi = layout.band
    window = hann(layout.n_fft)
    power = []
    for signal, distance in zip(signals, distances_m):
        frames = np.lib.stride_tricks.sliding_window_view(np.asarray(signal, dtype=np.float64), layout.n_fft)
        spectra = np.fft.rfft(frames[::layout.frame_hop] * window, axis=1)[:, lo:hi]
        power.append(np.abs(spectra) ** 2 / distance**2)
    power = np.array(power)  # (talkers, frames, band bins)
    total = power.sum(axis=0)
    active = total > total.max() * 1e-4
    dominated = (power > 2.0 * (total - power)) & active
    return dominated.sum(axis=(1, 2)) / max(int(active.sum()), 1)


def draw_geometry(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    kind = str(rng.choice(KINDS))
    while True:
        mics, kind = dataset.random_geometry(rng, kind)
        if len(mics) >= 4:
            return mics, kind


def walk_path(rng: np.random.Generator, az0: float, el: float, speed: float, start: float, stop: float) -> list:
    """Waypoints (time, azimuth, elevation): still until ``start``, walking at ``speed`` °/s, still after ``stop``."""
    return [(0.0, az0, el), (start, az0, el), (stop, az0 + speed * (stop - start), el),
            (SCENE_S + 1.0, az0 + speed * (stop - start), el)]


def separated_azimuth(rng: np.random.Generator, taken: list[float], min_sep: float) -> float:
    for _ in range(1000):
        az = float(rng.uniform(-180, 180))
        if all(abs((az - t + 180) % 360 - 180) >= min_sep for t in taken):
            return az
    raise RuntimeError("could not place a talker")


def make_scene(set_name: str, index: int, render: bool = True) -> TrackingScene:
    """Scene ``index`` of set ``set_name`` (see the module doc). ``render=False``: the truth only,
    without audio (seconds instead of minutes)."""
    rng = np.random.default_rng([SETS[set_name], index])
    mics, kind = draw_geometry(rng)
    n_talkers = int(rng.choice([1, 2, 3, 4], p=[0.15, 0.35, 0.3, 0.2]))
    rt60 = float(rng.uniform(0.2, 0.9))
    crossing = n_talkers >= 2 and rng.random() < 0.35
    paths, speeds, taken = [], [], []
    for k in range(n_talkers):
        el = float(rng.uniform(-15, 35))
        if crossing and k < 2:
            # walk towards each other from 60-100° apart and pass; elevations 15-30° apart
            if k == 0:
                az0 = float(rng.uniform(-180, 180))
                gap = float(rng.uniform(60, 100))
                speed = float(rng.uniform(15, 35))
                start = float(rng.uniform(0.5, 2.0))
                stop = start + 2 * gap / (2 * speed)  # each covers the whole gap: they end swapped
                cross = (az0, gap, speed, start, stop, el)
                paths.append(walk_path(rng, az0, el, speed, start, stop))
            else:
                az0, gap, speed, start, stop, el0 = cross
                el = float(np.clip(el0 + rng.choice([-1, 1]) * rng.uniform(15, 30), -20, 50))
                paths.append(walk_path(rng, az0 + gap, el, -speed, start, stop))
            speeds.append(speed)
            taken.extend([az0, az0 + gap])
            continue
        az0 = separated_azimuth(rng, taken, 40.0)
        taken.append(az0)
        if rng.random() < 0.5:
            speed = float(rng.uniform(10, 60)) * float(rng.choice([-1, 1]))
            start = float(rng.uniform(0.0, 3.0))
            stop = float(min(SCENE_S, start + rng.uniform(2.0, 5.0)))
            paths.append(walk_path(rng, az0, el, speed, start, stop))
            speeds.append(abs(speed))
        else:
            paths.append(walk_path(rng, az0, el, 0.0, 1.0, 2.0))
            speeds.append(0.0)
    signals = []
    for k in range(n_talkers):
        sig = simulate.speech_source(rng, SCENE_S, SAMPLE_RATE).astype(np.float64)
        signals.append(sig * 10 ** (rng.uniform(-6, 0) / 20))
    paused = int(rng.integers(n_talkers)) if rng.random() < 0.4 else -1
    if paused >= 0:
        t0 = float(rng.uniform(2.5, 5.5))
        signals[paused][int(t0 * SAMPLE_RATE):int((t0 + rng.uniform(0.8, 1.4)) * SAMPLE_RATE)] = 0.0
    distances = [float(rng.uniform(1.0, 3.0)) for _ in signals]
    # Static talkers render as one source each (fast); walkers as cross-faded segments.
    walking = [k for k in range(n_talkers) if speeds[k] > 0]
    movers = [(signals[k], paths[k], distances[k]) for k in walking]
    statics = [simulate.SourceSpec(signals[k], paths[k][0][1], paths[k][0][2], distances[k])
               for k in range(n_talkers) if speeds[k] == 0]
    fan_azimuth = None
    if rng.random() < 0.25:
        fan = simulate.stationary_noise_source(rng, SCENE_S, SAMPLE_RATE) * 0.1 * 10 ** (-rng.uniform(10, 20) / 20)
        fan_azimuth = separated_azimuth(rng, taken, 30.0)
        statics.append(simulate.SourceSpec(fan, fan_azimuth, float(rng.uniform(-30, 0)), 1.0))
    diffuse = float(rng.uniform(10, 30)) if rng.random() < 0.5 else None
    kwargs = dict(sample_rate=SAMPLE_RATE, rt60=rt60, rng=rng, snr_db=float(rng.uniform(15, 35)),
                  diffuse_noise_db=diffuse)
    if not render:
        audio = np.zeros((0, len(mics)), dtype=np.float32)
    elif movers:
        audio = simulate.moving_sources_scene(mics, movers, static_sources=statics, **kwargs)[0].audio
    else:
        audio = simulate.room_scene(mics, statics, **kwargs).audio
    # Every talker's true direction over time: its path (a source moved inside the room keeps its direction).
    times = np.arange(0.0, SCENE_S + 0.05, 0.1)
    way = [np.asarray(p, dtype=np.float64) for p in paths]
    tracks_az = [np.interp(times, w[:, 0], w[:, 1]) for w in way]
    tracks_el = [np.interp(times, w[:, 0], w[:, 2]) for w in way]
    return TrackingScene(
        name=f"{set_name}-{index:03d}", audio=audio, mics=np.asarray(mics), geometry=kind, rt60=rt60,
        times_s=np.tile(times, (n_talkers, 1)), azimuth_deg=np.array(tracks_az), elevation_deg=np.array(tracks_el),
        speaking=np.array([speaking_frames(s) for s in signals]), speeds_dps=np.array(speeds), crossing=crossing,
        paused=paused, fan_azimuth_deg=fan_azimuth,
        dominance=dominated_share(signals, distances), levels_db=direct_levels_db(signals, distances),
        distances_m=np.array(distances))


def load_scenes(set_name: str, count: int, cache: Path | None, make=None) -> list[TrackingScene]:
    """Scenes ``0..count-1`` of ``set_name``, rendered once (by ``make(set_name, index)``, default
    :func:`make_scene`) and cached under ``cache`` (if given)."""
    out = []
    for index in range(count):
        path = cache / f"{set_name}-{index:03d}-v{SCENE_VERSION}.npz" if cache else None
        if path is not None and path.is_file():
            out.append(TrackingScene.load(path))
            continue
        scene = (make or make_scene)(set_name, index)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            scene.save(path)
        out.append(scene)
    return out


def with_levels(scene: TrackingScene) -> TrackingScene:
    """``scene`` with its talkers' levels and distances (``levels_db``, ``distances_m``): a cache
    written before they were stored gets them from the scene's truth, drawn again without audio."""
    if scene.levels_db is not None and scene.distances_m is not None:
        return scene
    set_name, _, index = scene.name.rpartition("-")
    if set_name not in SETS or not index.isdigit():
        return scene
    truth = make_scene(set_name, int(index), render=False)
    scene.levels_db, scene.distances_m = truth.levels_db, truth.distances_m
    return scene

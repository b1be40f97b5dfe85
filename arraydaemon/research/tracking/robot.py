"""Robot scenes for the tracking benchmark: the array on a robot whose own fan or motor hums close by.

Every scene is deterministic from ``(set seed, index)`` and drawn on a random array (the held-out
geometries of ``scenes.py``). One or two talkers 1.2–2.5 m away (half of them walking), RT60
0.2–0.6 s; on the robot's body, 0.15–0.5 m from the array centre (and at least 8 cm beyond its
outermost mic), one machine noise:

- a **fan**: ``simulate.stationary_noise_source`` (coloured noise, for half of them a motor hum),
- or a **motor whine**: a 300–2000 Hz fundamental with 2–6 harmonics, wobbling 0.3 % in speed,
  over broadband noise 15 dB below it,

at −6 to +10 dB against the talkers (the noise's power at the mics over the mean power of the
talkers' reverberant signals over the scene). The noise is rendered with pyroomacoustics' image
sources in the talkers' room (order up to 12: at this distance the direct path dominates; no
late tail), since ``simulate.room_scene`` keeps sources 0.5 m away.

The **installation recording** (``TrackingScene.install``): the same machine, another stretch of
its signal, at the same place on the robot, recorded for ``INSTALL_S`` in *another* room (drawn
anew, RT60 0.2–0.6 s), with its own sensor noise and no talker: what an installer records once
with the robot switched on and nobody talking.
"""

from __future__ import annotations

import math

import numpy as np

from arraydaemon.research import simulate
from arraydaemon.research.tracking.scenes import (
    SAMPLE_RATE,
    SCENE_S,
    TrackingScene,
    dominated_share,
    draw_geometry,
    load_scenes,
    separated_azimuth,
    speaking_frames,
    walk_path,
)

ROBOT_SETS = {"robot-dev": 23_000_000, "robot-test": 29_000_000}  # robot-dev: tuning; robot-test: held out
INSTALL_S = 6.0
NOISE_ORDER_CAP = 12
NOISE_KINDS = ("fan", "whine")


def motor_whine(rng: np.random.Generator, duration_s: float, sample_rate: int) -> np.ndarray:
    """A motor's whine: harmonics of a 300-2000 Hz fundamental wobbling 0.3 % in speed, over
    broadband noise 15 dB below them; unit RMS, float32 ``[shape=(samples,)]``."""
    n = int(round(duration_s * sample_rate))
    t = np.arange(n) / sample_rate
    f0 = float(rng.uniform(300.0, 2000.0))
    wobble = 1.0 + 0.003 * np.sin(2 * np.pi * rng.uniform(0.2, 3.0) * t + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * f0 * np.cumsum(wobble) / sample_rate
    harmonics = [k for k in range(1, int(rng.integers(2, 7)) + 1) if k * f0 < 0.45 * sample_rate]
    tone = sum(rng.uniform(0.3, 1.0) / k * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k in harmonics)
    tone = tone / (np.std(tone) + 1e-12)
    x = tone + 10 ** (-15 / 20) * rng.standard_normal(n)
    return (x / (np.std(x) + 1e-12)).astype(np.float32)


def _noise_signal(rng: np.random.Generator, kind: str, duration_s: float) -> np.ndarray:
    if kind == "fan":
        return simulate.stationary_noise_source(rng, duration_s, SAMPLE_RATE)
    return motor_whine(rng, duration_s, SAMPLE_RATE)


def render_near(mics: np.ndarray, signal: np.ndarray, offset_m: np.ndarray, room_dim, rt60: float,
                centre: np.ndarray) -> np.ndarray:
    """``signal`` from ``centre + offset_m`` (room coordinates) at the mics ``centre + mics`` of a
    shoebox room of ``room_dim`` and ``rt60``: ``[shape=(samples, mics)]`` float64, aligned like
    ``simulate.room_scene`` (pyroomacoustics' filter delay and the integer direct-path delay removed)."""
    import pyroomacoustics as pra
    import scipy.signal

    dim = np.asarray(room_dim, dtype=np.float64)
    absorption, order = pra.inverse_sabine(rt60, dim)
    room = pra.ShoeBox(dim, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=min(order, NOISE_ORDER_CAP),
                       air_absorption=False, ray_tracing=False, use_rand_ism=False)
    room.add_source(centre + offset_m)
    room.add_microphone_array((centre[None, :] + mics).T)
    room.compute_rir()
    shift = pra.constants.get("frac_delay_length") // 2 + int(round(np.linalg.norm(offset_m) / 343.0 * SAMPLE_RATE))
    n = len(signal)
    out = np.zeros((n, len(mics)))
    for m in range(len(mics)):
        y = scipy.signal.fftconvolve(signal.astype(np.float64), room.rir[m][0])
        out[:, m] = y[shift:shift + n] if len(y) >= shift + n else np.pad(y[shift:], (0, shift + n - len(y)))
    return out


def _random_room(rng: np.random.Generator, mics: np.ndarray, rt60: float):
    """A room between 3 x 3 x 2.5 and 8 x 6 x 3.5 m that Sabine allows for ``rt60``, and an array
    centre 1 m from its walls, 0.7-1.5 m high."""
    import pyroomacoustics as pra

    for _ in range(100):
        dim = np.array([rng.uniform(3.0, 8.0), rng.uniform(3.0, 6.0), rng.uniform(2.5, 3.5)])
        try:
            pra.inverse_sabine(rt60, dim)
            break
        except ValueError:
            continue
    centre = np.array([rng.uniform(1.0, dim[0] - 1.0), rng.uniform(1.0, dim[1] - 1.0), rng.uniform(0.7, 1.5)])
    return dim, centre


def make_robot_scene(set_name: str, index: int) -> TrackingScene:
    """Scene ``index`` of robot set ``set_name`` (see the module doc), with its installation recording."""
    rng = np.random.default_rng([ROBOT_SETS[set_name], index])
    mics, kind = draw_geometry(rng)
    n_talkers = int(rng.choice([1, 2], p=[0.4, 0.6]))
    rt60 = float(rng.uniform(0.2, 0.6))
    paths, speeds, taken = [], [], []
    for _ in range(n_talkers):
        el = float(rng.uniform(-10, 30))
        az0 = separated_azimuth(rng, taken, 40.0)
        taken.append(az0)
        if rng.random() < 0.5:
            speed = float(rng.uniform(10, 40)) * float(rng.choice([-1, 1]))
            start = float(rng.uniform(0.5, 3.0))
            stop = float(min(SCENE_S, start + rng.uniform(2.0, 4.0)))
            paths.append(walk_path(rng, az0, el, speed, start, stop))
            speeds.append(abs(speed))
        else:
            paths.append(walk_path(rng, az0, el, 0.0, 1.0, 2.0))
            speeds.append(0.0)
    signals = [simulate.speech_source(rng, SCENE_S, SAMPLE_RATE).astype(np.float64) * 10 ** (rng.uniform(-3, 0) / 20)
               for _ in range(n_talkers)]
    distances = [float(rng.uniform(1.2, 2.5)) for _ in signals]
    noise_kind = str(rng.choice(NOISE_KINDS, p=[0.6, 0.4]))
    noise_db = float(rng.uniform(-6.0, 10.0))
    reach = float(np.max(np.linalg.norm(mics - mics.mean(axis=0), axis=1)))
    noise_distance = float(rng.uniform(max(0.15, reach + 0.08), max(0.5, reach + 0.12)))
    # on the body: anywhere around, mostly below the array
    noise_az = separated_azimuth(rng, taken, 35.0)
    noise_el = float(rng.uniform(-60.0, 10.0))
    noise = _noise_signal(rng, noise_kind, INSTALL_S + SCENE_S)
    walking = [k for k in range(n_talkers) if speeds[k] > 0]
    movers = [(signals[k], paths[k], distances[k]) for k in walking]
    statics = [simulate.SourceSpec(signals[k], paths[k][0][1], paths[k][0][2], distances[k])
               for k in range(n_talkers) if speeds[k] == 0]
    snr_db = float(rng.uniform(25, 35))
    kwargs = dict(sample_rate=SAMPLE_RATE, rt60=rt60, rng=rng, snr_db=snr_db, diffuse_noise_db=None)
    if movers:
        room = simulate.moving_sources_scene(mics, movers, static_sources=statics, **kwargs)[0]
    else:
        room = simulate.room_scene(mics, statics, **kwargs)
    talkers = room.clean if room.clean is not None else room.audio
    talker_power = float(np.mean(np.asarray(talkers, dtype=np.float64) ** 2))
    offset = noise_distance * simulate.direction_vector(noise_az, noise_el)
    machine = render_near(mics, noise[int(INSTALL_S * SAMPLE_RATE):], offset, room.room_dim, rt60, room.array_centre)
    gain = math.sqrt(talker_power * 10 ** (noise_db / 10) / max(float(np.mean(machine ** 2)), 1e-30))
    audio = (room.audio + gain * machine).astype(np.float32)
    # the installation: another room, the same machine at the same place on the robot, nobody talking
    install_rt60 = float(rng.uniform(0.2, 0.6))
    dim, centre = _random_room(rng, mics, install_rt60)
    install = gain * render_near(mics, noise[:int(INSTALL_S * SAMPLE_RATE)], offset, dim, install_rt60, centre)
    install += math.sqrt(talker_power * 10 ** (-snr_db / 10)) * rng.standard_normal(install.shape)
    times = np.arange(0.0, SCENE_S + 0.05, 0.1)
    way = [np.asarray(p, dtype=np.float64) for p in paths]
    return TrackingScene(
        name=f"{set_name}-{index:03d}", audio=audio, mics=np.asarray(mics), geometry=kind, rt60=rt60,
        times_s=np.tile(times, (n_talkers, 1)), azimuth_deg=np.array([np.interp(times, w[:, 0], w[:, 1]) for w in way]),
        elevation_deg=np.array([np.interp(times, w[:, 0], w[:, 2]) for w in way]),
        speaking=np.array([speaking_frames(s) for s in signals]), speeds_dps=np.array(speeds), crossing=False,
        paused=-1, fan_azimuth_deg=noise_az, dominance=dominated_share(signals, distances),
        install=install.astype(np.float32),
        robot={"kind": noise_kind, "level_db": noise_db, "distance_m": noise_distance, "azimuth_deg": noise_az,
               "elevation_deg": noise_el, "install_rt60": install_rt60})


def load_robot_scenes(set_name: str, count: int, cache) -> list[TrackingScene]:
    """Robot scenes ``0..count-1`` of ``set_name`` (a key of ``ROBOT_SETS``), cached like ``scenes.load_scenes``."""
    return load_scenes(set_name, count, cache, make_robot_scene)

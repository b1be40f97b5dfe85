"""Recordings for checking ``arraydaemon profile verify``: a talker walking around an array in a
simulated room, laid out on a device's channels, and the installation faults verify must catch.

Used by ``tools/verify_benchmark.py`` and ``tests/verify``. Deterministic from the
``numpy.random.Generator`` passed in. Audio is float32 ``[shape=(samples, channels)]``.

A :class:`Setup` is the truth (geometry, device channel count, where each mic really is on the
device); a fault changes either the recording (channels swapped, rotated, reversed, dead,
inverted) or the profile a user would declare for it (a geometry of the wrong size). Applying a
channel fault to the recording with the profile unchanged is the same as declaring the profile's
``channel_map`` wrongly for the true recording: the verdict must be the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

SAMPLE_RATE = 16000
FAULTS = ("none", "swap", "rotate", "reverse", "dead", "invert", "scale")


@dataclass(frozen=True, eq=False)
class Setup:
    """The truth of one recording: mic positions ``mics [shape=(mics, 3)]`` metres, ``channels`` on
    the device, and ``channel_map`` (device channel of each mic)."""

    name: str
    mics: np.ndarray
    channels: int
    channel_map: tuple[int, ...]

    def profile_data(self, scale: float = 1.0, channel_map=None, sample_rate: int = SAMPLE_RATE) -> dict:
        """Plain profile data (for :func:`arraydaemon.core.profiles.parse_profile`) declaring this
        setup, with the geometry scaled by ``scale`` and optionally another ``channel_map``."""
        return {"name": self.name, "sample_rate": sample_rate, "channels": self.channels,
                "channel_map": list(self.channel_map if channel_map is None else channel_map),
                "mics": (np.asarray(self.mics) * scale).tolist()}


@dataclass(eq=False)
class WalkingScene:
    """A simulated recording: ``device [shape=(samples, channels)]`` float32 as the device delivers
    it (mics on their channels, unused channels near-silent), and where the talker was:
    ``start_azimuth_deg`` (held for ``hold_s`` seconds of the start), then walking."""

    setup: Setup
    device: np.ndarray
    sample_rate: int
    start_azimuth_deg: float
    hold_s: float
    rt60: float
    snr_db: float
    diffuse_db: float | None


def walking_path(rng: np.random.Generator, seconds: float, hold_s: float = 3.0,
                 elevation_range=(-10.0, 30.0)) -> list[tuple[float, float, float]]:
    """Waypoints ``(time_s, azimuth_deg, elevation_deg)``: the talker stands at a random azimuth
    for ``hold_s`` seconds, then walks 270-450° around the array (either way) at a slowly changing
    elevation inside ``elevation_range``."""
    az0 = float(rng.uniform(-180.0, 180.0))
    lo, hi = elevation_range
    el0 = float(rng.uniform(lo, hi))
    turn = float(rng.uniform(270.0, 450.0)) * (1 if rng.random() < 0.5 else -1)
    path = [(0.0, az0, el0), (hold_s, az0, el0)]
    steps = 4
    for k in range(1, steps + 1):
        t = hold_s + (seconds - hold_s) * k / steps
        path.append((t, az0 + turn * k / steps, float(rng.uniform(lo, hi))))
    return path


def walking_scene(setup: Setup, rng: np.random.Generator, seconds: float = 20.0, rt60: float = 0.4,
                  snr_db: float = 20.0, diffuse_db: float | None = None, hold_s: float = 3.0,
                  distance_m: float = 1.5, segment_s: float = 0.25, max_order: int = 20,
                  speech: np.ndarray | None = None) -> WalkingScene:
    """One talker (espeak-ng) walking around ``setup``'s array in a pyroomacoustics room
    (:func:`arraydaemon.research.simulate.moving_source_scene`), sensor noise at ``snr_db`` and
    optionally diffuse noise ``diffuse_db`` below the speech, on the device's channels."""
    from arraydaemon.research import simulate

    sig = simulate.speech_source(rng, seconds, SAMPLE_RATE) if speech is None else speech
    path = walking_path(rng, seconds, hold_s)
    res = simulate.moving_source_scene(np.asarray(setup.mics), sig, path, sample_rate=SAMPLE_RATE, rt60=rt60,
                                       rng=rng, distance_m=distance_m, segment_s=segment_s, snr_db=snr_db,
                                       diffuse_noise_db=diffuse_db, max_order=max_order)
    start_az = float(res.direction_at(0.5 * hold_s)[0])
    return WalkingScene(setup, on_device(res.scene.audio, setup, rng), SAMPLE_RATE, start_az, hold_s, rt60,
                        snr_db, diffuse_db)


def on_device(mic_audio: np.ndarray, setup: Setup, rng: np.random.Generator) -> np.ndarray:
    """Mic signals ``[shape=(samples, mics)]`` on ``setup``'s device channels; channels without a
    mic carry faint white noise (-90 dBFS), as an unused input does."""
    n = mic_audio.shape[0]
    device = (rng.standard_normal((n, setup.channels)) * 10 ** (-90 / 20)).astype(np.float32)
    device[:, list(setup.channel_map)] = mic_audio
    return device


def symmetric_setups() -> list[str]:
    """Names of the bundled profiles (the benchmark draws half of its arrays from them)."""
    from arraydaemon.research.dataset import bundled_geometries

    return [name for name, _ in bundled_geometries()]


def bundled_setup(name: str) -> Setup:
    """The truth of a bundled profile's board (its own channel map)."""
    from arraydaemon.core.profiles import load_profile

    p = load_profile(name)
    return Setup(name, np.array(p.mics), p.channels, tuple(p.channel_map))


def random_setup(rng: np.random.Generator, min_mics: int = 4, max_mics: int = 8) -> Setup:
    """An unseen array of ``min_mics``-``max_mics`` mics (the training-data geometry kinds,
    :func:`arraydaemon.research.dataset.random_geometry`), one device channel per mic."""
    from arraydaemon.research.dataset import random_geometry

    for _ in range(200):
        mics, kind = random_geometry(rng)
        if min_mics <= len(mics) <= max_mics:
            return Setup(f"random_{kind}", mics, len(mics), tuple(range(len(mics))))
    raise RuntimeError("could not draw a geometry with the requested number of mics")


# ----------------------------------------------------------------------------------------------
# Faults


@dataclass(frozen=True)
class Fault:
    """What was done: ``kind`` (one of :data:`FAULTS`), the mic permutation of the recording
    (``perm[i]``: whose signal mic ``i``'s channel now carries), the mic made dead or inverted, or
    the scale of the declared geometry against the true one."""

    kind: str
    perm: tuple[int, ...] | None = None
    mic: int | None = None
    scale: float = 1.0
    detail: str = ""


def draw_fault(kind: str, n_mics: int, rng: np.random.Generator) -> Fault:
    """A random fault of ``kind`` for an array of ``n_mics`` mics."""
    ident = list(range(n_mics))
    if kind == "none":
        return Fault(kind)
    if kind == "swap":
        i, j = (int(v) for v in rng.choice(n_mics, 2, replace=False))
        perm = ident.copy()
        perm[i], perm[j] = j, i
        return Fault(kind, tuple(perm), detail=f"mics {min(i, j)} and {max(i, j)} swapped")
    if kind == "rotate":
        k = int(rng.integers(1, n_mics))
        return Fault(kind, tuple((i + k) % n_mics for i in ident), detail=f"order rotated by {k}")
    if kind == "reverse":
        return Fault(kind, tuple(reversed(ident)), detail="order reversed")
    if kind in ("dead", "invert"):
        mic = int(rng.integers(n_mics))
        style = ("zeros", "noise", "constant")[int(rng.integers(3))] if kind == "dead" else ""
        return Fault(kind, mic=mic, detail=f"mic {mic} {kind}" + (f" ({style})" if style else ""))
    if kind == "scale":
        scale = float(rng.uniform(1.2, 1.5) if rng.random() < 0.5 else rng.uniform(0.6, 0.8))
        return Fault(kind, scale=scale, detail=f"declared geometry x{scale:.2f}")
    raise ValueError(f"unknown fault {kind!r}; expected one of {FAULTS}")


def apply_fault(device: np.ndarray, setup: Setup, fault: Fault, rng: np.random.Generator) -> np.ndarray:
    """The recording ``device [shape=(samples, channels)]`` as the faulty installation delivers it
    (a copy; ``scale`` faults leave the recording alone and change the declared profile)."""
    out = device.copy()
    cmap = list(setup.channel_map)
    if fault.perm is not None:
        out[:, cmap] = device[:, [cmap[p] for p in fault.perm]]
    if fault.kind == "dead":
        ch = cmap[fault.mic]
        style = fault.detail.rsplit("(", 1)[-1].rstrip(")")
        if style == "zeros":
            out[:, ch] = 0.0
        elif style == "noise":
            out[:, ch] = rng.standard_normal(len(out)).astype(np.float32) * 10 ** (-70 / 20)
        else:
            out[:, ch] = np.float32(rng.uniform(-0.3, 0.3))
    elif fault.kind == "invert":
        out[:, cmap[fault.mic]] *= -1.0
    return out


def declared_setup(setup: Setup, fault: Fault) -> Setup:
    """The setup the user declares: the true one, or for ``scale`` faults a scaled geometry."""
    if fault.kind == "scale":
        return replace(setup, mics=np.asarray(setup.mics) * fault.scale)
    return setup

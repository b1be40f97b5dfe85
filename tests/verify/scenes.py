"""Small recordings for the verify tests: free-field (cheap, numpy only) and simulated rooms.

``walking_noise`` is a free-field 'talker' of white-noise bursts stepping around the array;
``room_talker`` (espeak-ng + pyroomacoustics, for ``sim`` tests) a talker walking in a room. Both
return ``[shape=(samples, mics)]`` float32 at 16 kHz.
"""

from __future__ import annotations

import numpy as np

from arraydaemon.core.profiles import parse_profile

FS = 16000
#: An irregular planar array: no symmetry, so every channel order can be told apart.
IRREGULAR = np.array([[0.05, 0.0, 0.0], [0.0, 0.04, 0.0], [-0.045, 0.01, 0.0], [0.01, -0.05, 0.0], [0.02, 0.02, 0.0]])
#: A square (ReSpeaker 4-mic geometry): 8 symmetries.
SQUARE = np.array([[-0.0405, 0.0, 0.0], [0.0, 0.0405, 0.0], [0.0405, 0.0, 0.0], [0.0, -0.0405, 0.0]])


def profile(mics, name: str = "t", channels: int | None = None, channel_map=None, sample_rate: int = FS):
    data = {"name": name, "sample_rate": sample_rate, "mics": np.asarray(mics).tolist()}
    if channels is not None:
        data["channels"] = channels
    if channel_map is not None:
        data["channel_map"] = list(channel_map)
    return parse_profile(data)


def walking_noise(mics, seed: int = 0, seconds: float = 8.0, fs: int = FS, snr_db: float = 25.0,
                  start_azimuth: float = 30.0, hold_s: float = 3.0) -> np.ndarray:
    """White-noise bursts (0.25 s each, every fourth quiet) from azimuths stepping once around the
    array at 10° elevation, the first ``hold_s`` seconds at ``start_azimuth``, in the free field."""
    from arraydaemon.research import simulate

    rng = np.random.default_rng(seed)
    seg = int(0.25 * fs)
    n = int(seconds / 0.25)
    hold = int(hold_s / 0.25)
    out = []
    for k in range(n):
        az = start_azimuth if k < hold else start_azimuth + 360.0 * (k - hold) / (n - hold)
        sig = rng.standard_normal(seg) * (1.0 if k % 4 else 0.05)
        out.append(simulate.free_field_scene(np.asarray(mics), [(sig, az, 10.0)], fs, snr_db=snr_db, rng=rng))
    return (np.concatenate(out) * 0.1).astype(np.float32)


def room_talker(mics, seed: int = 0, seconds: float = 8.0, rt60: float = 0.35, diffuse_db: float | None = 15.0):
    """A :class:`arraydaemon.research.verify_scenes.WalkingScene` of a talker walking around ``mics``
    (one device channel per mic), small and fast: 0.5 s segments, image sources up to order 6."""
    from arraydaemon.research import verify_scenes as vs

    setup = vs.Setup("room", np.asarray(mics), len(mics), tuple(range(len(mics))))
    return vs.walking_scene(setup, np.random.default_rng(seed), seconds=seconds, rt60=rt60, snr_db=20.0,
                            diffuse_db=diffuse_db, hold_s=2.5, segment_s=0.5, max_order=6)

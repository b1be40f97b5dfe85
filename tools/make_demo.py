#!/usr/bin/env python3
"""Write the bundled demo recording and its array profile.

Outputs (paths relative to the repository root):

- ``arraydaemon/data/demo.flac``: 16 kHz, 4 channels, PCM_16 FLAC, ~6 s: one espeak-ng speech
  source simulated in a shoebox room (RT60 0.3 s, SNR 25 dB) as recorded by a ReSpeaker 4-mic
  Pi HAT geometry;
- ``arraydaemon/data/demo.json``: the ground truth (true source direction in the array frame);
- ``array_profiles/demo.yaml``: the matching array profile.

Deterministic from ``SEED`` (given the same espeak-ng, numpy, scipy and pyroomacoustics).
Run from anywhere: ``python tools/make_demo.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arraydaemon.research import simulate  # noqa: E402

SEED = 20240607
SAMPLE_RATE = 16000
DURATION_S = 6.0
MICS = [
    [-0.0405, 0.0, 0.0],
    [0.0, 0.0405, 0.0],
    [0.0405, 0.0, 0.0],
    [0.0, -0.0405, 0.0],
]
AZIMUTH_DEG = 60.0
ELEVATION_DEG = 15.0
DISTANCE_M = 1.5
RT60_S = 0.3
SNR_DB = 25.0
PEAK = 0.5

PROFILE_YAML = """\
name: demo
description: Simulated ReSpeaker 4-mic Pi HAT geometry used by the bundled demo recording
sample_rate: 16000
channels: 4
mics:
{mics}
frame_id: demo_array
"""


def main() -> int:
    import soundfile

    rng = np.random.default_rng(SEED)
    speech = simulate.speech_source(rng, DURATION_S, SAMPLE_RATE)
    scene = simulate.room_scene(
        np.array(MICS),
        [simulate.SourceSpec(speech, AZIMUTH_DEG, ELEVATION_DEG, DISTANCE_M)],
        sample_rate=SAMPLE_RATE,
        rt60=RT60_S,
        snr_db=SNR_DB,
        rng=rng,
    )
    audio = scene.audio * (PEAK / float(np.max(np.abs(scene.audio))))
    az, el, dist = scene.sources[0]

    data = ROOT / "arraydaemon" / "data"
    data.mkdir(parents=True, exist_ok=True)
    flac = data / "demo.flac"
    soundfile.write(flac, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    truth = {
        "profile": "demo",
        "sources": [{"azimuth_deg": round(az, 3), "elevation_deg": round(el, 3)}],
        "rt60": RT60_S,
        "snr_db": SNR_DB,
        "seed": SEED,
    }
    (data / "demo.json").write_text(json.dumps(truth, indent=2) + "\n")

    profiles = ROOT / "array_profiles"
    profiles.mkdir(exist_ok=True)
    mics = "\n".join(f"  - [{x!r}, {y!r}, {z!r}]" for x, y, z in MICS)
    (profiles / "demo.yaml").write_text(PROFILE_YAML.format(mics=mics))

    print(
        f"wrote {flac.relative_to(ROOT)} ({flac.stat().st_size} bytes, {audio.shape[0]} samples x "
        f"{audio.shape[1]} ch), source az {az:.2f} el {el:.2f} dist {dist:.2f} m, "
        f"room {tuple(round(v, 2) for v in scene.room_dim)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Scene simulation: dry sources, free-field plane waves and reverberant rooms.

Used by the localizer tests, by ``tools/make_demo.py`` and by training-data generation. Everything
is real signal processing (espeak-ng speech, pyroomacoustics image sources) and deterministic from
the ``numpy.random.Generator`` passed in: the same seed gives the same samples, bit for bit, on the
same machine and library versions.

Conventions (see ``shared/DESIGN.md``): REP-103 array frame, x forward, y left, z up, metres;
azimuth in degrees counter-clockwise from +x in (-180, 180]; elevation in degrees up from the
x-y plane. Audio arrays are float32 ``[shape=(samples, mics)]``; geometry is float64.

Modules, by concept (this package re-exports their public names):

- :mod:`.geometry`: :func:`direction_vector`, :func:`vector_to_angles`, shared input validators;
- :mod:`.sources`: dry sources (espeak-ng speech, noise bursts, stationary noise, harmonic tones);
- :mod:`.noise`: diffuse noise fields and sensor noise;
- :mod:`.free_field`: far-field plane waves with exact fractional delays;
- :mod:`.room`: reverberant shoebox rooms (:func:`room_scene`, image sources plus a late tail);
- :mod:`.moving`: sources moving along paths of directions (:func:`moving_source_scene`,
  :func:`moving_sources_scene`).
"""

from __future__ import annotations

from arraydaemon.research.simulate.free_field import free_field_scene
from arraydaemon.research.simulate.geometry import direction_vector, vector_to_angles
from arraydaemon.research.simulate.moving import (
    MovingSceneResult,
    moving_source_scene,
    moving_sources_scene,
    path_segments,
)
from arraydaemon.research.simulate.noise import diffuse_noise
from arraydaemon.research.simulate.room import ISM_ORDER_CAP, SceneResult, SourceSpec, room_scene
from arraydaemon.research.simulate.sources import (
    harmonic_source,
    noise_burst_source,
    random_dry_source,
    speech_source,
    stationary_noise_source,
)

__all__ = [
    "ISM_ORDER_CAP",
    "MovingSceneResult",
    "SceneResult",
    "SourceSpec",
    "diffuse_noise",
    "direction_vector",
    "free_field_scene",
    "harmonic_source",
    "moving_source_scene",
    "moving_sources_scene",
    "path_segments",
    "noise_burst_source",
    "random_dry_source",
    "room_scene",
    "speech_source",
    "stationary_noise_source",
    "vector_to_angles",
]

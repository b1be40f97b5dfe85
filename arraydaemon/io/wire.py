"""The wire format: ZeroMQ PUB multipart ``[topic, payload]``, payload a msgpack map.

This module owns the schema and imports nothing heavier than msgpack, so subscribers can use it
without numpy, numba or torch. Bump ``SCHEMA_VERSION`` on any incompatible change.

Every payload carries these common fields:

| topic | field | type | meaning |
|---|---|---|---|
| * | v | int | schema version (1) |
| * | seq | int | window sequence number (doa, embedding and tracks of one window share it); health counts its own |
| * | array | str | profile name of the array |
| * | frame_id | str | tf frame of the array (REP-103: x forward, y left, z up) |
| * | t_end | float | capture time of the window's last sample, stream seconds (replay: seconds from the file's start) |
| * | wall_time | float | UNIX time of that same instant |
| doa | estimator | str | `srp-phat` or `neural` |
| doa | active | bool | true when at least one source passed the activity gate |
| doa | level_db | float | in-band power of the window, dB re full scale |
| doa | ambiguity | str | `none`, `up-down` (planar array) or `front-back` (linear array) |
| doa | sources | list[map] | detected sources, strongest first; empty when nothing is active |
| doa | sources[].azimuth_deg | float | degrees counter-clockwise from +x, in (-180, 180] |
| doa | sources[].elevation_deg | float | degrees up from the x-y plane |
| doa | sources[].x | float | unit direction vector, x |
| doa | sources[].y | float | unit direction vector, y |
| doa | sources[].z | float | unit direction vector, z |
| doa | sources[].confidence | float | in [0, 1] |
| tracks | ambiguity | str | as in `doa` |
| tracks | tracks | list[map] | confirmed tracked sources, lowest id first; empty when there are none |
| tracks | tracks[].id | int | track id, from 1; never reused within a stream (a restart begins again at 1) |
| tracks | tracks[].azimuth_deg | float | filtered direction, degrees counter-clockwise from +x, in (-180, 180] |
| tracks | tracks[].elevation_deg | float | degrees up from the x-y plane |
| tracks | tracks[].x | float | unit direction vector, x |
| tracks | tracks[].y | float | unit direction vector, y |
| tracks | tracks[].z | float | unit direction vector, z |
| tracks | tracks[].activity | float | probability that the source is emitting now, in [0, 1] |
| tracks | tracks[].age_s | float | seconds since the track's first detection |
| tracks | tracks[].silent_s | float | seconds since its last detection |
| tracks | tracks[].angular_speed_dps | float | angular speed along the great circle, degrees per second |
| tracks | tracks[].azimuth_rate_dps | float | rate of change of azimuth, degrees per second (counter-clockwise positive) |
| tracks | tracks[].level_db | float | smoothed in-band level of the windows it was detected in, dB re full scale |
| embedding | model | str | model name and version that produced the vector |
| embedding | dtype | str | numpy dtype of `data` (`float32`, little-endian) |
| embedding | shape | list[int] | shape of the vector |
| embedding | data | bytes | raw vector bytes |
| health | state | str | `running`, `replay`, `device-lost`, `waiting`, `stopping` |
| health | uptime_s | float | seconds since start |
| health | windows | int | windows processed |
| health | overflows | int | input overflows reported by the device |
| health | dropped_blocks | int | blocks dropped because the pipeline fell behind |
| health | bad_blocks | int | blocks of NaN/Inf input replaced by silence |
| health | queue_depth | int | blocks waiting for the pipeline |
| health | stage_ms | map | per stage: `{p50, p99}` processing time in ms |
| health | cpu_percent | float | process CPU use over the last interval (100 = one core) |
"""

from __future__ import annotations

import math
import re

import msgpack

SCHEMA_VERSION = 1
TOPICS = ("doa", "tracks", "embedding", "health")
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5570"

COMMON_FIELDS = ("v", "seq", "array", "frame_id", "t_end", "wall_time")
TOPIC_FIELDS = {
    "doa": ("estimator", "active", "level_db", "ambiguity", "sources"),
    "tracks": ("ambiguity", "tracks"),
    "embedding": ("model", "dtype", "shape", "data"),
    "health": ("state", "uptime_s", "windows", "overflows", "dropped_blocks", "bad_blocks",
               "queue_depth", "stage_ms", "cpu_percent"),
}
SOURCE_FIELDS = ("azimuth_deg", "elevation_deg", "x", "y", "z", "confidence")
TRACK_FIELDS = ("id", "azimuth_deg", "elevation_deg", "x", "y", "z", "activity", "age_s", "silent_s",
                "angular_speed_dps", "azimuth_rate_dps", "level_db")


class WireError(ValueError):
    """A message that does not follow the schema."""


def parse_field_table(text: str) -> list[tuple[str, str, str]]:
    """(topic, field, type) rows of the first markdown field table in ``text``."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"^\|\s*([\w*]+)\s*\|\s*([\w\[\].]+)\s*\|\s*([^|]+?)\s*\|", line.strip())
        if m and m.group(1) not in ("topic",) and not set(m.group(1)) <= {"-"}:
            rows.append((m.group(1), m.group(2), m.group(3)))
    return rows


def common(seq: int, array: str, frame_id: str, t_end: float, wall_time: float) -> dict:
    return {"v": SCHEMA_VERSION, "seq": int(seq), "array": array, "frame_id": frame_id,
            "t_end": float(t_end), "wall_time": float(wall_time)}


def source_entry(azimuth_deg: float, elevation_deg: float, vector, confidence: float) -> dict:
    x, y, z = (float(v) for v in vector)
    return {"azimuth_deg": float(azimuth_deg), "elevation_deg": float(elevation_deg),
            "x": x, "y": y, "z": z, "confidence": float(confidence)}


def doa_payload(base: dict, estimator: str, level_db: float, ambiguity: str, sources: list[dict]) -> dict:
    return {**base, "estimator": estimator, "active": bool(sources), "level_db": float(level_db),
            "ambiguity": ambiguity, "sources": sources}


def track_entry(track_id: int, azimuth_deg: float, elevation_deg: float, vector, activity: float, age_s: float,
                silent_s: float, angular_speed_dps: float, azimuth_rate_dps: float, level_db: float) -> dict:
    x, y, z = (float(v) for v in vector)
    return {"id": int(track_id), "azimuth_deg": float(azimuth_deg), "elevation_deg": float(elevation_deg),
            "x": x, "y": y, "z": z, "activity": float(activity), "age_s": float(age_s), "silent_s": float(silent_s),
            "angular_speed_dps": float(angular_speed_dps), "azimuth_rate_dps": float(azimuth_rate_dps),
            "level_db": float(level_db)}


def tracks_payload(base: dict, ambiguity: str, tracks: list[dict]) -> dict:
    return {**base, "ambiguity": ambiguity, "tracks": tracks}


def embedding_payload(base: dict, model: str, dtype: str, shape, data: bytes) -> dict:
    return {**base, "model": model, "dtype": dtype, "shape": [int(s) for s in shape], "data": bytes(data)}


def health_payload(base: dict, **fields) -> dict:
    """A ``health`` payload; ``fields`` must be exactly ``TOPIC_FIELDS["health"]``."""
    expected = set(TOPIC_FIELDS["health"])
    if set(fields) != expected:
        raise WireError(f"health: fields {sorted(set(fields) ^ expected)} missing or unknown")
    return {**base, **fields}


def encode(topic: str, payload: dict) -> list[bytes]:
    """Multipart frames ``[topic, msgpack(payload)]``; refuses NaN/Inf so none is ever published."""
    if topic not in TOPICS:
        raise WireError(f"unknown topic {topic!r}")
    _check_finite(payload, topic)
    return [topic.encode(), msgpack.packb(payload, use_bin_type=True)]


def decode(frames: list[bytes]) -> tuple[str, dict]:
    """(topic, payload) from multipart frames; raises WireError on a malformed message."""
    if len(frames) != 2:
        raise WireError(f"expected 2 frames [topic, payload], got {len(frames)}")
    try:
        topic = frames[0].decode()
        payload = msgpack.unpackb(frames[1], raw=False)
    except (UnicodeDecodeError, ValueError, msgpack.ExtraData) as exc:
        raise WireError(f"undecodable message: {exc}") from None
    if not isinstance(payload, dict):
        raise WireError(f"{topic}: payload is not a map")
    return topic, payload


def validate(topic: str, payload: dict) -> None:
    """Raise WireError unless ``payload`` has every field of its topic."""
    expected = COMMON_FIELDS + TOPIC_FIELDS.get(topic, ())
    missing = [f for f in expected if f not in payload]
    if missing:
        raise WireError(f"{topic}: missing fields {', '.join(missing)}")
    if payload["v"] != SCHEMA_VERSION:
        raise WireError(f"{topic}: schema version {payload['v']} (this subscriber reads {SCHEMA_VERSION})")
    if topic == "doa":
        for src in payload["sources"]:
            lacking = [f for f in SOURCE_FIELDS if f not in src]
            if lacking:
                raise WireError(f"doa: source missing {', '.join(lacking)}")
    if topic == "tracks":
        for trk in payload["tracks"]:
            lacking = [f for f in TRACK_FIELDS if f not in trk]
            if lacking:
                raise WireError(f"tracks: track missing {', '.join(lacking)}")


def _check_finite(obj, where: str) -> None:
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise WireError(f"{where}: refusing to publish a non-finite number")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _check_finite(v, where)

"""The wire format: ZeroMQ PUB multipart ``[topic, payload]``, payload a msgpack map.

This module owns the schema and imports nothing heavier than msgpack, so subscribers can use it
without numpy, numba or torch. Bump ``SCHEMA_VERSION`` on any incompatible change.

Receiving: :func:`receive` (decode + :func:`validate`) is the one check every subscriber in the
package uses. It accepts a message only if every documented field is present with its documented
type, every number is finite and every string, list, map and byte string is within bounds
(:data:`MAX_MESSAGE_BYTES` in all), and raises :class:`WireError` (one line) otherwise, so a
subscriber counts and skips a bad message instead of failing on it. Unknown extra fields are allowed
(a newer publisher) but bounded too.

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
| doa | noise | list[map] | where the robot's own noise is, never a source (docs/robot-noise.md): per direction `azimuth_deg`, `elevation_deg`, `x`, `y`, `z` as in `sources`, and `origin` (`model`: the noise model; `online`: learned while running); empty when none is known |
| tracks | ambiguity | str | as in `doa` |
| tracks | tracks | list[map] | confirmed tracked sources, lowest id first; empty when there are none |
| tracks | tracks[].id | int | track id, from 1; never reused within a stream (a restart begins again at 1) |
| tracks | tracks[].azimuth_deg | float | filtered direction at `t_end`, degrees counter-clockwise from +x, in (-180, 180] |
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
| health | state | str | `running`, `replay`, `device-lost`, `waiting`, `stopping`; fuse: `running`, `degraded` (an array down), `waiting` (none up) |
| health | uptime_s | float | seconds since start |
| health | windows | int | windows processed |
| health | overflows | int | input overflows reported by the device |
| health | dropped_blocks | int | blocks dropped because the pipeline fell behind |
| health | bad_blocks | int | blocks of NaN/Inf input replaced by silence |
| health | queue_depth | int | blocks waiting for the pipeline |
| health | stage_ms | map | per stage: `{p50, p99}` processing time in ms |
| health | cpu_percent | float | process CPU use over the last interval (100 = one core) |
| health | exposed | bool | true when the publishing socket is bound beyond loopback: anyone on the network can subscribe |
| array | mics | list[list[float]] | mic positions `[x, y, z]` in metres, in the profile's order (sent once a second with `health`, sharing its `seq`) |
| array | kind | str | `planar`, `linear` or `3d` |
| array | ambiguity | str | as in `doa` |
| array | sample_rate | int | the profile's sample rate, Hz |
| array | estimator | str | as in `doa` |
| positions | positions | list[map] | talkers placed in the room by `arraydaemon fuse`, lowest id first (`array`: the room's name, `frame_id`: `room`, `t_end`: seconds since fuse started, `wall_time`: the capture time fused) |
| positions | positions[].id | int | position track id, from 1; never reused within a run of fuse |
| positions | positions[].x | float | room frame (x, y on the floor, z up), metres |
| positions | positions[].y | float | room frame, metres |
| positions | positions[].z | float | room frame, metres (the arrays' mean height when no array's elevation is known: see `z_known`) |
| positions | positions[].z_known | bool | whether some array's elevation measured z |
| positions | positions[].velocity | list[float] | `[vx, vy, 0]`, m/s, room frame (constant-velocity filter in the floor plane) |
| positions | positions[].sigma_m | float | 1-sigma floor-plane uncertainty along its worst direction, metres |
| positions | positions[].covariance_xy | list[float] | floor-plane covariance `[xx, xy, yy]`, m² |
| positions | positions[].sigma_z_m | float | 1-sigma uncertainty of z, metres (1e3 when not measured) |
| positions | positions[].age_s | float | seconds since the position track began |
| positions | positions[].silent_s | float | seconds since the last fix from two or more arrays |
| positions | positions[].fused_arrays | list[str] | the arrays (room-file names) whose tracks made the last fix; while `bearing_only`, the one array holding it |
| positions | positions[].fused_tracks | list[int] | those arrays' track ids, in the same order |
| positions | positions[].bearing_only | bool | true while no two arrays cross on it: one array that was fused into it still follows it, and it is held on that array's bearing (the range along the bearing is the track's, not measured: `sigma_m` grows along it), at most 1.5 s after the last fix (`silent_s`) |
| positions | bearings | list[map] | array tracks no other array confirms: a direction from that array, no point |
| positions | bearings[].array | str | the array's room-file name |
| positions | bearings[].id | int | the array's track id |
| positions | bearings[].array_position | list[float] | the array's position `[x, y, z]`, room frame, metres |
| positions | bearings[].azimuth_deg | float | room-frame direction, degrees counter-clockwise from room +x, in (-180, 180] |
| positions | bearings[].elevation_deg | float | degrees up from the floor plane |
| positions | bearings[].direction | list[float] | room-frame unit vector `[x, y, z]` |
| positions | bearings[].ambiguity | str | as in `doa`: the mirror of the direction is as likely |
| positions | array_states | list[map] | one per array of the room file, in its order |
| positions | array_states[].name | str | the array's room-file name |
| positions | array_states[].state | str | `up` (its tracks arrive), `down` (none for 2 s) or `waiting` (none yet) |
| positions | array_states[].endpoint | str | where fuse subscribes to it |
| positions | array_states[].silent_s | float | seconds since its last message (-1: none yet) |
| room | size | list[float] | the room's extent `[x, y, z]` in metres (it spans 0..size); empty when the room file gives none (`arraydaemon fuse`, once a second with its `health`, sharing its `seq`; `array`: the room's name, `frame_id`: `room`) |
| room | arrays | list[map] | one per array of the room file, in its order |
| room | arrays[].name | str | the array's room-file name |
| room | arrays[].profile | str | its profile's name |
| room | arrays[].kind | str | as in `array` |
| room | arrays[].ambiguity | str | as in `doa` |
| room | arrays[].position | list[float] | its centre `[x, y, z]`, room frame, metres |
| room | arrays[].yaw_deg | float | counter-clockwise from room +x to the array's +x |
| room | arrays[].pitch_deg | float | about the array's y (positive: +x tilted down) |
| room | arrays[].roll_deg | float | about the array's x |
| room | arrays[].endpoint | str | where fuse subscribes to it |
| room | landmarks | list[map] | the room file's named places (a door, a table), in its order; empty when none |
| room | landmarks[].name | str | the landmark's name |
| room | landmarks[].position | list[float] | `[x, y, z]`, room frame, metres (z 0 when the room file gives only x, y) |
"""

from __future__ import annotations

import math
import re

import msgpack

SCHEMA_VERSION = 1
TOPICS = ("doa", "tracks", "embedding", "health", "array", "positions", "room")
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5570"

COMMON_FIELDS = ("v", "seq", "array", "frame_id", "t_end", "wall_time")
TOPIC_FIELDS = {
    "doa": ("estimator", "active", "level_db", "ambiguity", "sources", "noise"),
    "tracks": ("ambiguity", "tracks"),
    "embedding": ("model", "dtype", "shape", "data"),
    "health": ("state", "uptime_s", "windows", "overflows", "dropped_blocks", "bad_blocks",
               "queue_depth", "stage_ms", "cpu_percent", "exposed"),
    "array": ("mics", "kind", "ambiguity", "sample_rate", "estimator"),
    "positions": ("positions", "bearings", "array_states"),
    "room": ("size", "arrays", "landmarks"),
}
SOURCE_FIELDS = ("azimuth_deg", "elevation_deg", "x", "y", "z", "confidence")
NOISE_FIELDS = ("azimuth_deg", "elevation_deg", "x", "y", "z", "origin")
NOISE_ORIGINS = ("model", "online")
TRACK_FIELDS = ("id", "azimuth_deg", "elevation_deg", "x", "y", "z", "activity", "age_s", "silent_s",
                "angular_speed_dps", "azimuth_rate_dps", "level_db")
POSITION_FIELDS = ("id", "x", "y", "z", "z_known", "velocity", "sigma_m", "covariance_xy", "sigma_z_m", "age_s",
                   "silent_s", "fused_arrays", "fused_tracks", "bearing_only")
BEARING_FIELDS = ("array", "id", "array_position", "azimuth_deg", "elevation_deg", "direction", "ambiguity")
ARRAY_STATE_FIELDS = ("name", "state", "endpoint", "silent_s")
ROOM_ARRAY_FIELDS = ("name", "profile", "kind", "ambiguity", "position", "yaw_deg", "pitch_deg", "roll_deg", "endpoint")
LANDMARK_FIELDS = ("name", "position")
# Nested lists of maps: (topic, list field) -> the fields of each entry.
NESTED_FIELDS = {("doa", "sources"): SOURCE_FIELDS, ("doa", "noise"): NOISE_FIELDS, ("tracks", "tracks"): TRACK_FIELDS,
                 ("positions", "positions"): POSITION_FIELDS, ("positions", "bearings"): BEARING_FIELDS,
                 ("positions", "array_states"): ARRAY_STATE_FIELDS, ("room", "arrays"): ROOM_ARRAY_FIELDS,
                 ("room", "landmarks"): LANDMARK_FIELDS}


# Types of the fields in the table above, by field name (a name means the same in every topic; a
# test checks this against the table).
FIELD_TYPES = {
    "v": "int", "seq": "int", "array": "str", "frame_id": "str", "t_end": "float", "wall_time": "float",
    "estimator": "str", "active": "bool", "level_db": "float", "ambiguity": "str", "sources": "list[map]",
    "azimuth_deg": "float", "elevation_deg": "float", "x": "float", "y": "float", "z": "float",
    "confidence": "float", "tracks": "list[map]", "id": "int", "activity": "float", "age_s": "float",
    "silent_s": "float", "angular_speed_dps": "float", "azimuth_rate_dps": "float", "model": "str",
    "dtype": "str", "shape": "list[int]", "data": "bytes", "state": "str", "uptime_s": "float", "windows": "int",
    "overflows": "int", "dropped_blocks": "int", "bad_blocks": "int", "queue_depth": "int", "stage_ms": "map",
    "cpu_percent": "float", "exposed": "bool", "mics": "list[list[float]]", "kind": "str", "sample_rate": "int",
    "noise": "list[map]", "origin": "str",
    "positions": "list[map]", "bearings": "list[map]", "array_states": "list[map]", "z_known": "bool",
    "velocity": "list[float]", "sigma_m": "float", "covariance_xy": "list[float]", "sigma_z_m": "float",
    "fused_arrays": "list[str]", "fused_tracks": "list[int]", "bearing_only": "bool", "array_position": "list[float]",
    "direction": "list[float]", "name": "str", "endpoint": "str",
    "size": "list[float]", "arrays": "list[map]", "landmarks": "list[map]", "profile": "str",
    "position": "list[float]", "yaw_deg": "float", "pitch_deg": "float", "roll_deg": "float",
}
# Value ranges a subscriber may rely on (inclusive).
FIELD_RANGES = {
    "azimuth_deg": (-180.0, 180.0), "elevation_deg": (-90.0, 90.0), "x": (-1.0, 1.0), "y": (-1.0, 1.0),
    "z": (-1.0, 1.0), "confidence": (0.0, 1.0), "activity": (0.0, 1.0), "id": (0, 2**53), "seq": (0, 2**53),
}
# Room-frame coordinates are metres, not unit-vector components: positions' x, y, z are only finite.
ROOM_RANGES = {k: v for k, v in FIELD_RANGES.items() if k not in ("x", "y", "z")}
MAX_MESSAGE_BYTES = 1 << 20  # whole message; subscribers also set ZMQ_MAXMSGSIZE to this
MAX_STRING = 256  # characters in any string
MAX_ITEMS = 256  # entries of any list, or fields of any map
MAX_BYTES = 64 << 10  # bytes in a byte string (an embedding is ~320)
MAX_NUMBER = 1e15  # larger magnitudes are refused: no field means that much


class WireError(ValueError):
    """A message that does not follow the schema (the text is one line naming what is wrong)."""


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


def noise_entry(azimuth_deg: float, elevation_deg: float, vector, origin: str) -> dict:
    """One entry of ``doa.noise``: a direction of the robot's own noise, ``origin`` in :data:`NOISE_ORIGINS`."""
    x, y, z = (float(v) for v in vector)
    return {"azimuth_deg": float(azimuth_deg), "elevation_deg": float(elevation_deg), "x": x, "y": y, "z": z,
            "origin": str(origin)}


def doa_payload(base: dict, estimator: str, level_db: float, ambiguity: str, sources: list[dict],
                noise: list[dict] = ()) -> dict:
    return {**base, "estimator": estimator, "active": bool(sources), "level_db": float(level_db),
            "ambiguity": ambiguity, "sources": sources, "noise": list(noise)}


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


def array_payload(base: dict, mics, kind: str, ambiguity: str, sample_rate: int, estimator: str) -> dict:
    """An ``array`` payload: the geometry a view needs to draw the array (``mics``: rows ``[x, y, z]``)."""
    return {**base, "mics": [[float(v) for v in row] for row in mics], "kind": kind, "ambiguity": ambiguity,
            "sample_rate": int(sample_rate), "estimator": estimator}


def positions_payload(base: dict, positions: list[dict], bearings: list[dict], array_states: list[dict]) -> dict:
    """A ``positions`` payload (``arraydaemon fuse``): entries with ``POSITION_FIELDS``,
    ``BEARING_FIELDS`` and ``ARRAY_STATE_FIELDS``."""
    return {**base, "positions": positions, "bearings": bearings, "array_states": array_states}


def room_payload(base: dict, size, arrays: list[dict], landmarks: list[dict]) -> dict:
    """A ``room`` payload (``arraydaemon fuse``): ``size`` ``[x, y, z]`` or empty, entries with
    ``ROOM_ARRAY_FIELDS`` and ``LANDMARK_FIELDS``."""
    return {**base, "size": [float(v) for v in size], "arrays": arrays, "landmarks": landmarks}


def encode(topic: str, payload: dict) -> list[bytes]:
    """Multipart frames ``[topic, msgpack(payload)]``, for a payload :func:`receive` accepts: the
    publisher applies the subscribers' own check (types, ranges, finite numbers, sizes), so nothing is
    published that a subscriber would refuse."""
    validate(topic, payload)
    body = msgpack.packb(payload, use_bin_type=True)
    if len(body) > MAX_MESSAGE_BYTES:
        raise WireError(f"{topic}: {len(body)} bytes (at most {MAX_MESSAGE_BYTES})")
    return [topic.encode(), body]


def decode(frames: list[bytes]) -> tuple[str, dict]:
    """(topic, payload) from multipart frames, with bounded unpacking; raises WireError on a
    malformed message. Does not check the fields: see :func:`receive`."""
    if not isinstance(frames, (list, tuple)) or len(frames) != 2:
        raise WireError(f"expected 2 frames [topic, payload], got {len(frames) if isinstance(frames, (list, tuple)) else frames!r}")
    head, body = frames
    if len(head) > 32 or len(body) > MAX_MESSAGE_BYTES:
        raise WireError(f"message too large ({len(head) + len(body)} bytes)")
    try:
        topic = bytes(head).decode()
        payload = msgpack.unpackb(body, raw=False, strict_map_key=True, max_str_len=MAX_BYTES,
                                  max_bin_len=MAX_BYTES, max_array_len=4 * MAX_ITEMS, max_map_len=4 * MAX_ITEMS,
                                  max_ext_len=0)
    except (UnicodeDecodeError, ValueError, TypeError, RecursionError, msgpack.ExtraData,
            msgpack.UnpackException) as exc:
        raise WireError(f"undecodable message: {_one_line(exc)}") from None
    if not isinstance(payload, dict):
        raise WireError(f"{topic}: payload is not a map")
    return topic, payload


def receive(frames: list[bytes]) -> tuple[str, dict]:
    """A received message's (topic, payload), decoded and validated; raises WireError otherwise."""
    topic, payload = decode(frames)
    validate(topic, payload)
    return topic, payload


def validate(topic: str, payload: dict) -> None:
    """Raise WireError unless ``payload`` is a valid ``topic`` message: every field present with its
    type, finite and in range, sizes bounded (see the module doc)."""
    if topic not in TOPICS:
        raise WireError(f"unknown topic {topic[:32]!r}")
    if not isinstance(payload, dict):
        raise WireError(f"{topic}: payload is not a map")
    expected = COMMON_FIELDS + TOPIC_FIELDS.get(topic, ())
    missing = [f for f in expected if f not in payload]
    if missing:
        raise WireError(f"{topic}: missing fields {', '.join(missing)}")
    if type(payload["v"]) is not int or payload["v"] != SCHEMA_VERSION:
        raise WireError(f"{topic}: schema version {str(payload['v'])[:16]} (this subscriber reads {SCHEMA_VERSION})")
    _check_map(payload, expected, topic)
    for (nested_topic, name), fields in NESTED_FIELDS.items():
        if nested_topic != topic:
            continue
        ranges = ROOM_RANGES if topic in ("positions", "room") else FIELD_RANGES
        for i, entry in enumerate(payload[name]):
            if not isinstance(entry, dict):
                raise WireError(f"{topic}.{name}[{i}]: expected a map")
            lacking = [f for f in fields if f not in entry]
            if lacking:
                raise WireError(f"{topic}: {name[:-1]} missing {', '.join(lacking)}")
            _check_map(entry, fields, f"{topic}.{name}[{i}]", ranges)
    if topic == "health":
        for stage, times in payload["stage_ms"].items():
            if not isinstance(times, dict) or any(not _is_number(v) for v in times.values()):
                raise WireError(f"health.stage_ms.{str(stage)[:32]}: expected a map of finite numbers")


def _check_map(obj: dict, fields, where: str, ranges: dict = FIELD_RANGES) -> None:
    if len(obj) > MAX_ITEMS:
        raise WireError(f"{where}: {len(obj)} fields (at most {MAX_ITEMS})")
    for name in fields:
        _check_value(obj[name], FIELD_TYPES[name], f"{where}.{name}", ranges.get(name))
    for name, value in obj.items():  # unknown fields: only bounded in size
        if name not in fields:
            _check_any(value, f"{where}.{str(name)[:32]}", depth=0)


def _is_number(value) -> bool:
    return (type(value) in (int, float)) and math.isfinite(value) and abs(value) <= MAX_NUMBER


def _check_value(value, kind: str, where: str, bounds=None) -> None:
    if kind == "int":
        ok = type(value) is int and abs(value) <= MAX_NUMBER
    elif kind == "float":
        ok = _is_number(value)
    elif kind == "bool":
        ok = type(value) is bool
    elif kind == "str":
        ok = isinstance(value, str) and len(value) <= MAX_STRING
    elif kind == "bytes":
        ok = isinstance(value, bytes) and len(value) <= MAX_BYTES
    elif kind == "map":
        ok = isinstance(value, dict) and len(value) <= MAX_ITEMS
    elif kind.startswith("list[") and kind.endswith("]"):
        ok = isinstance(value, list) and len(value) <= MAX_ITEMS
        if ok and kind != "list[map]":  # maps are checked by their own fields
            for i, item in enumerate(value):
                _check_value(item, kind[5:-1], f"{where}[{i}]")
    else:  # pragma: no cover - a field type this module does not know
        raise WireError(f"{where}: unknown field type {kind}")
    if not ok:
        finite = "" if type(value) is not float or math.isfinite(value) else " (non-finite)"
        raise WireError(f"{where}: expected {kind}, got {_describe(value)}{finite}")
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise WireError(f"{where}: {value!r} is outside [{bounds[0]:g}, {bounds[1]:g}]")


def _check_any(value, where: str, depth: int) -> None:
    """An unknown field: any msgpack value, finite, within the size bounds, nested at most 4 deep."""
    if depth > 4:
        raise WireError(f"{where}: nested too deeply")
    if isinstance(value, float) and not math.isfinite(value):
        raise WireError(f"{where}: not finite")
    if isinstance(value, (str, bytes)) and len(value) > MAX_BYTES:
        raise WireError(f"{where}: too long")
    if isinstance(value, (list, dict)):
        if len(value) > MAX_ITEMS:
            raise WireError(f"{where}: {len(value)} entries (at most {MAX_ITEMS})")
        for item in (value.values() if isinstance(value, dict) else value):
            _check_any(item, where, depth + 1)


def _describe(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'…' if len(text) > 40 else ''}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()
    return text[0][:200] if text else type(exc).__name__

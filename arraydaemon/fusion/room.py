"""The room file: where each array is, which profile it has and where its daemon publishes.

```yaml
name: meeting-room                # optional
size: [6.0, 4.5, 2.7]             # optional: x, y, z extent in metres (the room spans 0..size)
bearing_sigma_deg: 5              # optional: 1-sigma bearing noise the fusion assumes (default 5)
max_skew_s: 0.1                   # optional: clock skew between the daemons tolerated (default 0.1)
arrays:
  - name: door                    # optional: default the profile's name (names must be unique)
    profile: respeaker_4mic_hat   # a profile name, or a YAML path relative to this file
    endpoint: tcp://10.0.0.5:5570 # where its daemon publishes
    position: [0.2, 2.2, 1.2]     # metres, room frame
    yaw_deg: 0                    # counter-clockwise from room +x to the array's +x
    pitch_deg: 0                  # optional, about the array's y (positive: +x tilted down)
    roll_deg: 0                   # optional, about the array's x
landmarks:                        # optional: named places `reason` answers with ("near the door")
  - name: door
    position: [0.0, 2.0]          # [x, y] or [x, y, z], metres, room frame
```

Errors are one line naming the file, the array and the key (:func:`load_room`), like profiles'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arraydaemon.core.errors import UserError
from arraydaemon.core.validation import check_keys, is_number, key_error, read_yaml_file, shown

ROOM_KEYS = ("name", "size", "bearing_sigma_deg", "max_skew_s", "arrays", "landmarks")
LANDMARK_KEYS = ("name", "position")
MAX_LANDMARKS = 64
ARRAY_KEYS = ("name", "profile", "endpoint", "position", "yaw_deg", "pitch_deg", "roll_deg")
MIN_SEPARATION_M = 0.1  # two arrays closer than this are one place: a copy-paste slip, not a layout
MAX_ARRAYS = 16
MAX_EXTENT_M = 1000.0
DEFAULT_BEARING_SIGMA_DEG = 5.0
DEFAULT_MAX_SKEW_S = 0.1


class RoomError(UserError):
    """A room file that cannot be used (one line: the file, the array, the key)."""


def rotation(yaw_deg: float, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """Array frame to room frame, ``[shape=(3, 3)]``: ``R @ v_array = v_room``. Yaw about z, then
    pitch about the new y, then roll about the new x (the ZYX convention of ROS tf)."""
    y, p, r = (math.radians(a) for a in (yaw_deg, pitch_deg, roll_deg))
    cz, sz, cy, sy, cx, sx = math.cos(y), math.sin(y), math.cos(p), math.sin(p), math.cos(r), math.sin(r)
    rz = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]])
    return rz @ ry @ rx


@dataclass(frozen=True, eq=False)
class RoomArray:
    """One array of the room: its pose and what its profile says it can tell apart.

    ``kind``: ``planar``, ``linear`` or ``3d``; ``ambiguity``: ``up-down``, ``front-back`` or
    ``none``; ``mirror_normal``: the room-frame unit normal of the plane a direction may be mirrored
    across (a planar array's plane, or the vertical plane through a linear array's axis), None when
    the geometry has no ambiguity."""

    name: str
    profile_name: str
    endpoint: str
    position: np.ndarray
    yaw_deg: float
    pitch_deg: float = 0.0
    roll_deg: float = 0.0
    kind: str = "planar"
    ambiguity: str = "up-down"
    mirror_normal: np.ndarray | None = None
    axis: np.ndarray | None = None  # linear arrays: room-frame unit vector along the line
    profile_path: Path | None = None

    @property
    def rotation(self) -> np.ndarray:
        return rotation(self.yaw_deg, self.pitch_deg, self.roll_deg)


@dataclass(frozen=True, eq=False)
class Landmark:
    """A named place of the room (a door, a table): ``position`` ``[x, y, z]``, room frame, metres
    (z 0 when the room file gives only x, y)."""

    name: str
    position: np.ndarray


@dataclass(frozen=True, eq=False)
class Room:
    arrays: tuple[RoomArray, ...]
    name: str = "room"
    size: np.ndarray | None = None  # [x, y, z] extent, metres
    bearing_sigma_deg: float = DEFAULT_BEARING_SIGMA_DEG
    max_skew_s: float = DEFAULT_MAX_SKEW_S
    path: Path | None = None
    landmarks: tuple[Landmark, ...] = ()
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(a.name for a in self.arrays))

    def array(self, name: str) -> RoomArray:
        return self.arrays[self.names.index(name)]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) corners of the floor area of interest: the room, or the arrays' box grown by 1 m."""
        if self.size is not None:
            return np.zeros(2), self.size[:2].copy()
        xy = np.array([a.position[:2] for a in self.arrays])
        return xy.min(axis=0) - 1.0, xy.max(axis=0) + 1.0


def _vector(value, source: str, key: str, lo: float, hi: float, positive: bool = False) -> np.ndarray:
    what = "[x, y, z] in metres" + (", each positive" if positive else "")
    if not isinstance(value, list) or len(value) != 3 or not all(is_number(v) for v in value):
        raise key_error(RoomError, source, key, what, value)
    out = np.array(value, dtype=np.float64)
    if np.any(out < lo) or np.any(out > hi) or (positive and np.any(out <= 0)):
        raise key_error(RoomError, source, key, f"{what} within [{lo:g}, {hi:g}]", value)
    return out


def _angle(data: dict, key: str, source: str, limit: float) -> float:
    value = data.get(key, 0.0)
    if not is_number(value) or not -limit <= value <= limit:
        raise key_error(RoomError, source, key, f"degrees in [-{limit:g}, {limit:g}]", value)
    return float(value)


def _number(data: dict, key: str, source: str, default: float, lo: float, hi: float, unit: str) -> float:
    value = data.get(key, default)
    if not is_number(value) or not lo < value <= hi:
        raise key_error(RoomError, source, key, f"{unit} in ({lo:g}, {hi:g}]", value)
    return float(value)


def _landmarks(entries, source: str, size: np.ndarray | None) -> tuple[Landmark, ...]:
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise key_error(RoomError, source, "landmarks", "a list of maps with name and position", entries)
    if len(entries) > MAX_LANDMARKS:
        raise key_error(RoomError, source, "landmarks", f"at most {MAX_LANDMARKS} landmarks", f"{len(entries)}")
    out: list[Landmark] = []
    for i, entry in enumerate(entries):
        where = f"{source}: landmarks[{i}]"
        if not isinstance(entry, dict):
            raise RoomError(f"{where}: expected a map with name and position (e.g. {{name: door, position: [0, 2]}})")
        check_keys(entry, LANDMARK_KEYS, where, RoomError)
        for key in LANDMARK_KEYS:
            if key not in entry:
                raise RoomError(f"{where}: missing key '{key}'")
        name = entry["name"]
        if not isinstance(name, str) or not 0 < len(name.strip()) <= 64:
            raise key_error(RoomError, where, "name", "a string of 1-64 characters", name)
        where = f"{source}: landmark '{shown(name, 64)}'"
        if name.strip().lower() in (m.name.lower() for m in out):
            raise RoomError(f"{where}: a second landmark named '{name}' (give each a distinct 'name')")
        value = entry["position"]
        if not isinstance(value, list) or len(value) not in (2, 3) or not all(is_number(v) for v in value):
            raise key_error(RoomError, where, "position", "[x, y] or [x, y, z] in metres", value)
        position = np.array(list(value) + [0.0] * (3 - len(value)), dtype=np.float64)
        if np.any(np.abs(position) > MAX_EXTENT_M):
            raise key_error(RoomError, where, "position", f"metres within [-{MAX_EXTENT_M:g}, {MAX_EXTENT_M:g}]", value)
        if size is not None and (np.any(position < 0) or np.any(position > size)):
            raise key_error(RoomError, where, "position", f"a point inside the room (0..{size.tolist()})", value)
        out.append(Landmark(name.strip(), position))
    return tuple(out)


def _profile(ref, base: Path | None, source: str):
    from arraydaemon.core.profiles import load_profile, looks_like_path

    if not isinstance(ref, str) or not ref:
        raise key_error(RoomError, source, "profile", "a profile name or a YAML file path", ref)
    if base is not None and looks_like_path(ref) and not Path(ref).is_absolute():
        ref = str(base / ref)
    try:
        return load_profile(ref)
    except UserError as exc:
        raise RoomError(f"{source}: key 'profile': {exc}") from None


def parse_room(data, source: str = "<room>", base: Path | None = None) -> Room:
    """A :class:`Room` from parsed YAML; ``base``: the directory profile paths are relative to."""
    from arraydaemon.io.endpoints import check_endpoint

    if not isinstance(data, dict):
        raise RoomError(f"{source}: expected a map with a list 'arrays' (see `arraydaemon room check --help`)")
    check_keys(data, ROOM_KEYS, source, RoomError)
    name = data.get("name", "room")
    if not isinstance(name, str) or not 0 < len(name) <= 64:
        raise key_error(RoomError, source, "name", "a string of 1-64 characters", name)
    size = None if data.get("size") is None else _vector(data["size"], source, "size", 0.0, MAX_EXTENT_M, True)
    sigma = _number(data, "bearing_sigma_deg", source, DEFAULT_BEARING_SIGMA_DEG, 0.0, 45.0, "degrees")
    skew = _number(data, "max_skew_s", source, DEFAULT_MAX_SKEW_S, 0.0, 5.0, "seconds")
    entries = data.get("arrays")
    if not isinstance(entries, list) or not entries:
        raise key_error(RoomError, source, "arrays", "a list of arrays (profile, endpoint, position, yaw_deg)",
                        entries if "arrays" in data else None)
    if len(entries) > MAX_ARRAYS:
        raise key_error(RoomError, source, "arrays", f"at most {MAX_ARRAYS} arrays", f"{len(entries)} arrays")
    arrays: list[RoomArray] = []
    for i, entry in enumerate(entries):
        where = f"{source}: arrays[{i}]"
        if not isinstance(entry, dict):
            raise RoomError(f"{where}: expected a map with profile, endpoint, position and yaw_deg")
        check_keys(entry, ARRAY_KEYS, where, RoomError)
        for key in ("profile", "endpoint", "position", "yaw_deg"):
            if key not in entry:
                raise RoomError(f"{where}: missing key '{key}'")
        profile = _profile(entry["profile"], base, where)
        label = entry.get("name", profile.name)
        if not isinstance(label, str) or not 0 < len(label) <= 64:
            raise key_error(RoomError, where, "name", "a string of 1-64 characters", label)
        where = f"{source}: array '{shown(label, 64)}'"
        if label in (a.name for a in arrays):
            raise RoomError(f"{where}: a second array named '{label}' (give each a distinct 'name')")
        try:
            endpoint = check_endpoint(entry["endpoint"], for_bind=False)
        except UserError as exc:
            raise RoomError(f"{where}: key 'endpoint': {exc}") from None
        if endpoint in (a.endpoint for a in arrays):
            other = next(a.name for a in arrays if a.endpoint == endpoint)
            raise RoomError(f"{where}: key 'endpoint': {endpoint} is array '{other}''s too (one daemon per array)")
        position = _vector(entry["position"], where, "position", -MAX_EXTENT_M, MAX_EXTENT_M)
        yaw, pitch, roll = (_angle(entry, k, where, lim) for k, lim in
                            (("yaw_deg", 360.0), ("pitch_deg", 90.0), ("roll_deg", 180.0)))
        for other in arrays:
            gap = float(np.linalg.norm(other.position - position))
            if gap < MIN_SEPARATION_M:
                raise RoomError(f"{where}: key 'position': {position.tolist()} is {gap:.2f} m from array "
                                f"'{other.name}' (two arrays at one place; at least {MIN_SEPARATION_M:g} m apart)")
        if size is not None and (np.any(position < 0) or np.any(position > size)):
            raise key_error(RoomError, where, "position", f"a point inside the room (0..{size.tolist()})",
                            entry["position"])
        rot = rotation(yaw, pitch, roll)
        geo = profile.geometry
        normal = axis = None
        if geo.kind == "planar" and geo.normal is not None:
            normal = rot @ np.array(geo.normal)
        elif geo.kind == "linear" and geo.axis is not None:
            axis = rot @ np.array(geo.axis)
            across = np.cross(axis, [0.0, 0.0, 1.0])  # the vertical plane through the axis
            normal = across / np.linalg.norm(across) if np.linalg.norm(across) > 1e-6 else None
        arrays.append(RoomArray(label, profile.name, endpoint, position, yaw, pitch, roll, geo.kind, geo.ambiguity,
                                normal, axis, profile.path))
    return Room(tuple(arrays), name, size, sigma, skew, None, _landmarks(data.get("landmarks"), source, size))


def load_room(path: str | Path) -> Room:
    """The room file at ``path`` (profile paths in it relative to its directory); RoomError otherwise."""
    path = Path(path)
    data = read_yaml_file(path, RoomError, "room")
    room = parse_room(data, shown(path), path.parent)
    return Room(room.arrays, room.name, room.size, room.bearing_sigma_deg, room.max_skew_s, path, room.landmarks)

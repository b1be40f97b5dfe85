"""Fusing the arrays' ``tracks`` messages into room-frame positions: no I/O.

Alignment is by capture time. Every daemon stamps each window with ``wall_time``, the UNIX time of
its last sample, read from its own clock: the arrays' clocks are assumed synchronised (NTP on a
LAN keeps them within a few milliseconds; PTP within microseconds), and a skew up to the room's
``max_skew_s`` (default 0.1 s) is tolerated. A fusion step is taken once every array that is up has
sent a message since the last step, as soon as the last of them arrives, at ``t``, the latest
``wall_time`` all of them have reached (so
``positions`` follow the slowest array's ``tracks`` by the fusion's own time only); each array
contributes its message closest to ``t`` if within ``max_skew_s`` plus one hop, its directions
turned by their azimuth rate to ``t``. An array that is down (see the service) does not hold the
others back.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from arraydaemon.fusion.associate import AssociationConfig, associate
from arraydaemon.fusion.geometry import Bearing, bearings_of
from arraydaemon.fusion.room import Room
from arraydaemon.fusion.tracker import PositionTrack, PositionTracker, TrackerConfig

MAX_TRACK_SILENCE_S = 0.6  # an array track not heard for longer gives no bearing
HOP_ALLOWANCE_S = 0.15  # a daemon's hop (0.1 s by default) plus scheduling
MIN_STEP_S = 0.02  # steps closer than this are merged
SIGMA_Z_UNKNOWN = 1e3


@dataclass(frozen=True)
class FusionStep:
    """One step's result: the confirmed position tracks and the single-array bearings."""

    t: float
    tracks: list[PositionTrack]
    bearings: list[Bearing]
    contributing: tuple[str, ...]  # arrays whose messages took part


class Fuser:
    """``add(array, payload)`` for every ``tracks`` message; ``step(up)`` fuses when every array in
    ``up`` has reached a new time, else returns None."""

    def __init__(self, room: Room, association: AssociationConfig | None = None,
                 tracker: TrackerConfig | None = None):
        self.room = room
        self.association = association or AssociationConfig(sigma_deg=room.bearing_sigma_deg)
        self.tracker = PositionTracker(tracker)
        self.buffers: dict[str, deque] = {name: deque(maxlen=20) for name in room.names}
        self.fresh: set[str] = set()  # arrays with a message since the last step
        self.last_t = -math.inf
        self.steps = 0
        low, high = room.bounds()
        if room.size is not None:
            low, high = np.zeros(3), room.size.copy()
        self.low, self.high = low, high
        self.default_z = float(np.mean([a.position[2] for a in room.arrays]))

    def reset(self) -> None:
        for b in self.buffers.values():
            b.clear()
        self.tracker.reset()
        self.fresh.clear()
        self.last_t = -math.inf

    def add(self, array: str, payload: dict) -> None:
        buf = self.buffers[array]
        if buf and payload["wall_time"] < buf[-1]["wall_time"]:
            buf.clear()  # the daemon restarted with an earlier clock: its old windows are gone
        buf.append(payload)
        self.fresh.add(array)

    def due(self, up) -> float | None:
        """The time a step would be taken at now (the oldest of the arrays' latest times), or None
        until every array in ``up`` has sent a message since the last step."""
        if not up or any(a not in self.fresh for a in up):
            return None
        latest = [self.buffers[a][-1]["wall_time"] for a in up]
        t = min(latest)
        return t if t > self.last_t + MIN_STEP_S else None

    def observations(self, t: float, up) -> tuple[dict, tuple[str, ...]]:
        """Per array track, its room-frame bearing hypotheses at ``t``."""
        obs: dict[tuple[str, int], list[Bearing]] = {}
        used = []
        for name in up:
            buf = self.buffers[name]
            if not buf:
                continue
            msg = min(buf, key=lambda m: abs(m["wall_time"] - t))
            lag = t - msg["wall_time"]
            if abs(lag) > self.room.max_skew_s + HOP_ALLOWANCE_S:
                continue
            used.append(name)
            array = self.room.array(name)
            for tr in msg["tracks"]:
                if tr["silent_s"] > MAX_TRACK_SILENCE_S:
                    continue
                vector = np.array([tr["x"], tr["y"], tr["z"]])
                turn = math.radians(tr["azimuth_rate_dps"] * lag)
                if turn:
                    c, s = math.cos(turn), math.sin(turn)
                    vector = np.array([c * vector[0] - s * vector[1], s * vector[0] + c * vector[1], vector[2]])
                obs[(name, int(tr["id"]))] = bearings_of(array, tr["id"], vector, tr["activity"])
        return obs, tuple(used)

    def step(self, up) -> FusionStep | None:
        t = self.due(up)
        if t is None:
            return None
        return self.fuse_at(t, up)

    def fuse_at(self, t: float, up) -> FusionStep:
        self.last_t = t
        self.steps += 1
        self.fresh.clear()
        obs, used = self.observations(t, up)
        links = [tr.links for tr in self.tracker.tracks]
        result = associate(obs, self.association, self.low, self.high, links, self.default_z)
        tracks = self.tracker.step(t, result.fixes)
        singles = [hyps[0] for hyps in result.singles]
        return FusionStep(t, tracks, singles, used)

    def advance(self, t: float) -> FusionStep:
        """A step at ``t`` with no array up (every array down): the tracker predicts and retires."""
        self.last_t = max(self.last_t, t)
        tracks = self.tracker.step(t, [])
        return FusionStep(t, tracks, [], ())


def position_entries(step: FusionStep, high_z: float | None = None) -> list[dict]:
    """The wire entries (``wire.POSITION_FIELDS``) of a step's tracks, lowest id first; ``high_z``:
    the room's height, z is kept within [0, high_z]."""
    out = []
    for tr in sorted(step.tracks, key=lambda tr: tr.id):
        cov = tr.cov[:2, :2]
        z_known = tr.z_measured
        z = float(tr.z) if high_z is None else min(max(float(tr.z), 0.0), high_z)
        out.append({"id": tr.id, "x": float(tr.state[0]), "y": float(tr.state[1]), "z": z,
                    "z_known": bool(z_known), "velocity": [float(tr.state[2]), float(tr.state[3]), 0.0],
                    "sigma_m": tr.sigma_xy, "covariance_xy": [float(cov[0, 0]), float(cov[0, 1]), float(cov[1, 1])],
                    "sigma_z_m": float(math.sqrt(tr.z_var)) if z_known else SIGMA_Z_UNKNOWN,
                    "age_s": float(step.t - tr.born), "silent_s": float(max(0.0, step.t - tr.last_fix)),
                    "fused_arrays": list(tr.arrays), "fused_tracks": [int(i) for i in tr.track_ids]})
    return out


def bearing_entries(step: FusionStep, room: Room) -> list[dict]:
    """The wire entries (``wire.BEARING_FIELDS``) of a step's single-array bearings."""
    out = []
    for b in step.bearings:
        az = b.azimuth_deg
        out.append({"array": b.array, "id": int(b.track_id), "array_position": [float(v) for v in b.origin],
                    "azimuth_deg": 180.0 if az <= -180.0 else float(az), "elevation_deg": float(b.elevation_deg),
                    "direction": [float(v) for v in b.direction], "ambiguity": room.array(b.array).ambiguity})
    return out

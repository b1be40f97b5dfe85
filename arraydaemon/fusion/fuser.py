"""Fusing the arrays' ``tracks`` messages into room-frame positions: no I/O.

Alignment is by capture time. Every daemon stamps each window with ``wall_time``, the UNIX time of
its last sample, read from its own clock: the arrays' clocks are assumed synchronised (NTP on a
LAN keeps them within a few milliseconds; PTP within microseconds), and a skew up to the room's
``max_skew_s`` (default 0.1 s) is tolerated. A fusion step is taken once per common window, in
capture order: every window of the arrays that are up that all of them have reached is fused, as
soon as the last of them arrives, however the messages were bunched on the way (a daemon that
sends three windows at once under load gives three steps, not one). The windows are those of the
array with the longest hop; an array has reached one when its latest ``wall_time`` is at most half
its own hop before it. A step at ``t``, that window's ``wall_time`` (so ``positions`` follow the
slowest array's ``tracks`` by the fusion's own time only), takes each array's message closest to
``t`` if within ``max_skew_s`` plus one hop, its directions turned by their azimuth rate to ``t``.
An array that is down (see the service) does not hold the others back.
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
DEFAULT_HOP_S = 0.1  # the daemons' default hop, until their messages show theirs
SIGMA_Z_UNKNOWN = 1e3


@dataclass(frozen=True)
class FusionStep:
    """One step's result: the confirmed position tracks and the single-array bearings."""

    t: float
    tracks: list[PositionTrack]
    bearings: list[Bearing]
    contributing: tuple[str, ...]  # arrays whose messages took part


class Fuser:
    """``add(array, payload)`` for every ``tracks`` message; ``steps(up)`` fuses every window that
    every array in ``up`` has reached since the last step, oldest first."""

    def __init__(self, room: Room, association: AssociationConfig | None = None,
                 tracker: TrackerConfig | None = None):
        self.room = room
        self.association = association or AssociationConfig(sigma_deg=room.bearing_sigma_deg)
        self.tracker = PositionTracker(tracker or TrackerConfig(bearing_sigma_deg=self.association.sigma_deg))
        self.buffers: dict[str, deque] = {name: deque(maxlen=64) for name in room.names}  # > the lag waited for
        self.last_t = -math.inf
        self.fused = 0  # steps taken
        low, high = room.bounds()
        if room.size is not None:
            low, high = np.zeros(3), room.size.copy()
        self.low, self.high = low, high
        self.default_z = float(np.mean([a.position[2] for a in room.arrays]))

    def reset(self) -> None:
        for b in self.buffers.values():
            b.clear()
        self.tracker.reset()
        self.last_t = -math.inf

    def add(self, array: str, payload: dict) -> None:
        buf = self.buffers[array]
        if buf and payload["wall_time"] < buf[-1]["wall_time"]:
            buf.clear()  # the daemon restarted with an earlier clock: its old windows are gone
        buf.append(payload)

    def hop(self, name: str) -> float:
        """An array's hop: the median spacing of its buffered windows (the default hop until two)."""
        gaps = np.diff([m["wall_time"] for m in self.buffers[name]])
        gaps = gaps[gaps > 0]
        return float(np.median(gaps)) if gaps.size else DEFAULT_HOP_S

    def due(self, up) -> list[float]:
        """The times of the steps due now, oldest first: the windows of the array of ``up`` with the
        longest hop (the first of them in the room's order, of those within 10 % of it) newer than the last step by more
        than half its hop, up to the first that some array of ``up`` has not reached yet (its latest
        window is more than half its own hop before it: its window nearest that time is still to
        come)."""
        if not up or any(not self.buffers[a] for a in up):
            return []
        hops = {a: self.hop(a) for a in up}
        longest = max(hops.values())
        ref = min((a for a in up if hops[a] >= 0.9 * longest), key=self.room.names.index)  # hops as measured differ
        latest = {a: self.buffers[a][-1]["wall_time"] for a in up}
        out = []
        for msg in self.buffers[ref]:
            t = msg["wall_time"]
            if t <= self.last_t + 0.5 * hops[ref]:
                continue
            if any(latest[a] < t - 0.5 * hops[a] for a in up):
                break
            out.append(t)
        return out

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

    def steps(self, up) -> list[FusionStep]:
        """Every step due now (see :meth:`due`), in capture order."""
        return [self.fuse_at(t, up) for t in self.due(up)]

    def fuse_at(self, t: float, up) -> FusionStep:
        self.last_t = t
        self.fused += 1
        obs, used = self.observations(t, up)
        links = [tr.links for tr in self.tracker.tracks]
        result = associate(obs, self.association, self.low, self.high, links, self.default_z)
        tracks = self.tracker.step(t, result.fixes, result.singles)
        singles = [hyps[0] for hyps in result.singles]
        return FusionStep(t, tracks, singles, used)

    def advance(self, t: float) -> FusionStep:
        """A step at ``t`` with no array up (every array down or none heard yet): the tracker, if it
        has tracks, predicts and retires. The windows after the last step are still fused when they
        come (daemons that start late, or come back, send their first windows in a burst)."""
        tracks = self.tracker.step(t, []) if self.tracker.tracks else []
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
                    "fused_arrays": list(tr.arrays), "fused_tracks": [int(i) for i in tr.track_ids],
                    "bearing_only": bool(tr.last_held > tr.last_fix)})
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

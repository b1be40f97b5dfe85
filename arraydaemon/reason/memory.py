"""The scene memory: which sources are present, where they are and were, since when, whether they
move, and how loud they are, folded from the daemon's ``tracks``, ``doa`` and ``embedding`` topics;
from ``arraydaemon fuse``'s ``positions`` and ``room`` topics, the talkers' places in the room
(:class:`PlaceRecord`, room frame, metres) and the room's named landmarks.

Pure Python (no numpy, numba or torch), like the rest of ``arraydaemon.reason``. Directions follow
REP-103 (x forward, y left, z up): azimuth 0° is straight ahead, +90° left, -90° right, ±180° behind;
elevation in degrees up from the horizontal. Times ``t`` are seconds of the audio stream.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from arraydaemon.core.angles import angle_between, azimuth_difference, wrap_azimuth
from arraydaemon.io import wire
from arraydaemon.reason.geometry import ArrayView

SUBSCRIBED = ("tracks", "doa", "embedding", "array", "positions", "room")
MOVE_THRESHOLD_DEG = 15.0  # a source "moved" when it went this far from where it was first heard
MOVING_WINDOW_S = 2.0  # ... and "is moving" when it went MOVING_MIN_DEG within the last seconds
MOVING_MIN_DEG = 8.0
# A track heard for less than this (from its first detection to its retirement, or to now) is too
# short to be someone who started or stopped talking: a reflection or a burst of noise the tracker
# confirmed for a moment. "Who stopped / started talking?" leave such tracks out.
BRIEF_S = 1.0
# A track retired while another present one, born no later than HANDOVER_S after its retirement,
# was (or started) within HANDOVER_DEG of its last direction did not stop: the tracker lost it and
# found it again under a new id, or it merged into a track the array cannot tell it from. It is not
# who stopped talking, and a successor born after it is not who started.
HANDOVER_DEG = 20.0
HANDOVER_S = 1.5
# Bounds whatever a publisher sends: a minute of history at 10 windows/s is 600 entries.
MAX_SOURCES = 256  # sources remembered (the least recently heard are forgotten first)
MAX_HISTORY = 2000  # history entries per source


# ----------------------------------------------------------------------------------------------
# Naming directions

_SECTORS = ("in front", "front-left", "to the left", "back-left", "behind", "back-right", "to the right",
            "front-right")


def side_name(azimuth_deg: float) -> str:
    """One of eight 45° sectors of ``azimuth_deg`` (degrees), e.g. ``front-left``."""
    return _SECTORS[int(((azimuth_deg + 22.5) % 360.0) // 45.0)]


def fmt_az(azimuth_deg: float) -> str:
    """``azimuth_deg`` (degrees) as signed whole degrees, e.g. ``+40°``."""
    return f"{azimuth_deg:+.0f}°"


# ----------------------------------------------------------------------------------------------
# Scene memory


@dataclass
class SourceRecord:
    """What is remembered of one track; angles in degrees, times in stream seconds."""

    id: int
    first_t: float  # stream time of the first detection
    first_wall: float  # wall-clock (Unix) seconds of the first detection
    last_t: float  # stream time of the latest message that listed it
    # (t, azimuth, elevation, (x, y, z) unit vector)
    history: deque = field(default_factory=lambda: deque(maxlen=MAX_HISTORY))
    activity: float = 0.0  # 0..1
    level_db: float = -300.0  # dBFS
    peak_level_db: float = -300.0
    silent_s: float = 0.0
    angular_speed_dps: float = 0.0
    azimuth_rate_dps: float = 0.0  # > 0: counter-clockwise
    gone_t: float | None = None  # stream time it was retired
    in_plane: bool = False  # planar array: motion is measured in azimuth (its elevation is too noisy)

    def _distance(self, a, b) -> float:
        """Degrees between two ``history`` entries."""
        return azimuth_difference(a[1], b[1]) if self.in_plane else angle_between(a[3], b[3])

    @property
    def azimuth_deg(self) -> float:
        return self.history[-1][1]

    @property
    def elevation_deg(self) -> float:
        return self.history[-1][2]

    @property
    def vector(self) -> tuple[float, float, float]:
        """The latest unit direction (x, y, z)."""
        return self.history[-1][3]

    def heard_s(self, now: float) -> float:
        """Seconds from its first detection to its retirement (or to ``now`` while present)."""
        return (self.gone_t if self.gone_t is not None else now) - self.first_t

    def moved_deg(self) -> float:
        """Largest angle (degrees) between where it was first heard and anywhere since."""
        first = self.history[0]
        return max(self._distance(first, h) for h in self.history)

    def recent_motion_deg(self, window_s: float = MOVING_WINDOW_S) -> float:
        """Angle (degrees) travelled between ``window_s`` seconds ago (or its first position) and now."""
        now = self.history[-1][0]
        start = next((h for h in self.history if h[0] >= now - window_s), self.history[0])
        return self._distance(start, self.history[-1])

    def recent_rate_dps(self, window_s: float = MOVING_WINDOW_S) -> float:
        """Azimuth rate (degrees per second, > 0 counter-clockwise) over the last ``window_s`` seconds of history."""
        now = self.history[-1]
        start = next((h for h in self.history if h[0] >= now[0] - window_s), self.history[0])
        return wrap_azimuth(now[1] - start[1]) / (now[0] - start[0]) if now[0] > start[0] else 0.0

    def is_moving(self) -> bool:
        return self.recent_motion_deg() >= MOVING_MIN_DEG

    def motion_text(self) -> str:
        """``moving (...)``, ``still now (moved ...)`` or ``still``."""
        if self.is_moving():
            way = "counter-clockwise" if self.azimuth_rate_dps > 0 else "clockwise"
            return f"moving ({abs(self.azimuth_rate_dps):.0f}°/s {way})"
        moved = self.moved_deg()
        if moved >= MOVE_THRESHOLD_DEG:
            return f"still now (moved {moved:.0f}° since first heard at {fmt_az(self.history[0][1])})"
        return "still"


@dataclass
class PlaceRecord:
    """What is remembered of one fused position track (``arraydaemon fuse``): room frame, metres,
    stream seconds (fuse's ``t_end``)."""

    id: int
    first_t: float
    last_t: float
    history: deque = field(default_factory=lambda: deque(maxlen=MAX_HISTORY))  # (t, x, y, z)
    velocity: tuple[float, float] = (0.0, 0.0)
    sigma_m: float = 0.0
    z_known: bool = False
    silent_s: float = 0.0
    arrays: tuple[str, ...] = ()
    bearing_only: bool = False  # held on one array's bearing since the last fix (fuse's ``bearing_only``)
    gone_t: float | None = None

    @property
    def xy(self) -> tuple[float, float]:
        return self.history[-1][1], self.history[-1][2]

    @property
    def z(self) -> float:
        return self.history[-1][3]

    @property
    def speed_mps(self) -> float:
        return (self.velocity[0] ** 2 + self.velocity[1] ** 2) ** 0.5

    def moved_m(self, window_s: float = MOVING_WINDOW_S) -> float:
        """Floor distance (m) between ``window_s`` seconds ago (or its first fix) and now."""
        now = self.history[-1]
        start = next((h for h in self.history if h[0] >= now[0] - window_s), self.history[0])
        return ((now[1] - start[1]) ** 2 + (now[2] - start[2]) ** 2) ** 0.5


class SceneMemory:
    """Scene state from decoded wire payloads; thread-safe, no I/O.

    Retired sources, and history older than ``memory_s`` seconds of stream time, are forgotten.
    """

    def __init__(self, memory_s: float = 60.0):
        self.memory_s = float(memory_s)
        self._lock = threading.RLock()  # re-entrant: views call each other under the lock
        self.sources: dict[int, SourceRecord] = {}
        self.now_t: float | None = None  # stream time of the latest message
        self.now_wall: float | None = None
        self.received_at: float | None = None  # local monotonic time of the latest message
        self.messages = 0
        self.array = ""
        self.frame_id = ""
        self.ambiguity = "none"
        self.have_tracks = False
        self.doa: dict | None = None  # the latest doa payload
        self.embedding: dict | None = None  # model, shape, t_end of the latest embedding
        self.mics: list | None = None  # mic positions from the ``array`` topic, once heard
        self.view = ArrayView()  # what the array can tell (reason/geometry.py)
        # from arraydaemon fuse
        self.places: dict[int, PlaceRecord] = {}
        self.have_places = False
        self.bearings: list[dict] = []  # the latest positions message's single-array bearings
        self.room: dict | None = None  # the latest room message: name, size, arrays, landmarks

    def update(self, topic: str, payload: dict) -> None:
        """Fold one decoded message into the memory (unknown topics are ignored)."""
        if topic not in SUBSCRIBED:
            return
        wire.validate(topic, payload)
        with self._lock:
            t = float(payload["t_end"])
            if self.now_t is not None and t < self.now_t - 1.0:
                self._forget_all()  # the stream restarted (a new replay, a restarted daemon)
            self.now_t = t if self.now_t is None else max(self.now_t, t)
            self.now_wall = float(payload["wall_time"])
            self.received_at = time.monotonic()
            self.messages += 1
            self.array, self.frame_id = payload["array"], payload["frame_id"]
            if topic == "tracks":
                self._update_tracks(t, payload)
            elif topic == "positions":
                self._update_positions(t, payload)
            elif topic == "room":
                self.room = {"name": payload["array"], "size": list(payload["size"]),
                             "arrays": [dict(a) for a in payload["arrays"]],
                             "landmarks": [{"name": m["name"], "position": list(m["position"])}
                                           for m in payload["landmarks"] if len(m["position"]) >= 2]}
            elif topic == "doa":
                self._set_ambiguity(payload["ambiguity"])
                self.doa = payload
            elif topic == "array":
                if self.mics != payload["mics"] or self.ambiguity != payload["ambiguity"]:
                    self.mics = payload["mics"]
                    self.ambiguity = payload["ambiguity"]
                    self.view = ArrayView.from_mics(self.mics, self.ambiguity)
            else:
                self.embedding = {"model": payload["model"], "shape": list(payload["shape"]), "t_end": t}
            self._expire()

    def _set_ambiguity(self, ambiguity: str) -> None:
        if ambiguity != self.ambiguity or (self.mics is None and self.view != ArrayView.from_ambiguity(ambiguity)):
            self.ambiguity = ambiguity
            self.view = ArrayView.from_mics(self.mics, ambiguity) if self.mics else ArrayView.from_ambiguity(ambiguity)

    def _forget_all(self) -> None:
        self.sources.clear()
        self.places.clear()
        self.bearings = []
        self.doa = None
        self.embedding = None

    def _update_tracks(self, t: float, payload: dict) -> None:
        self.have_tracks = True
        self._set_ambiguity(payload["ambiguity"])
        listed = set()
        for trk in payload["tracks"]:
            tid = int(trk["id"])
            listed.add(tid)
            rec = self.sources.get(tid)
            if rec is None or rec.gone_t is not None:
                rec = SourceRecord(tid, t - float(trk["age_s"]), float(payload["wall_time"]) - float(trk["age_s"]), t,
                                   in_plane=payload["ambiguity"] == "up-down")
                self.sources[tid] = rec
            rec.last_t = t
            rec.history.append((t, float(trk["azimuth_deg"]), float(trk["elevation_deg"]),
                                (float(trk["x"]), float(trk["y"]), float(trk["z"]))))
            rec.activity = float(trk["activity"])
            rec.level_db = float(trk["level_db"])
            rec.peak_level_db = max(rec.peak_level_db, rec.level_db)
            rec.silent_s = float(trk["silent_s"])
            rec.angular_speed_dps = float(trk["angular_speed_dps"])
            rec.azimuth_rate_dps = float(trk["azimuth_rate_dps"])
        for rec in self.sources.values():
            if rec.id not in listed and rec.gone_t is None:
                rec.gone_t = t

    def _update_positions(self, t: float, payload: dict) -> None:
        self.have_places = True
        listed = set()
        for p in payload["positions"]:
            pid = int(p["id"])
            listed.add(pid)
            rec = self.places.get(pid)
            if rec is None or rec.gone_t is not None:
                rec = PlaceRecord(pid, t - float(p["age_s"]), t)
                self.places[pid] = rec
            rec.last_t = t
            rec.history.append((t, float(p["x"]), float(p["y"]), float(p["z"])))
            velocity = p["velocity"]
            rec.velocity = (float(velocity[0]), float(velocity[1])) if len(velocity) >= 2 else (0.0, 0.0)
            rec.sigma_m, rec.z_known, rec.silent_s = float(p["sigma_m"]), bool(p["z_known"]), float(p["silent_s"])
            rec.arrays = tuple(str(a) for a in p["fused_arrays"])
            rec.bearing_only = bool(p["bearing_only"])
        for rec in self.places.values():
            if rec.id not in listed and rec.gone_t is None:
                rec.gone_t = t
        self.bearings = [{"array": b["array"], "id": int(b["id"]), "azimuth_deg": float(b["azimuth_deg"])}
                         for b in payload["bearings"]]

    def _expire(self) -> None:
        horizon = self.now_t - self.memory_s
        for tid in [tid for tid, rec in self.sources.items() if rec.gone_t is not None and rec.gone_t < horizon]:
            del self.sources[tid]
        for pid in [pid for pid, rec in self.places.items() if rec.gone_t is not None and rec.gone_t < horizon]:
            del self.places[pid]
        if len(self.places) > MAX_SOURCES:
            for pid in sorted(self.places, key=lambda k: self.places[k].last_t)[:len(self.places) - MAX_SOURCES]:
                del self.places[pid]
        for rec in self.places.values():
            while len(rec.history) > 1 and rec.history[0][0] < horizon:
                rec.history.popleft()
        if len(self.sources) > MAX_SOURCES:  # whatever a publisher sends, memory stays bounded
            for tid in sorted(self.sources, key=lambda k: self.sources[k].last_t)[:len(self.sources) - MAX_SOURCES]:
                del self.sources[tid]
        for rec in self.sources.values():
            while len(rec.history) > 1 and rec.history[0][0] < horizon:
                rec.history.popleft()

    # -- views ----------------------------------------------------------------------------

    def present(self) -> list[SourceRecord]:
        """Sources tracked now, most active (then loudest) first."""
        with self._lock:
            out = [r for r in self.sources.values() if r.gone_t is None]
        return sorted(out, key=lambda r: (-round(r.activity, 2), -r.level_db, r.id))

    def gone(self) -> list[SourceRecord]:
        """Sources retired within ``memory_s``, most recent first."""
        with self._lock:
            out = [r for r in self.sources.values() if r.gone_t is not None]
        return sorted(out, key=lambda r: -r.gone_t)

    def present_places(self) -> list[PlaceRecord]:
        """Fused positions now, lowest id first."""
        with self._lock:
            return sorted((r for r in self.places.values() if r.gone_t is None), key=lambda r: r.id)

    def gone_places(self) -> list[PlaceRecord]:
        """Fused positions retired within ``memory_s``, most recent first."""
        with self._lock:
            return sorted((r for r in self.places.values() if r.gone_t is not None), key=lambda r: -r.gone_t)

    def landmarks(self) -> list[dict]:
        """The room's named places (``name``, ``position``), from fuse's ``room`` topic."""
        with self._lock:
            return list(self.room["landmarks"]) if self.room else []

    def successor(self, r: SourceRecord) -> SourceRecord | None:
        """The present source that took over retired ``r``'s direction (see ``HANDOVER_DEG``), or None."""
        with self._lock:
            if r.gone_t is None:
                return None
            for p in self.present():
                if p.first_t > r.gone_t + HANDOVER_S:
                    continue
                there = next((h for h in p.history if h[0] >= r.gone_t), p.history[-1])
                if self.view.distance_deg(r.vector, there[3]) <= HANDOVER_DEG:  # as the array tells directions
                    return p
            return None

    def successors(self) -> dict[int, SourceRecord]:
        """:meth:`successor` of every retired source that has one, by the retired one's id (each
        formed once: a question reads them for every source)."""
        with self._lock:
            return {g.id: nxt for g in self.gone() if (nxt := self.successor(g)) is not None}

    def talker_starts(self) -> dict[int, float]:
        """Stream time each source's talker was first heard, by id: its own first detection, or that
        of the retired tracks it took over from."""
        with self._lock:
            start = {r.id: r.first_t for r in self.sources.values()}
            for gid, nxt in self.successors().items():
                start[nxt.id] = min(start[nxt.id], start[gid])
            return start

    def talker_start(self, r: SourceRecord) -> float:
        """:meth:`talker_starts` of ``r``."""
        return self.talker_starts()[r.id]

    def doa_sources(self) -> list[dict]:
        """The latest window's raw detections (used when no tracks topic is heard)."""
        with self._lock:
            return list(self.doa["sources"]) if self.doa else []

    def describe(self) -> str:
        """One line: the sources now, where, since when, moving or not, how loud."""
        with self._lock:
            if self.now_t is None:
                return "no messages yet"
            head = f"t={self.now_t:.1f}s"
            present = self.present()
            if self.have_places and not self.have_tracks:
                places = self.present_places()
                text = f"{head}: {len(places)} talker{'s' if len(places) != 1 else ''} placed in the room" + (
                    ": " + "; ".join(f"#{r.id} at ({r.xy[0]:.1f}, {r.xy[1]:.1f}) m" for r in places) if places else "")
                if self.bearings:
                    text += " | heard by one array only: " + ", ".join(
                        f"{b['array']} #{b['id']} at {fmt_az(b['azimuth_deg'])}" for b in self.bearings[:4])
                return text
            if not self.have_tracks:
                dets = self.doa_sources()
                if not dets:
                    return f"{head}: nothing detected (no tracks topic heard)"
                return f"{head}: {len(dets)} detection(s) (no tracks topic heard): " + ", ".join(
                    f"{fmt_az(d['azimuth_deg'])} {side_name(d['azimuth_deg'])}" for d in dets)
            if not present:
                text = f"{head}: no sources"
            else:
                parts = [f"#{r.id} {fmt_az(r.azimuth_deg)} {side_name(r.azimuth_deg)}, "
                         f"{'active' if r.activity >= 0.5 else f'silent {r.silent_s:.1f}s'}, {r.motion_text()}, "
                         f"{r.level_db:.0f} dB, for {self.now_t - r.first_t:.1f}s" for r in present]
                text = f"{head}: {len(present)} source{'s' if len(present) != 1 else ''}: " + "; ".join(parts)
            gone = self.gone()
            if gone:
                text += " | gone: " + ", ".join(
                    f"#{r.id} (last {fmt_az(r.azimuth_deg)}, {self.now_t - r.gone_t:.1f}s ago)" for r in gone[:3])
            return text

    def snapshot(self) -> dict:
        """The scene as plain data (``reason --json`` prints it beside each answer): stream time ``t``,
        the array ``kind``, the ``present`` and ``gone`` sources (angles in degrees, times in stream s;
        ``talker_t``: when its talker was first heard, ``continued_by``: the present source that took over
        a retired one's direction)."""
        with self._lock:
            starts, successors = self.talker_starts(), self.successors()

            def entry(r: SourceRecord) -> dict:
                return {"id": r.id, "azimuth_deg": round(r.azimuth_deg, 1), "elevation_deg": round(r.elevation_deg, 1),
                        "vector": [round(v, 4) for v in r.vector], "first_t": round(r.first_t, 2),
                        "first_azimuth_deg": round(r.history[0][1], 1), "silent_s": round(r.silent_s, 2),
                        "moving": r.is_moving(), "moved_deg": round(r.moved_deg(), 1),
                        "gone_t": None if r.gone_t is None else round(r.gone_t, 2),
                        "talker_t": round(starts[r.id], 2),
                        "continued_by": successors[r.id].id if r.id in successors else None}
            def place(r: PlaceRecord) -> dict:
                return {"id": r.id, "x": round(r.xy[0], 3), "y": round(r.xy[1], 3), "z": round(r.z, 3),
                        "first_t": round(r.first_t, 2), "speed_mps": round(r.speed_mps, 2),
                        "arrays": list(r.arrays), "bearing_only": r.bearing_only, "gone_t": None if r.gone_t is None else round(r.gone_t, 2)}
            out = {"t": self.now_t, "kind": self.view.kind, "ambiguity": self.ambiguity,
                   "present": [entry(r) for r in self.present()], "gone": [entry(r) for r in self.gone()]}
            if self.have_places:
                out["places"] = [place(r) for r in self.present_places()]
                out["places_gone"] = [place(r) for r in self.gone_places()]
                out["landmarks"] = self.landmarks()
            return out

    def scene_text(self) -> str:
        """The scene as structured, multi-line text for a language model."""
        with self._lock:
            if self.now_t is None:
                return "SCENE: no messages received from the array yet."
            wall = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.now_wall)) if self.now_wall else "?"
            amb = self.view.mirror_text() or "none (a 3-D array)"
            if self.view.kind == "linear":
                amb += ("; a line from left to right cannot tell front from behind" if self.view.axis is not None
                        and abs(self.view.axis[1]) > 0.9 else "")
                amb += "; directions are reported on one side of the line, their mirror images are as likely"
            elif self.view.kind == "planar":
                amb += "; elevations are reported on one side of the plane"
            lines = [f"SCENE at stream time {self.now_t:.2f} s ({wall} local time)"]
            if self.have_places and not self.have_tracks:  # arraydaemon fuse: places, no directions
                return "\n".join(lines + self._places_text())
            lines.append(f"array: {self.array} (tf frame {self.frame_id}); ambiguity: {amb}")
            present = self.present()
            lines.append(f"sources present now: {len(present)}")
            for r in present:
                x, y, z = r.vector
                lines.append(
                    f"- source #{r.id}: azimuth {r.azimuth_deg:+.1f} deg ({side_name(r.azimuth_deg)}), elevation "
                    f"{r.elevation_deg:.1f} deg, unit vector ({x:.2f}, {y:.2f}, {z:.2f}); "
                    f"activity {r.activity:.2f} ({'active' if r.activity >= 0.5 else 'silent'}, last heard "
                    f"{r.silent_s:.1f} s ago); level {r.level_db:.1f} dBFS (peak {r.peak_level_db:.1f}); "
                    f"first heard at t={r.first_t:.2f} s ({self.now_t - r.first_t:.1f} s ago) at azimuth "
                    f"{r.history[0][1]:+.1f} deg; {r.motion_text()}; moved {r.moved_deg():.0f} deg in total; "
                    f"angular speed {r.angular_speed_dps:.1f} deg/s")
            gone = self.gone()
            lines.append(f"sources gone in the last {self.memory_s:.0f} s: {len(gone)}")
            for r in gone:
                lines.append(f"- source #{r.id}: last at azimuth {r.azimuth_deg:+.1f} deg "
                             f"({side_name(r.azimuth_deg)}), heard from t={r.first_t:.2f} s to "
                             f"t={r.gone_t:.2f} s ({self.now_t - r.gone_t:.1f} s ago)")
            if self.doa is not None:
                dets = ", ".join(f"{d['azimuth_deg']:+.1f} deg (confidence {d['confidence']:.2f})"
                                 for d in self.doa["sources"]) or "none"
                lines.append(f"latest window: level {self.doa['level_db']:.1f} dBFS, estimator "
                             f"{self.doa['estimator']}, raw detections: {dets}")
            if self.embedding is not None:
                lines.append(f"spatial embedding: model {self.embedding['model']}, shape {self.embedding['shape']}")
            if self.have_places:
                lines += self._places_text()
            return "\n".join(lines)

    def _places_text(self) -> list[str]:
        room = self.room or {}
        size = room.get("size") or []
        lines = [f"ROOM {room.get('name', self.array)} (room frame: x, y on the floor, z up, metres"
                 + (f"; size {' x '.join(f'{v:g}' for v in size)} m" if size else "") + ")"]
        for m in self.landmarks():
            lines.append(f"- landmark {m['name']} at ({m['position'][0]:.2f}, {m['position'][1]:.2f})")
        places = self.present_places()
        held = sum(r.bearing_only for r in places)
        lines.append(f"talkers placed now: {len(places)} (two or more arrays agree on {len(places) - held}"
                     + (f"; {held} held on one array's bearing since their last fix, range not measured)" if held
                        else ")"))
        for r in places:
            lines.append(f"- position #{r.id}: ({r.xy[0]:.2f}, {r.xy[1]:.2f}) m, +-{r.sigma_m:.2f} m, speed "
                         f"{r.speed_mps:.1f} m/s, since t={r.first_t:.1f} s, "
                         + (f"held on array {r.arrays[0] if r.arrays else '?'}'s bearing for {r.silent_s:.1f} s "
                            "(range not measured)" if r.bearing_only else f"from arrays {', '.join(r.arrays)}"))
        for b in self.bearings:
            lines.append(f"- heard by array {b['array']} only (track #{b['id']}): room azimuth {b['azimuth_deg']:+.0f} "
                         "deg from that array, no distance")
        return lines

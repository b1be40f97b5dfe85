"""Tracker stage: per-window detections (Estimate) → tracked sources with stable ids (Tracks).

Each track is a constant-velocity Kalman filter on the unit sphere. The state lives in the tangent
plane at the track's current direction ``u`` (a 2-D offset, always re-centred to zero after an
update, and a 2-D angular velocity, rad/s); prediction moves ``u`` along the great circle of its
velocity and carries the tangent basis with it, so there is no azimuth wrap and no pole
singularity. Directions a geometry cannot tell apart are folded onto the reported side, like the
localizer's (planar arrays: the upper side of the plane; linear arrays: the front).

Per window:

1. predict every track to the window's time (the velocity of a track that was not detected in
   the previous window decays with ``coast_decay_s``, so a silent track coasts to a stop instead
   of drifting away);
2. associate detections with confirmed tracks, then with tentative ones: a minimum-cost assignment
   (``core/assignment.py``: scipy's ``linear_sum_assignment``'s answer) on the Mahalanobis
   distance, gated at ``gate_sigma`` standard deviations and at most ``gate_deg`` degrees;
3. update the associated tracks; every left-over detection starts a tentative track;
4. a tentative track is confirmed, and only then given an id, after ``birth_hits`` detections in
   ``birth_windows`` consecutive windows (``dry_birth_hits`` where the localizer finds the room dry:
   ``Estimate.extras["room_dry"]`` >= 0.5, ``localizers/room.py``); it is dropped once it cannot
   reach that any more. A track
   confirmed where a confirmed one was lost (not detected since the new one's first detection,
   within ``gate_deg``) continues the lost one, with its id: a talker found again after a miss;
5. a confirmed track is no longer published when it has not been refreshed for ``max_silence_s``
   seconds, and retired ``recall_s`` later: until then it is *dormant* (not associated, not
   published) and a track confirmed near it (as in 4) continues it with its id: a quiet talker whom
   louder ones hid for a while, found again (``_recall``). A confirmed track is also retired
   when it has sat within ``merge_deg`` of an older track for ``merge_s`` seconds while moving alike
   (a duplicate; talkers passing each other move differently). A detection refreshes a track only
   if the track was detected in at least ``keep_hits`` of the last ``birth_windows`` windows, or in
   ``support_hits`` of its last ``support_windows`` (a talker's first word after a pause): a stray
   detection now and then (a reflection, a noise burst) does not keep it alive, so there is no
   ghost track that never dies.

Detections are the localizer's ``Estimate.detections`` when it gives them (the window alone: an
integral over past windows would lag a walking talker), else its sources. A window's detection is
where its source was on average over the window, so the published direction is predicted ``lead_s``
ahead (the pipeline passes half a window): where the source is at the window's end.

Ids are integers from 1, never reused within a stream (:meth:`Tracker.reset` starts again at 1). ``activity`` is the
posterior of a two-state (active/silent) hidden Markov model driven by whether the track was
detected in each window: mean dwell ``activity_dwell_s`` in either state, detection probability
``detect_prob`` while active and ``false_alarm_prob`` while silent.

Defaults are tuned for speech at the default 0.1 s hop: syllables and words give detections in
most windows, pauses between phrases last up to ~1 s, a talker walks at up to ~60°/s around a
nearby array.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from arraydaemon.core import grids
from arraydaemon.core.assignment import min_cost_assignment
from arraydaemon.core.messages import Estimate, Track, Tracks
from arraydaemon.core.options import TrackerConfig
from arraydaemon.core.profiles import GeometryInfo
from arraydaemon.noise.gate import CHAIN_ORIGIN_DEG, CHAIN_S

DRY_ROOM = 0.5  # Estimate.extras["room_dry"] from which a track is confirmed after dry_birth_hits

# The tracker's arithmetic is on 2- to 4-element arrays, where numpy's per-call overhead (np.cross,
# np.linalg.norm, np.kron: 3-10 µs each) costs more than the arithmetic: these forms compute the same.

def _norm(v: np.ndarray) -> float:
    """Euclidean length of a 1-D vector (as ``np.linalg.norm``, without its axis handling)."""
    return math.sqrt(float(v @ v))


def _rotate(vectors: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues rotation of ``vectors [shape=(n, 3)]`` about unit ``axis`` by ``angle`` rad."""
    c, s = math.cos(angle), math.sin(angle)
    x, y, z = vectors[:, 0], vectors[:, 1], vectors[:, 2]
    cross = np.stack([axis[1] * z - axis[2] * y, axis[2] * x - axis[0] * z, axis[0] * y - axis[1] * x], axis=1)
    return vectors * c + cross * s + np.outer(vectors @ axis, axis) * (1 - c)


class _Track:
    """One filtered direction: unit vector ``u``, tangent basis ``basis [shape=(2, 3)]``, state
    ``x = (offset_1, offset_2, rate_1, rate_2)`` (rad, rad/s) in that basis, covariance ``P [4×4]``."""

    def __init__(self, u: np.ndarray, t: float, cfg: TrackerConfig, level_db: float):
        self.u = u / _norm(u)
        ref = np.array([0.0, 0.0, 1.0]) if abs(self.u[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        e1 = grids.cross3(ref, self.u)
        e1 /= _norm(e1)
        self.basis = np.stack([e1, grids.cross3(self.u, e1)])
        self.rate = np.zeros(2)
        pos_var = math.radians(cfg.measurement_std_deg) ** 2
        rate_var = math.radians(cfg.initial_speed_std_dps) ** 2
        self.P = np.diag([pos_var, pos_var, rate_var, rate_var])
        self.id: int | None = None  # given on confirmation
        self.born_t = t
        self.born_u = self.u  # where it was first detected (noise/gate.py: came it from outside the noise?)
        self.last_hit_t = t
        self.last_active_t = t
        self.hits = deque([True], maxlen=cfg.birth_windows)
        self.history = deque([True], maxlen=cfg.support_windows)  # detected or not, the last windows
        self.misses_in_row = 0
        self.activity = 0.5
        self.level_db = level_db
        self.near_older_since: float | None = None
        # confirmed, but not refreshed for max_silence_s: not associated nor published, kept to be
        # found again (Tracker._lost_track_near) until recall_s later
        self.dormant = False

    # -- filter ---------------------------------------------------------------------------

    def predict(self, dt: float, cfg: TrackerConfig, q: float) -> None:
        # Constant velocity while detected; a silent track coasts to a stop rather than drifting off.
        decay = math.exp(-dt / cfg.coast_decay_s) if self.misses_in_row else 1.0
        moved = self._carried(np.vstack([self.u, self.basis]), dt)
        if moved is not None:
            self.u, self.basis = moved[0], moved[1:]
        self.rate = self.rate * decay
        F = np.eye(4)
        F[0, 2] = F[1, 3] = dt
        F[2, 2] = F[3, 3] = decay
        # white-acceleration noise, the same on both tangent axes: kron([[dt³/3, dt²/2], [dt²/2, dt]], I₂)
        a, b, c = q * dt**3 / 3, q * dt**2 / 2, q * dt
        Q = np.array([[a, 0, b, 0], [0, a, 0, b], [b, 0, c, 0], [0, b, 0, c]])
        self.P = F @ self.P @ F.T + Q

    def innovation(self, z: np.ndarray) -> np.ndarray:
        """Detection ``z`` as a tangent-plane offset (rad) from ``u`` in this track's basis."""
        cos = float(np.clip(self.u @ z, -1.0, 1.0))
        tangent = z - cos * self.u
        norm = _norm(tangent)
        if norm < 1e-12:
            return np.zeros(2)
        return math.acos(cos) * (self.basis @ tangent) / norm

    def innovation_cov(self, R: np.ndarray) -> np.ndarray:
        return self.P[:2, :2] + R

    def update(self, z: np.ndarray, R: np.ndarray, max_speed: float) -> None:
        y = self.innovation(z)
        S = self.innovation_cov(R)
        K = self.P[:, :2] @ np.linalg.inv(S)
        dx = K @ y
        IKH = np.eye(4)
        IKH[:, :2] -= K
        self.P = IKH @ self.P @ IKH.T + K @ R @ K.T  # Joseph form: stays symmetric positive definite
        step = dx[:2] @ self.basis
        angle = _norm(step)
        if angle > 1e-12:
            axis = grids.cross3(self.u, step / angle)
            rotated = _rotate(np.vstack([self.u, self.basis]), axis, angle)
            self.u, self.basis = rotated[0], rotated[1:]
        self.rate = self.rate + dx[2:]
        speed = _norm(self.rate)
        if speed > max_speed:
            self.rate *= max_speed / speed
        self._renormalize()

    def fold(self, geometry: GeometryInfo) -> None:
        """Mirror the track onto the side the geometry reports (as ``grids.fold`` does)."""
        diff = self.u - grids.fold(self.u, geometry)
        norm = _norm(diff)
        if norm > 1e-12:
            n = diff / norm
            mirror = np.eye(3) - 2.0 * np.outer(n, n)
            self.u = mirror @ self.u
            self.basis = self.basis @ mirror  # mirrored basis: the velocity coordinates keep their meaning

    def _renormalize(self) -> None:
        self.u /= _norm(self.u)
        e1 = self.basis[0] - (self.basis[0] @ self.u) * self.u
        e1 /= _norm(e1)
        self.basis = np.stack([e1, grids.cross3(self.u, e1)])

    def take_over(self, new: "_Track", t: float) -> None:
        """Continue as ``new`` (a re-found source): its filter state and recent detections, this id."""
        self.u, self.basis, self.rate, self.P = new.u, new.basis, new.rate, new.P
        self.hits, self.misses_in_row = new.hits, new.misses_in_row
        self.history.extend(new.history)
        self.last_hit_t = new.last_hit_t
        self.last_active_t = t
        self.born_u = new.born_u  # re-found there: whether it came from outside the noise is new's
        self.dormant = False

    # -- bookkeeping ----------------------------------------------------------------------

    def _carried(self, vectors: np.ndarray, seconds: float) -> np.ndarray | None:
        """``vectors [shape=(n, 3)]`` rotated with the track's velocity for ``seconds`` (along the
        great circle it moves on), or None when it stands still."""
        w = self.rate @ self.basis
        speed = _norm(w)
        if speed <= 1e-12:
            return None
        return _rotate(vectors, grids.cross3(self.u, w / speed), speed * seconds)

    def ahead(self, seconds: float, geometry: GeometryInfo) -> np.ndarray:
        """The direction ``seconds`` ahead along the current velocity (not stored), folded like the track."""
        moved = self._carried(self.u[None], seconds) if seconds > 0.0 else None
        if moved is None:
            return self.u
        return grids.fold(moved[0] / _norm(moved[0]), geometry)

    def velocity(self) -> np.ndarray:
        """Angular velocity as a tangent vector ``[shape=(3,)]`` in rad/s."""
        return self.rate @ self.basis


class Tracker:
    """Stage: Estimate → Tracks (confirmed tracks only, lowest id first)."""

    name = "tracker"

    def __init__(self, geometry: GeometryInfo, config: TrackerConfig = TrackerConfig(), lead_s: float = 0.0):
        """``lead_s``: how far the published directions are predicted ahead of the detections. A
        window's detection is where its source was on average over the window, about half a window
        before its end; half the window length publishes where the source is at ``t_end``."""
        config.validate()
        self.geometry = geometry
        self.config = config
        self.lead_s = lead_s
        self.reset()

    def reset(self) -> None:
        self._tracks: list[_Track] = []
        self._last_t: float | None = None
        self._next_id = 1
        self.retired: list[tuple[int, float]] = []  # (id, stream time) of recent retirements

    # -- measurement model ----------------------------------------------------------------

    def _R(self, track: _Track) -> np.ndarray:
        """Detection covariance in ``track``'s basis: planar arrays see little across their plane."""
        cfg = self.config
        s_in = math.radians(cfg.measurement_std_deg) ** 2
        if self.geometry.kind != "planar":
            return np.eye(2) * s_in
        n = np.asarray(self.geometry.normal, dtype=np.float64)
        across = track.basis @ n  # the plane normal's component in the tangent plane
        norm = _norm(across)
        if norm < 1e-6:  # looking along the normal: every tangent direction is "in plane"
            return np.eye(2) * s_in
        a = across / norm
        s_out = math.radians(cfg.out_of_plane_std_deg) ** 2
        return s_in * np.eye(2) + (s_out - s_in) * np.outer(a, a)

    def _cos_separation(self, a: np.ndarray, b: np.ndarray) -> float:
        """Cosine of the angle between directions, measured in the array plane for planar arrays
        (whose elevation estimates are too noisy to separate sources by)."""
        if self.geometry.kind == "planar":
            n = np.asarray(self.geometry.normal, dtype=np.float64)
            a, b = a - (a @ n) * n, b - (b @ n) * n
            na, nb = _norm(a), _norm(b)
            if na < 1e-6 or nb < 1e-6:  # straight above the plane: any azimuth is close
                return 1.0
            return float(a @ b) / (na * nb)
        return float(a @ b)

    def _associate(self, tracks: list[_Track], dets: list[np.ndarray],
                   allowed: np.ndarray | None = None) -> list[tuple[int, int]]:
        """Gated Hungarian assignment: (track index, detection index) pairs; ``allowed [shape=(tracks,
        dets)]`` (None: all) says which pairs may be made at all."""
        if not tracks or not dets:
            return []
        cfg = self.config
        big = 1e6
        cost = np.full((len(tracks), len(dets)), big)
        cos_gate = math.cos(math.radians(cfg.gate_deg))
        for i, tr in enumerate(tracks):
            S_inv = np.linalg.inv(tr.innovation_cov(self._R(tr)))
            for j, z in enumerate(dets):
                if (allowed is not None and not allowed[i, j]) or self._cos_separation(tr.u, z) < cos_gate:
                    continue
                y = tr.innovation(z)
                d2 = float(y @ S_inv @ y)
                if d2 <= cfg.gate_sigma**2:
                    cost[i, j] = d2
        rows, cols = min_cost_assignment(cost)
        return [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] < big]

    # -- stage ----------------------------------------------------------------------------

    def process(self, estimate: Estimate) -> Tracks:
        cfg = self.config
        # Window times are block clock + sample offset, summed differently for other block sizes:
        # on a 1 µs grid the tracks do not depend on how the stream was cut into blocks.
        t = round(float(estimate.t_end), 6)
        # A stream that went back in time (a new file) or jumped far ahead (a device outage) ends
        # every track: nothing can be predicted across it.
        restarted = self._last_t is not None and (t <= self._last_t or t - self._last_t > 10 * cfg.max_silence_s)
        if restarted:
            self._retire_all(t)
        dt = 0.0 if self._last_t is None or restarted else t - self._last_t
        self._last_t = t

        q = math.radians(cfg.accel_std_dps2) ** 2
        for tr in self._tracks:
            if dt > 0:
                tr.predict(dt, cfg, q)
                tr.fold(self.geometry)

        measured = estimate.sources if estimate.detections is None else estimate.detections
        marks = estimate.extras.get("noise_near")
        marks = (False,) * len(measured) if marks is None or len(marks) != len(measured) else marks
        dets, near = [], []
        for s, mark in zip(measured, marks):
            d = np.asarray(s.vector, dtype=np.float64)
            if np.all(np.isfinite(d)) and _norm(d) > 0:
                dets.append(d / _norm(d))
                near.append(bool(mark))
        confirmed = [tr for tr in self._tracks if tr.id is not None and not tr.dormant]
        tentative = [tr for tr in self._tracks if tr.id is None]
        outside = self._from_outside(confirmed, estimate) if any(near) else None
        hit_tracks: set[int] = set()
        free = list(range(len(dets)))
        for group in (confirmed, tentative):
            allowed = None
            if outside is not None:  # near the noise: only for a confirmed track that came from outside
                ok = outside if group is confirmed else np.zeros(len(group), dtype=bool)
                allowed = np.array([[o or not near[j] for j in free] for o in ok], dtype=bool).reshape(len(group), len(free))
            pairs = self._associate(group, [dets[j] for j in free], allowed)
            used = set()
            for i, jj in pairs:
                tr = group[i]
                tr.update(dets[free[jj]], self._R(tr), math.radians(cfg.max_speed_dps))
                tr.fold(self.geometry)
                hit_tracks.add(id(tr))
                used.add(jj)
            free = [j for k, j in enumerate(free) if k not in used]

        for tr in self._tracks:
            hit = id(tr) in hit_tracks
            self._update_bookkeeping(tr, hit, t, dt, estimate.level_db)
        for j in free:
            if near[j]:  # the noise's own detections start no track
                continue
            new = _Track(dets[j], t, cfg, estimate.level_db)
            new.fold(self.geometry)
            self._tracks.append(new)

        self._retire_on_noise(estimate, t)
        dry = float(estimate.extras.get("room_dry", 0.0) or 0.0) >= DRY_ROOM
        self._confirm_and_prune(t, cfg.dry_birth_hits if dry else cfg.birth_hits)
        return self._output(estimate)

    def _from_outside(self, tracks: list[_Track], estimate: Estimate) -> np.ndarray:
        """Whether each of ``tracks`` was first detected at least ``CHAIN_ORIGIN_DEG`` from every
        noise direction (``estimate.extras["noise"]``, ``noise/gate.py``): a talker who walked up to
        the noise, not a track the noise's scattered detections gave birth to."""
        noise = estimate.extras.get("noise") or ()
        cos_origin = math.cos(math.radians(CHAIN_ORIGIN_DEG))
        return np.array([all(self._cos_separation(tr.born_u, np.asarray(v, dtype=np.float64)) < cos_origin
                             for v, _ in noise) for tr in tracks], dtype=bool)

    def _retire_on_noise(self, estimate: Estimate, t: float) -> None:
        """Retires the tracks within ``merge_deg`` of the robot's own noise (``estimate.extras["noise"]``,
        ``noise/gate.py``) that no detection kept for ``CHAIN_S``: the gate no longer lets one through
        there, and the track would coast on the noise for ``max_silence_s``."""
        noise = estimate.extras.get("noise") or ()
        if not noise:
            return
        cos_near = math.cos(math.radians(self.config.merge_deg))
        keep = []
        for tr in self._tracks:
            if t - tr.last_hit_t > CHAIN_S and any(self._cos_separation(tr.u, np.asarray(v)) >= cos_near
                                                   for v, _ in noise):
                if tr.id is not None:
                    self.retired.append((tr.id, t))
                continue
            keep.append(tr)
        self._tracks = keep

    def _update_bookkeeping(self, tr: _Track, hit: bool, t: float, dt: float, level_db: float) -> None:
        cfg = self.config
        # activity: two-state HMM forward step (transition, then the window's evidence)
        switch = 1.0 - math.exp(-dt / cfg.activity_dwell_s) if dt > 0 else 0.0
        prior = tr.activity * (1.0 - switch) + (1.0 - tr.activity) * switch
        if hit:
            like_a, like_s = cfg.detect_prob, cfg.false_alarm_prob
        else:
            like_a, like_s = 1.0 - cfg.detect_prob, 1.0 - cfg.false_alarm_prob
        tr.activity = prior * like_a / (prior * like_a + (1.0 - prior) * like_s)
        if dt > 0 or len(tr.hits) == 0:
            tr.hits.append(hit)
            tr.history.append(hit)
        if hit:
            tr.last_hit_t = t
            tr.misses_in_row = 0
            # A stray detection now and then does not keep a track alive; a talker's track, detected
            # in many recent windows, is kept by any one (the first word after a pause).
            if sum(tr.hits) >= cfg.keep_hits or (tr.id is not None and sum(tr.history) >= cfg.support_hits):
                tr.last_active_t = t
            if math.isfinite(level_db):
                tr.level_db += cfg.level_smoothing * (level_db - tr.level_db)
        else:
            tr.misses_in_row += 1

    def _confirm_and_prune(self, t: float, birth_hits: int) -> None:
        cfg = self.config
        keep = []
        for tr in self._tracks:
            if tr.id is None:
                if sum(tr.hits) >= birth_hits:
                    lost = self._lost_track_near(tr, t)
                    if lost is not None:  # a followed source re-found after a miss keeps its id
                        lost.take_over(tr, t)
                        continue
                    tr.id = self._next_id
                    self._next_id += 1
                    tr.last_active_t = t
                elif tr.misses_in_row > cfg.birth_windows - birth_hits:
                    continue  # can no longer reach birth_hits in birth_windows: drop silently
            elif t - tr.last_active_t > cfg.max_silence_s + cfg.recall_s:
                self.retired.append((tr.id, t))
                continue
            else:
                tr.dormant = t - tr.last_active_t > cfg.max_silence_s
            keep.append(tr)
        # duplicates: a younger confirmed track sitting on an older one, moving alike (two talkers
        # passing each other sit close for a moment too, but their motions differ)
        cos_merge = math.cos(math.radians(cfg.merge_deg))
        alike = math.radians(cfg.merge_deg) / cfg.merge_s
        confirmed = sorted((tr for tr in keep if tr.id is not None and not tr.dormant), key=lambda tr: tr.id)
        dropped = set()
        for k, young in enumerate(confirmed):
            older = [old for old in confirmed[:k] if id(old) not in dropped]
            near = any(self._cos_separation(old.u, young.u) >= cos_merge
                       and _norm(old.velocity() - young.velocity()) <= alike for old in older)
            if not near:
                young.near_older_since = None
            elif young.near_older_since is None:
                young.near_older_since = t
            elif t - young.near_older_since >= cfg.merge_s:
                dropped.add(id(young))
                self.retired.append((young.id, t))
        self._tracks = [tr for tr in keep if id(tr) not in dropped]
        self.retired = [(i, rt) for i, rt in self.retired if t - rt <= 60.0]

    def _lost_track_near(self, new: _Track, t: float) -> _Track | None:
        """A confirmed track (published or dormant) not detected while ``new`` was being confirmed,
        within ``gate_deg`` of it (the nearest), else None."""
        cfg = self.config
        cos_gate = math.cos(math.radians(cfg.gate_deg))
        best, best_cos = None, cos_gate
        for tr in self._tracks:
            if tr.id is None or tr.last_hit_t >= new.born_t or t - tr.last_active_t > cfg.max_silence_s + cfg.recall_s:
                continue
            c = self._cos_separation(tr.u, new.u)
            if c >= best_cos:
                best, best_cos = tr, c
        return best

    def _retire_all(self, t: float) -> None:
        self.retired.extend((tr.id, t) for tr in self._tracks if tr.id is not None)
        self._tracks = []

    def _output(self, estimate: Estimate) -> Tracks:
        t = round(float(estimate.t_end), 6)
        out = []
        for tr in sorted((tr for tr in self._tracks if tr.id is not None and not tr.dormant), key=lambda tr: tr.id):
            u = tr.ahead(self.lead_s, self.geometry)
            az, el = grids.vector_to_azel(u)
            w = tr.velocity()
            cos_el = math.hypot(u[0], u[1])
            e_az = np.array([-u[1], u[0], 0.0]) / cos_el if cos_el > 1e-3 else np.zeros(3)
            out.append(Track(
                id=int(tr.id),
                azimuth_deg=float(az),
                elevation_deg=float(el),
                vector=(float(u[0]), float(u[1]), float(u[2])),
                activity=float(tr.activity),
                age_s=float(t - tr.born_t),
                silent_s=float(t - tr.last_hit_t),
                angular_speed_dps=float(math.degrees(_norm(w))),
                azimuth_rate_dps=float(math.degrees(w @ e_az / cos_el)) if cos_el > 1e-3 else 0.0,
                level_db=float(tr.level_db) if math.isfinite(tr.level_db) else -300.0,
            ))
        return Tracks(seq=estimate.seq, sample_rate=estimate.sample_rate, t_end=estimate.t_end,
                      wall_time=estimate.wall_time, tracks=tuple(out))

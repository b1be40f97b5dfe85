"""Room-frame position tracks: a constant-velocity Kalman filter in the floor plane per talker, the
height filtered on its own (a random walk), stable ids from 1, births and deaths.

Each step's fixes are assigned to the predicted tracks by the Hungarian method on the Mahalanobis
distance (gated at chi-square 99 %, 2 degrees of freedom), preferring the track a fix's array tracks
already belong to; an unassigned fix starts a tentative track, confirmed after ``confirm_hits`` fixes
(published only once confirmed), unless it lies within :data:`BIRTH_EXCLUSION_M` of a live track;
a fix within :data:`NEAR_M` of a prediction is always within the gate; two confirmed tracks closer
than ``merge_m`` are one talker (the younger goes); a track is published while it had a fix in the
last ``publish_silence_s``, kept to be found again up to ``max_silence_s``; a track without a fix for ``max_silence_s`` is retired. Ids are
never reused within a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from arraydaemon.fusion.geometry import Fix

GATE_CHI2 = 9.21  # chi-square, 2 degrees of freedom, 99 %
GATE_1D_CHI2 = 6.63  # chi-square, 1 degree of freedom, 99 %
MAX_GATE_M = 1.5  # and never a jump of more than this from the prediction
NEAR_M = 0.5  # a fix this close to the prediction is accepted whatever the covariances say
BIRTH_EXCLUSION_M = 0.6  # no new track this close to a live one (one talker's noisy fix, not a second talker)


@dataclass(frozen=True)
class TrackerConfig:
    accel_sigma: float = 1.0  # m/s^2: walking starts, stops and turns
    z_walk_sigma: float = 0.2  # m/sqrt(s): a talker sitting down, standing up
    confirm_hits: int = 2
    max_silence_s: float = 2.0
    max_speed_mps: float = 3.0
    publish_silence_s: float = 0.5  # a track coasting longer is kept (to be found again), not published
    merge_m: float = 0.6  # two tracks this close are one talker: the younger goes
    hold_s: float = 1.5  # a track one array still follows is held on that array's bearing this long after its last fix
    bearing_sigma_deg: float = 5.0  # a held bearing's angular noise


@dataclass(eq=False)
class PositionTrack:
    id: int
    state: np.ndarray  # [x, y, vx, vy]
    cov: np.ndarray  # [shape=(4, 4)]
    z: float
    z_var: float
    born: float
    last_fix: float
    hits: int = 1
    confirmed: bool = False
    z_measured: bool = False  # some fix's elevation gave z
    links: frozenset = frozenset()  # the array tracks of its latest fix
    last_held: float = -math.inf  # when one array's bearing last held it (no fix)
    arrays: tuple[str, ...] = ()
    track_ids: tuple[int, ...] = ()
    trail: list = field(default_factory=list)

    @property
    def sigma_xy(self) -> float:
        return float(math.sqrt(max(np.linalg.eigvalsh(self.cov[:2, :2])[-1], 0.0)))


class PositionTracker:
    """``step(t, fixes)`` once per fusion step (``t``: wall seconds); ``tracks`` are the live ones."""

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self.reset()

    def reset(self) -> None:
        self.tracks: list[PositionTrack] = []
        self.next_id = 1
        self.t: float | None = None

    def _predict(self, dt: float) -> None:
        q = self.config.accel_sigma ** 2
        f = np.eye(4)
        f[0, 2] = f[1, 3] = dt
        g = np.array([[dt * dt / 2, 0], [0, dt * dt / 2], [dt, 0], [0, dt]])
        for tr in self.tracks:
            tr.state = f @ tr.state
            tr.cov = f @ tr.cov @ f.T + q * g @ g.T
            tr.z_var += self.config.z_walk_sigma ** 2 * dt

    def _cost(self, tr: PositionTrack, fix: Fix) -> float:
        s = tr.cov[:2, :2] + fix.cov_xy
        d = fix.point[:2] - tr.state[:2]
        if np.linalg.norm(d) > MAX_GATE_M:
            return math.inf
        m = float(d @ np.linalg.solve(s, d))
        if m > GATE_CHI2:
            if np.linalg.norm(d) > NEAR_M:
                return math.inf
            m = GATE_CHI2
        keys = frozenset((b.array, b.track_id) for b in fix.bearings)
        return m - (GATE_CHI2 if len(keys & tr.links) >= 2 else 0.0)  # the same array tracks: the same talker

    def _update(self, tr: PositionTrack, fix: Fix, t: float) -> None:
        h = np.zeros((2, 4))
        h[0, 0] = h[1, 1] = 1.0
        s = h @ tr.cov @ h.T + fix.cov_xy
        k = tr.cov @ h.T @ np.linalg.inv(s)
        tr.state = tr.state + k @ (fix.point[:2] - h @ tr.state)
        tr.cov = (np.eye(4) - k @ h) @ tr.cov
        speed = float(np.linalg.norm(tr.state[2:]))
        if speed > self.config.max_speed_mps:
            tr.state[2:] *= self.config.max_speed_mps / speed
        if math.isfinite(fix.sigma_z):
            r = fix.sigma_z ** 2
            gain = tr.z_var / (tr.z_var + r)
            tr.z += gain * (float(fix.point[2]) - tr.z)
            tr.z_var *= 1.0 - gain
            tr.z_measured = True
        tr.hits += 1
        tr.last_fix = t
        tr.confirmed = tr.confirmed or tr.hits >= self.config.confirm_hits
        self._remember(tr, fix)

    @staticmethod
    def _remember(tr: PositionTrack, fix: Fix) -> None:
        tr.links = frozenset((b.array, b.track_id) for b in fix.bearings)
        tr.arrays = tuple(b.array for b in fix.bearings)
        tr.track_ids = tuple(b.track_id for b in fix.bearings)

    def _birth(self, fix: Fix, t: float) -> None:
        cov = np.zeros((4, 4))
        cov[:2, :2] = fix.cov_xy
        cov[2, 2] = cov[3, 3] = 0.5 ** 2  # a walker's speed, unknown yet
        z_var = fix.sigma_z ** 2 if math.isfinite(fix.sigma_z) else 1.0
        tr = PositionTrack(self.next_id, np.array([fix.point[0], fix.point[1], 0.0, 0.0]), cov, float(fix.point[2]),
                           z_var, t, t, confirmed=self.config.confirm_hits <= 1,
                           z_measured=math.isfinite(fix.sigma_z))
        self._remember(tr, fix)
        self.next_id += 1
        self.tracks.append(tr)

    def _hold(self, tr: PositionTrack, bearing, t: float) -> bool:
        """Updates ``tr`` with one bearing (the point is on its floor line: a 1-D measurement across
        it, the range along it left to the prediction, so the uncertainty grows along the bearing);
        False, without a change, when the prediction is behind the array or outside the gate."""
        d = bearing.direction[:2]
        norm = float(np.linalg.norm(d))
        if norm < 1e-3:
            return False
        d = d / norm
        rel = tr.state[:2] - bearing.origin[:2]
        r = float(rel @ d)
        if r < 0.2:
            return False
        n = np.array([-d[1], d[0]])
        h = np.array([n[0], n[1], 0.0, 0.0])
        innovation = -float(n @ rel)  # the line through the origin: n . x = n . origin
        s = float(h @ tr.cov @ h) + (math.radians(self.config.bearing_sigma_deg) * r) ** 2
        if innovation * innovation / s > GATE_1D_CHI2 or abs(innovation) > NEAR_M:
            return False
        k = tr.cov @ h / s
        tr.state = tr.state + k * innovation
        tr.cov = (np.eye(4) - np.outer(k, h)) @ tr.cov
        tr.last_held = t
        tr.arrays, tr.track_ids = (bearing.array,), (int(bearing.track_id),)
        return True

    def step(self, t: float, fixes: list[Fix], singles=()) -> list[PositionTrack]:
        """Predicts to ``t``, assigns and applies ``fixes``, holds tracks on ``singles`` (per array
        track seen by one array only, its bearing hypotheses), births and retires; copies of the
        tracks to publish (confirmed, fixed or held within ``publish_silence_s``)."""
        if self.t is not None and t > self.t:
            self._predict(t - self.t)
        self.t = t if self.t is None else max(self.t, t)
        if self.tracks and fixes:
            cost = np.array([[self._cost(tr, fx) for fx in fixes] for tr in self.tracks])
            finite = np.where(np.isfinite(cost), cost, 1e9)
            rows, cols = linear_sum_assignment(finite)
            taken = set()
            for r, c in zip(rows, cols):
                if np.isfinite(cost[r, c]):
                    self._update(self.tracks[r], fixes[c], t)
                    taken.add(c)
            fresh = [fx for i, fx in enumerate(fixes) if i not in taken]
        else:
            fresh = list(fixes)
        if self.config.hold_s > 0 and singles:
            fixed = {id(tr) for tr in self.tracks if tr.last_fix == t}
            held: set = set()
            for tr in self.tracks:
                if not tr.confirmed or id(tr) in fixed or t - tr.last_fix > self.config.hold_s:
                    continue
                for hyps in singles:  # only an array track this position was fused from: the same talker
                    key = (hyps[0].array, hyps[0].track_id)
                    if key in tr.links and key not in held and any(self._hold(tr, h, t) for h in hyps):
                        held.add(key)
                        break
        for fx in fresh:
            if all(np.linalg.norm(fx.point[:2] - tr.state[:2]) > BIRTH_EXCLUSION_M for tr in self.tracks):
                self._birth(fx, t)
        keep: list[PositionTrack] = []
        for tr in sorted(self.tracks, key=lambda tr: tr.id):  # oldest first: the younger of a pair goes
            if t - tr.last_fix > self.config.max_silence_s or (not tr.confirmed and t - tr.last_fix > 0.5):
                continue
            if tr.confirmed and any(o.confirmed and np.linalg.norm(o.state[:2] - tr.state[:2]) < self.config.merge_m
                                    for o in keep):
                continue
            keep.append(tr)
        self.tracks = keep
        for tr in self.tracks:
            tr.trail.append((t, float(tr.state[0]), float(tr.state[1])))
            del tr.trail[:-50]
        # copies: the tracks go on changing with the next step, what this step publishes does not
        return [replace(tr, state=tr.state.copy(), cov=tr.cov.copy(), trail=list(tr.trail)) for tr in self.tracks
                if tr.confirmed and (t - tr.last_fix <= self.config.publish_silence_s or (
                    t - tr.last_held <= self.config.publish_silence_s and t - tr.last_fix <= self.config.hold_s))]

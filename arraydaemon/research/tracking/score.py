"""Scores the ``tracks`` topic against the truth of a :class:`~.scenes.TrackingScene`.

A scene is replayed through the daemon's own :class:`~arraydaemon.pipeline.Pipeline` (one hop per
block, as the capture thread delivers them) and every ``tracks`` message is encoded and decoded by
the wire module, so the scores are those of what a subscriber receives. Each message is compared
with the talkers' true directions at its capture time ``t_end``, under the geometry's ambiguity
(azimuth for planar arrays, the angle to the axis for linear ones, the great-circle angle for 3-D).

Per message, tracks and talkers are paired by the Hungarian assignment on that error, gated at
``MATCH_DEG``. Definitions (all per window, i.e. per message):

- a talker is *speaking* when its dry signal is active in the window, *present* when it spoke
  within the last ``PRESENT_S`` (the tracker's default ``max_silence_s``), *known* once it first spoke;
- **coverage** of a talker: the share of its speaking windows, from ``BIRTH_GRACE_S`` after its first
  word on, in which a track is paired with it;
- **ghost**: a track report farther than ``MATCH_DEG`` from every known talker (``ghost after 2 s``:
  of the reports from ``SETTLE_S`` on, what a noise learned online may take to learn); **duplicate**: a
  track near a known talker that another track is already paired with;
- **error**: of the paired (track, speaking talker) reports; **lag**: of walking talkers, the error
  signed positive when the track is behind (nearer where the talker was 0.1 s earlier than 0.1 s later);
- **found after**: from a talker's first word to the first message with a track paired with it;
- a talker's **dominance**: the share of the scene's active time-frequency cells its direct path
  dominates (``TrackingScene.dominance``), by which the report groups the per-talker figures;
- **MOTA / MOTP / IDF1 / id switches**: py-motmetrics (CLEAR-MOT and identity metrics) with the
  present talkers as objects and the tracks as hypotheses, distance = error, gated at ``MATCH_DEG``;
  a track paired with a talker that is known but no longer present is left out of that frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from arraydaemon.core.messages import AudioBlock
from arraydaemon.core.options import PipelineOptions
from arraydaemon.io import wire
from arraydaemon.pipeline import Pipeline
from arraydaemon.research import dataset
from arraydaemon.research.evaluate import direction_error_deg
from arraydaemon.research.tracking.scenes import ACTIVITY_FRAME_S, TrackingScene

MATCH_DEG = 15.0
PRESENT_S = 1.5
BIRTH_GRACE_S = 0.3
SETTLE_S = 2.0  # "ghost reports after 2 s": what an online noise estimate is allowed to learn from
MIN_SPEED_DPS = 1.0  # slower counts as standing (lags are of walking talkers)
MOT_METRICS = ["mota", "motp", "idf1", "num_switches", "num_objects", "num_false_positives", "num_misses",
               "num_matches"]


@dataclass
class TalkerScore:
    scene: str
    talker: int
    speed_dps: float
    dominance: float = math.nan  # share of the active time-frequency cells it dominates (NaN: unknown)
    alone: bool = False  # the scene's only talker
    speaking_windows: int = 0
    covered_windows: int = 0
    found_after_s: float = math.inf
    errors: list = field(default_factory=list)
    lags: list = field(default_factory=list)  # (signed lag, speed at that time)

    @property
    def coverage(self) -> float:
        return self.covered_windows / self.speaking_windows if self.speaking_windows else math.nan


@dataclass
class SceneScore:
    scene: str
    geometry: str
    mics: int
    rt60: float
    talkers: list[TalkerScore]
    reports: int = 0  # track entries over all messages
    ghosts: int = 0
    duplicates: int = 0
    duplicate_windows: int = 0  # messages with two tracks on one talker
    messages: int = 0
    late_reports: int = 0  # track entries from SETTLE_S on
    late_ghosts: int = 0
    mot: dict = field(default_factory=dict)  # motmetrics summary of this scene
    accumulator: object = None  # its motmetrics.MOTAccumulator
    kind: str = "planar"  # the geometry's kind, and its normal (planar) or axis (linear)
    orient: tuple = ()
    track_log: list = field(default_factory=list)  # (t, id, azimuth) per report, for plots
    truth_log: list = field(default_factory=list)  # (t, talker, azimuth, speaking)


def tracks_messages(scene: TrackingScene, options: PipelineOptions):
    """Replays ``scene`` through the pipeline: ``(t_end, [(id, vector), ...])`` per ``tracks`` message,
    as a subscriber decodes it."""
    profile = dataset.geometry_profile(scene.mics, "tracking")
    pipeline = Pipeline(profile, options)
    hop = pipeline.layout.hop_samples
    audio = scene.audio.astype(np.float32)
    for seq, start in enumerate(range(0, len(audio) - hop + 1, hop)):
        block = AudioBlock(seq, dataset.SAMPLE_RATE, start / dataset.SAMPLE_RATE, 0.0, audio[start:start + hop])
        for result in pipeline.process(block):
            for topic, payload in result.payloads:
                if topic == "tracks":
                    _, message = wire.receive(wire.encode(topic, payload))
                    yield profile, float(message["t_end"]), [(int(t["id"]), np.array([t["x"], t["y"], t["z"]]))
                                                            for t in message["tracks"]]


def _pair(cost: np.ndarray) -> list[tuple[int, int]]:
    """Gated Hungarian pairs (row, col) of an error matrix."""
    if cost.size == 0:
        return []
    big = 1e6
    gated = np.where(cost <= MATCH_DEG, cost, big)
    rows, cols = linear_sum_assignment(gated)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if gated[r, c] < big]


def score_scene(scene: TrackingScene, options: PipelineOptions, messages=None) -> SceneScore:
    """Replays and scores one scene (see the module doc); ``messages``: tracks to score instead of the
    pipeline's, ``(profile, t_end, [(id, vector), ...])`` per window as :func:`tracks_messages` gives
    them (e.g. ODAS's: ``research/tracking/peer.py``)."""
    import motmetrics

    accumulator = motmetrics.MOTAccumulator(auto_id=True)
    dominance = scene.dominance if scene.dominance is not None else np.full(scene.talkers, math.nan)
    talkers = [TalkerScore(scene.name, k, float(scene.speeds_dps[k]), float(dominance[k]), scene.talkers == 1)
               for k in range(scene.talkers)]
    first_word = np.array([np.argmax(row) * ACTIVITY_FRAME_S if row.any() else math.inf for row in scene.speaking])
    out = None
    window_s = options.features.window_s
    for profile, t, tracks in (tracks_messages(scene, options) if messages is None else messages):
        if out is None:
            g = profile.geometry
            orient = g.normal if g.kind == "planar" else g.axis
            out = SceneScore(scene.name, scene.geometry, len(scene.mics), scene.rt60, talkers, kind=g.kind,
                             orient=tuple(float(v) for v in (orient if orient is not None else ())))

        def error(vector, truth):
            return direction_error_deg(vector, truth, g.kind, orient)

        truth = scene.directions_at(t)
        before, after = scene.directions_at(t - 0.1), scene.directions_at(t + 0.1)
        speaking = scene.speaking_in(t - window_s, t)
        silent_for = scene.last_spoke(t)
        known = first_word <= t
        present = known & (silent_for <= PRESENT_S)
        out.messages += 1
        cost = np.array([[error(v, truth[k]) if known[k] else np.inf for k in range(scene.talkers)]
                         for _, v in tracks]).reshape(len(tracks), scene.talkers)
        pairs = _pair(cost)
        paired_track = {i: k for i, k in pairs}
        near_any = (cost <= MATCH_DEG).any(axis=1) if len(tracks) else np.zeros(0, dtype=bool)
        out.reports += len(tracks)
        out.ghosts += int(np.sum(~near_any))
        if t >= SETTLE_S:
            out.late_reports += len(tracks)
            out.late_ghosts += int(np.sum(~near_any))
        dup = int(np.sum(near_any)) - len(pairs)
        out.duplicates += dup
        out.duplicate_windows += int(dup > 0)
        for i, k in pairs:
            tk = talkers[k]
            if tk.found_after_s == math.inf:
                tk.found_after_s = t - first_word[k]
            if speaking[k]:
                tk.errors.append(cost[i, k])
                # angular speed around t (°/s) from the directions 0.1 s either side
                speed = float(np.degrees(np.arccos(np.clip(before[k] @ after[k], -1.0, 1.0)))) / 0.2
                if speed > MIN_SPEED_DPS:
                    behind = error(tracks[i][1], before[k]) < error(tracks[i][1], after[k])
                    tk.lags.append((cost[i, k] if behind else -cost[i, k], speed))
        for k in range(scene.talkers):
            if speaking[k] and t >= first_word[k] + BIRTH_GRACE_S:
                talkers[k].speaking_windows += 1
                talkers[k].covered_windows += int(any(kk == k for kk in paired_track.values()))
        # CLEAR-MOT frame: present talkers vs the tracks not sitting on a known-but-long-silent talker
        objects = [k for k in range(scene.talkers) if present[k]]
        hyps = [i for i in range(len(tracks)) if not (i in paired_track and not present[paired_track[i]])]
        dist = np.array([[cost[i, k] if cost[i, k] <= MATCH_DEG else np.nan for i in hyps] for k in objects])
        accumulator.update(objects, [tracks[i][0] for i in hyps], dist.reshape(len(objects), len(hyps)))
        for track_id, v in tracks:
            out.track_log.append((t, track_id, v))
        for k in range(scene.talkers):
            out.truth_log.append((t, k, truth[k], bool(speaking[k])))
    if out is None:
        raise ValueError(f"{scene.name}: too short for one window")
    summary = motmetrics.metrics.create().compute(accumulator, metrics=MOT_METRICS, name="scene")
    out.mot = {k: float(summary[k].iloc[0]) for k in summary.columns}
    out.accumulator = accumulator
    return out


def talker_figures(talkers: list[TalkerScore]) -> dict:
    """The per-talker figures (coverage, share covered ≥ 70 %, error, lag, found after) over ``talkers``
    that spoke."""
    talkers = [tk for tk in talkers if tk.speaking_windows > 0]
    coverage = np.array([tk.coverage for tk in talkers])
    errors = np.concatenate([tk.errors for tk in talkers]) if talkers else np.zeros(0)
    lags = np.array([lag for tk in talkers for lag in tk.lags]).reshape(-1, 2)
    at_30 = lags[(lags[:, 1] >= 20) & (lags[:, 1] <= 40), 0]
    found = np.array([tk.found_after_s for tk in talkers])
    return {
        "talkers": len(talkers),
        "coverage_pct": 100.0 * float(np.mean(coverage)) if len(coverage) else math.nan,
        "covered_70_pct": 100.0 * float(np.mean(coverage >= 0.7)) if len(coverage) else math.nan,
        "median_error_deg": float(np.median(errors)) if errors.size else math.nan,
        "lag_30_deg": float(np.median(at_30)) if at_30.size else math.nan,
        "lag_all_movers_deg": float(np.median(lags[:, 0])) if lags.size else math.nan,
        "found_median_s": float(np.median(found)) if found.size else math.nan,
        "found_025_pct": 100.0 * float(np.mean(found <= 0.25 + 1e-9)) if found.size else math.nan,
    }


def summarize(scores: list[SceneScore]) -> dict:
    """One row of figures over ``scores`` (see the module doc); MOT figures over all frames of all scenes."""
    import motmetrics

    talkers = [tk for s in scores for tk in s.talkers if tk.speaking_windows > 0]
    reports = sum(s.reports for s in scores)
    summary = motmetrics.metrics.create().compute_many(
        [s.accumulator for s in scores], metrics=MOT_METRICS, names=[s.scene for s in scores], generate_overall=True)
    overall = summary.loc["OVERALL"]
    # MOTP over all matches (motmetrics' overall row is NaN when one scene has no match)
    per_scene = summary.drop(index="OVERALL")
    matched = per_scene[per_scene["num_matches"] > 0]
    motp = float((matched["motp"] * matched["num_matches"]).sum() / matched["num_matches"].sum()) \
        if len(matched) else math.nan
    return {
        "scenes": len(scores),
        **talker_figures(talkers),
        "id_switches": int(overall["num_switches"]),
        "switches_per_10": 10.0 * float(overall["num_switches"]) / max(len(talkers), 1),
        "ghost_pct": 100.0 * sum(s.ghosts for s in scores) / max(reports, 1),
        "ghost_late_pct": 100.0 * sum(s.late_ghosts for s in scores) / max(sum(s.late_reports for s in scores), 1),
        "duplicate_pct": 100.0 * sum(s.duplicates for s in scores) / max(reports, 1),
        "mota": float(overall["mota"]),
        "motp_deg": motp,
        "idf1": float(overall["idf1"]),
    }

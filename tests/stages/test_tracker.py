"""The tracker stage: on pyroomacoustics scenes through the real Pipeline (two talkers, one walking a
90° arc; a talker falling silent; noise only), and on hand-made detection sequences for the rules
that scenes exercise only by chance (azimuth wrap, birth, death, ids, ghosts)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from arraydaemon.core import grids
from arraydaemon.core.angles import azimuth_difference
from arraydaemon.core.grids import source_direction as make_source
from arraydaemon.core.messages import Estimate
from arraydaemon.core.options import PipelineOptions, TrackerConfig
from arraydaemon.core.profiles import load_profile
from arraydaemon.io import wire
from arraydaemon.research import simulate
from arraydaemon.stages.tracker import Tracker
from tests.helpers import run_pipeline as run_stages

FS = 16000
PROFILE = "respeaker_6mic_hat"  # 6 mics, 16 kHz
WINDOW_S = 0.25


def run_pipeline(audio: np.ndarray, options: PipelineOptions = PipelineOptions(estimator="srp-phat")):
    """WindowResults of ``audio [shape=(samples, mics)]`` fed in hop-sized blocks, as replay does."""
    return run_stages(load_profile(PROFILE), audio, options, blocks="hop", wall_time0=1.7e9)[1]


def track_ids(results) -> set[int]:
    return {t.id for r in results for t in r.tracks.tracks}


def nearest_track(tracks, azimuth_deg: float, within_deg: float = 20.0):
    best = min(tracks.tracks, key=lambda t: azimuth_difference(t.azimuth_deg, azimuth_deg), default=None)
    if best is None or azimuth_difference(best.azimuth_deg, azimuth_deg) > within_deg:
        return None
    return best


# --- scenes ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def walking_scene():
    """A talker walking from +20° to +110° over 5 s while another talks at -75°, RT60 0.3 s."""
    rng = np.random.default_rng(515)
    mics = load_profile(PROFILE).mics
    walker = simulate.speech_source(rng, 6.0, FS)
    talker = simulate.speech_source(rng, 6.0, FS)
    scene = simulate.moving_source_scene(
        mics, walker, [(0.5, 20.0, 5.0), (5.5, 110.0, 5.0)], sample_rate=FS, rt60=0.3, rng=rng,
        static_sources=[simulate.SourceSpec(talker, -75.0, 10.0, 1.8)], distance_m=1.5,
        room_dim=(6.0, 5.0, 3.0), array_centre=np.array([3.0, 2.4, 1.2]), snr_db=25.0, max_order=10)
    return scene, run_pipeline(scene.scene.audio)


@pytest.mark.sim
def test_two_talkers_one_walking_two_stable_tracks(walking_scene):
    scene, results = walking_scene
    static_az = scene.scene.sources[0][0]
    assert len(results) >= 55
    assert len(track_ids(results)) == 2, [[(t.id, round(t.azimuth_deg)) for t in r.tracks.tracks] for r in results]
    ids = {"walker": [], "talker": []}
    errors = {"walker": [], "talker": []}
    rates = {"walker": [], "talker": []}
    for r in results:
        t_mid = r.tracks.t_end - WINDOW_S / 2
        if t_mid < 1.0:
            continue  # tracks are born after a few detections
        truth = {"walker": float(scene.direction_at(t_mid)[0]), "talker": static_az}
        for name, az in truth.items():
            track = nearest_track(r.tracks, az)
            if track is not None:
                ids[name].append(track.id)
                errors[name].append(azimuth_difference(track.azimuth_deg, az))
                rates[name].append(track.azimuth_rate_dps)
    for name in ids:
        assert len(ids[name]) >= 0.8 * (len(results) - 12), f"{name} tracked in only {len(ids[name])} windows"
        assert len(set(ids[name])) == 1, f"{name}: ids {sorted(set(ids[name]))} (an id swap or a re-birth)"
        assert np.median(errors[name]) <= 10.0, f"{name}: median error {np.median(errors[name]):.1f}°"
    assert set(ids["walker"]) != set(ids["talker"])
    # 90° in 5 s: the walker's track moves counter-clockwise at about 18°/s, the talker's stays put
    assert 9.0 <= np.median(rates["walker"]) <= 27.0, np.median(rates["walker"])
    assert abs(np.median(rates["talker"])) <= 4.0, np.median(rates["talker"])


@pytest.mark.sim
def test_tracks_topic_every_window_follows_the_schema(walking_scene):
    _, results = walking_scene
    for r in results:
        topics = [topic for topic, _ in r.payloads]
        assert topics[0] == "doa" and topics[-1] == "tracks"
        payload = dict(r.payloads)["tracks"]
        wire.validate("tracks", payload)
        wire.encode("tracks", payload)  # refuses NaN/Inf
        assert payload["seq"] == r.estimate.seq and payload["t_end"] == r.estimate.t_end
        assert payload["ambiguity"] == "up-down"
        assert [t["id"] for t in payload["tracks"]] == sorted(t["id"] for t in payload["tracks"])
        for t in payload["tracks"]:
            assert math.isclose(math.hypot(t["x"], t["y"], t["z"]), 1.0, abs_tol=1e-9)
            assert t["elevation_deg"] >= -1e-9  # planar array: the upper side
            assert 0.0 <= t["activity"] <= 1.0 and t["age_s"] >= t["silent_s"] >= 0.0


@pytest.fixture(scope="module")
def falling_silent_scene():
    """Two talkers (+40°, -100°); the second stops at 3.0 s. RT60 0.35 s."""
    rng = np.random.default_rng(616)
    mics = load_profile(PROFILE).mics
    first = simulate.speech_source(rng, 6.5, FS)
    second = simulate.speech_source(rng, 6.5, FS)
    second[int(3.0 * FS):] = 0.0
    talkers = [simulate.SourceSpec(first, 40.0, 5.0, 1.5), simulate.SourceSpec(second, -100.0, 5.0, 1.8)]
    scene = simulate.room_scene(mics, talkers, sample_rate=FS, rt60=0.35, rng=rng, room_dim=(6.0, 5.0, 3.0),
                                array_centre=np.array([3.0, 2.5, 1.2]), snr_db=25.0, max_order=10)
    return scene


@pytest.mark.sim
@pytest.mark.parametrize("max_silence_s", [1.0, 2.0])
def test_talker_falling_silent_is_retired_within_the_configured_time(falling_silent_scene, max_silence_s):
    scene = falling_silent_scene
    (az_first, _, _), (az_second, _, _) = scene.sources
    options = PipelineOptions(estimator="srp-phat", tracker=TrackerConfig(max_silence_s=max_silence_s))
    results = run_pipeline(scene.audio, options)
    before = [nearest_track(r.tracks, az_second) for r in results if 2.0 <= r.tracks.t_end <= 3.0]
    second_ids = {t.id for t in before if t is not None}
    assert len(second_ids) == 1, second_ids
    (second_id,) = second_ids
    last_seen = max(r.tracks.t_end for r in results if second_id in {t.id for t in r.tracks.tracks})
    # The last window holding speech ends 0.25 s after 3.0 s, the room rings for RT60 0.35 s; the
    # track must be gone max_silence_s later (plus a hop).
    assert 3.0 < last_seen <= 3.0 + WINDOW_S + 0.35 + max_silence_s + 0.1, last_seen
    assert results[-1].tracks.t_end > last_seen + 1.0
    # nothing takes its place, and the other talker keeps one track throughout
    assert all(nearest_track(r.tracks, az_second) is None for r in results if r.tracks.t_end > last_seen)
    first_ids = {t.id for r in results if r.tracks.t_end > 1.0 for t in [nearest_track(r.tracks, az_first)] if t}
    assert len(first_ids) == 1 and second_id not in first_ids
    assert len(track_ids(results)) == 2


@pytest.mark.parametrize("kind", ["diffuse", "sensor"])
def test_noise_only_scene_has_no_track(kind):
    # Diffuse room noise is coherent at low frequencies, so its SRP is high but flat; the localizer's
    # prominence gate and the tracker's birth rule must keep it from ever forming a track.
    rng = np.random.default_rng(717 if kind == "diffuse" else 718)
    mics = load_profile(PROFILE).mics
    audio = 0.002 * rng.standard_normal((6 * FS, len(mics))).astype(np.float32)
    if kind == "diffuse":
        audio += 0.02 * simulate.diffuse_noise(mics, 6 * FS, FS, rng, spectrum="pink")
    results = run_pipeline(audio)
    assert len(results) >= 55 and all(r.estimate.level_db > -60 for r in results)
    assert track_ids(results) == set()
    assert all(dict(r.payloads)["tracks"]["tracks"] == [] for r in results)


# --- rules, on hand-made detection sequences -------------------------------------------------


def detections(t: float, azimuths, seq: int) -> Estimate:
    sources = tuple(make_source(simulate.direction_vector(az, 0.0), 0.5) for az in azimuths)
    return Estimate(seq=seq, sample_rate=FS, t_end=t, wall_time=1.7e9 + t, estimator="srp-phat",
                    sources=sources, level_db=-30.0)


def feed(tracker: Tracker, schedule, hop: float = 0.1):
    """Run ``schedule(t) -> azimuths`` through ``tracker`` for each window; returns the Tracks."""
    out, t, seq = [], hop, 0
    while True:
        azimuths = schedule(round(t, 6))
        if azimuths is None:
            return out
        out.append(tracker.process(detections(t, azimuths, seq)))
        t += hop
        seq += 1


def test_a_source_crossing_180_degrees_keeps_its_track_and_positive_rate():
    tracker = Tracker(load_profile(PROFILE).geometry)
    # 150° → 210° (= -150°) at 20°/s, through the ±180° seam
    out = feed(tracker, lambda t: None if t > 3.0 else [150.0 + 20.0 * t])
    assert {tr.id for o in out for tr in o.tracks} == {1}
    last = out[-1].tracks[0]
    assert azimuth_difference(last.azimuth_deg, 210.0) <= 2.0
    assert last.azimuth_rate_dps == pytest.approx(20.0, abs=2.0)
    assert last.angular_speed_dps == pytest.approx(20.0, abs=2.0)


def test_birth_needs_consistent_detections_and_ids_are_never_reused():
    cfg = TrackerConfig(max_silence_s=1.0, recall_s=0.5)
    tracker = Tracker(load_profile(PROFILE).geometry, cfg)

    def schedule(t):
        if t > 8.5:
            return None
        if t <= 0.25:
            return [30.0]  # two detections: not enough for a track (3 of 5)
        if 1.0 <= t <= 3.0:
            return [30.0]  # a source at 30° ...
        if 5.0 <= t <= 7.0:
            return [30.0]  # ... and again, after it was retired: a new id
        return []

    out = feed(tracker, schedule)
    alive = [(round(o.t_end, 2), [tr.id for tr in o.tracks]) for o in out]
    assert all(ids == [] for t, ids in alive if t < 1.0)
    assert all(ids == [1] for t, ids in alive if 1.25 <= t <= 3.0)
    # hidden max_silence_s after its last detection, retired recall_s later, then reborn as 2 (1 is never reused)
    gone = min(t for t, ids in alive if t > 3.0 and ids == [])
    assert 3.0 + cfg.max_silence_s - 0.05 <= gone <= 3.0 + cfg.max_silence_s + 0.15
    assert all(ids == [2] for t, ids in alive if 5.25 <= t <= 7.0)
    assert out[-1].tracks == ()


@pytest.mark.parametrize("recall_s, same_id", [(2.0, True), (0.0, False)])
def test_a_talker_hidden_longer_than_max_silence_is_found_again_with_its_id(recall_s, same_id):
    """Undetected for 2.2 s (louder talkers hid it): not published after max_silence_s, and found
    again within recall_s it continues with its id; without recall it is a new track."""
    cfg = TrackerConfig(max_silence_s=1.5, recall_s=recall_s)
    tracker = Tracker(load_profile(PROFILE).geometry, cfg)
    other = [-100.0]

    def schedule(t):
        if t > 7.0:
            return None
        return other + [40.0] if t <= 2.0 or t >= 4.2 else other

    out = feed(tracker, schedule)
    near = [(round(o.t_end, 2), [tr.id for tr in o.tracks if azimuth_difference(tr.azimuth_deg, 40.0) < 10.0])
            for o in out]
    first = {i for t, ids in near if 0.5 <= t <= 2.0 for i in ids}
    assert len(first) == 1
    assert all(ids == [] for t, ids in near if 3.6 <= t < 4.2)  # dormant: not published
    again = {i for t, ids in near if t >= 4.6 for i in ids}
    assert len(again) == 1
    assert (again == first) is same_id
    assert len({tr.id for o in out for tr in o.tracks if azimuth_difference(tr.azimuth_deg, -100.0) < 10.0}) == 1


def test_sporadic_detections_do_not_keep_a_ghost_alive():
    tracker = Tracker(load_profile(PROFILE).geometry, TrackerConfig(max_silence_s=1.5))

    def schedule(t):
        if t > 12.0:
            return None
        if t <= 1.0:
            return [-60.0]  # a real source for a second
        k = round(t * 10)
        return [-60.0] if k % 12 == 0 else []  # then one stray detection every 1.2 s

    out = feed(tracker, schedule)
    alive_until = max(o.t_end for o in out if o.tracks)
    # Its second of detections supports it for support_windows windows (a talker's first word after a
    # pause refreshes it); then stray hits no longer refresh it, and it goes max_silence_s later.
    supported = 1.0 + TrackerConfig().support_windows * 0.1
    assert alive_until <= supported + 1.5 + 0.15, alive_until
    assert all(o.tracks == () for o in out if o.t_end > alive_until)


def test_two_crossing_paths_far_apart_in_elevation_are_compared_in_plane():
    # A planar array's elevation is poor: detections of one source jumping 30° in elevation must
    # still associate with its track (no duplicate track).
    tracker = Tracker(load_profile(PROFILE).geometry)
    out = []
    for k in range(40):
        el = 30.0 if k % 2 else 0.0
        src = (make_source(simulate.direction_vector(-45.0, el), 0.5),)
        out.append(tracker.process(Estimate(k, FS, 0.1 * (k + 1), 0.0, "srp-phat", src, -30.0)))
    assert {tr.id for o in out for tr in o.tracks} == {1}


def test_linear_array_track_stays_on_the_reported_side_when_a_source_passes_behind():
    # ps3_eye is a line along y: a talker walking from +40° to +140° is reported mirrored into the
    # front half-plane (+40° → +90° → +40°); the track follows the fold instead of leaving the side.
    profile = load_profile("ps3_eye")
    tracker = Tracker(profile.geometry)
    out = []
    for k in range(50):
        truth = simulate.direction_vector(40.0 + 2.0 * k, 0.0)  # 20°/s
        reported = grids.fold(truth, profile.geometry)
        src = (make_source(reported, 0.5),)
        out.append((reported, tracker.process(Estimate(k, FS, 0.1 * (k + 1), 0.0, "srp-phat", src, -30.0))))
    assert {tr.id for _, o in out for tr in o.tracks} == {1}
    for reported, o in out[5:]:
        (track,) = o.tracks
        v = np.array(track.vector)
        np.testing.assert_allclose(grids.fold(v, profile.geometry), v, atol=1e-9)
        assert math.degrees(math.acos(min(1.0, float(v @ reported)))) <= 6.0


def test_config_validation():
    with pytest.raises(ValueError, match="birth_hits"):
        Tracker(load_profile(PROFILE).geometry, TrackerConfig(birth_hits=6, birth_windows=5))
    with pytest.raises(ValueError, match="max_silence_s"):
        TrackerConfig(max_silence_s=0.0).validate()


def test_two_talkers_passing_each_other_keep_their_ids():
    # -30° → +30° and +30° → -30° at 12°/s, both detected every window: they sit within the merge
    # distance (10°) for longer than merge_s, but their motions differ, so neither is a duplicate.
    tracker = Tracker(load_profile(PROFILE).geometry)
    out = feed(tracker, lambda t: None if t > 6.5 else [-30.0 + 12.0 * min(max(t - 0.5, 0), 5.0),
                                                        30.0 - 12.0 * min(max(t - 0.5, 0), 5.0)])
    assert {tr.id for o in out for tr in o.tracks} == {1, 2}
    first = {tr.id: tr.azimuth_deg for tr in out[5].tracks}
    last = {tr.id: tr.azimuth_deg for tr in out[-1].tracks}
    # each id ends on the side opposite to where it started
    assert all(math.copysign(1, first[i]) != math.copysign(1, last[i]) for i in (1, 2)), (first, last)


def test_a_source_found_again_after_a_short_miss_keeps_its_id():
    # Detected at 30°, missed for 1.2 s while it moves on, found again 25° further: the new
    # detections would confirm a new track, which instead continues the lost one.
    tracker = Tracker(load_profile(PROFILE).geometry)

    def schedule(t):
        if t > 4.0:
            return None
        if 1.0 < t <= 2.2:
            return []
        return [30.0] if t <= 1.0 else [55.0]

    out = feed(tracker, schedule)
    assert {tr.id for o in out for tr in o.tracks} == {1}
    assert azimuth_difference(out[-1].tracks[0].azimuth_deg, 55.0) <= 3.0


def test_published_direction_is_predicted_to_the_window_end():
    # Detections lag the window end by half a window (a window shows where its source was on
    # average); with lead_s the published track is where the source is at t_end.
    def schedule(t):
        return None if t > 3.0 else [20.0 * (t - WINDOW_S / 2)]

    geometry = load_profile(PROFILE).geometry
    plain = feed(Tracker(geometry), schedule)[-1].tracks[0].azimuth_deg
    led = feed(Tracker(geometry, lead_s=WINDOW_S / 2), schedule)[-1].tracks[0].azimuth_deg
    truth = 20.0 * 3.0
    assert azimuth_difference(led, truth) <= 0.5 < azimuth_difference(plain, truth)

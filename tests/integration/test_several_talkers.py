"""Several talkers through the real pipeline with the default (neural) estimator, on pyroomacoustics
rooms and espeak-ng speech (issue 14's tests): a walker at 30°/s followed without lag and without an id
switch, a talker pausing for a second keeping its id, a talker next to a wall giving one track, a
talker tracked and a fan not, and never two detections of one source in a window."""

from __future__ import annotations

import numpy as np
import pytest

from arraydaemon.core.angles import azimuth_difference
from arraydaemon.core.options import PipelineOptions
from arraydaemon.core.profiles import load_profile
from arraydaemon.research import simulate
from tests.helpers import run_pipeline

pytestmark = pytest.mark.sim

FS = 16000
PROFILE = "respeaker_6mic_hat"
OPTIONS = PipelineOptions(estimator="neural")


def _run(audio):
    return run_pipeline(load_profile(PROFILE), audio, OPTIONS, blocks="hop")[1]


def _nearest(tracks, azimuth_deg, within=15.0):
    best = min(tracks.tracks, key=lambda t: azimuth_difference(t.azimuth_deg, azimuth_deg), default=None)
    return best if best is not None and azimuth_difference(best.azimuth_deg, azimuth_deg) <= within else None


@pytest.fixture(scope="module")
def walker_scene():
    """A talker walking -60° → +60° at 30°/s (1.0–5.0 s) while another talks at 150°, RT60 0.3 s."""
    rng = np.random.default_rng(1414)
    mics = load_profile(PROFILE).mics
    walker, talker = simulate.speech_source(rng, 6.5, FS), simulate.speech_source(rng, 6.5, FS)
    scene = simulate.moving_source_scene(
        mics, walker, [(1.0, -60.0, 5.0), (5.0, 60.0, 5.0)], sample_rate=FS, rt60=0.3, rng=rng,
        static_sources=[simulate.SourceSpec(talker, 150.0, 10.0, 1.8)], distance_m=1.5, room_dim=(6.0, 5.0, 3.0),
        array_centre=np.array([3.0, 2.4, 1.2]), snr_db=25.0, max_order=10)
    return scene, _run(scene.scene.audio)


def test_walker_at_30_dps_is_followed_without_lag_and_keeps_its_id(walker_scene):
    scene, results = walker_scene
    ids, lags = set(), []
    for r in results:
        t = r.tracks.t_end
        if not 1.8 <= t <= 4.8:  # walking, after the first second of it
            continue
        truth, _ = scene.direction_at(t)
        track = _nearest(r.tracks, float(truth))
        if track is None:
            continue
        ids.add(track.id)
        lags.append(((float(truth) - track.azimuth_deg + 180.0) % 360.0) - 180.0)  # > 0: behind
    assert len(lags) >= 0.7 * 30, len(lags)  # followed in most of the 3 s
    assert len(ids) == 1, ids
    assert abs(float(np.median(lags))) <= 5.0, np.median(lags)
    static = {_nearest(r.tracks, 150.0).id for r in results if r.tracks.t_end >= 1.0 and _nearest(r.tracks, 150.0)}
    assert len(static) == 1, static


def test_no_window_reports_one_source_twice(walker_scene):
    _, results = walker_scene
    for r in results:
        for sources in (r.estimate.sources, r.estimate.detections or ()):
            vectors = np.array([s.vector for s in sources]).reshape(-1, 3)
            for i in range(len(vectors)):
                for j in range(i):
                    assert azimuth_difference(sources[i].azimuth_deg, sources[j].azimuth_deg) >= 20.0


def test_talker_pausing_for_a_second_keeps_its_id():
    # Three talkers at -110°, 0°, 110°; the one at 0° is silent from 2.5 to 3.5 s.
    rng = np.random.default_rng(2727)
    mics = load_profile(PROFILE).mics
    signals = [simulate.speech_source(rng, 6.0, FS) for _ in range(3)]
    signals[1][int(2.5 * FS):int(3.5 * FS)] = 0.0
    specs = [simulate.SourceSpec(s, az, 5.0, d) for s, az, d in zip(signals, (-110.0, 0.0, 110.0), (1.6, 1.4, 1.8))]
    scene = simulate.room_scene(mics, specs, sample_rate=FS, rt60=0.3, rng=rng, room_dim=(6.0, 5.0, 3.0),
                                array_centre=np.array([3.0, 2.5, 1.2]), snr_db=25.0, max_order=10)
    results = _run(scene.audio)
    az = scene.sources[1][0]
    before = {t.id for r in results if 1.5 <= r.tracks.t_end <= 2.5 and (t := _nearest(r.tracks, az))}
    after = {t.id for r in results if 4.0 <= r.tracks.t_end <= 5.0 and (t := _nearest(r.tracks, az))}
    assert len(before) == 1 and before == after, (before, after)


def test_talker_next_to_a_wall_gives_one_track():
    # The array 0.6 m from a wall, the talker 1.2 m away along it: the wall's image is a strong
    # early reflection 0.6 + 0.6 m off the direct path.
    rng = np.random.default_rng(3131)
    mics = load_profile(PROFILE).mics
    talker = simulate.speech_source(rng, 6.0, FS)
    scene = simulate.room_scene(mics, [simulate.SourceSpec(talker, 90.0, 0.0, 1.2)], sample_rate=FS, rt60=0.4,
                                rng=rng, room_dim=(5.0, 4.0, 3.0), array_centre=np.array([2.5, 0.6, 1.2]),
                                snr_db=25.0, max_order=10)
    results = _run(scene.audio)
    ids = {t.id for r in results for t in r.tracks.tracks}
    assert len(ids) == 1, [[(t.id, round(t.azimuth_deg)) for t in r.tracks.tracks] for r in results]


def test_a_fan_in_the_room_is_learned_and_the_talker_tracked():
    # A machine noise 1 m away (stationary_noise_source, 10 dB below the talker's level in the
    # benchmark's terms) and a talker 1.5 m away. Without the stationary noise field the fan was
    # detected in every window and the talker never tracked. With it, once learned, the fan's cells
    # are not evidence: a detection leaks now and then (on five such rooms, 0-4 of the 15 windows
    # after 4.5 s), which the tracker's support rule can still hold a track on.
    rng = np.random.default_rng(77)
    profile = load_profile(PROFILE)
    talker = simulate.speech_source(rng, 6.0, FS)
    fan = simulate.stationary_noise_source(rng, 6.0, FS) * 0.1 * 10 ** (-10 / 20)
    scene = simulate.room_scene(
        profile.mics, [simulate.SourceSpec(talker, 40.0, 10.0, 1.5), simulate.SourceSpec(fan, -100.0, -10.0, 1.0)],
        sample_rate=FS, rt60=0.4, rng=rng, room_dim=(6.0, 5.0, 3.0), array_centre=np.array([3.0, 2.4, 1.2]),
        snr_db=30.0)
    results = _run(scene.audio)
    after_learning = [r for r in results if r.tracks.t_end >= 4.5]
    on_fan = sum(any(azimuth_difference(d.azimuth_deg, -100.0) <= 20.0 for d in r.estimate.detections)
                 for r in after_learning)
    assert on_fan <= len(after_learning) / 3, (on_fan, len(after_learning))
    speaking = [r for r in results if r.tracks.t_end >= 1.0]
    tracked = sum(_nearest(r.tracks, 40.0) is not None for r in speaking)
    assert tracked >= 0.6 * len(speaking), (tracked, len(speaking))

"""Temporal integration in the localizers (``LocalizerConfig.integration_s``): off, it is the
per-window localizer; on, it is causal, forgets on reset, sharpens a talker in a reverberant room
and follows a change of talker within a window or two. Real pyroomacoustics rooms, espeak-ng speech."""

from __future__ import annotations

import numpy as np
import pytest

from arraydaemon.core.angles import azimuth_difference, wrap_azimuth
from arraydaemon.core.options import INTEGRATION_S, LocalizerConfig, PipelineOptions
from arraydaemon.core.profiles import load_profile
from arraydaemon.localizers.srp_phat import SrpPhatLocalizer
from arraydaemon.research import simulate
from tests.helpers import feature_windows, needs_weights, run_pipeline

pytestmark = pytest.mark.sim  # every scene here is a pyroomacoustics room with espeak-ng speech

FS = 16000


def estimates(profile, audio: np.ndarray, estimator: str, integration_s: float):
    options = PipelineOptions(estimator=estimator, localizer=LocalizerConfig(integration_s=integration_s))
    return [r.estimate for r in run_pipeline(profile, audio, options, wall_time0=0.0)[1]]


@pytest.fixture(scope="module")
def reverberant_scene(speech):
    profile = load_profile("respeaker_4mic_hat")
    scene = simulate.room_scene(profile.mics, [simulate.SourceSpec(speech, -140.0, 20.0, 2.0)], sample_rate=FS,
                                rt60=0.8, snr_db=10.0, rng=np.random.default_rng(760))
    return profile, scene


def test_without_integration_each_window_is_localized_on_its_own_and_reset_forgets(reverberant_scene):
    profile, scene = reverberant_scene
    feats, windows = feature_windows(profile, scene.audio)
    layout = feats.layout
    per_window = SrpPhatLocalizer(profile, layout, LocalizerConfig(integration_s=0.0))
    integrating = SrpPhatLocalizer(profile, layout, LocalizerConfig())
    differs = 0
    for k, window in enumerate(windows):
        alone = SrpPhatLocalizer(profile, layout, LocalizerConfig()).process(window)  # a fresh one: no past
        streamed = per_window.process(window)
        assert streamed.sources == SrpPhatLocalizer(profile, layout, LocalizerConfig(integration_s=0.0)).process(
            window).sources
        np.testing.assert_array_equal(streamed.spectrum, alone.spectrum)
        remembered = integrating.process(window)
        differs += not np.array_equal(remembered.spectrum, alone.spectrum)
        if k == 10:
            integrating.reset()
            again = integrating.process(window)
            np.testing.assert_array_equal(again.spectrum, alone.spectrum)
            assert again.sources == alone.sources
    assert differs >= len(windows) - 3  # only the first window (and the one after reset) has no past


@needs_weights
@pytest.mark.parametrize("estimator", ["neural", "srp-phat"])
def test_integration_sharpens_a_talker_in_a_reverberant_room(reverberant_scene, estimator):
    # RT60 0.8 s, SNR 10 dB, a 4.6 cm array: a single 250 ms window is often wrong; the integral of
    # the talker's direct path over the last windows is not.
    profile, scene = reverberant_scene
    true_az = scene.sources[0][0]
    scores = {}
    for tau in (0.0, INTEGRATION_S):
        ests = estimates(profile, scene.audio, estimator, tau)
        errors = np.array([azimuth_difference(e.sources[0].azimuth_deg, true_az) for e in ests if e.sources])
        assert len(errors) >= 0.5 * len(ests)
        scores[tau] = (float(np.mean(errors <= 10.0)), float(np.mean(errors)))
    (_, mae_0), (within, mae) = scores[0.0], scores[INTEGRATION_S]
    assert within >= 0.85 and mae <= 8.0, scores
    assert mae < 0.75 * mae_0, scores


@needs_weights
@pytest.mark.parametrize("estimator", ["neural", "srp-phat"])
def test_integration_follows_a_new_talker_within_a_quarter_second(estimator):
    profile = load_profile("respeaker_4mic_hat")
    a = simulate.speech_source(np.random.default_rng(7), 2.0, FS)
    b = simulate.speech_source(np.random.default_rng(8), 2.0, FS)
    silence = np.zeros_like(a)
    scene = simulate.room_scene(profile.mics, [simulate.SourceSpec(np.concatenate([a, silence]), 40.0, 0.0, 1.5),
                                               simulate.SourceSpec(np.concatenate([silence, b]), -110.0, 0.0, 1.5)],
                                sample_rate=FS, rt60=0.3, snr_db=20.0, rng=np.random.default_rng(3))
    az_a, az_b = scene.sources[0][0], scene.sources[1][0]
    onset = 2.0 + np.argmax(np.abs(b) > 0.01 * np.abs(b).max()) / FS
    ests = estimates(profile, scene.audio, estimator, INTEGRATION_S)
    before = [e for e in ests if e.sources and e.t_end <= onset]
    after = [e for e in ests if e.sources and e.t_end >= onset + 0.25]
    assert len(before) >= 8 and len(after) >= 8
    assert all(azimuth_difference(e.sources[0].azimuth_deg, az_a) <= 10.0 for e in before)
    assert all(azimuth_difference(e.sources[0].azimuth_deg, az_b) <= 10.0 for e in after), \
        [(round(e.t_end - onset, 2), round(e.sources[0].azimuth_deg)) for e in after]


@needs_weights
@pytest.mark.parametrize("estimator", ["neural", "srp-phat"])
def test_a_moving_talker_lags_by_about_the_time_constant_and_not_without_integration(estimator):
    # 30°/s past the 6-mic ReSpeaker: each window alone is on time; the integral trails the talker
    # by about its time constant (0.4 s: 12°) — the documented cost (docs/how-it-works.md: use --integration 0 on a
    # moving array). Bounds from both sides: a bug that stretched or dropped the memory fails here.
    profile = load_profile("respeaker_6mic_hat")
    speech = simulate.speech_source(np.random.default_rng(31), 4.0, FS)
    scene = simulate.moving_source_scene(
        profile.mics, speech, [(0.5, -30.0, 5.0), (3.5, 60.0, 5.0)], sample_rate=FS, rt60=0.3,
        rng=np.random.default_rng(32), distance_m=1.5, room_dim=(6.0, 5.0, 3.0),
        array_centre=np.array([3.0, 2.4, 1.2]), snr_db=25.0, max_order=10)
    lag = {}
    for tau in (0.0, INTEGRATION_S):
        signed = []
        for est in estimates(profile, scene.scene.audio, estimator, tau):
            t_mid = est.t_end - 0.125
            if est.sources and 1.0 <= t_mid <= 3.5:
                truth = float(scene.direction_at(t_mid)[0])
                signed.append(wrap_azimuth(est.sources[0].azimuth_deg - truth))
        assert len(signed) >= 15
        lag[tau] = -float(np.median(signed))
    assert abs(lag[0.0]) <= 3.0, lag
    assert 0.5 * 30.0 * INTEGRATION_S <= lag[INTEGRATION_S] <= 1.5 * 30.0 * INTEGRATION_S, lag

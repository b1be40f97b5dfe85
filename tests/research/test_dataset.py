"""Training scenes (research/dataset.py): the machine interferer's level."""

from __future__ import annotations

import numpy as np
import pytest

from arraydaemon.research import dataset, simulate


@pytest.mark.sim
def test_machine_interferer_is_5_to_20_db_below_the_target_in_rms():
    levels = []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        talker = simulate.speech_source(rng, dataset.SCENE_S, dataset.SAMPLE_RATE)
        noise = dataset.machine_interferer(rng, [talker, 0.1 * talker])
        levels.append(20 * np.log10(np.std(noise) / dataset._active_rms(talker)))
    assert all(-20.01 <= lv <= -4.99 for lv in levels), levels
    # the level is measured while the talker talks: its pauses do not pull the reference down
    talker = np.concatenate([np.zeros(8000, np.float32), simulate.speech_source(np.random.default_rng(9), 1.0, 16000)])
    assert dataset._active_rms(talker) > 1.2 * np.std(talker)
    alone = dataset.machine_interferer(np.random.default_rng(1), [])
    assert -20.01 <= 20 * np.log10(np.std(alone) / dataset._NOMINAL_RMS) <= -4.99



@pytest.mark.sim
def test_several_talker_scenes_label_a_walker_where_the_audio_puts_it():
    """Stage 2 (the several-talker fine-tune): a walker's label is its direction in each window, and
    the recording agrees: per-window SRP-PHAT (dry room, a 3-D array) finds it there while it moves."""
    from arraydaemon.core.options import FeatureConfig, LocalizerConfig
    from arraydaemon.localizers.srp_phat import SrpPhatLocalizer
    from arraydaemon.stages.features import FrameLayout
    from tests.helpers import feature_windows

    cube = 0.03 * np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float)
    for index in range(40):  # a third of stage-2 sources walk: the first scene whose one source does
        scene = dataset.make_scene("train", index, stage=2, geometry=cube, n_sources=1, rt60=0.15, snr_db=30.0,
                                   extras=False)
        if abs(scene["speeds_dps"][0]) >= 30 and all(w["active"][0] for w in scene["windows"]):
            break
    else:
        pytest.fail("no walking source among 40 stage-2 scenes")
    labels = np.array([w["dirs"][0] for w in scene["windows"]])  # (windows, 3)
    assert np.degrees(np.arccos(np.clip(labels[0] @ labels[-1], -1, 1))) >= 10.0  # 1.05 s apart
    profile = dataset.geometry_profile(cube)
    srp = SrpPhatLocalizer(profile, FrameLayout.from_config(FeatureConfig(), profile.sample_rate),
                           LocalizerConfig(integration_s=0.0, max_sources=1))
    by_end = {round(w.t_end, 3): w for w in feature_windows(profile, scene["audio"])[1]}
    errors = []
    for t_end, label in zip(scene["window_ends"], labels):
        found = srp.process(by_end[round(t_end, 3)]).sources
        assert found
        errors.append(np.degrees(np.arccos(np.clip(np.asarray(found[0].vector) @ label, -1, 1))))
    assert np.median(errors) < 6.0, errors
    # the walker's own first-window label is 10+ degrees from its last: a static label would miss by that
    assert max(errors) < 15.0, errors

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

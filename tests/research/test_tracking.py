"""The tracking benchmark's scoring (``research/tracking``): a free-field scene whose truth is known
exactly, replayed through the real pipeline; and what counts as a ghost, a switch, a miss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from arraydaemon.core.options import PipelineOptions
from arraydaemon.core.profiles import load_profile
from arraydaemon.research import simulate
from arraydaemon.research.tracking.plot import plot_scene
from arraydaemon.research.tracking.report import by_dominance, talker_markdown
from arraydaemon.research.tracking.scenes import SAMPLE_RATE, TrackingScene, dominated_share, speaking_frames
from arraydaemon.research.tracking.score import score_scene, summarize

SCENE_S = 4.0


def _scene(talkers_in_truth: int = 2, dominance: bool = True) -> TrackingScene:
    """Two talkers (noise bursts) at -60° and +60° in free field on a 6-mic ring; the truth lists the
    first ``talkers_in_truth`` of them (and the cells they dominate, if ``dominance``)."""
    rng = np.random.default_rng(7)
    mics = load_profile("respeaker_6mic_hat").mics
    signals = [simulate.noise_burst_source(rng, SCENE_S, SAMPLE_RATE) for _ in range(2)]
    audio = simulate.free_field_scene(mics, [(signals[0], -60.0, 0.0), (signals[1], 60.0, 0.0)], SAMPLE_RATE)
    audio = audio + 1e-4 * rng.standard_normal(audio.shape)
    times = np.arange(0.0, SCENE_S + 0.05, 0.1)
    k = talkers_in_truth
    return TrackingScene(
        name="free-field", audio=audio.astype(np.float32), mics=mics, geometry="circle", rt60=0.0,
        times_s=np.tile(times, (k, 1)), azimuth_deg=np.array([np.full(len(times), a) for a in (-60.0, 60.0)][:k]),
        elevation_deg=np.zeros((k, len(times))), speaking=np.array([speaking_frames(s) for s in signals[:k]]),
        speeds_dps=np.zeros(k), crossing=False, paused=-1,
        dominance=dominated_share(signals[:k], [1.0] * k) if dominance else None)


@pytest.fixture(scope="module")
def scored():
    return score_scene(_scene(), PipelineOptions(estimator="srp-phat"))


def test_both_talkers_covered_once_each_without_ghosts(scored):
    row = summarize([scored])
    assert row["talkers"] == 2
    assert all(t.coverage >= 0.9 for t in scored.talkers), [t.coverage for t in scored.talkers]
    assert row["ghost_pct"] == 0.0 and row["duplicate_pct"] == 0.0
    assert row["id_switches"] == 0
    assert row["median_error_deg"] <= 2.0
    assert row["mota"] >= 0.8 and row["idf1"] >= 0.8
    assert all(t.found_after_s <= 0.6 for t in scored.talkers)


def test_a_track_on_a_source_missing_from_the_truth_is_a_ghost():
    # The same audio, but the truth knows only the first talker: the second one's track points at nobody.
    score = score_scene(_scene(talkers_in_truth=1), PipelineOptions(estimator="srp-phat"))
    row = summarize([score])
    assert 30.0 <= row["ghost_pct"] <= 60.0, row["ghost_pct"]
    assert row["coverage_pct"] >= 90.0


def test_scene_round_trips_through_its_cache_file(tmp_path):
    scene = _scene()
    scene.save(tmp_path / "s.npz")
    back = TrackingScene.load(tmp_path / "s.npz")
    assert np.array_equal(back.audio, scene.audio) and np.array_equal(back.speaking, scene.speaking)
    assert back.name == scene.name and back.paused == -1
    assert np.array_equal(back.dominance, scene.dominance)
    unknown = _scene(dominance=False)
    unknown.save(tmp_path / "u.npz")
    assert TrackingScene.load(tmp_path / "u.npz").dominance is None
    t = 1.234
    assert np.allclose(back.directions_at(t), scene.directions_at(t))
    assert math.isinf(scene.last_spoke(0.0)[0])


def test_plot_writes_a_png(scored, tmp_path):
    path = plot_scene(scored, tmp_path / "tracks.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dominated_share_of_time_frequency_cells():
    rng = np.random.default_rng(3)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    low, high = np.sin(2 * np.pi * 500 * t), np.sin(2 * np.pi * 3000 * t)
    # alone: every active cell is its own
    assert dominated_share([low], [1.0])[0] == pytest.approx(1.0)
    # disjoint spectra, equally loud: each owns the cells of its own tone, half the active ones
    a, b = dominated_share([low, high], [1.0, 1.0])
    assert a == pytest.approx(0.5, abs=0.02) and b == pytest.approx(0.5, abs=0.02)
    # white noise against a tone: the noise owns every cell but the tone's
    noise = 0.1 * rng.standard_normal(SAMPLE_RATE)
    tone_share, noise_share = dominated_share([low, noise], [1.0, 1.0])
    assert noise_share > 0.9 and tone_share < 0.05
    # the same noise 10 times farther away (20 dB down) falls more than 40 dB below the tone's cells:
    # they are the only active ones left
    tone_far, noise_far = dominated_share([low, noise], [1.0, 10.0])
    assert tone_far == pytest.approx(1.0) and noise_far == pytest.approx(0.0)


def test_per_talker_figures_are_grouped_by_dominance(scored):
    rows = by_dominance(scored.talkers)
    assert sum(row["talkers"] for row in rows.values()) == 2 and "alone" not in rows
    assert all(0.0 < t.dominance < 1.0 for t in scored.talkers)
    table = talker_markdown(rows)
    assert table.count("\n") == 1 + len(rows) and "| talker dominates | talkers |" in table
    alone = score_scene(_scene(talkers_in_truth=1), PipelineOptions(estimator="srp-phat"))
    assert list(by_dominance(alone.talkers)) == ["alone"]

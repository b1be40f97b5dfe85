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
from arraydaemon.research.tracking.report import by_level, talker_markdown
from arraydaemon.research.tracking.scenes import SAMPLE_RATE, TrackingScene, direct_level_db, speaking_frames
from arraydaemon.research.tracking.score import score_scene, summarize

SCENE_S = 4.0


def _scene(talkers_in_truth: int = 2, levels: bool = True) -> TrackingScene:
    """Two talkers (noise bursts) at -60° and +60° in free field on a 6-mic ring; the truth lists the
    first ``talkers_in_truth`` of them (and their levels, if ``levels``)."""
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
        level_db=np.array([direct_level_db(s, 1.0) for s in signals[:k]]) if levels else None)


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
    assert np.array_equal(back.level_db, scene.level_db)
    unknown = _scene(levels=False)
    unknown.save(tmp_path / "u.npz")
    assert TrackingScene.load(tmp_path / "u.npz").level_db is None
    t = 1.234
    assert np.allclose(back.directions_at(t), scene.directions_at(t))
    assert math.isinf(scene.last_spoke(0.0)[0])


def test_plot_writes_a_png(scored, tmp_path):
    path = plot_scene(scored, tmp_path / "tracks.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_level_margin_against_the_loudest_other_talker():
    tone = np.sin(np.linspace(0.0, 2000.0, SAMPLE_RATE))
    # twice the amplitude at twice the distance: the same direct-path level
    assert direct_level_db(2.0 * tone, 2.0) == pytest.approx(direct_level_db(tone, 1.0), abs=1e-9)
    # silence (a pause) does not lower a talker's level: it is taken over its speaking frames
    paused = np.concatenate([tone, np.zeros(SAMPLE_RATE)])
    assert direct_level_db(paused, 1.0) == pytest.approx(direct_level_db(tone, 1.0), abs=0.01)
    scene = _scene()
    scene.level_db = np.array([-20.0, -26.0])
    assert scene.level_margin_db(0) == 6.0 and scene.level_margin_db(1) == -6.0
    assert _scene(talkers_in_truth=1).level_margin_db(0) == math.inf
    assert math.isnan(_scene(levels=False).level_margin_db(0))


def test_per_talker_figures_are_grouped_by_level(scored):
    rows = by_level(scored.talkers)
    assert sum(row["talkers"] for row in rows.values()) == 2
    margins = [t.margin_db for t in scored.talkers]
    assert min(margins) == pytest.approx(-max(margins))
    table = talker_markdown(rows)
    assert table.count("\n") == 1 + len(rows) and "| talker's level | talkers |" in table

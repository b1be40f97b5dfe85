"""The neural localizer stage (localizers/neural/stage.py): its numpy scoring against the torch head,
causality, mic-permutation invariance, the shipped weights on the demo recording, embeddings, and
its threads. The model alone: test_model.py; training it: tests/research/test_train.py."""

from __future__ import annotations

import json
from dataclasses import replace
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from arraydaemon.core.angles import azimuth_difference  # noqa: E402
from arraydaemon.core.grids import pair_delays  # noqa: E402
from arraydaemon.core.options import LocalizerConfig  # noqa: E402
from arraydaemon.core.paths import DATA_DIR  # noqa: E402
from arraydaemon.core.profiles import load_profile, parse_profile  # noqa: E402
from arraydaemon.io.files import FileSource  # noqa: E402
from arraydaemon.localizers.neural.export import graph_of  # noqa: E402
from arraydaemon.localizers.neural.stage import NeuralLocalizer  # noqa: E402
from arraydaemon.localizers.neural.tokens import group_cross, model_tokens  # noqa: E402
from arraydaemon.localizers.neural.weights import WEIGHTS_PATH, load_model  # noqa: E402
from tests.helpers import feature_windows, needs_weights, neural_estimates, room_speech, tiny_model  # noqa: E402


@pytest.fixture(scope="module")
def shipped_model():
    """The shipped model, loaded once (tests using it are marked ``needs_weights``)."""
    return load_model(WEIGHTS_PATH)[0]


def test_numpy_scoring_matches_the_torch_srp_head():
    model = tiny_model(1)
    profile = load_profile("respeaker_6mic_hat")
    audio = np.random.default_rng(3).standard_normal((8000, 6)).astype(np.float32)
    feats, windows = feature_windows(profile, audio)
    # the float32 graph: the scoring twin is held to the torch head, not to the int8 weights
    loc = NeuralLocalizer(profile, feats.layout, LocalizerConfig(), graph_of(model, int8=False))
    window = windows[0]
    out_np, _ = loc.run_model(window)
    tdoa = pair_delays(loc.grid.vectors, loc.token_pairs.baselines(profile.mics), profile.speed_of_sound)
    with torch.no_grad():
        cross = group_cross(window.spectra, loc.token_pairs, loc.projector.span)
        tokens = torch.from_numpy(model_tokens(model.args.input, window, cross, loc.projector, loc.token_pairs))[None]
        mask = torch.from_numpy(loc.pair_mask)
        out = model(tokens, torch.from_numpy(loc.pair_pos), mask)
        expected = torch.sigmoid(model.spectrum_logits(out, torch.from_numpy(tdoa).float()[None], mask))[0]
    np.testing.assert_allclose(loc.score(out_np, loc.grid.vectors), expected.numpy(), atol=1e-5)


def test_further_sources_are_searched_only_where_the_model_sees_more(monkeypatch):
    profile = load_profile("respeaker_6mic_hat")
    audio = np.random.default_rng(4).standard_normal((8000, 6)).astype(np.float32)
    feats, windows = feature_windows(profile, audio)
    loc = NeuralLocalizer(profile, feats.layout, LocalizerConfig(), tiny_model(2))
    points, first = loc.scan.points, loc.scan.points[0]
    cos = loc.scan.separation_cos_to_points(first)
    learned = np.where(cos > 0.999, 0.9, 0.02)  # one peak, at the first source
    assert not loc._more_possible(learned, first)
    far = int(np.argmin(cos))  # the point furthest from it (in the array's plane)
    learned[far] = loc.further_threshold
    assert loc._more_possible(learned, first)
    near = cos >= np.cos(np.radians(loc.config.min_separation_deg))  # the first source's own lobe
    learned[far], learned[near] = 0.02, 0.5
    assert not loc._more_possible(learned, first)
    # a window whose search is skipped still tells the room how coherently its first source arrives
    searched = []
    monkeypatch.setattr(loc.further, "search", lambda *a: searched.append(a) or [])
    monkeypatch.setattr(loc, "_more_possible", lambda *a: False)
    analysis = loc.analyse(windows[-1])
    before = len(loc.further.room._values)
    loc.fused_sources(replace(analysis, learned=analysis.window_learned, sums=analysis.window_sums), windows[-1])
    assert not searched and len(loc.further.room._values) == before + 1
    monkeypatch.setattr(loc, "_more_possible", lambda *a: True)
    loc.fused_sources(replace(analysis, learned=analysis.window_learned, sums=analysis.window_sums), windows[-1])
    assert len(searched) == 1


@pytest.mark.sim
@needs_weights
def test_window_output_does_not_depend_on_later_audio(shipped_model):
    model = shipped_model
    profile = load_profile("respeaker_6mic_hat")
    audio = room_speech(profile.mics, 40.0, 10.0, seed=1, seconds=2.0)
    altered = audio.copy()
    cut = 16000  # everything after 1.0 s replaced
    altered[cut:] = np.random.default_rng(5).standard_normal(altered[cut:].shape).astype(np.float32) * 0.1
    a, b = neural_estimates(profile, audio, model), neural_estimates(profile, altered, model)
    n_before = sum(1 for e in a if e.t_end <= cut / 16000)
    assert n_before >= 5
    for ea, eb in zip(a[:n_before], b[:n_before]):
        assert np.array_equal(ea.embedding, eb.embedding)
        assert [s.vector for s in ea.sources] == [s.vector for s in eb.sources]
    assert any(not np.array_equal(ea.embedding, eb.embedding) for ea, eb in zip(a[n_before:], b[n_before:]))


@pytest.mark.sim
@needs_weights
def test_permuting_non_reference_mics_keeps_the_direction(shipped_model):
    model = shipped_model
    profile = load_profile("respeaker_6mic_hat")
    audio = room_speech(profile.mics, -75.0, 15.0, seed=2)
    perm = [0, 3, 5, 1, 4, 2]
    permuted = parse_profile({"name": "perm", "sample_rate": 16000, "mics": profile.mics[perm].tolist()}, "<perm>")
    a, b = neural_estimates(profile, audio, model), neural_estimates(permuted, audio[:, perm], model)
    compared = 0
    for ea, eb in zip(a, b):
        if ea.sources and eb.sources:
            va, vb = np.array(ea.sources[0].vector), np.array(eb.sources[0].vector)
            assert np.degrees(np.arccos(np.clip(va @ vb, -1, 1))) < 1.0
            compared += 1
    assert compared >= 5


@needs_weights
def test_shipped_weights_localize_the_demo_recording(shipped_model):
    truth = json.loads((DATA_DIR / "demo.json").read_text())
    profile = load_profile(truth["profile"])
    source = FileSource(DATA_DIR / "demo.flac", profile)
    audio = np.concatenate([b.samples for b in source.blocks()])
    errors = [azimuth_difference(e.sources[0].azimuth_deg, truth["sources"][0]["azimuth_deg"])
              for e in neural_estimates(profile, audio, shipped_model) if e.sources]
    assert len(errors) >= 30
    assert np.median(errors) <= 5.0


@pytest.mark.sim
@needs_weights
def test_embeddings_are_closer_for_the_same_direction(shipped_model):
    model = shipped_model
    profile = load_profile("respeaker_6mic_hat")
    emb = {}
    for az in (0.0, 90.0, 180.0, -90.0):
        for take in range(2):
            audio = room_speech(profile.mics, az, 5.0, seed=100 + (int(az) + 180) * 10 + take)
            est = neural_estimates(profile, audio, model)
            emb[(az, take)] = [e.embedding for e in est if e.sources]
    closer = total = 0
    for az in (0.0, 90.0, 180.0, -90.0):
        other = {0.0: 90.0, 90.0: 180.0, 180.0: -90.0, -90.0: 0.0}[az]  # 90° counter-clockwise
        for ea in emb[(az, 0)]:
            for eb, ec in zip(emb[(az, 1)], emb[(other, 1)]):
                closer += float(ea @ eb) > float(ea @ ec)
                total += 1
    assert total >= 40
    assert closer / total >= 0.9


@needs_weights
def test_the_neural_stage_runs_numpy_blas_on_one_thread_without_torch():
    # Run in a fresh interpreter: the limit is process-wide and the test run may have set it already.
    code = (
        "import json, sys\n"
        "from threadpoolctl import threadpool_info\n"
        "from arraydaemon.core.options import FeatureConfig, LocalizerConfig\n"
        "from arraydaemon.stages.features import FrameLayout\n"
        "from arraydaemon.localizers.neural.stage import NeuralLocalizer\n"
        "from arraydaemon.core.profiles import load_profile\n"
        "p = load_profile('respeaker_6mic_hat')\n"
        "before = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
        "NeuralLocalizer.from_weights(p, FrameLayout.from_config(FeatureConfig(), 16000), LocalizerConfig())\n"
        "after = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
        "print(json.dumps({'before': before, 'after': after, 'torch': 'torch' in sys.modules}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["after"] and all(n == 1 for n in result["after"]), result
    assert result["torch"] is False

"""The neural localizer: causality, mic-permutation invariance, shipped weights, embeddings, training."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from arraydaemon.research import dataset, simulate  # noqa: E402
from arraydaemon.core.grids import pair_delays  # noqa: E402
from arraydaemon.core.options import FeatureConfig, LocalizerConfig  # noqa: E402
from arraydaemon.stages.features import GccPhatFeatures  # noqa: E402
from arraydaemon.core.messages import AudioBlock  # noqa: E402
from arraydaemon.localizers.neural.tokens import group_cross, model_tokens  # noqa: E402
from arraydaemon.localizers.neural.model import ModelArgs, SpatialTransformer  # noqa: E402
from arraydaemon.localizers.neural.stage import NeuralLocalizer  # noqa: E402
from arraydaemon.localizers.neural.weights import WEIGHTS_PATH, load_model  # noqa: E402
from arraydaemon.core.profiles import load_profile, parse_profile  # noqa: E402
from arraydaemon.io.files import FileSource  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "arraydaemon" / "data"
needs_weights = pytest.mark.skipif(not WEIGHTS_PATH.is_file(), reason="shipped weights not trained yet")


def _run(profile, audio, model):
    feats = GccPhatFeatures(profile, FeatureConfig())
    loc = NeuralLocalizer(profile, feats.layout, LocalizerConfig(), model)
    windows = feats.process(AudioBlock(0, profile.sample_rate, 0.0, 0.0, audio.astype(np.float32)))
    return [loc.process(w) for w in windows]


def _scene(mics, az, el, seed, seconds=1.5, rt60=0.3):
    rng = np.random.default_rng(seed)
    sig = simulate.speech_source(rng, seconds, 16000)
    return simulate.room_scene(mics, [simulate.SourceSpec(sig, az, el, 1.5)], sample_rate=16000, rt60=rt60,
                               snr_db=25.0, rng=rng).audio


def _tiny_model_and_inputs(seed: int, batch: int, pairs: int, layers: int = 2):
    """An untrained small model in eval mode and random tokens, pair positions and an all-real mask."""
    torch.manual_seed(seed)
    model = SpatialTransformer(ModelArgs(d_model=32, heads=2, layers=layers, ff=64)).eval()
    tokens = torch.randn(batch, model.args.groups, pairs, model.args.token_features)
    pos = torch.randn(batch, pairs, 2, 3) * 0.05
    return model, tokens, pos, torch.ones(batch, pairs, dtype=torch.bool)


def test_encoder_is_causal_over_time_groups():
    model, tokens, base, mask = _tiny_model_and_inputs(0, batch=1, pairs=5)
    later = tokens.clone()
    later[:, -1] += torch.randn_like(later[:, -1])
    with torch.no_grad():
        a, b = model.encode(tokens, base, mask), model.encode(later, base, mask)
    assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-6)
    assert not torch.allclose(a[:, -1], b[:, -1], atol=1e-3)  # the newest group does see its input


def test_numpy_scoring_matches_the_torch_srp_head():
    torch.manual_seed(1)
    model = SpatialTransformer(ModelArgs(d_model=32, heads=2, layers=2, ff=64)).eval()
    profile = load_profile("respeaker_6mic_hat")
    audio = np.random.default_rng(3).standard_normal((8000, 6)).astype(np.float32)
    feats = GccPhatFeatures(profile, FeatureConfig())
    loc = NeuralLocalizer(profile, feats.layout, LocalizerConfig(), model)
    window = feats.process(AudioBlock(0, 16000, 0.0, 0.0, audio))[0]
    out_np, _ = loc.run_model(window)
    tdoa = pair_delays(loc.grid.vectors, loc.token_pairs.baselines(profile.mics), profile.speed_of_sound)
    with torch.no_grad():
        cross = group_cross(window.spectra, loc.token_pairs, loc.projector.span)
        tokens = torch.from_numpy(model_tokens(model.args.input, window, cross, loc.projector, loc.token_pairs))[None]
        out = model(tokens, loc.pair_pos, loc.pair_mask)
        expected = torch.sigmoid(model.spectrum_logits(out, torch.from_numpy(tdoa).float()[None], loc.pair_mask))[0]
    np.testing.assert_allclose(loc.score(out_np, loc.grid.vectors), expected.numpy(), atol=1e-5)


@needs_weights
def test_window_output_does_not_depend_on_later_audio():
    model, _ = load_model(WEIGHTS_PATH)
    profile = load_profile("respeaker_6mic_hat")
    audio = _scene(profile.mics, 40.0, 10.0, seed=1, seconds=2.0)
    altered = audio.copy()
    cut = 16000  # everything after 1.0 s replaced
    altered[cut:] = np.random.default_rng(5).standard_normal(altered[cut:].shape).astype(np.float32) * 0.1
    a, b = _run(profile, audio, model), _run(profile, altered, model)
    n_before = sum(1 for e in a if e.t_end <= cut / 16000)
    assert n_before >= 5
    for ea, eb in zip(a[:n_before], b[:n_before]):
        assert np.array_equal(ea.embedding, eb.embedding)
        assert [s.vector for s in ea.sources] == [s.vector for s in eb.sources]
    assert any(not np.array_equal(ea.embedding, eb.embedding) for ea, eb in zip(a[n_before:], b[n_before:]))


@needs_weights
def test_permuting_non_reference_mics_keeps_the_direction():
    model, _ = load_model(WEIGHTS_PATH)
    profile = load_profile("respeaker_6mic_hat")
    audio = _scene(profile.mics, -75.0, 15.0, seed=2)
    perm = [0, 3, 5, 1, 4, 2]
    permuted = parse_profile({"name": "perm", "sample_rate": 16000, "mics": profile.mics[perm].tolist()}, "<perm>")
    a, b = _run(profile, audio, model), _run(permuted, audio[:, perm], model)
    compared = 0
    for ea, eb in zip(a, b):
        if ea.sources and eb.sources:
            va, vb = np.array(ea.sources[0].vector), np.array(eb.sources[0].vector)
            assert np.degrees(np.arccos(np.clip(va @ vb, -1, 1))) < 1.0
            compared += 1
    assert compared >= 5


@needs_weights
def test_shipped_weights_localize_the_demo_recording():
    truth = json.loads((DATA / "demo.json").read_text())
    profile = load_profile(truth["profile"])
    model, meta = load_model(WEIGHTS_PATH)
    source = FileSource(DATA / "demo.flac", profile)
    audio = np.concatenate([b.samples for b in source.blocks()])
    errors = [abs((e.sources[0].azimuth_deg - truth["sources"][0]["azimuth_deg"] + 180) % 360 - 180)
              for e in _run(profile, audio, model) if e.sources]
    assert len(errors) >= 30
    assert np.median(errors) <= 5.0


@needs_weights
def test_embeddings_are_closer_for_the_same_direction():
    model, _ = load_model(WEIGHTS_PATH)
    profile = load_profile("respeaker_6mic_hat")
    emb = {}
    for az in (0.0, 90.0, 180.0, -90.0):
        for take in range(2):
            est = _run(profile, _scene(profile.mics, az, 5.0, seed=100 + (int(az) + 180) * 10 + take), model)
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


def test_training_three_steps_on_tiny_data(tmp_path):
    out = tmp_path / "w.safetensors"
    cmd = [sys.executable, "-m", "arraydaemon", "train", "--steps", "3", "--batch", "4", "--stage0-chunks", "1",
           "--stage1-chunks", "1", "--scenes-per-chunk", "2", "--data", str(tmp_path / "data"),
           "--run", str(tmp_path / "run"), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    model, meta = load_model(out)
    assert meta["train_steps"] == "3"
    # resume continues from the checkpoint instead of starting over
    proc = subprocess.run(cmd[:5] + ["5"] + cmd[6:], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "resumed" in proc.stdout + proc.stderr
    assert load_model(out)[1]["train_steps"] == "5"
    # a checkpoint of another model size is not resumed: one line naming what differs, exit 2
    proc = subprocess.run(cmd + ["--d-model", "64", "--heads", "2"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "checkpoint's model differs: d_model 128 (now 64), heads 4 (now 2)" in proc.stderr
    # one held-out loss row per checkpoint, on val-split scenes
    rows = (tmp_path / "run" / "losses.csv").read_text().splitlines()
    assert rows[0].startswith("step,minutes,") and "heldout_spectrum" in rows[0]
    assert [r.split(",")[0] for r in rows[1:]] == ["3", "5"]
    assert (tmp_path / "data" / f"v{dataset.DATA_VERSION}" / "val-stage1").is_dir()
    # chunks written while training runs are picked up, the loaded ones kept as they are
    from arraydaemon.research.train import Batches

    batches = Batches(tmp_path / "data", np.random.default_rng(0))
    before = {k: v.copy() for k, v in batches.data[1].items()}
    chunk = dataset.chunk_path(tmp_path / "data", "train", 1, 0)
    shutil.copy(chunk, dataset.chunk_path(tmp_path / "data", "train", 1, 1))
    batches.rescan()
    assert batches.windows(1) == 2 * len(before["kind"])
    for k, v in before.items():
        np.testing.assert_array_equal(batches.data[1][k][:len(v)], v)
        np.testing.assert_array_equal(batches.data[1][k][len(v):], v)


def test_newest_group_shortcut_equals_the_full_encoder():
    model, tokens, pos, mask = _tiny_model_and_inputs(2, batch=2, pairs=6, layers=3)
    mask[1, 4:] = False  # a padded 4-pair array in the same batch
    with torch.no_grad():
        full = model.encode(tokens, pos, mask)[:, -1]
        fast = model.encode_newest(tokens, pos, mask)
    torch.testing.assert_close(fast[0], full[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast[1, :4], full[1, :4], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("token_input, size", [("gcc", {}), ("phase", {"d_model": 64, "heads": 2, "layers": 2, "ff": 96})])
def test_training_other_inputs_and_running_them(tmp_path, token_input, size):
    out = tmp_path / "w.safetensors"
    cmd = [sys.executable, "-m", "arraydaemon", "train", "--steps", "2", "--batch", "4", "--stage0-chunks", "1",
           "--stage1-chunks", "1", "--scenes-per-chunk", "2", "--data", str(tmp_path / "data"),
           "--run", str(tmp_path / "run"), "--out", str(out), "--input", token_input]
    cmd += [a for k, v in size.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    model, _ = load_model(out)
    assert model.args.input == token_input
    assert all(getattr(model.args, k) == v for k, v in size.items())
    profile = load_profile("respeaker_6mic_hat")
    estimates = _run(profile, _scene(profile.mics, 30.0, 0.0, seed=4, seconds=1.0), model)
    assert estimates and all(np.all(np.isfinite(e.embedding)) for e in estimates)


def test_traced_forward_matches_the_model():
    from arraydaemon.localizers.neural.runtime import traced_forward

    model, tokens, pos, mask = _tiny_model_and_inputs(3, batch=1, pairs=10)
    traced = traced_forward(model, pos, mask)
    with torch.inference_mode():
        expected, got = model(tokens, pos, mask), traced(tokens, pos, mask)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=1e-5)


def test_the_neural_stage_runs_numpy_blas_and_torch_on_one_thread():
    # Run in a fresh interpreter: the limit is process-wide and the test run may have set it already.
    code = (
        "import json, torch\n"
        "from threadpoolctl import threadpool_info\n"
        "from arraydaemon.core.options import FeatureConfig, LocalizerConfig\n"
        "from arraydaemon.stages.features import FrameLayout\n"
        "from arraydaemon.localizers.neural.model import SpatialTransformer\n"
        "from arraydaemon.localizers.neural.stage import NeuralLocalizer\n"
        "from arraydaemon.core.profiles import load_profile\n"
        "p = load_profile('respeaker_6mic_hat')\n"
        "before = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
        "NeuralLocalizer(p, FrameLayout.from_config(FeatureConfig(), 16000), LocalizerConfig(), SpatialTransformer())\n"
        "after = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
        "print(json.dumps({'before': before, 'after': after, 'torch': torch.get_num_threads()}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["after"] and all(n == 1 for n in result["after"]), result
    assert result["torch"] == 1

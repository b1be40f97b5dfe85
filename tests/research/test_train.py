"""`arraydaemon train` (research/train.py, research/dataset.py) for a few steps on tiny simulated data:
checkpoints, resuming, held-out losses, chunks appearing while it runs, other token inputs and
model sizes, and the trained weights running in the neural stage."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("torch")

from arraydaemon.core.profiles import load_profile  # noqa: E402
from arraydaemon.localizers.neural.weights import load_model  # noqa: E402
from arraydaemon.research import dataset  # noqa: E402
from arraydaemon.research.train import Batches  # noqa: E402
from tests.helpers import ARRAYDAEMON, neural_estimates, room_speech  # noqa: E402

pytestmark = [pytest.mark.sim, pytest.mark.slow]


def test_training_three_steps_on_tiny_data(tmp_path):
    out = tmp_path / "w.safetensors"
    cmd = [*ARRAYDAEMON, "train", "--steps", "3", "--batch", "4", "--stage0-chunks", "1",
           "--stage1-chunks", "1", "--scenes-per-chunk", "2", "--data", str(tmp_path / "data"),
           "--run", str(tmp_path / "run"), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    model, meta = load_model(out)
    assert meta["train_steps"] == "3"
    # the graph the daemon runs is written beside the weights, tied to them
    from arraydaemon.localizers.neural.runtime import NeuralGraph, graph_path
    from arraydaemon.localizers.neural.weights import weights_digest

    graph = NeuralGraph(graph_path(out))
    assert graph.weights_digest == weights_digest(out) and graph.name.endswith("@3")
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
    batches = Batches(tmp_path / "data", np.random.default_rng(0))
    before = {k: v.copy() for k, v in batches.data[1].items()}
    chunk = dataset.chunk_path(tmp_path / "data", "train", 1, 0)
    shutil.copy(chunk, dataset.chunk_path(tmp_path / "data", "train", 1, 1))
    batches.rescan()
    assert batches.windows(1) == 2 * len(before["kind"])
    for k, v in before.items():
        np.testing.assert_array_equal(batches.data[1][k][:len(v)], v)
        np.testing.assert_array_equal(batches.data[1][k][len(v):], v)


@pytest.mark.parametrize("token_input, size", [("gcc", {}), ("phase", {"d_model": 64, "heads": 2, "layers": 2, "ff": 96})])
def test_training_other_inputs_and_running_them(tmp_path, token_input, size):
    out = tmp_path / "w.safetensors"
    cmd = [*ARRAYDAEMON, "train", "--steps", "2", "--batch", "4", "--stage0-chunks", "1",
           "--stage1-chunks", "1", "--scenes-per-chunk", "2", "--data", str(tmp_path / "data"),
           "--run", str(tmp_path / "run"), "--out", str(out), "--input", token_input]
    cmd += [a for k, v in size.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    model, _ = load_model(out)
    assert model.args.input == token_input
    assert all(getattr(model.args, k) == v for k, v in size.items())
    profile = load_profile("respeaker_6mic_hat")
    estimates = neural_estimates(profile, room_speech(profile.mics, 30.0, 0.0, seed=4, seconds=1.0), model)
    assert estimates and all(np.all(np.isfinite(e.embedding)) for e in estimates)


def test_fine_tuning_the_shipped_model_on_several_talker_scenes(tmp_path):
    from arraydaemon.localizers.neural.weights import WEIGHTS_PATH

    out = tmp_path / "w.safetensors"
    cmd = [*ARRAYDAEMON, "train", "--steps", "2", "--batch", "4", "--stage0-chunks", "0", "--stage1-chunks", "0",
           "--stage2-chunks", "1", "--scenes-per-chunk", "2", "--lr", "1e-4", "--data", str(tmp_path / "data"),
           "--run", str(tmp_path / "run"), "--out", str(out), "--init", str(WEIGHTS_PATH)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shipped, shipped_meta = load_model(WEIGHTS_PATH)
    tuned, meta = load_model(out)
    assert tuned.args == shipped.args
    assert meta["fine_tune_of"] == f"neural.safetensors ({shipped_meta['train_steps']} steps)"
    assert '"stage2_share": 0.7' in meta["train_config"] and '"pretrain_steps": 0' in meta["train_config"]
    # it starts from the shipped weights: two small steps move them a little, not to a new model
    start, end = shipped.state_dict(), tuned.state_dict()
    changed = [k for k in start if not np.array_equal(start[k].numpy(), end[k].numpy())]
    assert changed and all(float((start[k] - end[k]).abs().max()) < 1e-2 for k in start)
    assert (tmp_path / "data" / f"v{dataset.DATA_VERSION}" / "val-stage2").is_dir()
    # model options that differ from the weights': one line, exit 2
    proc = subprocess.run(cmd + ["--run", str(tmp_path / "run2"), "--d-model", "64", "--heads", "2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "model options differ" in proc.stderr
    proc = subprocess.run(cmd[:-1] + [str(tmp_path / "none.safetensors")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "--init" in proc.stderr and "Traceback" not in proc.stderr

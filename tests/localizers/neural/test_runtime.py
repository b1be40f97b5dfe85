"""The neural model's run time (localizers/neural/runtime.py, graphs.py) and its export (export.py): the float32
graph's forward equals the torch model's for any pair count, the int8 graph's stays within a few per cent of
each output's range; the shipped graph is the int8 export of the shipped weights; a weights file's graph is
found beside it, exported once into the cache, or refused."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from arraydaemon.core.errors import UserError  # noqa: E402
from arraydaemon.core.paths import SHIPPED_GRAPH  # noqa: E402
from arraydaemon.localizers.neural import export, graphs, runtime  # noqa: E402
from arraydaemon.localizers.neural.tokens import TokenPairs  # noqa: E402
from arraydaemon.localizers.neural.weights import WEIGHTS_PATH, load_model, weights_digest  # noqa: E402
from tests.helpers import needs_weights, tiny_model_and_inputs, tiny_weights  # noqa: E402


# The int8 graph's outputs against the torch model's: the largest difference as a share of the largest
# output value, per output (the shipped model on realistic tokens at 8 mics: clean 4.6 %, weight 2.5 %,
# activity 1.4 %, embedding 1.7 %; docs/research/lean-runtime.md).
INT8_SHARE = 0.08


def assert_outputs_equal(got: dict, expected: dict, tol: float = 1e-5) -> None:
    assert set(got) == set(runtime.OUTPUTS)
    for key in runtime.OUTPUTS:
        assert isinstance(got[key], np.ndarray)
        np.testing.assert_allclose(got[key], expected[key][0].numpy(), atol=tol, rtol=tol)


def assert_outputs_close_int8(got: dict, expected: dict, share: float = INT8_SHARE) -> None:
    assert set(got) == set(runtime.OUTPUTS)
    for key in runtime.OUTPUTS:
        want = expected[key][0].numpy()
        scale = max(float(np.max(np.abs(want))), 1e-6)
        assert got[key].shape == want.shape
        assert float(np.max(np.abs(got[key] - want))) <= share * scale, key


@pytest.mark.parametrize("pairs", [1, 3, 10, 28, 120])
def test_the_graph_forward_matches_the_model(pairs):
    model, tokens, pos, mask = tiny_model_and_inputs(3, batch=1, pairs=pairs)
    got = export.graph_of(model, int8=False).forward(pos.numpy(), mask.numpy())(tokens.numpy())
    with torch.inference_mode():
        expected = model(tokens, pos, mask)
    assert_outputs_equal(got, expected)
    assert export.graph_of(model).metadata["weights_dtype"] == "int8"  # the default: what the daemon runs
    assert export.graph_of(model, int8=False).metadata["weights_dtype"] == "float32"


@needs_weights
def test_the_shipped_graph_is_the_export_of_the_shipped_weights():
    graph = runtime.NeuralGraph(SHIPPED_GRAPH)
    assert graph.weights_digest == weights_digest(WEIGHTS_PATH)
    assert graphs.load_graph(WEIGHTS_PATH).weights_digest == graph.weights_digest  # found beside them
    model, meta = load_model(WEIGHTS_PATH)
    assert graph.args == model.args
    assert graph.score_scale == float(model.score_scale.detach())
    assert graph.score_bias == float(model.score_bias.detach())
    assert graph.name == f"{meta['model_name']}@{meta['train_steps']}"
    rng = np.random.default_rng(0)
    for mics in (4, 6, 8):  # the same tokens through both, for arrays of several sizes
        xyz = rng.uniform(-0.05, 0.05, (mics, 3))
        pairs = TokenPairs.for_array(xyz, 0)
        pos = pairs.positions(xyz).astype(np.float32)[None]
        mask = np.ones((1, len(pairs)), bool)
        tokens = rng.standard_normal((1, model.args.groups, len(pairs), model.args.token_features)).astype(np.float32)
        got = graph.forward(pos, mask)(tokens)
        with torch.inference_mode():
            expected = model(torch.from_numpy(tokens), torch.from_numpy(pos), torch.from_numpy(mask))
        assert_outputs_close_int8(got, expected)
        again = export.graph_of(model).forward(pos, mask)(tokens)  # the int8 export reproduces it
        for key in runtime.OUTPUTS:
            np.testing.assert_allclose(got[key], again[key], atol=1e-6, rtol=1e-6)
    assert graph.metadata["weights_dtype"] == "int8"


def test_one_export_per_model_and_changed_weights_are_exported_again():
    model, tokens, pos, mask = tiny_model_and_inputs(4, batch=1, pairs=6)
    graph = export.graph_of(model, int8=False)
    assert export.graph_of(model, int8=False) is graph
    assert export.graph_of(model) is not graph and export.graph_of(model) is export.graph_of(model)
    other = torch.randn(1, 15, 2, 3) * 0.05  # another array, 15 pairs: the same graph
    tokens15 = torch.randn(1, model.args.groups, 15, model.args.token_features).numpy()
    assert graph.forward(other.numpy(), np.ones((1, 15), bool))(tokens15)["clean"].shape == (15, 65)
    with torch.no_grad():
        model.clean_head.bias.add_(0.5)
    again = export.graph_of(model, int8=False)
    assert again is not graph
    with torch.inference_mode():
        np.testing.assert_allclose(again.forward(pos.numpy(), mask.numpy())(tokens.numpy())["clean"],
                                   model(tokens, pos, mask)["clean"][0].numpy(), atol=1e-5)


def test_weights_without_a_graph_are_exported_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    weights = tiny_weights(tmp_path / "mine.safetensors")
    graph = graphs.load_graph(weights)
    cached = list((tmp_path / "cache" / "arraydaemon" / "graphs").glob("*.onnx"))
    assert len(cached) == 1 and graph.weights_digest == weights_digest(weights)
    stamp = cached[0].stat().st_mtime_ns
    assert graphs.load_graph(weights).weights_digest == graph.weights_digest
    assert cached[0].stat().st_mtime_ns == stamp  # read, not exported again
    # export-onnx writes it beside the weights, where it is found first
    assert export.export_weights(weights) == runtime.graph_path(weights)
    shutil.rmtree(tmp_path / "cache")
    assert graphs.load_graph(weights).weights_digest == graph.weights_digest
    assert not (tmp_path / "cache").exists()


def test_a_graph_of_other_weights_is_not_run(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    weights = tiny_weights(tmp_path / "mine.safetensors", seed=1)
    export.export_weights(tiny_weights(tmp_path / "other.safetensors", seed=2), runtime.graph_path(weights))
    graph = graphs.load_graph(weights)  # the stale one beside it is passed over: exported anew
    assert graph.weights_digest == weights_digest(weights)
    model, _ = load_model(weights)
    _, tokens, pos, mask = tiny_model_and_inputs(0, batch=1, pairs=3, layers=1)
    with torch.inference_mode():
        assert_outputs_close_int8(graph.forward(pos.numpy(), mask.numpy())(tokens.numpy()), model(tokens, pos, mask))


def test_a_file_that_is_not_a_graph_is_one_line(tmp_path):
    bad = tmp_path / "w.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(UserError, match="w.onnx: not a neural graph arraydaemon can run"):
        runtime.NeuralGraph(bad, str(bad))


def test_an_unwritable_cache_is_one_line_saying_how_to_export(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # the cache cannot be made under a file
    weights = tiny_weights(tmp_path / "mine.safetensors")
    with pytest.raises(UserError, match=r"mine.safetensors: cannot write its graph to .*arraydaemon export-onnx"):
        graphs.load_graph(weights)

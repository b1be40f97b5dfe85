"""The neural model's run time (localizers/neural/runtime.py): the compiled (ONNX Runtime) forward
equals the model's, for any pair count, from one export per model."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from arraydaemon.localizers.neural import runtime  # noqa: E402
from tests.helpers import tiny_model_and_inputs  # noqa: E402


@pytest.mark.parametrize("pairs", [1, 3, 10, 28, 120])
def test_compiled_forward_matches_the_model(pairs):
    model, tokens, pos, mask = tiny_model_and_inputs(3, batch=1, pairs=pairs)
    forward = runtime.compiled_forward(model, pos.numpy(), mask.numpy())
    got = forward(tokens.numpy())
    with torch.inference_mode():
        expected = model(tokens, pos, mask)
    assert set(got) == set(runtime.OUTPUTS)
    for key in runtime.OUTPUTS:
        assert isinstance(got[key], np.ndarray)
        np.testing.assert_allclose(got[key], expected[key][0].numpy(), atol=1e-5, rtol=1e-5)


def test_one_export_serves_every_array_and_training_mode_runs_the_model_itself():
    model, tokens, pos, mask = tiny_model_and_inputs(4, batch=1, pairs=6)
    runtime.compiled_forward(model, pos.numpy(), mask.numpy())
    session = runtime._EXPORTED[model][1]
    other = torch.randn(1, 15, 2, 3) * 0.05  # another array: 15 pairs
    runtime.compiled_forward(model, other.numpy(), np.ones((1, 15), bool))
    assert runtime._EXPORTED[model][1] is session
    # weights changed in place are exported again: the forward follows them
    with torch.no_grad():
        model.clean_head.bias.add_(0.5)
    got = runtime.compiled_forward(model, pos.numpy(), mask.numpy())(tokens.numpy())
    assert runtime._EXPORTED[model][1] is not session
    with torch.inference_mode():
        np.testing.assert_allclose(got["clean"], model(tokens, pos, mask)["clean"][0].numpy(), atol=1e-5)
    model.train()
    tokens = torch.randn(1, model.args.groups, 6, model.args.token_features)
    got = runtime.compiled_forward(model, pos.numpy(), mask.numpy())(tokens.numpy())
    model.eval()  # dropout is off in this model: the eager outputs are the eval ones
    with torch.inference_mode():
        np.testing.assert_allclose(got["clean"], model(tokens, pos, mask)["clean"][0].numpy(), atol=1e-6)

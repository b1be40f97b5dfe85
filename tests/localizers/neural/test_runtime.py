"""The neural model's run time (localizers/neural/runtime.py): the traced forward equals the model's."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from arraydaemon.localizers.neural.runtime import traced_forward  # noqa: E402
from tests.helpers import tiny_model_and_inputs  # noqa: E402


def test_traced_forward_matches_the_model():
    model, tokens, pos, mask = tiny_model_and_inputs(3, batch=1, pairs=10)
    traced = traced_forward(model, pos, mask)
    with torch.inference_mode():
        expected, got = model(tokens, pos, mask), traced(tokens, pos, mask)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=1e-5)

"""The spatial transformer (localizers/neural/model.py), untrained and small: its encoder is causal
over time groups, and the newest-group shortcut equals the full encoder."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tests.helpers import tiny_model_and_inputs  # noqa: E402


def test_encoder_is_causal_over_time_groups():
    model, tokens, base, mask = tiny_model_and_inputs(0, batch=1, pairs=5)
    later = tokens.clone()
    later[:, -1] += torch.randn_like(later[:, -1])
    with torch.no_grad():
        a, b = model.encode(tokens, base, mask), model.encode(later, base, mask)
    assert torch.allclose(a[:, :-1], b[:, :-1], atol=1e-6)
    assert not torch.allclose(a[:, -1], b[:, -1], atol=1e-3)  # the newest group does see its input


def test_newest_group_shortcut_equals_the_full_encoder():
    model, tokens, pos, mask = tiny_model_and_inputs(2, batch=2, pairs=6, layers=3)
    mask[1, 4:] = False  # a padded 4-pair array in the same batch
    with torch.no_grad():
        full = model.encode(tokens, pos, mask)[:, -1]
        fast = model.encode_newest(tokens, pos, mask)
    torch.testing.assert_close(fast[0], full[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast[1, :4], full[1, :4], atol=1e-5, rtol=1e-5)

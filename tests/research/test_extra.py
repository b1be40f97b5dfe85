"""require_training_extra: one-line UserError when the ``train`` extra is not installed."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from arraydaemon.core.errors import UserError
from arraydaemon.research import TRAINING_EXTRA_MODULES, require_training_extra


def _without(monkeypatch, *absent: str) -> list[str]:
    """Make find_spec report ``absent`` as not installed; returns the names looked up."""
    real = importlib.util.find_spec
    looked_up = []

    def find_spec(name, package=None):
        looked_up.append(name)
        return None if name in absent else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    return looked_up


def test_extra_installed_passes():
    require_training_extra("train")  # the test environment has the extra


def test_missing_pyroomacoustics(monkeypatch):
    _without(monkeypatch, "pyroomacoustics")
    with pytest.raises(UserError) as info:
        require_training_extra("train")
    msg = str(info.value)
    assert msg.startswith("`arraydaemon train` needs the training extra: pip install 'arraydaemon[train]'")
    assert "pyroomacoustics" in msg and "matplotlib" not in msg
    assert "\n" not in msg


@pytest.mark.parametrize("module", TRAINING_EXTRA_MODULES)
def test_any_module_of_the_extra(monkeypatch, module):
    _without(monkeypatch, module)
    with pytest.raises(UserError, match=rf"`arraydaemon eval` needs the training extra: .*missing: {module}\)"):
        require_training_extra("arraydaemon eval")


def test_all_missing_listed(monkeypatch):
    _without(monkeypatch, *TRAINING_EXTRA_MODULES)
    with pytest.raises(UserError, match=r"\(missing: pyroomacoustics, matplotlib, tqdm, motmetrics, torch, onnx\)$"):
        require_training_extra("train")


def test_find_spec_errors_count_as_missing(monkeypatch):
    def broken(name, package=None):
        raise ValueError(f"{name}.__spec__ is None")

    monkeypatch.setattr(importlib.util, "find_spec", broken)
    with pytest.raises(UserError, match="training extra"):
        require_training_extra("train")


def test_nothing_heavy_imported(monkeypatch):
    for m in TRAINING_EXTRA_MODULES:
        monkeypatch.delitem(sys.modules, m, raising=False)
    looked_up = _without(monkeypatch)
    require_training_extra("train")
    assert looked_up == list(TRAINING_EXTRA_MODULES)
    assert not any(m in sys.modules for m in TRAINING_EXTRA_MODULES)

"""The room-aware gate for further sources (``localizers/room.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from arraydaemon.core.options import LocalizerConfig
from arraydaemon.localizers.room import MIN_WINDOWS, RoomCoherence


def test_the_gate_comes_down_only_where_the_first_source_arrives_coherently():
    cfg = LocalizerConfig(relative_threshold=0.4, dry_relative_threshold=0.2, dry_coherence=(0.6, 0.75))
    room = RoomCoherence(cfg)
    for _ in range(MIN_WINDOWS - 1):
        room.add(0.9)
    assert room.coherence is None and room.relative_threshold() == 0.4  # not enough seen yet
    room.add(0.9)
    assert room.relative_threshold() == pytest.approx(0.2)  # dry
    room.reset()
    for v in np.linspace(0.2, 0.5, 40):
        room.add(float(v))
    assert room.relative_threshold() == pytest.approx(0.4)  # reverberant
    room.reset()
    for _ in range(20):
        room.add(0.675)
        room.add(float("nan"))  # ignored
    assert room.relative_threshold() == pytest.approx(0.3)  # half way
    off = RoomCoherence(LocalizerConfig(dry_relative_threshold=0.4))
    for _ in range(20):
        off.add(0.95)
    assert off.relative_threshold() == 0.4


def test_bad_dry_room_settings_are_refused():
    with pytest.raises(ValueError, match="dry-room coherence"):
        LocalizerConfig(dry_coherence=(0.8, 0.6)).validate()
    with pytest.raises(ValueError, match="dry-room relative"):
        LocalizerConfig(dry_relative_threshold=1.5).validate()

"""The publish stage (stages/publish.py): an Estimate as wire payloads. The payloads over real
sockets: tests/io/test_wire.py."""

from __future__ import annotations

from arraydaemon.core.messages import Estimate
from arraydaemon.core.profiles import load_profile
from arraydaemon.io import wire
from arraydaemon.stages.publish import estimate_payloads


def test_inactive_window_publishes_an_empty_source_list():
    estimate = Estimate(seq=0, sample_rate=16000, t_end=0.256, wall_time=1.0, estimator="srp-phat", sources=(),
                        level_db=-90.0)
    payloads = estimate_payloads(estimate, load_profile("ps3_eye"))
    assert [t for t, _ in payloads] == ["doa"]  # no embedding without a vector
    topic, doa = wire.decode(wire.encode(*payloads[0]))
    assert doa["active"] is False and doa["sources"] == [] and doa["ambiguity"] == "front-back"

"""The `array` topic the live view draws the array from: built from the profile with each `health`
message (service/health.py), valid on the wire, printed by `arraydaemon listen`."""

from __future__ import annotations

import subprocess
import threading
import time

import numpy as np
import pytest

from arraydaemon.cli.display import format_message
from arraydaemon.core.profiles import load_profile
from arraydaemon.io import wire
from arraydaemon.io.publisher import ZmqPublisher
from arraydaemon.service.health import HealthReporter, array_payload
from tests.helpers import ARRAYDAEMON, TETRAHEDRON, make_profile


def health_for(profile) -> dict:
    return HealthReporter().payload(profile, state="running", t_end=3.5, wall_time=1_700_000_003.5, windows=30,
                                    overflows=0, dropped_blocks=0, bad_blocks=0, queue_depth=1,
                                    stage_ms={"features": {"p50": 0.5, "p99": 0.9}}, exposed=False)


@pytest.mark.parametrize("profile, kind, ambiguity", [
    (load_profile("demo"), "planar", "up-down"),
    (make_profile("line", [[0.0, -0.05, 0.0], [0.0, 0.0, 0.0], [0.0, 0.05, 0.0]]), "linear", "front-back"),
    (make_profile("tetra", TETRAHEDRON), "3d", "none"),
])
def test_array_payload_carries_the_geometry_and_is_valid_on_the_wire(profile, kind, ambiguity):
    health = health_for(profile)
    payload = array_payload(profile, "srp-phat", health)
    topic, received = wire.receive(wire.encode("array", payload))
    assert topic == "array" and received == payload
    assert {k: received[k] for k in wire.COMMON_FIELDS} == {k: health[k] for k in wire.COMMON_FIELDS}
    assert received["kind"] == kind and received["ambiguity"] == ambiguity
    assert received["sample_rate"] == 16000 and received["estimator"] == "srp-phat"
    np.testing.assert_array_equal(np.array(received["mics"]), profile.mics)
    assert all(len(row) == 3 and all(type(v) is float for v in row) for row in received["mics"])


def test_array_payload_missing_a_field_is_rejected():
    payload = array_payload(load_profile("demo"), "neural", health_for(load_profile("demo")))
    for field in wire.TOPIC_FIELDS["array"]:
        with pytest.raises(wire.WireError, match=field):
            wire.validate("array", {k: v for k, v in payload.items() if k != field})
    with pytest.raises(wire.WireError, match="mics"):
        wire.validate("array", {**payload, "mics": [[0.0, "a", 0.0]]})


def test_listen_prints_the_array_topic():
    profile = load_profile("demo")
    payload = array_payload(profile, "neural", health_for(profile))
    assert format_message("array", payload) == (
        "array  seq=0      demo planar 4 mics 16000 Hz ambiguity=up-down estimator=neural")
    pub = ZmqPublisher("tcp://127.0.0.1:*")
    stop = threading.Event()

    def publish():  # until listen has subscribed (ZeroMQ's slow joiner) and printed one
        while not stop.is_set():
            pub.send("array", payload)
            time.sleep(0.05)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    try:
        done = subprocess.run([*ARRAYDAEMON, "listen", pub.bound_endpoint, "--count", "1", "--timeout", "30"],
                              capture_output=True, text=True, timeout=60, check=False)
    finally:
        stop.set()
        thread.join()
        pub.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == format_message("array", payload)

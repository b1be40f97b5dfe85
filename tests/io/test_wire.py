"""The wire format (io/wire.py) over real ZeroMQ sockets on 127.0.0.1 (io/publisher.py), the
`listen` command that prints it, and its documentation."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time

import msgpack
import numpy as np
import pytest
import zmq

from arraydaemon.core.errors import UserError
from arraydaemon.core.messages import Estimate, SourceDirection
from arraydaemon.core.profiles import load_profile
from arraydaemon.io import wire
from arraydaemon.io.publisher import ZmqPublisher
from arraydaemon.stages.publish import estimate_payloads
from tests.helpers import ARRAYDAEMON, REPO_ROOT


@pytest.fixture
def context():
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


def make_estimate(with_embedding: bool = True) -> Estimate:
    v = np.array([0.3, -0.5, 0.2])
    v /= np.linalg.norm(v)
    sources = (
        SourceDirection(azimuth_deg=-59.03624346792648, elevation_deg=18.933, vector=tuple(v), confidence=0.87),
        SourceDirection(azimuth_deg=180.0, elevation_deg=0.0, vector=(-1.0, 0.0, 0.0), confidence=0.25),
    )
    return Estimate(seq=41, sample_rate=16000, t_end=4.256, wall_time=1_700_000_004.256, estimator="srp-phat",
                    sources=sources, level_db=-31.5,
                    embedding=np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 12) if with_embedding else None)


def health_payload() -> dict:
    base = wire.common(7, "respeaker_6mic_hat", "respeaker_6mic_hat", 12.5, 1_700_000_012.5)
    return {**base, "state": "running", "uptime_s": 12.75, "windows": 125, "overflows": 1, "dropped_blocks": 0,
            "bad_blocks": 2, "queue_depth": 3, "stage_ms": {"features": {"p50": 0.21, "p99": 0.4},
                                                           "srp-phat": {"p50": 0.8, "p99": 1.5}},
            "cpu_percent": 4.5, "exposed": False}


def receive_while_publishing(pub: ZmqPublisher, sub: zmq.Socket, messages: list[tuple[str, dict]],
                             deadline_s: float = 30.0) -> dict[str, dict]:
    """Publishes ``messages`` over and over until ``sub`` has received every topic once: a new
    subscription takes effect after a handshake (ZeroMQ's slow joiner), and earlier messages are
    dropped, as PUB should."""
    want = {topic for topic, _ in messages}
    got: dict[str, dict] = {}
    deadline = time.monotonic() + deadline_s
    while want - set(got) and time.monotonic() < deadline:
        for topic, payload in messages:
            pub.send(topic, payload)
        while sub.poll(20):
            topic, payload = wire.decode(sub.recv_multipart())
            got.setdefault(topic, payload)
    assert not want - set(got), f"never received {want - set(got)}"
    return got


def test_pub_sub_round_trip_decodes_every_field(context):
    profile = load_profile("respeaker_6mic_hat")
    estimate = make_estimate()
    messages = estimate_payloads(estimate, profile) + [("health", health_payload())]
    assert [t for t, _ in messages] == ["doa", "embedding", "health"]

    pub = ZmqPublisher("tcp://127.0.0.1:*", context=context)
    assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+", pub.bound_endpoint) and not pub.bound_endpoint.endswith(":0")
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(pub.bound_endpoint)
    try:
        got = receive_while_publishing(pub, sub, messages)
    finally:
        sub.close()
        pub.close()
    assert pub.sent >= 3

    for topic, sent in messages:
        received = got[topic]
        wire.validate(topic, received)
        assert set(received) == set(wire.COMMON_FIELDS) | set(wire.TOPIC_FIELDS[topic])
        assert received == sent

    # common fields, every topic
    for topic in ("doa", "embedding"):
        p = got[topic]
        assert p["v"] == wire.SCHEMA_VERSION == 1 and type(p["v"]) is int
        assert p["seq"] == 41 and type(p["seq"]) is int
        assert p["array"] == "respeaker_6mic_hat" and p["frame_id"] == profile.frame_id
        assert p["t_end"] == 4.256 and p["wall_time"] == 1_700_000_004.256
    doa = got["doa"]
    assert doa["estimator"] == "srp-phat" and doa["active"] is True
    assert doa["level_db"] == -31.5 and doa["ambiguity"] == "up-down"
    assert len(doa["sources"]) == 2
    for src, want in zip(doa["sources"], estimate.sources):
        assert list(src) == list(wire.SOURCE_FIELDS)
        assert src["azimuth_deg"] == want.azimuth_deg and src["elevation_deg"] == want.elevation_deg
        assert (src["x"], src["y"], src["z"]) == want.vector
        assert src["confidence"] == want.confidence
        assert all(type(v) is float for v in src.values())
    emb = got["embedding"]
    assert emb["model"] == "srp-phat" and emb["dtype"] == "float32" and emb["shape"] == [2, 12]
    assert isinstance(emb["data"], bytes)
    np.testing.assert_array_equal(np.frombuffer(emb["data"], dtype="<f4").reshape(emb["shape"]), estimate.embedding)
    health = got["health"]
    assert health["seq"] == 7 and health["state"] == "running" and health["windows"] == 125
    assert health["stage_ms"]["srp-phat"] == {"p50": 0.8, "p99": 1.5}


def test_non_finite_numbers_are_never_published(context):
    pub = ZmqPublisher("tcp://127.0.0.1:*", context=context)
    try:
        for bad in (float("nan"), float("inf"), -float("inf")):
            doa = wire.doa_payload(wire.common(1, "a", "a", 1.0, 2.0), "srp-phat", -20.0, "none",
                                   [wire.source_entry(10.0, bad, (1.0, 0.0, 0.0), 0.5)])
            with pytest.raises(wire.WireError, match="non-finite"):
                wire.encode("doa", doa)
            assert pub.send("doa", doa) is False  # refused and counted, never raised into the pipeline
            with pytest.raises(wire.WireError):
                wire.encode("health", {**health_payload(), "stage_ms": {"x": {"p50": bad, "p99": 1.0}}})
        assert pub.sent == 0 and pub.refused == 3
    finally:
        pub.close()


def test_malformed_messages_are_rejected():
    good = wire.encode(*estimate_payloads(make_estimate(False), load_profile("demo"))[0])
    with pytest.raises(wire.WireError):
        wire.decode(good[:1])
    with pytest.raises(wire.WireError):
        wire.decode([b"doa", b"\xc1garbage"])
    with pytest.raises(wire.WireError):
        wire.decode([b"doa", msgpack.packb([1, 2, 3])])
    with pytest.raises(wire.WireError):
        wire.encode("weather", {})
    _, payload = wire.decode(good)
    for field in ("v", "t_end", "sources"):
        with pytest.raises(wire.WireError, match=field):
            wire.validate("doa", {k: v for k, v in payload.items() if k != field})
    with pytest.raises(wire.WireError, match="confidence"):
        wire.validate("doa", {**payload, "sources": [{k: v for k, v in payload["sources"][0].items()
                                                       if k != "confidence"}]})
    with pytest.raises(wire.WireError, match="version"):
        wire.validate("doa", {**payload, "v": 99})


def test_endpoints_default_to_loopback_and_bad_ones_are_user_errors(context):
    assert wire.DEFAULT_ENDPOINT.startswith("tcp://127.0.0.1:")
    with pytest.raises(UserError):
        ZmqPublisher("127.0.0.1:5570", context=context)
    first = ZmqPublisher("tcp://127.0.0.1:*", context=context)
    try:
        with pytest.raises(UserError, match="cannot bind"):
            ZmqPublisher(first.bound_endpoint, context=context)
    finally:
        first.close()


def test_listen_command_prints_published_messages_as_json(context):
    """``arraydaemon listen ENDPOINT --json --count 2`` in a subprocess, against a real publisher."""
    pub = ZmqPublisher("tcp://127.0.0.1:*", context=context)
    messages = estimate_payloads(make_estimate(), load_profile("demo"))
    proc = subprocess.Popen([*ARRAYDAEMON, "listen", pub.bound_endpoint, "--json",
                             "--count", "2", "--topics", "doa,embedding", "--timeout", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            for topic, payload in messages:
                pub.send(topic, payload)
            time.sleep(0.02)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        pub.close()
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 2
    for line in lines:
        topic = line.pop("topic")
        sent = dict(messages)[topic]
        if topic == "embedding":
            assert base64.b64decode(line.pop("data")) == sent["data"]
            sent = {k: v for k, v in sent.items() if k != "data"}
        assert line == sent


# --- the field table -------------------------------------------------------------------------


def docs_field_table() -> list[tuple[str, str, str]]:
    """The field table of the wire-format page (generated from the docstring by tools/gen_docs.py)."""
    text = (REPO_ROOT / "docs" / "reference" / "wire-format.md").read_text(encoding="utf-8")
    m = re.search(r"^## Fields\s*$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert m, "docs/reference/wire-format.md has no '## Fields' section"
    return wire.parse_field_table(m.group(1))


def test_field_table_in_the_docs_equals_wire_docstring():
    doc_rows = wire.parse_field_table(wire.__doc__)
    assert len(doc_rows) > 20
    assert docs_field_table() == doc_rows, "docs/reference/wire-format.md is stale: run python tools/gen_docs.py"


def test_field_table_documents_exactly_the_fields_wire_defines():
    rows = wire.parse_field_table(wire.__doc__)
    names = [(topic, field) for topic, field, _ in rows]
    assert len(names) == len(set(names)), "duplicate rows"
    flat = [(t, f) for t, f in names if "[]." not in f]
    expected = [("*", f) for f in wire.COMMON_FIELDS]
    expected += [(topic, f) for topic, fields in wire.TOPIC_FIELDS.items() for f in fields]
    assert sorted(flat) == sorted(expected)
    nested: dict[tuple[str, str], list[str]] = {}
    for topic, field in names:
        if "[]." in field:
            parent, child = field.split("[].", 1)
            nested.setdefault((topic, parent), []).append(child)
    assert nested[("doa", "sources")] == list(wire.SOURCE_FIELDS)
    types = {(t, f): ty for t, f, ty in rows}
    for (topic, parent) in nested:  # every nested row belongs to a documented list field
        assert types[(topic, parent)].startswith("list"), (topic, parent)
    assert all(t in wire.TOPICS or t == "*" for t, _ in names)

"""The publishing socket's guard: no peer can make the daemon hold more than a bounded amount.

The flood tests run a real ``arraydaemon replay`` publishing on 127.0.0.1 and attack it the way a
hostile local process would, with raw ZMTP over TCP and with a real libzmq peer, while a real SUB
socket keeps receiving; the daemon's resident memory is read from /proc."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
import zmq
from hypothesis import given
from hypothesis import strategies as st

from arraydaemon.io import wire
from arraydaemon.io.guard import MAX_FRAME, MAX_SUBSCRIPTIONS, UpstreamFilter, topic_prefixes
from arraydaemon.io.publisher import ZmqPublisher
from tests.helpers import ARRAYDAEMON, REPO_ROOT, free_port

ALLOWED = topic_prefixes(wire.TOPICS)
GREETING = b"\xff" + bytes(7) + b"\x01\x7f" + bytes([3, 1]) + b"NULL".ljust(20, b"\0") + b"\0" + bytes(31)


def frame(body: bytes, flags: int = 0) -> bytes:
    return bytes([flags, len(body)]) + body


READY = frame(b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 3) + b"SUB", flags=4)


def handshake(port: int) -> socket.socket:
    """A raw TCP peer that has done a subscriber's ZMTP 3 handshake with the publisher on ``port``
    (libzmq wants the publisher's greeting and READY read before the subscriber's READY)."""
    peer = socket.create_connection(("127.0.0.1", port))
    peer.settimeout(10)
    peer.sendall(GREETING)
    got = b""
    while len(got) < len(GREETING) + len(READY):
        chunk = peer.recv(4096)
        assert chunk, "the publisher closed the connection during the handshake"
        got += chunk
    peer.sendall(READY)
    return peer


def test_topic_prefixes_are_every_prefix_of_every_topic():
    assert b"" in ALLOWED and b"d" in ALLOWED and b"doa" in ALLOWED and b"tracks" in ALLOWED
    assert b"doax" not in ALLOWED and b"x" not in ALLOWED


def test_the_filter_passes_a_subscribers_handshake_and_topic_subscriptions():
    f = UpstreamFilter(ALLOWED)
    stream = GREETING + READY + frame(b"\x01doa") + frame(b"\x01") + frame(b"\x00doa") + frame(b"\x04PING\x00\x10", 4)
    assert f.feed(stream) == stream
    assert f.subscriptions == 3 and f.dropped == 0


def test_the_greeting_is_relayed_as_it_comes_byte_by_byte():
    f = UpstreamFilter(ALLOWED)
    stream = GREETING + READY + frame(b"\x01tracks")
    assert b"".join(f.feed(stream[i:i + 1]) for i in range(len(stream))) == stream


def test_subscriptions_no_message_can_match_are_dropped_and_counted():
    f = UpstreamFilter(ALLOWED)
    f.feed(GREETING + READY)
    assert f.feed(frame(b"\x01" + b"x" * 16) + frame(b"\x01doa") + frame(b"not a subscription")) == frame(b"\x01doa")
    assert f.dropped == 2
    command = frame(b"\x09SUBSCRIBE" + b"zzz", 4) + frame(b"\x09SUBSCRIBE" + b"health", 4)
    assert f.feed(command) == frame(b"\x09SUBSCRIBE" + b"health", 4)


@pytest.mark.parametrize("stream, reason", [
    (b"GET / HTTP/1.1\r\n", "not a ZMTP 3 greeting"),
    (GREETING[:12] + b"CURVE".ljust(20, b"\0") + GREETING[32:], "security mechanism"),
    (GREETING + READY + b"\x02" + struct.pack(">Q", 2 << 30), "long frame"),  # a frame announcing 2 GiB
    (GREETING + READY + frame(b"\x01doa", 1), "multipart"),
    (GREETING + READY + frame(b"\x04NOPE", 4), "command"),
    (GREETING + b"\x80\x00", "flags"),
])
def test_what_no_subscriber_sends_closes_the_connection(stream, reason):
    with pytest.raises(ValueError, match=reason):
        UpstreamFilter(ALLOWED).feed(stream)


def test_subscription_changes_are_bounded_per_connection():
    f = UpstreamFilter(ALLOWED)
    f.feed(GREETING + READY)
    f.feed(frame(b"\x01doa") * MAX_SUBSCRIPTIONS)
    with pytest.raises(ValueError, match="subscription changes"):
        f.feed(frame(b"\x00doa"))


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_any_bytes_are_passed_on_in_part_or_refused_with_a_line(chunks):
    f = UpstreamFilter(ALLOWED)
    try:
        passed = b"".join(f.feed(c) for c in chunks)
    except ValueError as exc:
        assert "\n" not in str(exc)
        return
    assert len(passed) <= sum(map(len, chunks))
    assert len(f._buffer) <= MAX_FRAME + 2  # at most one frame waits for its end


def _subscriber(endpoint: str, topic: bytes = b"") -> zmq.Socket:
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(endpoint)
    sub.subscribe(topic)
    return sub


def test_subscribers_get_what_is_published_through_the_guard_and_junk_peers_do_not_stop_them():
    pub = ZmqPublisher("tcp://127.0.0.1:*")
    sub = _subscriber(pub.bound_endpoint, b"doa")
    junk = socket.create_connection(("127.0.0.1", int(pub.bound_endpoint.rsplit(":", 1)[1])))
    try:
        junk.sendall(b"\x00" * 4096)  # not ZMTP: disconnected
        payload = wire.doa_payload(wire.common(1, "a", "a_array", 0.0, 1.0), "srp-phat", -30.0, "none", [])
        deadline = time.monotonic() + 10
        while not sub.poll(50) and time.monotonic() < deadline:
            pub.send("doa", payload)
        assert wire.receive(sub.recv_multipart()) == ("doa", payload)
        junk.settimeout(5)
        while junk.recv(100):  # the publisher's first greeting bytes, then the end: the guard closed it
            pass
        assert pub.guard.refused >= 1
    finally:
        junk.close()
        sub.close()
        pub.close()


# --- against a real daemon -------------------------------------------------------------------


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def publishing_replay(tmp_path):
    """A real ``arraydaemon replay`` in real time, publishing on a free port, a SUB socket on it, and
    the replay's resident memory (MB) once it publishes."""
    demo, rate = sf.read(REPO_ROOT / "arraydaemon" / "data" / "demo.flac", dtype="float32")
    long = tmp_path / "long.wav"
    sf.write(long, np.tile(demo, (20, 1)), rate)  # two minutes
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([*ARRAYDAEMON, "replay", str(long), "--profile", "demo", "--endpoint", endpoint,
                             "--quiet", "--estimator", "srp-phat"], stderr=subprocess.PIPE, text=True)
    sub = _subscriber(endpoint, b"doa")
    try:
        assert sub.poll(60_000), "no doa message within 60 s"
        sub.recv_multipart()
        time.sleep(1.0)
        yield proc, port, sub, _rss_mb(proc.pid)
    finally:
        sub.close()
        proc.terminate()
        proc.communicate(timeout=30)


def _drain(sub: zmq.Socket) -> int:
    n = 0
    while sub.poll(0):
        wire.receive(sub.recv_multipart())
        n += 1
    return n


@pytest.mark.live
@pytest.mark.slow
def test_a_million_subscriptions_from_one_peer_do_not_grow_the_daemon(publishing_replay):
    proc, port, sub, before = publishing_replay
    sent, connections, received = 0, 0, 0
    chunk = b"".join(frame(b"\x01" + i.to_bytes(8, "little") + b"12345678") for i in range(10_000))
    deadline = time.monotonic() + 60
    while sent < 1_000_000 and time.monotonic() < deadline:
        with handshake(port) as peer:  # one peer: it reconnects when cut off
            connections += 1
            try:
                while sent < 1_000_000:
                    peer.sendall(chunk.replace(b"12345678", sent.to_bytes(8, "little")))
                    sent += 10_000
            except OSError:  # disconnected by the guard
                pass
        received += _drain(sub)
    for _ in range(16):  # libzmq takes subscriptions in as the publisher sends (every window)
        time.sleep(0.5)
        received += _drain(sub)
    grown = _rss_mb(proc.pid) - before
    assert sent >= 1_000_000, f"only {sent} subscriptions sent in 60 s"
    assert grown < 10, f"RSS grew {grown:.1f} MB under {sent} subscriptions over {connections} connection(s)"
    assert received > 0  # the honest subscriber kept receiving
    assert proc.poll() is None


@pytest.mark.live
@pytest.mark.slow
def test_frames_announcing_gigabytes_are_cut_off_and_cost_nothing(publishing_replay):
    proc, port, sub, before = publishing_replay
    for announced in (2 << 30, 4 << 20):  # a frame announcing 2 GiB; a 4 MB subscription
        with handshake(port) as peer:
            peer.sendall(b"\x02" + struct.pack(">Q", announced) + b"\x01" + b"x" * 65536)
            try:
                while peer.recv(65536):  # closed by the guard
                    pass
            except ConnectionResetError:
                pass
    time.sleep(3.0)
    grown = _rss_mb(proc.pid) - before
    assert grown < 10, f"RSS grew {grown:.1f} MB"
    assert _drain(sub) > 0 and proc.poll() is None


def test_the_guard_module_needs_no_zmq_to_import():
    code = "import sys; import arraydaemon.io.guard; assert 'zmq' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_killed_publishers_private_directory_is_removed_by_the_next_and_a_live_ones_kept(tmp_path, monkeypatch):
    import os
    import signal
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code = ("import sys, tempfile, time; tempfile.tempdir = sys.argv[2]\n"
            "from arraydaemon.io.publisher import ZmqPublisher\n"
            "p = ZmqPublisher(sys.argv[1]); print(p._private_dir, flush=True); time.sleep(60)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, f"tcp://127.0.0.1:{free_port()}", str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT) for _ in range(2)]
    try:
        killed_dir, live_dir = (proc.stdout.readline().strip() for proc in procs)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        assert os.path.isdir(killed_dir) and os.path.isdir(live_dir)
        publisher = ZmqPublisher(f"tcp://127.0.0.1:{free_port()}")
        try:
            assert not os.path.exists(killed_dir)
            assert os.path.isdir(live_dir)
            assert os.path.basename(publisher._private_dir).startswith(f"arraydaemon-pub-{os.getpid()}-")
        finally:
            publisher.close()
        assert not os.path.exists(publisher._private_dir)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)

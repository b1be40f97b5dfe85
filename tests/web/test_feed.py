"""`arraydaemon web`'s feed over real sockets: a ZeroMQ publisher in this process, the web server as
a subprocess, WebSocket clients (aiohttp's, and a raw socket that never reads)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time

import aiohttp
import msgpack
import pytest

from arraydaemon.core.profiles import load_profile
from arraydaemon.io import wire
from arraydaemon.io.publisher import ZmqPublisher
from arraydaemon.service.health import HealthReporter, array_payload
from arraydaemon.web.feed import CLIENT_QUEUE
from tests.web.processes import WebServer

pytestmark = pytest.mark.live


@pytest.fixture
def published():
    """A PUB socket here and `arraydaemon web` subscribed to it."""
    pub = ZmqPublisher("tcp://127.0.0.1:*")
    web = WebServer(pub.bound_endpoint)
    try:
        yield pub, web
    finally:
        web.stop()
        pub.close()


def messages(seq: int = 5, tracks: int = 1) -> dict[str, dict]:
    profile = load_profile("demo")
    health = HealthReporter().payload(profile, state="replay", t_end=1.0, wall_time=time.time(), windows=10,
                                      overflows=0, dropped_blocks=2, bad_blocks=0, queue_depth=0,
                                      stage_ms={"features": {"p50": 0.5, "p99": 0.9}}, exposed=False)
    base = wire.common(seq, profile.name, profile.frame_id, 1.0, time.time())
    entries = [wire.track_entry(i + 1, 60.25 - i, 14.5, (0.48, 0.84, 0.25), 0.9, 2.0, 0.0, 1.0, 0.5, -30.0)
               for i in range(tracks)]
    return {"health": health, "array": array_payload(profile, "neural", health),
            "tracks": wire.tracks_payload(base, "up-down", entries),
            "doa": wire.doa_payload(base, "neural", -30.0, "up-down", [wire.source_entry(60.0, 15.0, (0.48, 0.84, 0.25),
                                                                                        0.7)])}


async def receive_until(ws, done, timeout: float, publish=None) -> list[dict]:
    """JSON messages from ``ws`` until ``done(received)``; ``publish()`` is called whenever every
    message so far has been read."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while not done(got):
        assert time.monotonic() < deadline, f"gave up after {timeout:g} s; got {[m['topic'] for m in got]}"
        if publish is not None:
            publish()
        while True:
            try:
                got.extend(await ws.receive_json(timeout=0.1))  # each text: a JSON array of messages
            except TimeoutError:
                break
    return got


def test_the_feed_forwards_valid_messages_as_json_and_greets_late_viewers(published):
    pub, web = published
    sent = messages()
    invalid = [b"tracks", msgpack.packb({"v": 1, "seq": 1}, use_bin_type=True)]

    def publish():
        for topic, payload in sent.items():
            pub.send(topic, payload)
        pub.socket.send_multipart(invalid)

    async def run():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(web.url + "ws") as ws:
                first = (await ws.receive_json(timeout=5))[0]
                got = await receive_until(
                    ws, lambda got: {"doa", "tracks", "health", "array"} <= {m["topic"] for m in got}
                    and any(m["topic"] == "web" and m["rejected"] for m in got), 30.0, publish)
            # a viewer that comes now gets the latest array and health at once, then the server's status
            async with session.ws_connect(web.url + "ws") as ws:
                late = await receive_until(ws, lambda got: len(got) >= 3, 5.0)
        return first, got, late

    first, got, late = asyncio.run(run())
    assert first["topic"] == "web" and first["endpoint"] == pub.bound_endpoint and first["clients"] == 1
    for topic, payload in sent.items():
        message = next(m for m in got if m["topic"] == topic)
        assert abs(message.pop("web_time") - time.time()) < 60
        assert message == {**json.loads(json.dumps(payload)), "topic": topic}
    status = [m for m in got if m["topic"] == "web" and m["rejected"]][-1]
    assert "missing fields" in status["last_error"] and status["dropped"] == 0
    assert [m["topic"] for m in late] == ["array", "health", "web"]
    assert late[0]["mics"] == sent["array"]["mics"]


def test_other_sites_cannot_read_the_feed(published):
    _, web = published

    async def run():
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:  # another site's page in the browser
                await session.ws_connect(web.url + "ws", origin="http://evil.example")
            async with session.ws_connect(web.url + "ws", origin=web.url.rstrip("/")) as ws:  # this server's page
                own = (await ws.receive_json(timeout=5))[0]
            # DNS rebinding: a foreign name that resolves to 127.0.0.1
            async with session.get(web.url, headers={"Host": f"evil.example:{web.port}"}) as r:
                rebound = r.status
            async with session.get(web.url, headers={"Host": f"localhost:{web.port}"}) as r:
                local = (r.status, r.headers["Content-Security-Policy"])
        return refused.value.status, own, rebound, local

    refused, own, rebound, local = asyncio.run(run())
    assert refused == 403 and own["topic"] == "web" and rebound == 421
    assert local[0] == 200 and "connect-src 'self'" in local[1] and "default-src 'none'" in local[1]


def stalled_client(port: int) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads (a tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def test_a_slow_browser_loses_its_oldest_messages_and_delays_nobody(published):
    pub, web = published
    big = messages(tracks=200)["tracks"]  # about 60 kB of JSON each
    count = 300  # about 18 MB: more than the kernel buffers towards the stalled client hold

    async def run():
        slow = stalled_client(web.port)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(web.url + "ws", max_msg_size=1 << 20) as ws:
                    await receive_until(ws, lambda got: any(m["topic"] == "tracks" for m in got), 30.0,
                                        lambda: pub.send("tracks", {**big, "seq": count}))
                    seqs = []

                    async def read():
                        while not seqs or seqs[-1] != count - 1:
                            for m in await ws.receive_json(timeout=30):
                                if m["topic"] == "tracks":
                                    seqs.append(m["seq"])

                    reader = asyncio.create_task(read())
                    for seq in range(count):
                        pub.send("tracks", {**big, "seq": seq})
                        await asyncio.sleep(0.01)
                    await asyncio.wait_for(reader, 60)
                async with session.get(web.url + "status") as r:
                    status = await r.json()
        finally:
            slow.close()
        return seqs, status

    seqs, status = asyncio.run(run())
    received = [s for s in seqs if s < count]  # not the first ones, sent until the client was subscribed
    assert received[-1] == count - 1 and received == sorted(received)
    assert len(set(received)) >= 0.9 * count, f"the reading client got {len(set(received))} of {count}"
    stalled = [c for c in status["clients"] if c["dropped"] > 0]
    assert len(stalled) == 1, status["clients"]
    assert 0 < stalled[0]["queued"] <= CLIENT_QUEUE and stalled[0]["sent"] < count / 2
    assert status["inbox_dropped"] == 0

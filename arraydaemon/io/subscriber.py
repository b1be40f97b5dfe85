"""A bounded, validating ZeroMQ subscriber: what ``listen``, ``reason`` and ``web`` receive with.

Whatever a publisher (or anyone who can reach the endpoint) sends, a :class:`Subscriber` holds at
most ``high_water_mark`` messages of at most :data:`wire.MAX_MESSAGE_BYTES` each (ZeroMQ drops larger
ones before they are read), returns only messages that pass :func:`wire.receive`, counts and skips
the rest, and never waits past the deadline it is given, however fast messages arrive.
"""

from __future__ import annotations

import time

from arraydaemon.core.errors import UserError
from arraydaemon.io import wire
from arraydaemon.io.endpoints import check_endpoint


class Subscriber:
    """A SUB socket connected to ``endpoint`` for ``topics``."""

    def __init__(self, endpoint: str, topics, high_water_mark: int = 200):
        import zmq  # on use: importing this module does not load ZeroMQ

        self._zmq = zmq
        self.endpoint = check_endpoint(endpoint, for_bind=False)
        self.socket = zmq.Context.instance().socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVHWM, high_water_mark)
        self.socket.setsockopt(zmq.MAXMSGSIZE, wire.MAX_MESSAGE_BYTES + 64)
        self._monitor = self.socket.get_monitor_socket(
            zmq.EVENT_CONNECTED | zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_DISCONNECTED
            | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
            | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        try:
            self.socket.connect(self.endpoint)
        except zmq.ZMQError as exc:
            self.socket.close()
            raise UserError(f"cannot connect to {endpoint}: {exc.strerror}") from None
        self._events: set[str] = set()
        for topic in topics:
            self.socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self.received = 0  # valid messages returned
        self.rejected = 0  # messages that failed validation
        self.last_error = ""

    def receive(self, deadline: float, limit: int = 100) -> list[tuple[str, dict]]:
        """Valid messages that arrive before ``deadline`` (``time.monotonic()`` seconds): returns
        as soon as at least one is queued and read (up to ``limit`` at once), or at the deadline."""
        out: list[tuple[str, dict]] = []
        while not out:
            left = deadline - time.monotonic()
            if left <= 0 or not self.socket.poll(max(1, int(min(left, 0.2) * 1000))):
                if left <= 0 or time.monotonic() >= deadline:
                    return out
                continue
            while len(out) < limit and time.monotonic() < deadline:
                try:
                    frames = self.socket.recv_multipart(self._zmq.NOBLOCK)
                except self._zmq.Again:
                    break
                try:
                    out.append(wire.receive(frames))
                except wire.WireError as exc:
                    self.rejected += 1
                    self.last_error = str(exc)
            if time.monotonic() >= deadline:
                break
        self.received += len(out)
        return out

    def connection_state(self) -> str:
        """What the connection to the publisher has done so far, in words: for telling a user why
        nothing arrives (nothing listening, not ZeroMQ, or a publisher that sends none of the topics)."""
        from zmq.utils.monitor import recv_monitor_message

        zmq = self._zmq
        while self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)["event"]
            names = {zmq.EVENT_CONNECTED: "connected", zmq.EVENT_CONNECT_RETRIED: "refused",
                     zmq.EVENT_HANDSHAKE_SUCCEEDED: "zeromq", zmq.EVENT_DISCONNECTED: "disconnected"}
            self._events.add(names.get(event, "not-zeromq"))
        if "zeromq" in self._events:
            return "a ZeroMQ publisher is connected but has sent none of the subscribed topics"
        if "not-zeromq" in self._events or ("connected" in self._events and "disconnected" in self._events):
            return "something listens there but does not speak ZeroMQ"
        if "connected" in self._events:
            return "connected, but no ZeroMQ handshake yet: probably not a ZeroMQ publisher"
        return "nothing accepts connections there (is `arraydaemon run` or `replay` publishing on it?)"

    def close(self) -> None:
        self.socket.disable_monitor()
        self._monitor.close()
        self.socket.close()

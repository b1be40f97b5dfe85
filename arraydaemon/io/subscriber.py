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
        try:
            self.socket.connect(self.endpoint)
        except zmq.ZMQError as exc:
            self.socket.close()
            raise UserError(f"cannot connect to {endpoint}: {exc.strerror}") from None
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

    def close(self) -> None:
        self.socket.close()

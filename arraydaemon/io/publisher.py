"""The ZeroMQ PUB socket the daemon and replay publish on.

Sends never block: with a slow or absent subscriber, ZeroMQ's high-water mark drops messages and
the drop is counted, so a subscriber can never stall capture.
"""

from __future__ import annotations

import zmq

from arraydaemon.core.errors import UserError
from arraydaemon.io import wire


def check_endpoint(endpoint: str) -> str:
    """Reject endpoints ZeroMQ cannot bind, with a one-line reason."""
    if not isinstance(endpoint, str) or "://" not in endpoint:
        raise UserError(f"endpoint {endpoint!r}: expected tcp://HOST:PORT or ipc://PATH")
    return endpoint


class ZmqPublisher:
    """A bound PUB socket. ``send`` drops (and counts) rather than blocks."""

    def __init__(self, endpoint: str, context: zmq.Context | None = None, high_water_mark: int = 1000):
        self.endpoint = check_endpoint(endpoint)
        self._context = context or zmq.Context.instance()
        self.socket = self._context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.SNDHWM, high_water_mark)
        self.socket.setsockopt(zmq.LINGER, 200)
        try:
            self.socket.bind(endpoint)
        except zmq.ZMQError as exc:
            self.socket.close(0)
            raise UserError(f"cannot bind {endpoint}: {exc.strerror}") from None
        self.bound_endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.sent = 0
        self.dropped = 0

    def send(self, topic: str, payload: dict) -> bool:
        frames = wire.encode(topic, payload)
        try:
            self.socket.send_multipart(frames, flags=zmq.NOBLOCK)
        except zmq.Again:
            self.dropped += 1
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        self.socket.close()

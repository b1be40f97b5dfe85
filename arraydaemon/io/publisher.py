"""The ZeroMQ PUB socket the daemon and replay publish on.

Sends never block: with a slow or absent subscriber, ZeroMQ's high-water mark drops messages and
the drop is counted, so a subscriber can never stall capture. A message the wire format refuses
(a non-finite number, say) is counted and logged, never raised: publishing cannot stop the pipeline.
The endpoint actually bound is logged; binding beyond loopback is logged as a warning and flagged
(``exposed``), and the daemon repeats it in every ``health`` message.

Subscribers never reach the PUB socket directly: it is bound on a Unix socket in a private
directory, and a :class:`~arraydaemon.io.guard.SubscriptionGuard` listens on the endpoint asked for
and relays each subscriber, passing on only subscriptions a published topic can match, so no peer
can make the socket hold more than a bounded amount (``io/guard.py``). What is sent is checked with
:func:`wire.validate`, the check every subscriber applies, so nothing is published that a subscriber
would refuse.

The private directory is named for the process (``arraydaemon-pub-PID-…``) and removed on close; one
left by a process that was killed is removed by the next publisher that starts.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile

import zmq

from arraydaemon.core.errors import UserError
from arraydaemon.io import wire
from arraydaemon.io.endpoints import check_endpoint, is_loopback
from arraydaemon.io.guard import MAX_FRAME, SubscriptionGuard, listen

log = logging.getLogger("arraydaemon.publisher")

PRIVATE_PREFIX = "arraydaemon-pub-"


def _owner_gone(path: str, name: str) -> bool:
    """Whether the private directory ``name`` belongs to a process that no longer runs."""
    pid_text = name[len(PRIVATE_PREFIX):].split("-", 1)[0]
    if pid_text.isdigit():
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return True
        except OSError:  # alive, someone else's
            return False
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # older names carry no pid: ask the socket
    try:
        probe.connect(os.path.join(path, "pub"))
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        probe.close()
    return False


def remove_stale_private_dirs(root: str | None = None) -> int:
    """Remove private directories of this user's publishers that were killed; return how many."""
    root = root or tempfile.gettempdir()
    removed = 0
    try:
        entries = list(os.scandir(root))
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.startswith(PRIVATE_PREFIX):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
        except OSError:
            continue
        if _owner_gone(entry.path, entry.name):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    return removed


class ZmqPublisher:
    """A bound PUB socket. ``send`` drops (and counts) rather than blocks."""

    def __init__(self, endpoint: str, context: zmq.Context | None = None, high_water_mark: int = 1000):
        self.endpoint = check_endpoint(endpoint)
        listener, self.bound_endpoint = listen(self.endpoint)  # a busy endpoint fails here, before anything else
        remove_stale_private_dirs()
        self._private_dir = tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-")  # mode 0700: this user only
        private_path = os.path.join(self._private_dir, "pub")
        self._context = context or zmq.Context.instance()
        self.socket = self._context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.SNDHWM, high_water_mark)
        self.socket.setsockopt(zmq.LINGER, 200)
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME)  # what a subscriber sends is a short frame
        try:
            self.socket.bind(f"ipc://{private_path}")
        except zmq.ZMQError as exc:
            self.socket.close(0)
            listener.close()
            shutil.rmtree(self._private_dir, ignore_errors=True)
            raise UserError(f"cannot bind {endpoint}: {exc.strerror}") from None
        self.guard = SubscriptionGuard(listener, private_path, wire.TOPICS)
        self.exposed = not is_loopback(endpoint)
        self.sent = 0
        self.dropped = 0
        self.refused = 0  # messages the wire format refused (logged, not sent)
        if self.exposed:
            log.warning("publishing on %s, beyond loopback: anyone who can reach this host can subscribe "
                        "(use tcp://127.0.0.1:PORT or ipc:// to keep it local)", self.bound_endpoint)
        else:
            log.info("publishing on %s", self.bound_endpoint)

    def send(self, topic: str, payload: dict) -> bool:
        try:
            frames = wire.encode(topic, payload)
        except wire.WireError as exc:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.error("not publishing a %s message (%d so far): %s", topic, self.refused, exc)
            return False
        try:
            self.socket.send_multipart(frames, flags=zmq.NOBLOCK)
        except zmq.Again:
            self.dropped += 1
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        self.socket.close()  # lingers: what was sent last still reaches the guard's connections ...
        self.guard.close(flush_s=0.5)  # ... which relay it, then end
        shutil.rmtree(self._private_dir, ignore_errors=True)

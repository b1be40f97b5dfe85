"""systemd notify protocol (sd_notify) over ``$NOTIFY_SOCKET``, with the standard library only.

Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op. Messages are newline-separated
``KEY=VALUE`` assignments sent as one datagram on an ``AF_UNIX``/``SOCK_DGRAM`` socket; a socket
name starting with ``@`` is in the abstract namespace (leading NUL byte).

Watchdog policy: ``WATCHDOG=1`` is sent whenever ``$NOTIFY_SOCKET`` is set (systemd ignores it
when the unit has no ``WatchdogSec=``), from the processing loop, at most every half of
``$WATCHDOG_USEC`` or every second when that is unset. ``$WATCHDOG_PID``, when set, must name this
process, as sd_watchdog_enabled() requires.
"""

from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("arraydaemon.io.notify")


def _address(name: str) -> str | bytes:
    if name.startswith("@"):
        return b"\0" + name[1:].encode()
    return name


class Notifier:
    """Sends sd_notify messages; inert when ``env`` has no ``NOTIFY_SOCKET``."""

    def __init__(self, env: dict | None = None):
        env = os.environ if env is None else env
        self.address = env.get("NOTIFY_SOCKET") or None
        self._sock = None
        if self.address is not None and not (self.address.startswith("/") or self.address.startswith("@")):
            log.warning("NOTIFY_SOCKET=%r is neither a path nor an abstract name; not notifying", self.address)
            self.address = None
        if self.address is not None:
            # Non-blocking: a notify socket nobody reads must not stall the processing loop.
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        interval = 1.0
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        if usec and usec.isdigit() and int(usec) > 0:
            interval = min(interval, int(usec) / 2e6)
        self.watchdog_enabled = self._sock is not None and (not pid or pid == str(os.getpid()))
        self.watchdog_interval = interval
        self._last_watchdog = -float("inf")

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *assignments: str, retry_s: float = 0.0) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram; False when not under systemd or on failure.

        A full receive queue drops the message, after retrying for up to ``retry_s`` seconds.
        """
        if self._sock is None:
            return False
        text = "\n".join(a.replace("\n", " ") for a in assignments).encode()
        deadline = time.monotonic() + retry_s
        while True:
            try:
                self._sock.sendto(text, _address(self.address))
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    log.debug("sd_notify to %s: queue full, dropped %r", self.address, text)
                    return False
                time.sleep(0.01)
            except OSError as exc:
                # A vanished notify socket must never take the daemon down.
                log.debug("sd_notify to %s failed: %s", self.address, exc)
                return False

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []), retry_s=1.0)

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def reloading(self) -> bool:
        # MONOTONIC_USEC lets systemd >= 253 match the reload to the request; older ones ignore it.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", retry_s=1.0)

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *([f"STATUS={status}"] if status else []), retry_s=0.2)

    def watchdog(self, now: float | None = None) -> bool:
        """``WATCHDOG=1`` if due; call it from the loop whose stalling should restart the service."""
        if not self.watchdog_enabled:
            return False
        now = time.monotonic() if now is None else now
        if now - self._last_watchdog < self.watchdog_interval:
            return False
        self._last_watchdog = now
        return self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

"""The sd_notify client (io/notify.py) against bound datagram sockets, path and abstract. The
systemd unit that uses it: tests/integration/test_systemd.py."""

from __future__ import annotations

import os
import secrets
import socket
import threading

import pytest

from arraydaemon.io.notify import Notifier
from tests.helpers import bind_datagram_socket


class Bound:
    def __init__(self, address: str):
        self.address = address
        self.sock = bind_datagram_socket(address)
        self.sock.settimeout(2.0)

    def recv(self) -> list[str]:
        return self.sock.recv(4096).decode().split("\n")

    def empty(self) -> bool:
        self.sock.settimeout(0.05)
        try:
            self.sock.recv(4096)
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(2.0)
        return False


@pytest.mark.parametrize("abstract", [False, True])
def test_notifier_sends_the_protocol_to_path_and_abstract_sockets(tmp_path, abstract):
    address = f"@arraydaemon-test-{secrets.token_hex(4)}" if abstract else str(tmp_path / "notify")
    bound = Bound(address)
    n = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())})
    assert n.enabled and n.watchdog_enabled and n.watchdog_interval == 1.0
    assert n.ready("capturing")
    assert bound.recv() == ["READY=1", "STATUS=capturing"]
    assert n.status("line\nbreak")
    assert bound.recv() == ["STATUS=line break"]
    assert n.watchdog(now=100.0)
    assert bound.recv() == ["WATCHDOG=1"]
    assert not n.watchdog(now=100.5)  # rate-limited to the interval
    assert n.watchdog(now=101.0)
    assert bound.recv() == ["WATCHDOG=1"]
    assert n.reloading()
    reloading = bound.recv()
    assert reloading[0] == "RELOADING=1" and reloading[1].startswith("MONOTONIC_USEC=")
    assert n.stopping()
    assert bound.recv() == ["STOPPING=1"]
    assert bound.empty()
    n.close()


def test_notifier_watchdog_interval_and_pid_rules(tmp_path):
    address = str(tmp_path / "notify")
    bound = Bound(address)  # noqa: F841 - kept open while the notifiers are made
    assert Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "600000"}).watchdog_interval == 0.3
    assert Notifier({"NOTIFY_SOCKET": address}).watchdog_interval == 1.0  # sent anyway: see notify.py
    other_pid = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "600000", "WATCHDOG_PID": "1"})
    assert not other_pid.watchdog_enabled and not other_pid.watchdog()


def test_notifier_is_a_no_op_outside_systemd(tmp_path):
    n = Notifier({})
    assert not n.enabled and not n.ready() and not n.watchdog() and not n.stopping()
    # a socket that went away is not an error either
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert gone.enabled and not gone.ready()
    assert not Notifier({"NOTIFY_SOCKET": "relative/path"}).enabled


def test_notifier_never_blocks_on_a_socket_nobody_reads(tmp_path):
    address = str(tmp_path / "notify")
    bound = Bound(address)  # bound, never read: its queue fills after a few datagrams
    n = Notifier({"NOTIFY_SOCKET": address})
    results = []
    sender = threading.Thread(target=lambda: results.extend(n.watchdog(now=float(k)) for k in range(500)))
    sender.start()
    sender.join(30)
    assert not sender.is_alive(), "sd_notify blocked on a full socket"
    assert results[0] is True and results[-1] is False  # first delivered, the overflow dropped
    assert bound.recv() == ["WATCHDOG=1"]

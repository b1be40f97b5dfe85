"""The systemd unit (linted by ``systemd-analyze verify``) and the sd_notify client."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from arraydaemon.io.notify import Notifier

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "arraydaemon@.service"


def unit_settings(text: str) -> dict[str, list[str]]:
    """KEY → values of the unit file (every section; repeated keys accumulate)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_passes_systemd_analyze_verify_without_any_warning(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze not found: install the Debian package systemd (tools/test.sh does)"
    # verify needs ExecStart's binary to exist: point it at this environment's arraydaemon.
    exe = Path(sys.executable).with_name("arraydaemon")
    assert exe.is_file(), f"{exe} missing: install the package (pip install -e .)"
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/bin/arraydaemon " in text
    (tmp_path / UNIT.name).write_text(text.replace("ExecStart=/usr/local/bin/arraydaemon ", f"ExecStart={exe} "))
    out = subprocess.run([analyze, "verify", f"{tmp_path}/arraydaemon@demo.service"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"})
    printed = (out.stdout + out.stderr).strip()
    assert out.returncode == 0 and printed == "", f"exit {out.returncode}:\n{printed}"


def test_unit_lint_catches_a_broken_unit(tmp_path):
    """The check above can fail: a typo'd directive and a missing binary are reported."""
    broken = UNIT.read_text().replace("NoNewPrivileges=yes", "NoNewPrivilege=yes")
    (tmp_path / UNIT.name).write_text(broken)
    out = subprocess.run(["systemd-analyze", "verify", f"{tmp_path}/arraydaemon@demo.service"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    printed = out.stdout + out.stderr
    assert "NoNewPrivilege" in printed and "arraydaemon" in printed


def test_unit_is_a_hardened_notify_service_with_watchdog():
    s = unit_settings(UNIT.read_text())
    assert s["Type"] == ["notify"]
    assert s["Restart"] == ["on-failure"]
    assert int(s["WatchdogSec"][0]) >= 2  # the daemon pets every second
    assert "--profile %i" in s["ExecStart"][0]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["SupplementaryGroups"] == ["audio"]
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "DevicePolicy": "closed"}.items():
        assert s[key] == [value], key
    assert set(s["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    assert s["DeviceAllow"] == ["char-alsa rw"]
    # numba JIT-compiles into executable memory: this must stay off
    assert "MemoryDenyWriteExecute" not in s


# ----------------------------------------------------------------------------------------------
# sd_notify


class Bound:
    def __init__(self, address: str):
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(b"\0" + address[1:].encode() if address.startswith("@") else address)
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

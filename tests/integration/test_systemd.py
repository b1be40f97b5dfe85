"""The systemd unit (systemd/arraydaemon@.service), linted by ``systemd-analyze verify``. The
sd_notify client it relies on: tests/io/test_notify.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT

UNIT = REPO_ROOT / "systemd" / "arraydaemon@.service"


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
    assert s["MemoryMax"] == ["1G"] and int(s["TasksMax"][0]) <= 128  # a bug cannot take the machine
    # numba JIT-compiles into executable memory: this must stay off
    assert "MemoryDenyWriteExecute" not in s

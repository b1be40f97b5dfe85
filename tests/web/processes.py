"""Real `arraydaemon web` and `arraydaemon replay` processes for the web tests (no stubs)."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time

from tests.helpers import ARRAYDAEMON, REPO_ROOT

DEMO = REPO_ROOT / "arraydaemon" / "data" / "demo.flac"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebServer:
    """``arraydaemon web ENDPOINT --http HTTP`` in a subprocess; :attr:`url` once it serves."""

    def __init__(self, endpoint: str | None, http: str = "127.0.0.1:0", timeout: float = 30.0, extra=()):
        source = [endpoint] if endpoint else []
        self.proc = subprocess.Popen([*ARRAYDAEMON, "web", *source, "--http", http, *extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = ""
        deadline = time.monotonic() + timeout
        while not self.url:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise AssertionError(f"arraydaemon web did not start: {''.join(self.stderr)}") from None
            m = re.search(r"serving (http://\S+/)", line)
            if m:
                self.url = m.group(1)
        self.port = int(re.search(r":(\d+)/$", self.url).group(1))

    @classmethod
    def room(cls, room_file, http: str = "127.0.0.1:0", timeout: float = 60.0) -> "WebServer":
        """``arraydaemon web --room ROOM_FILE``: the web server fuses the room's arrays itself."""
        return cls(None, http, timeout, ("--room", str(room_file)))

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def start_replay(endpoint: str, path=DEMO, profile: str = "demo", *extra: str) -> subprocess.Popen:
    """``arraydaemon replay PATH --profile PROFILE --endpoint ENDPOINT`` in real time."""
    return subprocess.Popen([*ARRAYDAEMON, "replay", str(path), "--profile", profile, "--endpoint", endpoint,
                             "--quiet", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout)

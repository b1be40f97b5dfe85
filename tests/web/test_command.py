"""`arraydaemon web` as a user runs it: light (neither numpy, numba nor torch), one-line errors, a
warning beyond loopback, and a page that ships every file it uses."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from importlib import resources

import pytest

from tests.helpers import ARRAYDAEMON
from tests.web.processes import WebServer, free_port


def test_web_imports_neither_torch_nor_numba_nor_numpy():
    # The command as a user runs it, serving its page until SIGINT; then none of the heavy modules
    # may have been imported.
    port = free_port()
    code = (
        "import json, os, signal, sys, threading, time, urllib.request\n"
        "from arraydaemon import cli\n"
        "got = {}\n"
        "def client():\n"
        "    for _ in range(300):\n"
        "        try:\n"
        f"            for path in ('', 'app.js', 'style.css', 'status'):\n"
        f"                with urllib.request.urlopen('http://127.0.0.1:{port}/' + path, timeout=5) as r:\n"
        "                    got[path] = (r.status, r.headers['Content-Type'].split(';')[0])\n"
        "            break\n"
        "        except OSError:\n"
        "            time.sleep(0.05)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "threading.Thread(target=client, daemon=True).start()\n"
        f"rc = cli.main(['web', 'tcp://127.0.0.1:9', '--http', '127.0.0.1:{port}'])\n"
        "heavy = sorted(x for x in ('numpy', 'numba', 'torch', 'scipy', 'sounddevice') if x in sys.modules)\n"
        "print(json.dumps({'rc': rc, 'heavy': heavy, 'got': got}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"rc": 0, "heavy": [], "got": {"": [200, "text/html"], "app.js": [200, "text/javascript"],
                                                    "style.css": [200, "text/css"],
                                                    "status": [200, "application/json"]}}
    assert f"serving http://127.0.0.1:{port}/ (subscribed to tcp://127.0.0.1:9)" in done.stderr
    assert "warning" not in done.stderr


def test_web_user_errors_are_one_line():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    cases = [
        (["--http", "localhost"], "expected HOST:PORT"),
        (["--http", "127.0.0.1:70000"], "not in 0-65535"),
        (["--http", "[fe80::zz]:8570"], "expected HOST:PORT"),
        (["--http", f"127.0.0.1:{busy.getsockname()[1]}"], "cannot listen"),
        (["localhost:5570"], "expected tcp://HOST:PORT"),
    ]
    try:
        for args, message in cases:
            done = subprocess.run([*ARRAYDAEMON, "web", *args], capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 2, (args, done.stderr)
            assert done.stderr.count("\n") == 1 and message in done.stderr, (args, done.stderr)
            assert "Traceback" not in done.stderr
    finally:
        busy.close()


def test_serving_beyond_loopback_warns():
    web = WebServer("tcp://127.0.0.1:9", http="0.0.0.0:0")
    assert web.stop(signal.SIGINT) == 0
    text = "".join(web.stderr)
    assert re.search(r"warning: serving on http://0\.0\.0\.0:\d+/, beyond loopback: anyone who can reach this "
                     r"host can watch", text), text


@pytest.mark.parametrize("name", ["index.html", "app.js", "style.css"])
def test_the_page_fetches_nothing_from_elsewhere(name):
    text = resources.files("arraydaemon.web").joinpath("static", name).read_text(encoding="utf-8")
    assert not re.search(r"(https?|wss?)://|@import|\burl\(", text)  # CSS url(...), not JS's new URL(...)
    if name == "index.html":
        assert re.findall(r'(?:src|href)="([^"]+)"', text) == ["style.css", "app.js"]

"""`arraydaemon reason` without a daemon: user errors are one line, and neither the command nor the
answerer imports numpy, numba, torch or scipy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import ARRAYDAEMON, env_without_llm


def test_reason_imports_neither_torch_nor_numba_nor_numpy():
    # The command as a user runs it, to its end (no daemon: a one-line error after 0.3 s), then
    # the answerer on a message: none of the heavy modules may have been imported.
    code = (
        "import sys, json\n"
        "from arraydaemon import cli\n"
        "rc = cli.main(['reason', 'tcp://127.0.0.1:9', '--ask', 'where?', '--wait-seconds', '0.3'])\n"
        "from arraydaemon.reason.memory import SceneMemory\n"
        "from arraydaemon.reason.answers import answer\n"
        "from arraydaemon.io import wire\n"
        "m = SceneMemory()\n"
        "base = wire.common(1, 'a', 'f', 1.0, 2.0)\n"
        "m.update('tracks', wire.tracks_payload(base, 'none', [wire.track_entry(1, 90.0, 0.0, (0.0, 1.0, 0.0), "
        "0.9, 1.0, 0.0, 0.0, 0.0, -30.0)]))\n"
        "answer('is it left or right?', m); m.scene_text()\n"
        "heavy = sorted(x for x in ('numpy', 'numba', 'torch', 'scipy', 'sounddevice') if x in sys.modules)\n"
        "print(json.dumps({'rc': rc, 'heavy': heavy, 'answer': answer('is it left or right?', m)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"rc": 2, "heavy": [], "answer": "#1 is on the left (+90°)."}
    assert done.stderr.strip().startswith("arraydaemon: error: no messages from tcp://127.0.0.1:9")


@pytest.mark.parametrize("args, message", [
    (["--llm-url", "http://127.0.0.1:1/v1"], "--llm-url needs --llm-model"),
    (["--llm-url", "ftp://example.org", "--llm-model", "m"], "expected http://HOST:PORT/v1"),
    (["--endpoint", "localhost:5570"], "expected tcp://HOST:PORT"),
])
def test_reason_user_errors_are_one_line(args, message):
    done = subprocess.run([*ARRAYDAEMON, "reason", "--ask", "where?", *args],
                          capture_output=True, text=True, timeout=60, env=env_without_llm())
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr and "Traceback" not in done.stderr

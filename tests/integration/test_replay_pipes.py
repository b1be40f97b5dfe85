"""Replay from pipes and FIFOs: the recording is opened once and streamed, like a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from arraydaemon.core.paths import DATA_DIR

pytestmark = pytest.mark.live

REPLAY = [sys.executable, "-m", "arraydaemon", "replay"]


def wav_bytes() -> bytes:
    import io

    import soundfile as sf

    data, rate = sf.read(DATA_DIR / "demo.flac", dtype="float32", always_2d=True)
    buf = io.BytesIO()
    sf.write(buf, data[: rate * 2], rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def windows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_standard_input_streams_like_a_file():
    done = subprocess.run(REPLAY + ["-", "--profile", "demo", "--fast", "--no-publish", "--jsonl", "-",
                                    "--estimator", "srp-phat"], input=wav_bytes(), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    out = windows(done.stdout.decode())
    assert len(out) == 19 and out[-1]["t_end"] == pytest.approx(2.0, abs=0.1)
    assert "replayed 2.00 s" in done.stderr.decode()


@pytest.mark.parametrize("fast", [True, False])
def test_a_fifo_streams_in_real_time_or_fast(tmp_path, fast):
    fifo = tmp_path / "rec.wav"
    os.mkfifo(fifo)
    payload = wav_bytes()

    def writer():
        with open(fifo, "wb") as f:
            f.write(payload)

    threading.Thread(target=writer, daemon=True).start()
    args = REPLAY + [str(fifo), "--profile", "demo", "--no-publish", "--jsonl", "-", "--estimator", "srp-phat"]
    done = subprocess.run(args + (["--fast"] if fast else []), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert len(windows(done.stdout.decode())) == 19


def test_flac_through_a_pipe_is_a_one_line_error():
    done = subprocess.run(REPLAY + ["-", "--profile", "demo", "--fast", "--no-publish"],
                          input=(DATA_DIR / "demo.flac").read_bytes(), capture_output=True, timeout=120)
    err = done.stderr.decode().strip()
    assert done.returncode == 2 and err.count("\n") == 0 and "not FLAC" in err and "Traceback" not in err

"""A real PortAudio device for live tests and benchmarks: a JACK server (jackd2, dummy backend)
with a ``loopback`` client, and a player process that loops a multichannel signal into it.

Used by ``tests/integration/test_live.py`` and ``tools/`` (``bench_latency.py``, ``bench_web.py``,
``soak.py``), which also share the rig's arrays and talker scene here. Needs ``jackd`` (Debian jackd2).

The player runs as ``python -m arraydaemon.research.jack SCENE.npy RATE [DEVICE]``: it loops the
``[samples, channels]`` float32 array in SCENE.npy into DEVICE (``loopback``), prints ``playing``
once the stream runs, and exits on SIGTERM without closing the stream (``Pa_CloseStream`` hangs on
a dead server).
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

RATE = 16000
PERIOD = 256
CHANNELS = 8  # of the dummy device and of the loopback client, each way
TALKER_AZIMUTH = 60.0  # of the simulated talker of talker_scene
GEOMETRIES = {  # mic positions (m) of the rig's arrays, by mic count
    4: [[-0.0405, 0.0, 0.0], [0.0, 0.0405, 0.0], [0.0405, 0.0, 0.0], [0.0, -0.0405, 0.0]],  # ReSpeaker 4-mic HAT
    8: [[round(0.0463 * math.cos(2 * math.pi * k / 8), 5), round(0.0463 * math.sin(2 * math.pi * k / 8), 5), 0.0]
        for k in range(8)],  # 8-mic circle, 4.63 cm radius
}


def talker_scene(mics: int, path: Path) -> Path:
    """8 s of one simulated talker at ``TALKER_AZIMUTH`` on the ``mics``-mic rig array (free field,
    30 dB SNR), saved for the player at ``path`` (``[samples, mics]`` float32)."""
    import numpy as np

    from arraydaemon.research import simulate

    rng = np.random.default_rng(mics)
    speech = simulate.speech_source(rng, 8.0, RATE)
    audio = simulate.free_field_scene(np.array(GEOMETRIES[mics]), [(speech, TALKER_AZIMUTH, 0.0)], RATE,
                                      snr_db=30.0, rng=rng)
    np.save(path, np.ascontiguousarray(audio, dtype=np.float32))
    return path


def loopback_profile(path: Path, name: str, mics, frame_id: str | None = None) -> Path:
    """An array profile at ``path`` for the ``loopback`` device: ``mics`` positions ``[[x, y, z], ...]`` (m)."""
    rows = "\n".join(f"  - [{x}, {y}, {z}]" for x, y, z in mics)
    frame = f"frame_id: {frame_id}\n" if frame_id else ""
    path.write_text(f"name: {name}\nsample_rate: {RATE}\nchannels: {len(mics)}\ndevice: loopback\n{frame}"
                    f"mics:\n{rows}\n")
    return path


class JackServer:
    """``jackd`` with a dummy backend and a ``channels``-channel loopback client, under a unique
    name; ``env`` is the environment for its clients (no autostart of a default server)."""

    def __init__(self, workdir: Path, prefix: str = "adt", rate: int = RATE, period: int = PERIOD,
                 channels: int = CHANNELS):
        self.name = f"{prefix}{os.getpid()}{secrets.token_hex(3)}"
        self.log = Path(workdir) / f"jackd-{self.name}.log"
        self.rate, self.period, self.channels = rate, period, channels
        self.proc = None
        self.env = {**os.environ, "JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1",
                    "JACK_NO_AUDIO_RESERVATION": "1"}

    def start(self, timeout: float = 15.0) -> None:
        """Start jackd and wait for its socket; RuntimeError (with the log's tail) if it fails."""
        jackd = shutil.which("jackd")
        if not jackd:
            raise RuntimeError("jackd not found: install the Debian package jackd2 (tools/test.sh does)")
        self.cleanup_shm()
        # Real-time scheduling when we may (root): fewer xruns on a loaded machine.
        rt = "-R" if os.geteuid() == 0 else "-r"
        cmd = [jackd, "-n", self.name, rt, "-L", str(self.channels), "-d", "dummy", "-r", str(self.rate),
               "-C", str(self.channels), "-P", str(self.channels), "-p", str(self.period)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=log)
        sock = Path(f"/dev/shm/jack_{self.name}_0_0")
        deadline = time.monotonic() + timeout
        while not sock.exists():
            if self.proc.poll() is not None:
                self.cleanup_shm()
                raise RuntimeError(f"jackd exited: {self.log.read_text()[-2000:]}")
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(f"jackd did not start within {timeout:g} s; see {self.log}")
            time.sleep(0.05)
        time.sleep(0.3)  # the loopback client registers its ports just after the socket appears

    def kill(self) -> None:
        """SIGKILL: the device vanishes under its clients."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.cleanup_shm()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.cleanup_shm()

    def cleanup_shm(self) -> None:
        # jackd leaves its sockets and semaphores behind in /dev/shm; only this server's names.
        shm = Path("/dev/shm")
        for p in list(shm.glob(f"jack_{self.name}_*")) + list(shm.glob(f"jack_sem.*_{self.name}_*")):
            try:
                p.unlink()
            except OSError:
                pass


class Player:
    """A second process that loops a multichannel signal (``.npy``, ``[samples, channels]``
    float32) into the ``loopback`` device of the JACK server ``env`` names. Returns once it plays;
    RuntimeError (with its stderr, or the log's path) if it fails to, or does not start within
    ``timeout`` seconds.

    For long runs (``tools/soak.py``): ``nice`` lowers its priority below the daemon's, ``log``
    appends its stderr to a file instead of a pipe nobody drains, and ``own_session`` keeps it out of
    the caller's process group (signals aimed at the daemon under test do not reach it)."""

    def __init__(self, scene_path: Path, rate: int, env: dict, device: str = "loopback", *,
                 nice: int = 0, log: Path | None = None, timeout: float = 30.0, own_session: bool = False):
        command = [sys.executable, "-m", "arraydaemon.research.jack", str(scene_path), str(rate), device]
        if nice:
            command = ["nice", "-n", str(nice)] + command
        self.log = log
        err = open(log, "ab") if log is not None else subprocess.PIPE
        try:
            self.proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=err,
                                         start_new_session=own_session)
        finally:
            if log is not None:
                err.close()  # the child holds its own descriptor
        line = [b""]
        reader = threading.Thread(target=lambda: line.__setitem__(0, self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if line[0].strip() != b"playing":
            if self.proc.poll() is None:
                self.proc.kill()
            detail = f"see {log}" if log is not None else repr(self.proc.stderr.read()[-2000:])
            self.kill()
            raise RuntimeError(f"player failed to start ({line[0]!r}): {detail}")

    def kill(self) -> None:
        """SIGKILL (the player has no stream to close orderly) and reap."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def _play(scene_path: str, rate: int, device: str) -> None:
    import signal

    import numpy as np
    import sounddevice as sd

    data = np.load(scene_path)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))  # no Pa_CloseStream: it hangs on a dead server
    pos = 0

    def callback(out, frames, time_info, status):
        nonlocal pos
        out[:] = data[(np.arange(frames) + pos) % len(data)]
        pos = (pos + frames) % len(data)

    stream = sd.OutputStream(device=device, samplerate=rate, channels=data.shape[1], dtype="float32",
                             callback=callback)
    stream.start()
    print("playing", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    _play(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "loopback")

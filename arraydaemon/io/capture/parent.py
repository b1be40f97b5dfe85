"""Live capture from a PortAudio input device (sounddevice), isolated in a child process: the daemon side.

Why a child process: a PortAudio stream whose device went away cannot always be closed. With the
JACK host API of Debian's PortAudio 19.6, ``Pa_CloseStream`` on a stream whose server died waits
10 minutes for a process callback that never comes, and ``Pa_Terminate`` then aborts on an
assertion; a wedged USB driver can hang ``snd_pcm_close`` likewise. So the stream lives in a small
child (``python -m arraydaemon.io.capture.child``, :mod:`.child`) that the daemon kills and
respawns to reopen the device; the daemon process, its sockets and its pipeline survive. The child
never imports numpy.

Data path::

    PortAudio callback (child) ──SOCK_SEQPACKET──▶ reader thread ──BlockQueue──▶ consumer (daemon.py)
    copies + sends, never blocks                   drops the OLDEST block when full

The messages are in :mod:`.protocol`. Each block carries PortAudio's ``inputBufferAdcTime`` and
``currentTime`` and the wall clock read in the callback, from which
:class:`arraydaemon.io.capture.clock.ClockMap` maps stream time to wall time.

Devices (listing, matching, ``arraydaemon devices``) are in :mod:`.devices`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

from arraydaemon.io.capture.protocol import BLOCK, BLOCK_META, FAIL, FLAG_OVERFLOW, LOST, MAX_MESSAGE, OPEN

log = logging.getLogger("arraydaemon.io.capture.parent")


@dataclass(frozen=True)
class CapturedBlock:
    """One device block as received from the child. ``samples [shape=(frames, channels)]`` float32."""

    generation: int  # which child (stream) captured it
    samples: object  # np.ndarray
    adc_time: float  # stream time of the first sample
    current_time: float  # stream time when the callback ran
    wall_in_callback: float
    overflow: bool
    child_dropped: int  # blocks the child could not send so far (the daemon was frozen)


class BlockQueue:
    """Bounded FIFO between the reader thread and the consumer: when full (``max_frames``), the
    OLDEST blocks are dropped and counted, so the producer never waits.

    One producer and one consumer thread; each counter is written by one thread only.
    """

    def __init__(self, max_frames: int):
        self.max_frames = int(max_frames)
        self._items: deque = deque()
        self._put_frames = 0  # producer
        self._dropped_frames = 0  # producer
        self._taken_frames = 0  # consumer
        self.dropped = 0  # blocks, producer
        self._ready = threading.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, block: CapturedBlock) -> None:
        n = len(block.samples)
        while self._items and self._put_frames + n - self._dropped_frames - self._taken_frames > self.max_frames:
            try:
                old = self._items.popleft()
            except IndexError:  # the consumer took it meanwhile
                break
            self._dropped_frames += len(old.samples)
            self.dropped += 1
        self._items.append(block)
        self._put_frames += n
        self._ready.set()

    def get_all(self, timeout: float) -> list[CapturedBlock]:
        """Every queued block, oldest first, waiting up to ``timeout`` s for the first."""
        if not self._items:
            self._ready.wait(timeout)
        self._ready.clear()  # before draining, so a put during the drain sets it again
        out = []
        while True:
            try:
                block = self._items.popleft()
            except IndexError:
                break
            self._taken_frames += len(block.samples)
            out.append(block)
        return out


@dataclass(frozen=True)
class OpenedStream:
    device: str
    index: int
    hostapi: str
    latency: float
    blocksize: int


class CaptureProcess:
    """A capture child for one device configuration; ``on_block`` runs in the reader thread.

    ``lost`` becomes a reason string when the stream fails, the child exits, or no block has
    arrived for ``stall_s`` seconds while running.
    """

    def __init__(self, device: str | int | None, sample_rate: int, channels: int, latency: str | float,
                 generation: int, on_block, stall_s: float = 1.0):
        self.device = device
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self.latency = latency
        self.generation = generation
        self.stall_s = stall_s
        self._on_block = on_block
        self._opened = threading.Event()
        self.opened: OpenedStream | None = None
        self.failure: str | None = None  # open failed (device missing, bad rate, ...)
        self._lost: str | None = None
        self._last_block = None  # monotonic
        self._proc = None
        self._sock = None
        self._reader = None

    def start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cmd = [sys.executable, "-m", "arraydaemon.io.capture.child", "--fd", str(child.fileno()),
               "--rate", str(self.sample_rate), "--channels", str(self.channels),
               "--latency", str(self.latency), "--stall", str(self.stall_s)]
        if self.device is not None:
            cmd += ["--device", str(self.device)]
        try:
            self._proc = subprocess.Popen(cmd, pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE,
                                          start_new_session=True)  # the terminal's ^C is ours to handle
        finally:
            child.close()
        self._sock = parent
        self._reader = threading.Thread(target=self._read, name=f"capture-reader-{self.generation}", daemon=True)
        self._reader.start()
        threading.Thread(target=self._forward_stderr, args=(self._proc.stderr,), daemon=True,
                         name=f"capture-stderr-{self.generation}").start()

    def _forward_stderr(self, stream) -> None:
        # PortAudio/JACK/ALSA chatter ("Cannot connect to server socket", ...) on every retry: debug
        # only; what matters reaches the daemon as the child's one-line failure message.
        with stream:
            for line in stream:
                text = line.decode(errors="replace").rstrip()
                if text:
                    log.debug("capture[%d]: %s", self.generation, text)

    def wait_open(self, timeout: float, cancel=None) -> OpenedStream | None:
        """The opened stream, or None (see ``failure``) once the child failed or timed out, or when
        ``cancel()`` (polled every 50 ms) returns True."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._opened.wait(0.05):
                break
            if self.failure or self._lost or (cancel is not None and cancel()):
                return None
        if self.opened is None and not self.failure:
            self.failure = self._lost or f"the capture process did not open the device within {timeout:g} s"
        return self.opened

    @property
    def lost(self) -> str | None:
        if self._lost:
            return self._lost
        if self.opened is not None and self._last_block is not None and \
                time.monotonic() - self._last_block > max(2.0, 2 * self.stall_s):
            # the child watches for stalls itself; this catches a child wedged in C code
            self._lost = f"no audio for {time.monotonic() - self._last_block:.1f} s"
        return self._lost

    def stop(self, grace_s: float = 0.5) -> None:
        """End the child: SIGTERM (it aborts the stream), then SIGKILL after ``grace_s``."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._reader is not None:
            self._reader.join(1.0)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def kill(self) -> None:
        """SIGKILL: for a child whose device is gone (closing the stream could hang)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self.stop(grace_s=0.0)

    def cpu_seconds(self) -> float:
        """The child's user+system CPU time (Linux /proc), 0 when unknown."""
        if self._proc is None:
            return 0.0
        try:
            with open(f"/proc/{self._proc.pid}/stat", "rb") as f:
                fields_ = f.read().rsplit(b")", 1)[1].split()
            return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def _read(self) -> None:
        import numpy as np

        buf = bytearray(MAX_MESSAGE)
        view = memoryview(buf)
        sock = self._sock
        while True:
            try:
                n = sock.recv_into(buf)
            except OSError:
                n = 0
            if n == 0:
                break
            kind = bytes(view[:1])
            if kind == BLOCK:
                frames, channels, flags, child_dropped, adc, current, wall = BLOCK_META.unpack_from(buf, 1)
                start = 1 + BLOCK_META.size
                if n != start + frames * channels * 4 or channels != self.channels:
                    self._lost = f"malformed block from the capture process ({n} bytes)"
                    break
                samples = np.frombuffer(bytes(view[start:n]), dtype=np.float32).reshape(frames, channels)
                self._last_block = time.monotonic()
                self._on_block(CapturedBlock(self.generation, samples, adc, current, wall,
                                             bool(flags & FLAG_OVERFLOW), child_dropped))
            elif kind == OPEN:
                info = json.loads(bytes(view[1:n]))
                self.opened = OpenedStream(info["device"], info["index"], info["hostapi"],
                                           info["latency"], info["blocksize"])
                self._last_block = time.monotonic()
                self._opened.set()
            elif kind == FAIL:
                self.failure = json.loads(bytes(view[1:n]))["message"]
            elif kind == LOST:
                self._lost = json.loads(bytes(view[1:n]))["message"]
        # EOF: the child exited
        code = self._proc.wait() if self._proc is not None else None
        if self.opened is None and not self.failure:
            self.failure = f"the capture process exited (code {code}) before opening the device"
        if not self._lost:
            self._lost = f"the capture process exited (code {code})"

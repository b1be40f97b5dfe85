"""Live capture from a PortAudio input device (sounddevice), isolated in a child process.

Why a child process: a PortAudio stream whose device went away cannot always be closed. With the
JACK host API of Debian's PortAudio 19.6, ``Pa_CloseStream`` on a stream whose server died waits
10 minutes for a process callback that never comes, and ``Pa_Terminate`` then aborts on an
assertion; a wedged USB driver can hang ``snd_pcm_close`` likewise. So the stream lives in a small
child (``python -m arraydaemon.io.capture.parent``) that the daemon kills and respawns to reopen the device;
the daemon process, its sockets and its pipeline survive. The child never imports numpy.

Data path::

    PortAudio callback (child) ──SOCK_SEQPACKET──▶ reader thread ──BlockQueue──▶ consumer (daemon.py)
    copies + sends, never blocks                   drops the OLDEST block when full

The child's callback only copies the block into one non-blocking ``sendmsg`` (whole message or
nothing; ``EAGAIN`` = dropped and counted) and counts status flags. Each block carries PortAudio's
``inputBufferAdcTime`` and ``currentTime`` and the wall clock read in the callback, from which
:class:`ClockMap` maps stream time to wall time.

``arraydaemon devices`` lists input devices in-process (:func:`list_input_devices`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

from arraydaemon.core.errors import SourceError

log = logging.getLogger("arraydaemon.io.capture.parent")

# child → parent messages: one kind byte, then a payload
_OPEN, _BLOCK, _FAIL, _LOST = b"O", b"B", b"F", b"L"
# frames, channels, flags, child drops so far, inputBufferAdcTime, currentTime, wall clock in callback
_BLOCK_META = struct.Struct("<IIIIddd")
_FLAG_OVERFLOW, _FLAG_UNDERFLOW = 1, 2
_MAX_MESSAGE = 4 << 20  # bytes; also the child's SO_SNDBUF request (the kernel may cap it)


# ----------------------------------------------------------------------------------------------
# Devices


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    hostapi: str
    channels: int  # max input channels
    default_rate: float

    def describe(self) -> str:
        return f"[{self.index}] '{self.name}' ({self.hostapi}, {self.channels} in, {self.default_rate:g} Hz)"


def import_sounddevice(quiet: bool = False):
    """sounddevice, or a one-line SourceError when the PortAudio library is missing.

    ``quiet`` silences what the host APIs print to stderr while PortAudio initializes (libjack's
    "Cannot connect to server socket" when no JACK server runs, ALSA's configuration chatter).
    """
    saved = None
    if quiet and "sounddevice" not in sys.modules:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    try:
        import sounddevice as sd
    except OSError as exc:
        raise SourceError(f"cannot load PortAudio ({exc}); install libportaudio2") from None
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
    return sd


def list_input_devices(sd=None) -> list[InputDevice]:
    """Every PortAudio device with at least one input channel."""
    sd = sd or import_sounddevice()
    hostapis = sd.query_hostapis()
    out = []
    for dev in sd.query_devices():
        if dev["max_input_channels"] > 0:
            out.append(InputDevice(int(dev["index"]), dev["name"], hostapis[dev["hostapi"]]["name"],
                                   int(dev["max_input_channels"]), float(dev["default_samplerate"])))
    return out


def device_list_text(devices: list[InputDevice]) -> str:
    if not devices:
        return "no input devices found (is the array plugged in, and may this user use audio devices?)"
    return "available input devices: " + ", ".join(d.describe() for d in devices)


def match_device(devices: list[InputDevice], spec: str | int | None, channels: int,
                 default_index: int | None = None) -> InputDevice:
    """The input device ``spec`` names (index, or case-insensitive name substring) with at least
    ``channels`` inputs; ``None`` means PortAudio's default input. Raises SourceError listing the
    available devices."""
    if isinstance(spec, str) and spec.strip().isdigit():
        spec = int(spec)
    if isinstance(spec, int):
        found = [d for d in devices if d.index == spec]
        what = f"input device index {spec}"
    elif spec:
        found = [d for d in devices if spec.lower() in d.name.lower()]
        found.sort(key=lambda d: d.name.lower() != spec.lower())  # an exact name first
        what = f"input device matching '{spec}'"
    else:
        found = [d for d in devices if d.index == default_index]
        what = "default input device"
    if not found:
        raise SourceError(f"no {what}; {device_list_text(devices)}")
    enough = [d for d in found if d.channels >= channels]
    if not enough:
        d = found[0]
        raise SourceError(f"{what}: {d.describe()} has {d.channels} input channel(s), the profile needs "
                          f"{channels}; {device_list_text(devices)}")
    return enough[0]


def profile_matches(profile, device: InputDevice) -> bool:
    """A profile claims a device when its ``device`` substring matches and the channels suffice."""
    return bool(profile.device) and profile.device.lower() in device.name.lower() and \
        device.channels >= profile.channels


def cmd_devices(args) -> int:
    """``arraydaemon devices``: input devices and the profiles that match each one."""
    from arraydaemon.core.errors import UserError
    from arraydaemon.core.profiles import available_profiles, load_profile_file

    devices = list_input_devices(import_sounddevice(quiet=True))
    profiles = []
    for name, path in sorted(available_profiles().items()):
        try:
            profiles.append(load_profile_file(path))
        except UserError:
            continue  # `profile list` reports invalid profiles
    if not devices:
        print(device_list_text(devices))
        return 0
    rows = [("index", "host API", "in", "rate", "name", "profiles")]
    for d in devices:
        matching = [p.name for p in profiles if profile_matches(p, d)]
        rows.append((str(d.index), d.hostapi, str(d.channels), f"{d.default_rate:g}", d.name,
                     ", ".join(matching) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5])
    return 0


# ----------------------------------------------------------------------------------------------
# Parent side


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


class ClockMap:
    """Stream time → wall time for one stream.

    Each callback gives a pair (stream ``currentTime``, wall clock read in the callback); the wall
    reading is late by the callback's scheduling delay, never early, so the offset estimate is the
    minimum of ``wall - stream`` over the last 5-10 s (two buckets: bounded memory, follows drift).
    """

    BUCKET_S = 5.0

    def __init__(self):
        self._prev = math.inf
        self._cur = math.inf
        self._bucket_start = None

    def observe(self, stream_time: float, wall: float) -> None:
        if self._bucket_start is None:
            self._bucket_start = stream_time
        elif stream_time - self._bucket_start >= self.BUCKET_S:
            self._prev, self._cur, self._bucket_start = self._cur, math.inf, stream_time
        self._cur = min(self._cur, wall - stream_time)

    @property
    def offset(self) -> float:
        """wall - stream, seconds (inf before the first observation)."""
        return min(self._prev, self._cur)

    def to_wall(self, stream_time: float) -> float:
        return stream_time + self.offset


class AdcSmoother:
    """Each block's ADC time, de-jittered: sample counting from the previous block, pulled gently
    (``GAIN`` per block) toward PortAudio's reading so that it follows clock drift; a reading more
    than ``SNAP_S`` off (lost samples, a restart) is taken as is.

    PortAudio's JACK timestamps come from ``jack_frame_time``, an estimate that jitters by a sample
    or so; window times should advance by exactly one hop.
    """

    GAIN = 0.02
    SNAP_S = 0.002

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self._next = None

    def __call__(self, adc_time: float, frames: int) -> float:
        if self._next is None or abs(adc_time - self._next) > self.SNAP_S:
            t = adc_time
        else:
            t = self._next + self.GAIN * (adc_time - self._next)
        self._next = t + frames / self.sample_rate
        return t


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
        cmd = [sys.executable, "-m", "arraydaemon.io.capture.parent", "--fd", str(child.fileno()),
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

        buf = bytearray(_MAX_MESSAGE)
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
            if kind == _BLOCK:
                frames, channels, flags, child_dropped, adc, current, wall = _BLOCK_META.unpack_from(buf, 1)
                start = 1 + _BLOCK_META.size
                if n != start + frames * channels * 4 or channels != self.channels:
                    self._lost = f"malformed block from the capture process ({n} bytes)"
                    break
                samples = np.frombuffer(bytes(view[start:n]), dtype=np.float32).reshape(frames, channels)
                self._last_block = time.monotonic()
                self._on_block(CapturedBlock(self.generation, samples, adc, current, wall,
                                             bool(flags & _FLAG_OVERFLOW), child_dropped))
            elif kind == _OPEN:
                info = json.loads(bytes(view[1:n]))
                self.opened = OpenedStream(info["device"], info["index"], info["hostapi"],
                                           info["latency"], info["blocksize"])
                self._last_block = time.monotonic()
                self._opened.set()
            elif kind == _FAIL:
                self.failure = json.loads(bytes(view[1:n]))["message"]
            elif kind == _LOST:
                self._lost = json.loads(bytes(view[1:n]))["message"]
        # EOF: the child exited
        code = self._proc.wait() if self._proc is not None else None
        if self.opened is None and not self.failure:
            self.failure = f"the capture process exited (code {code}) before opening the device"
        if not self._lost:
            self._lost = f"the capture process exited (code {code})"


# ----------------------------------------------------------------------------------------------
# Child side: `python -m arraydaemon.io.capture.parent --fd N ...` (started by CaptureProcess)


def _child_main(argv: list[str]) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="arraydaemon-capture")
    ap.add_argument("--fd", type=int, required=True)
    ap.add_argument("--device")
    ap.add_argument("--rate", type=int, required=True)
    ap.add_argument("--channels", type=int, required=True)
    ap.add_argument("--latency", default="low")
    ap.add_argument("--stall", type=float, default=1.0)
    args = ap.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _MAX_MESSAGE)
    except OSError:
        pass
    parent_pid = os.getppid()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def send_json(kind: bytes, obj: dict) -> None:
        try:
            sock.send(kind + json.dumps(obj).encode())
        except OSError:
            pass

    def bail(kind: bytes, message: str, code: int):
        send_json(kind, {"message": message})
        # os._exit: no atexit Pa_Terminate, which can hang or abort on a dead device
        os._exit(code)

    try:
        sd = import_sounddevice()
        devices = list_input_devices(sd)
        default_in = sd.default.device[0] if sd.default.device[0] is not None else -1
        if default_in < 0:
            try:
                default_in = int(sd.query_hostapis(sd.default.hostapi)["default_input_device"])
            except Exception:  # noqa: BLE001 - no default host API at all
                default_in = -1
        device = match_device(devices, args.device, args.channels, default_in)
    except SourceError as exc:
        bail(_FAIL, str(exc), 2)
    except Exception as exc:  # noqa: BLE001 - PortAudio errors of any kind end in one line
        bail(_FAIL, f"PortAudio: {exc}", 2)

    latency = args.latency if args.latency in ("low", "high") else float(args.latency)
    state = {"dropped": 0, "overflow": 0, "last": time.monotonic()}
    meta = _BLOCK_META
    send = sock.sendmsg
    dontwait = socket.MSG_DONTWAIT

    def callback(indata, frames, time_info, status):
        # Only copy out and count: one non-blocking sendmsg of header + samples (all or nothing).
        wall = time.time()
        flags = (_FLAG_OVERFLOW if status.input_overflow else 0) | (_FLAG_UNDERFLOW if status.input_underflow else 0)
        header = _BLOCK + meta.pack(frames, args.channels, flags, state["dropped"],
                                    time_info.inputBufferAdcTime, time_info.currentTime, wall)
        try:
            send([header, indata], (), dontwait)
        except BlockingIOError:
            state["dropped"] += 1
        except OSError:
            stop.set()  # the daemon is gone
        state["last"] = time.monotonic()

    try:
        stream = sd.RawInputStream(device=device.index, samplerate=args.rate, channels=args.channels,
                                   dtype="float32", blocksize=0, latency=latency, callback=callback)
        stream.start()
    except Exception as exc:  # noqa: BLE001
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "sample rate" in text.lower():
            text += f" ({args.rate} Hz; device default {device.default_rate:g} Hz)"
        bail(_FAIL, f"cannot open {device.describe()}: {text}", 2)

    send_json(_OPEN, {"device": device.name, "index": device.index, "hostapi": device.hostapi,
                      "latency": float(stream.latency), "blocksize": int(stream.blocksize)})
    # Poll rarely: this thread holds the GIL while it runs, and the real-time callback thread then
    # waits for it (a priority inversion on a loaded machine).
    while not stop.wait(0.2):
        if os.getppid() != parent_pid:
            os._exit(0)
        if not stream.active:
            bail(_LOST, f"stream on '{device.name}' stopped (device or server gone)", 3)
        silent = time.monotonic() - state["last"]
        if silent > args.stall:
            bail(_LOST, f"no audio from '{device.name}' for {silent:.1f} s", 3)
    # Orderly stop; a watchdog exits anyway should abort hang on a half-dead device.
    threading.Timer(0.4, os._exit, (0,)).start()
    try:
        stream.abort()
        stream.close()
    except Exception:  # noqa: BLE001
        pass
    os._exit(0)


if __name__ == "__main__":
    _child_main(sys.argv[1:])

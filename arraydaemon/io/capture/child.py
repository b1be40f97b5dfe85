"""The capture child: ``python -m arraydaemon.io.capture.child --fd N ...``, started by
:class:`arraydaemon.io.capture.parent.CaptureProcess`.

It opens one PortAudio input stream and sends each block to the parent over the inherited
``SOCK_SEQPACKET`` socket (:mod:`.protocol`). The callback only copies the block into one
non-blocking ``sendmsg`` (whole message or nothing; ``EAGAIN`` = dropped and counted) and counts
status flags. The child never imports numpy, and leaves by ``os._exit``: no atexit
``Pa_Terminate``, which can hang or abort on a dead device.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time

from arraydaemon.core.errors import SourceError
from arraydaemon.io.capture.devices import import_sounddevice, list_input_devices, match_device
from arraydaemon.io.capture.protocol import (
    BLOCK,
    BLOCK_META,
    FAIL,
    FLAG_OVERFLOW,
    FLAG_UNDERFLOW,
    LOST,
    MAX_MESSAGE,
    OPEN,
)


def main(argv: list[str]) -> None:
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
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MAX_MESSAGE)
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
        bail(FAIL, str(exc), 2)
    except Exception as exc:  # noqa: BLE001 - PortAudio errors of any kind end in one line
        bail(FAIL, f"PortAudio: {exc}", 2)

    latency = args.latency if args.latency in ("low", "high") else float(args.latency)
    state = {"dropped": 0, "overflow": 0, "last": time.monotonic()}
    meta = BLOCK_META
    send = sock.sendmsg
    dontwait = socket.MSG_DONTWAIT

    def callback(indata, frames, time_info, status):
        # Only copy out and count: one non-blocking sendmsg of header + samples (all or nothing).
        wall = time.time()
        flags = (FLAG_OVERFLOW if status.input_overflow else 0) | (FLAG_UNDERFLOW if status.input_underflow else 0)
        header = BLOCK + meta.pack(frames, args.channels, flags, state["dropped"],
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
        bail(FAIL, f"cannot open {device.describe()}: {text}", 2)

    send_json(OPEN, {"device": device.name, "index": device.index, "hostapi": device.hostapi,
                     "latency": float(stream.latency), "blocksize": int(stream.blocksize)})
    # Poll rarely: this thread holds the GIL while it runs, and the real-time callback thread then
    # waits for it (a priority inversion on a loaded machine).
    while not stop.wait(0.2):
        if os.getppid() != parent_pid:
            os._exit(0)
        if not stream.active:
            bail(LOST, f"stream on '{device.name}' stopped (device or server gone)", 3)
        silent = time.monotonic() - state["last"]
        if silent > args.stall:
            bail(LOST, f"no audio from '{device.name}' for {silent:.1f} s", 3)
    # Orderly stop; a watchdog exits anyway should abort hang on a half-dead device.
    threading.Timer(0.4, os._exit, (0,)).start()
    try:
        stream.abort()
        stream.close()
    except Exception:  # noqa: BLE001
        pass
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])

"""``arraydaemon listen``: subscribe and print one line per message."""

from __future__ import annotations

import json
import sys
import time

from arraydaemon.cli.common import positive_float
from arraydaemon.cli.display import format_message, jsonable
from arraydaemon.core.errors import UserError
from arraydaemon.io import wire


def register(sub) -> None:
    p = sub.add_parser("listen", help="subscribe and print one line per message")
    p.add_argument("endpoint", nargs="?", help=f"endpoint to connect to (default {wire.DEFAULT_ENDPOINT})")
    p.add_argument("--topics", help=f"comma-separated topics (default all: {','.join(wire.TOPICS)})")
    p.add_argument("--json", action="store_true", help="JSON lines (bytes as base64)")
    p.add_argument("--count", type=int, help="exit after N messages")
    p.add_argument("--timeout", type=positive_float, help="exit after SECONDS")
    p.set_defaults(func=cmd_listen)


def cmd_listen(args) -> int:
    import zmq

    endpoint = args.endpoint or wire.DEFAULT_ENDPOINT
    topics = [t.strip() for t in args.topics.split(",")] if args.topics else list(wire.TOPICS)
    unknown = [t for t in topics if t not in wire.TOPICS]
    if unknown:
        raise UserError(f"--topics: unknown topic(s) {', '.join(unknown)}; known: {', '.join(wire.TOPICS)}")
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as exc:
        raise UserError(f"cannot connect to {endpoint}: {exc.strerror}") from None
    for t in topics:
        sock.setsockopt(zmq.SUBSCRIBE, t.encode())
    count = 0
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        while args.count is None or count < args.count:
            wait_ms = 200 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if deadline is not None and wait_ms == 0:
                break
            if not sock.poll(min(wait_ms, 200)):
                continue
            try:
                topic, payload = wire.decode(sock.recv_multipart())
            except wire.WireError as exc:
                print(f"skipping malformed message: {exc}", file=sys.stderr)
                continue
            line = json.dumps({"topic": topic, **jsonable(payload)}) if args.json else format_message(topic, payload)
            print(line, flush=True)
            count += 1
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0

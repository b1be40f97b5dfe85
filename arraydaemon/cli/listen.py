"""``arraydaemon listen``: subscribe and print one line per message."""

from __future__ import annotations

import json
import math
import sys
import time

from arraydaemon.cli.common import command, positive_float
from arraydaemon.cli.display import format_message, jsonable
from arraydaemon.core.errors import UserError
from arraydaemon.io import wire

NOTHING_S = 5.0  # says so when nothing has arrived after this long


def register(sub) -> None:
    p = command(sub, "listen", "subscribe and print one line per message",
                "Connects to a daemon (or replay) and prints what it publishes. Messages that do not follow the "
                "wire format are skipped and counted on stderr.",
                ("arraydaemon listen                                   # everything, one line each",
                 "arraydaemon listen --topics tracks,health",
                 "arraydaemon listen tcp://10.0.0.5:5570 --json --count 10"))
    p.add_argument("endpoint", nargs="?", help=f"endpoint to connect to (default {wire.DEFAULT_ENDPOINT})")
    p.add_argument("--topics", help=f"comma-separated topics (default all: {','.join(wire.TOPICS)})")
    p.add_argument("--json", action="store_true", help="JSON lines (bytes as base64)")
    p.add_argument("--count", type=int, metavar="N", help="exit after N messages (default: run until interrupted)")
    p.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                   help="exit after SECONDS (default: run until interrupted)")
    p.set_defaults(func=cmd_listen)


def cmd_listen(args) -> int:
    from arraydaemon.io.subscriber import Subscriber

    endpoint = args.endpoint or wire.DEFAULT_ENDPOINT
    topics = [t.strip() for t in args.topics.split(",")] if args.topics else list(wire.TOPICS)
    unknown = [t for t in topics if t not in wire.TOPICS]
    if unknown:
        raise UserError(f"--topics: unknown topic(s) {', '.join(unknown)}; known: {', '.join(wire.TOPICS)}")
    sub = Subscriber(endpoint, topics)
    count, rejected = 0, 0
    deadline = time.monotonic() + args.timeout if args.timeout else math.inf
    silent_note = time.monotonic() + NOTHING_S
    try:
        while (args.count is None or count < args.count) and time.monotonic() < deadline:
            messages = sub.receive(min(deadline, time.monotonic() + 0.2), limit=100)
            if not messages and sub.received == 0 and time.monotonic() >= silent_note:
                print(f"nothing received from {endpoint} in {time.monotonic() - silent_note + NOTHING_S:.0f} s: "
                      f"{sub.connection_state()}", file=sys.stderr, flush=True)
                silent_note = time.monotonic() + 60.0
            if sub.rejected > rejected:
                print(f"skipping {sub.rejected - rejected} malformed message(s): {sub.last_error}", file=sys.stderr)
                rejected = sub.rejected
            for topic, payload in messages:
                if args.count is not None and count >= args.count:
                    break
                line = json.dumps({"topic": topic, **jsonable(payload)}) if args.json else format_message(topic, payload)
                print(line, flush=True)
                count += 1
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
    return 0

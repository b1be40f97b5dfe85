"""``arraydaemon reason``: a SUB socket on the daemon's topics feeding a scene memory, and the
command that asks it questions (``--ask``), describes it every second (``--describe``), or reads
questions from the terminal.

A separate process that imports only the wire module, the standard library, ``zmq`` and
``msgpack`` (no numpy, numba or torch), so it starts in a fraction of a second next to an LLM server.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from arraydaemon.core.errors import UserError
from arraydaemon.io import wire
from arraydaemon.io.subscriber import Subscriber
from arraydaemon.reason.llm import LlmSettings, check_llm_url, respond
from arraydaemon.reason.memory import SUBSCRIBED, SceneMemory
from arraydaemon.reason.questions import parse


class SceneListener:
    """A validating subscriber feeding a SceneMemory; ``pump`` for a while, or ``start`` a thread.

    A message that fails validation, or that the memory cannot use, is counted in ``malformed`` and
    skipped; a flood of messages cannot hold ``pump`` past its deadline, and the socket keeps at
    most a few hundred messages queued (see :class:`arraydaemon.io.subscriber.Subscriber`)."""

    def __init__(self, endpoint: str, memory: SceneMemory):
        self.endpoint = endpoint
        self.memory = memory
        self.subscriber = Subscriber(endpoint, SUBSCRIBED)
        self.malformed = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def pump(self, seconds: float) -> int:
        """Receive for ``seconds`` (or until stopped); returns the number of messages used."""
        deadline = time.monotonic() + seconds
        count = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            for topic, payload in self.subscriber.receive(min(deadline, time.monotonic() + 0.2)):
                try:
                    self.memory.update(topic, payload)
                    count += 1
                except (wire.WireError, ValueError, TypeError, KeyError, OverflowError) as exc:
                    self.malformed += 1
                    self.last_error = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return count

    @property
    def rejected(self) -> int:
        """Messages skipped: failed validation, or unusable by the memory."""
        return self.malformed + self.subscriber.rejected

    def wait_first(self, seconds: float) -> bool:
        """Receive until the first message or ``seconds``; True if something arrived."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.memory.messages == 0:
            self.pump(min(0.2, max(0.0, deadline - time.monotonic())))
        return self.memory.messages > 0

    def start(self) -> None:
        """Pump in a daemon thread until :meth:`close` (for the interactive prompt)."""
        self._thread = threading.Thread(target=lambda: self.pump(float("inf")), daemon=True, name="scene-listener")
        self._thread.start()

    def close(self) -> None:
        """Stop the background thread (if any, waiting up to 2 s) and close the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.subscriber.close()


def run(endpoint: str, *, asks: list[str], describe: bool, listen_s: float, wait_s: float, duration_s: float | None,
        llm: LlmSettings | None, memory_s: float, as_json: bool, out=sys.stdout) -> int:
    """``arraydaemon reason``: see the module docstring and ``--help``; returns the exit code.

    ``asks`` answered after waiting up to ``wait_s`` s for a first message and listening ``listen_s`` s
    more; else ``describe`` once a second for ``duration_s`` s (None: until interrupted); else the
    interactive prompt. ``memory_s``: seconds of stream time retired sources are remembered. One
    answer per line on ``out``, as JSON objects with ``as_json``. No messages in time: UserError.
    """
    memory = SceneMemory(memory_s)
    listener = SceneListener(endpoint, memory)

    def emit(question: str, text: str, origin: str, seconds: float = 0.0) -> None:
        if as_json:
            print(json.dumps({"question": question, "answer": text, "origin": origin, "kind": parse(question).kind,
                              "t": memory.now_t, "sources": len(memory.present()), "seconds": round(seconds, 3),
                              "scene": memory.snapshot()}), file=out, flush=True)
        else:
            print(text, file=out, flush=True)

    try:
        if asks:
            if not listener.wait_first(wait_s):
                if listener.rejected:
                    raise UserError(f"{endpoint}: {listener.rejected} unreadable message(s) in {wait_s:g} s, e.g. "
                                    f"{listener.last_error or listener.subscriber.last_error}")
                raise UserError(f"no messages from {endpoint} within {wait_s:g} s; is the daemon publishing there "
                                "(arraydaemon run/replay --endpoint ...)?")
            listener.pump(listen_s)
            for question in asks:
                start = time.monotonic()
                text, origin = respond(question, memory, llm)
                emit(question, text, origin, time.monotonic() - start)
            return 0
        if describe:
            start = time.monotonic()
            while duration_s is None or time.monotonic() - start < duration_s:
                listener.pump(1.0)
                stale = "" if memory.received_at is None or time.monotonic() - memory.received_at < 2.0 else \
                    f" (no message for {time.monotonic() - memory.received_at:.0f} s)"
                line = memory.describe() if memory.messages else f"waiting for messages from {endpoint}"
                print(line + stale, file=out, flush=True)
            return 0
        return _interactive(listener, memory, llm, emit, endpoint)
    finally:
        listener.close()


def _interactive(listener: SceneListener, memory: SceneMemory, llm, emit, endpoint: str) -> int:
    """Questions from stdin, answered while ``listener`` keeps the memory current in a thread."""
    listener.start()
    print(f"listening on {endpoint}; ask about the scene ('quit' to leave, empty line for a description)",
          file=sys.stderr, flush=True)
    prompt = "question> " if sys.stdin.isatty() else ""  # questions piped in: answers only on stdout
    while True:
        try:
            question = input(prompt)
        except EOFError:
            return 0
        question = question.strip()
        if question.lower() in ("quit", "exit", "q"):
            return 0
        if not question:
            print(memory.describe(), flush=True)
            continue
        start = time.monotonic()
        text, origin = respond(question, memory, llm)
        emit(question, text, origin, time.monotonic() - start)


def cli_main(args) -> int:
    """Entry point of ``arraydaemon reason`` (arguments defined in ``cli.build_parser``)."""
    endpoint = args.endpoint_opt or args.endpoint or wire.DEFAULT_ENDPOINT
    if "://" not in endpoint:
        raise UserError(f"endpoint {endpoint!r}: expected tcp://HOST:PORT or ipc://PATH")
    url = args.llm_url or os.environ.get("ARRAYDAEMON_LLM_URL") or None
    llm = None
    if url:
        model = args.llm_model or os.environ.get("ARRAYDAEMON_LLM_MODEL")
        if not model:
            raise UserError("--llm-url needs --llm-model (or $ARRAYDAEMON_LLM_MODEL): the model name the server "
                            "serves, e.g. `ollama list`, or any name for llama.cpp's server")
        llm = LlmSettings(check_llm_url(url), model, args.llm_timeout, os.environ.get("ARRAYDAEMON_LLM_API_KEY"),
                          route=args.llm_route, reading=not args.llm_without_reading)
    return run(endpoint, asks=args.ask or [], describe=args.describe, listen_s=args.listen_seconds,
               wait_s=args.wait_seconds, duration_s=args.duration, llm=llm, memory_s=args.memory_seconds,
               as_json=args.json)

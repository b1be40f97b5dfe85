"""The LLM path: the question and the scene, as structured text, sent to any OpenAI-compatible
``/chat/completions`` endpoint (llama.cpp server, vLLM, Ollama).

Any failure is an :class:`LlmError` with a one-line reason; :func:`respond` then prints that line
and falls back to the built-in :func:`~arraydaemon.reason.answers.answer`.

The client is the standard library's ``http.client`` with three guarantees the usual clients do not
give together: an overall deadline (a watchdog closes the socket when ``timeout_s`` is up, so a server
sending a byte now and then cannot stretch it), a response size cap (:data:`MAX_RESPONSE_BYTES`), and
no redirects (a redirect is reported, never followed: it could carry the API key to another origin or
turn the POST into a GET). HTTPS certificates are verified against the system's trust store.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass

from arraydaemon.core.errors import UserError
from arraydaemon.reason.answers import answer
from arraydaemon.reason.memory import SceneMemory
from arraydaemon.reason.questions import parse

SYSTEM_PROMPT = """You answer questions about the sound sources around a robot, using only the \
scene below, measured by a microphone array. Conventions (REP-103): x forward, y left, z up; \
azimuth in degrees counter-clockwise from straight ahead (0 = front, +90 = left, -90 = right, \
180 = behind); elevation in degrees up from the horizontal. Times are seconds of the audio stream. \
A source's id stays the same while it is tracked. Read the array's ambiguity: what it cannot tell, \
say you cannot tell. Answer in one or two short sentences. A yes/no question: begin with "Yes", "No" \
or "I can't tell". A "how many" question: begin with the number. Name sources by id and azimuth, \
e.g. "#2 at +40 deg"."""


MAX_RESPONSE_BYTES = 1 << 20  # a chat completion of 300 tokens is a few kB


class LlmError(Exception):
    """The chat-completions endpoint could not answer; the message is one line."""


def _post(endpoint: str, body: bytes, headers: dict, timeout_s: float) -> tuple[int, str, bytes]:
    """POST ``body`` to ``endpoint``: (status, reason, response body), within ``timeout_s`` in all
    and at most :data:`MAX_RESPONSE_BYTES`; raises LlmError, or TimeoutError at the deadline."""
    parts = urllib.parse.urlsplit(endpoint)
    deadline = time.monotonic() + timeout_s
    try:
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout_s,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    except ValueError as exc:  # e.g. a port that is not a number
        raise LlmError(f"{endpoint}: {exc}") from None
    expired = threading.Event()
    sockets = []  # the connection's socket, kept: http.client drops its own reference once the
    # response owns the stream, and the watchdog must still reach it

    def expire() -> None:  # the overall deadline: unblock any read or write in progress
        expired.set()
        for sock in sockets:
            try:
                sock.shutdown(2)
            except OSError:
                pass

    watchdog = threading.Timer(timeout_s, expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.connect()
        sockets.append(conn.sock)
        if expired.is_set():  # the deadline passed while connecting
            raise TimeoutError
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        if 300 <= response.status < 400:
            where = response.getheader("Location", "")[:120]
            raise LlmError(f"{endpoint}: HTTP {response.status} redirect to {where!r}, not followed "
                           "(give the final URL)")
        chunks, size = [], 0
        while True:
            chunk = response.read1(65536)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise LlmError(f"{endpoint}: response larger than {MAX_RESPONSE_BYTES >> 20} MB, not read")
            chunks.append(chunk)
        if expired.is_set():  # the watchdog ended the stream: what was read is incomplete
            raise TimeoutError
        return response.status, response.reason, b"".join(chunks)
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set() or time.monotonic() >= deadline or isinstance(exc, TimeoutError):
            raise TimeoutError from None
        if isinstance(exc, ssl.SSLError):
            raise LlmError(f"{endpoint}: TLS failed ({_first_line(str(exc))[:120]})") from None
        if isinstance(exc, http.client.HTTPException):
            raise LlmError(f"{endpoint}: not an HTTP response ({type(exc).__name__})") from None
        raise LlmError(f"{endpoint}: cannot connect ({getattr(exc, 'strerror', None) or exc})") from None
    finally:
        watchdog.cancel()
        conn.close()


def chat_completions_url(base: str) -> str:
    """The endpoint URL from a base such as ``http://HOST:PORT/v1`` (or the full endpoint itself)."""
    base = base.rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


def build_messages(question: str, memory: SceneMemory, reading: bool = True) -> list[dict]:
    """The chat messages: the system prompt with the scene, then the question followed (``reading``)
    by the built-in answer, labelled as a rule-based reading that may not fit the question."""
    hint = f"\n\n(A rule-based reading of the scene, which may not fit the question: {answer(question, memory)})"
    return [
        {"role": "system", "content": SYSTEM_PROMPT + "\n\n" + memory.scene_text()},
        {"role": "user", "content": question.strip() + (hint if reading else "")},
    ]


def ask_llm(question: str, memory: SceneMemory, url: str, model: str, timeout_s: float = 30.0,
            api_key: str | None = None, reading: bool = True) -> str:
    """The model's answer from an OpenAI-compatible endpoint; raises LlmError (one line)."""
    endpoint = chat_completions_url(url)
    body = json.dumps({"model": model, "messages": build_messages(question, memory, reading), "temperature": 0.0,
                       "max_tokens": 300, "stream": False}).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    try:
        status, reason, raw = _post(endpoint, body, headers, timeout_s)
    except TimeoutError:
        raise LlmError(f"{endpoint}: no answer within {timeout_s:g} s") from None
    if not 200 <= status < 300:
        detail = _first_line(raw[:2000].decode("utf-8", "replace"))
        raise LlmError(f"{endpoint}: HTTP {status} {reason}" + (f" ({detail[:120]})" if detail else ""))
    try:
        data = json.loads(raw)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        start = _first_line(raw[:80].decode("utf-8", "replace"))
        raise LlmError(f"{endpoint}: not a chat-completions response ({start!r})") from None
    if not isinstance(content, str) or not content.strip():
        raise LlmError(f"{endpoint}: empty answer")
    return " ".join(content.split())


def _first_line(text: str) -> str:
    # error bodies can be whole HTML pages; LlmError messages stay one line
    return text.strip().splitlines()[0].strip() if text.strip() else ""


@dataclass
class LlmSettings:
    """Where and how to ask: ``url`` a base such as ``http://HOST:PORT/v1``, ``timeout_s`` seconds."""

    url: str
    model: str
    timeout_s: float
    api_key: str | None = None
    route: str = "auto"  # auto: questions the built-in answerer parses are answered by it; all: every one to the LLM
    reading: bool = True  # the built-in answer goes in the prompt as "a rule-based reading"


ROUTES = ("auto", "all")


def respond(question: str, memory: SceneMemory, llm: LlmSettings | None, err=sys.stderr) -> tuple[str, str]:
    """(answer, origin) with origin ``llm`` or ``built-in``; an LLM failure is one line on ``err``.

    With ``llm.route`` ``auto`` a question whose kind the built-in answerer parses
    (:func:`arraydaemon.reason.questions.parse`) is answered by it: its answers are in the form
    asked and never claim what the array cannot tell, which a small model's are not (the reasoning
    benchmark measures both, docs/reason.md); only the others go to the model."""
    if llm is not None and (llm.route == "all" or parse(question).kind == "unknown"):
        try:
            return ask_llm(question, memory, llm.url, llm.model, llm.timeout_s, llm.api_key, llm.reading), "llm"
        except LlmError as exc:
            print(f"arraydaemon: llm error: {exc}; answering with the built-in answerer", file=err, flush=True)
    return answer(question, memory), "built-in"


def check_llm_url(url: str) -> str:
    """``url`` if it is ``http(s)://HOST...``; else a one-line UserError, before anything is sent."""
    if not re.match(r"^https?://[^/\s]+", url or ""):
        raise UserError(f"--llm-url {url!r}: expected http://HOST:PORT/v1 (an OpenAI-compatible server)")
    return url


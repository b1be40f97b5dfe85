"""The LLM path: the question and the scene, as structured text, sent to any OpenAI-compatible
``/chat/completions`` endpoint (llama.cpp server, vLLM, Ollama) with ``urllib``.

Any failure is an :class:`LlmError` with a one-line reason; :func:`respond` then prints that line
and falls back to the built-in :func:`~arraydaemon.reason.answers.answer`.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass

from arraydaemon.core.errors import UserError
from arraydaemon.reason.answers import answer
from arraydaemon.reason.memory import SceneMemory

SYSTEM_PROMPT = """You answer questions about the sound sources around a robot, using only the \
scene below, measured by a microphone array. Conventions (REP-103): x forward, y left, z up; \
azimuth in degrees counter-clockwise from straight ahead (0 = front, +90 = left, -90 = right, \
180 = behind); elevation in degrees up from the horizontal. Times are seconds of the audio stream. \
A source's id stays the same while it is tracked. Answer in one or two short sentences; if the \
scene cannot answer the question, say so."""


class LlmError(Exception):
    """The chat-completions endpoint could not answer; the message is one line."""


def chat_completions_url(base: str) -> str:
    """The endpoint URL from a base such as ``http://HOST:PORT/v1`` (or the full endpoint itself)."""
    base = base.rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


def build_messages(question: str, memory: SceneMemory) -> list[dict]:
    """The chat messages: the system prompt with the scene, then the question followed by the
    built-in answer, labelled as a rule-based reading that may not fit the question."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT + "\n\n" + memory.scene_text()},
        {"role": "user", "content": f"{question.strip()}\n\n(A rule-based reading of the scene, which may not "
                                    f"fit the question: {answer(question, memory)})"},
    ]


def ask_llm(question: str, memory: SceneMemory, url: str, model: str, timeout_s: float = 30.0,
            api_key: str | None = None) -> str:
    """The model's answer from an OpenAI-compatible endpoint; raises LlmError (one line)."""
    endpoint = chat_completions_url(url)
    body = json.dumps({"model": model, "messages": build_messages(question, memory), "temperature": 0.0,
                       "max_tokens": 300, "stream": False}).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = _first_line(exc.read().decode("utf-8", "replace")) if exc.fp else ""
        raise LlmError(f"{endpoint}: HTTP {exc.code} {exc.reason}" + (f" ({detail[:120]})" if detail else "")) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            raise LlmError(f"{endpoint}: no answer within {timeout_s:g} s") from None
        raise LlmError(f"{endpoint}: cannot connect ({getattr(reason, 'strerror', None) or reason})") from None
    except TimeoutError:
        raise LlmError(f"{endpoint}: no answer within {timeout_s:g} s") from None
    except (OSError, ValueError) as exc:
        raise LlmError(f"{endpoint}: {_first_line(str(exc)) or type(exc).__name__}") from None
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


def respond(question: str, memory: SceneMemory, llm: LlmSettings | None, err=sys.stderr) -> tuple[str, str]:
    """(answer, origin) with origin ``llm`` or ``built-in``; an LLM failure is one line on ``err``."""
    if llm is not None:
        try:
            return ask_llm(question, memory, llm.url, llm.model, llm.timeout_s, llm.api_key), "llm"
        except LlmError as exc:
            print(f"arraydaemon: llm error: {exc}; answering with the built-in answerer", file=err, flush=True)
    return answer(question, memory), "built-in"


def check_llm_url(url: str) -> str:
    """``url`` if it is ``http(s)://HOST...``; else a one-line UserError, before anything is sent."""
    if not re.match(r"^https?://[^/\s]+", url or ""):
        raise UserError(f"--llm-url {url!r}: expected http://HOST:PORT/v1 (an OpenAI-compatible server)")
    return url


"""``arraydaemon reason``: the reasoning subscriber's flags (it runs in ``arraydaemon.reason``, which
imports neither numpy, numba nor torch)."""

from __future__ import annotations

from arraydaemon.cli.common import command, positive_float
from arraydaemon.io import wire


def register(sub) -> None:
    p = command(sub, "reason", "answer spatial questions about the published scene (built-in or an LLM)",
                "Subscribe to tracks, doa and embedding, keep a short scene memory and answer "
                "questions about it: built-in answers, or an OpenAI-compatible chat-completions server. "
                "Without --ask or --describe it asks interactively.",
                ("arraydaemon reason --describe                            # one line per second",
                 'arraydaemon reason --ask "Where is the speaker?" --ask "Did it move?"',
                 "arraydaemon reason --llm-url http://127.0.0.1:8080/v1 --llm-model qwen2.5-3b"))
    p.add_argument("endpoint", nargs="?", help=f"endpoint to connect to (default {wire.DEFAULT_ENDPOINT})")
    p.add_argument("--endpoint", dest="endpoint_opt", metavar="ENDPOINT",
                   help=f"same as the positional ENDPOINT (default {wire.DEFAULT_ENDPOINT})")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--ask", action="append", metavar="QUESTION", help="answer QUESTION once and exit (repeatable; "
                      "default: ask interactively)")
    mode.add_argument("--describe", action="store_true", help="print a one-line scene description every second")
    p.add_argument("--listen-seconds", type=positive_float, default=3.0, metavar="S",
                   help="--ask: listen this long after the first message before answering (default 3)")
    p.add_argument("--wait-seconds", type=positive_float, default=10.0, metavar="S",
                   help="--ask: give up if no message arrives within S seconds (default 10)")
    p.add_argument("--duration", type=positive_float, metavar="S",
                   help="--describe: stop after S seconds (default: run until interrupted)")
    p.add_argument("--memory-seconds", type=positive_float, default=60.0, metavar="S",
                   help="how long retired sources are remembered (default 60)")
    p.add_argument("--llm-url", metavar="URL", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8080/v1 "
                   "(default $ARRAYDAEMON_LLM_URL; none: built-in answers only)")
    p.add_argument("--llm-model", metavar="NAME", help="model name to request (default $ARRAYDAEMON_LLM_MODEL)")
    p.add_argument("--llm-timeout", type=positive_float, default=30.0, metavar="S",
                   help="seconds to wait for the LLM before the built-in answer (default 30)")
    p.add_argument("--json", action="store_true", help="one JSON object per answer")
    p.set_defaults(func=cmd_reason)


def cmd_reason(args) -> int:
    from arraydaemon.reason.listener import cli_main

    return cli_main(args)

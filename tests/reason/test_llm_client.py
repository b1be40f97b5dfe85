"""The LLM client against real misbehaving HTTP servers on 127.0.0.1: an overall deadline, a size
cap, and no redirects (never carrying the API key elsewhere)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from arraydaemon.reason import llm
from arraydaemon.reason.memory import SceneMemory

ANSWER = {"choices": [{"message": {"content": "Talker #1 is on the left."}}]}


def serve(handler_class):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve_post(do_post):
    """A server whose POST handler is ``do_post(handler)``."""
    return serve(type("Handler", (BaseHTTPRequestHandler,), {"do_POST": do_post, "log_message": lambda *a: None}))


class Recorder(BaseHTTPRequestHandler):
    seen: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).seen.append((self.command, self.path, self.headers.get("Authorization")))
        body = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST


def test_a_well_behaved_server_answers():
    server = serve(Recorder)
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1"
        assert llm.ask_llm("where?", SceneMemory(), url, "m", 5.0, api_key="k") == "Talker #1 is on the left."
    finally:
        server.shutdown()


def test_an_endless_body_is_cut_at_the_size_cap():
    def endless(handler):
        handler.send_response(200)
        handler.end_headers()
        try:
            while True:
                handler.wfile.write(b"x" * 65536)
        except OSError:
            pass

    server = serve_post(endless)
    try:
        start = time.monotonic()
        with pytest.raises(llm.LlmError, match="larger than 1 MB"):
            llm.ask_llm("where?", SceneMemory(), f"http://127.0.0.1:{server.server_port}/v1", "m", 30.0)
        assert time.monotonic() - start < 10.0
    finally:
        server.shutdown()


def test_a_dripping_server_cannot_stretch_the_deadline():
    def drip(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        try:
            for _ in range(10_000):
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    server = serve_post(drip)
    try:
        start = time.monotonic()
        with pytest.raises(llm.LlmError, match="no answer within 1.5 s"):
            llm.ask_llm("where?", SceneMemory(), f"http://127.0.0.1:{server.server_port}/v1", "m", 1.5)
        assert time.monotonic() - start < 3.0
    finally:
        server.shutdown()


def test_a_redirect_is_not_followed_and_the_key_goes_nowhere():
    Recorder.seen = []
    target = serve(Recorder)

    def redirect(handler):
        handler.send_response(302)
        handler.send_header("Location", f"http://127.0.0.1:{target.server_port}/steal")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    server = serve_post(redirect)
    try:
        with pytest.raises(llm.LlmError, match="redirect .* not followed"):
            llm.ask_llm("where?", SceneMemory(), f"http://127.0.0.1:{server.server_port}/v1", "m", 5.0,
                        api_key="secret")
        time.sleep(0.2)
        assert Recorder.seen == []  # nothing reached the other port, so neither did the key
    finally:
        server.shutdown()
        target.shutdown()


def test_https_certificates_are_verified():
    # a plain HTTP server spoken to over TLS: the handshake fails, with one line
    server = serve(Recorder)
    try:
        with pytest.raises(llm.LlmError) as caught:
            llm.ask_llm("where?", SceneMemory(), f"https://127.0.0.1:{server.server_port}/v1", "m", 5.0)
        assert "\n" not in str(caught.value)
    finally:
        server.shutdown()


def test_auto_route_answers_known_kinds_built_in_and_sends_the_rest_to_the_model():
    from tests.reason.test_answers import memory_with

    Recorder.seen = []
    server = serve(Recorder)
    try:
        m = memory_with([(0.1 * k, [(1, 40.0, 1.0)]) for k in range(1, 5)])
        url = f"http://127.0.0.1:{server.server_port}/v1"
        auto, every = llm.LlmSettings(url, "m", 5.0), llm.LlmSettings(url, "m", 5.0, route="all")
        assert llm.respond("Is anyone on your left?", m, auto) == ("Yes: #1 at +40° (front-left) is on the left.",
                                                                    "built-in")
        assert Recorder.seen == []
        assert llm.respond("Tell me a story about the room.", m, auto) == ("Talker #1 is on the left.", "llm")
        assert llm.respond("Is anyone on your left?", m, every) == ("Talker #1 is on the left.", "llm")
        assert len(Recorder.seen) == 2
    finally:
        server.shutdown()

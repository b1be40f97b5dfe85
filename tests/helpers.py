"""Plain helpers shared by the test modules: ``from tests.helpers import ...``.

Fixtures live in ``conftest.py``; the markers (``live``, ``sim``, ``slow``) are registered in
pyproject.toml. Nothing here imports torch at module level, and simulation code is imported only
by the helpers that simulate.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from arraydaemon.core.messages import AudioBlock
from arraydaemon.core.paths import SHIPPED_WEIGHTS
from arraydaemon.core.profiles import parse_profile

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The command line as a user runs it, from this environment.
ARRAYDAEMON = [sys.executable, "-m", "arraydaemon"]

#: For tests that need the shipped neural model (arraydaemon/data/neural.safetensors).
needs_weights = pytest.mark.skipif(not SHIPPED_WEIGHTS.is_file(), reason="shipped weights not trained yet")


def env_without_llm() -> dict:
    """This process's environment without the ``ARRAYDAEMON_LLM*`` settings of ``arraydaemon reason``."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ARRAYDAEMON_LLM")}


def replay_array(scene: Path, array: dict, wall_start: float) -> subprocess.Popen:
    """A real ``arraydaemon replay`` of one array of a fusion scene (its recording and profile under
    ``scene``), publishing on the array's endpoint with capture times from ``wall_start``."""
    return subprocess.Popen([*ARRAYDAEMON, "replay", str(scene / f"{array['name']}.wav"), "--profile",
                             str(scene / array["profile"]), "--endpoint", array["endpoint"], "--wall-start",
                             f"{wall_start:.6f}", "--quiet", "--estimator", "srp-phat"],
                            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def local_requests_only(context, requests: list[str]) -> None:
    """Route every request of the browser ``context``: recorded in ``requests``, and aborted unless
    it is for 127.0.0.1."""
    from urllib.parse import urlsplit

    def route(route):
        requests.append(route.request.url)
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            route.abort()

    context.route("**/*", route)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bind_datagram_socket(address: str) -> socket.socket:
    """An AF_UNIX datagram socket bound at ``address`` (a path, or ``@name`` in the abstract
    namespace), as systemd's $NOTIFY_SOCKET is."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + address[1:].encode() if address.startswith("@") else address)
    return sock


# --- fusion ----------------------------------------------------------------------------------


def array_vector(array, point) -> np.ndarray:
    """The array-frame unit vector from room-file ``array`` (a loaded ``RoomArray``) to room
    ``point`` (what its daemon would publish)."""
    d = np.asarray(point, float) - array.position
    return array.rotation.T @ (d / np.linalg.norm(d))


def tracks_message(array, point, t: float, seq: int, track_id: int = 1) -> dict:
    """A ``tracks`` payload of ``array`` (a ``RoomArray``) with one track towards room ``point`` at
    wall time ``t`` (a planar array's elevation folded up, as its daemon reports it)."""
    from arraydaemon.io import wire

    v = array_vector(array, point)
    az, el = math.degrees(math.atan2(v[1], v[0])), math.degrees(math.asin(v[2]))
    entry = wire.track_entry(track_id, az, abs(el), [v[0], v[1], abs(v[2])], 0.9, 1.0, 0.0, 0.0, 0.0, -30.0)
    return wire.tracks_payload(wire.common(seq, array.profile_name, "f", t - 1000.0, t), "up-down", [entry])


# --- arrays ----------------------------------------------------------------------------------


def make_profile(name: str, mics, sample_rate: int = 16000):
    """An ArrayProfile of the mic positions ``mics`` [shape=(M, 3)], in metres."""
    return parse_profile({"name": name, "sample_rate": sample_rate, "mics": np.asarray(mics).tolist()})


def ring(n: int, radius: float, rotation=None) -> np.ndarray:
    """``n`` mics on a horizontal circle, optionally rotated by the 3x3 matrix ``rotation``."""
    a = 2 * np.pi * np.arange(n) / n
    mics = np.stack([radius * np.cos(a), radius * np.sin(a), np.zeros(n)], axis=1)
    return mics if rotation is None else mics @ np.asarray(rotation).T


def rotation_x(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


TETRAHEDRON = 0.05 / math.sqrt(3) * np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]])
OCTAHEDRON = 0.05 * np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
CUBE = 0.03 * np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])


# --- scenes ----------------------------------------------------------------------------------


def plane_wave(mics, sample_rate: int, az: float, el: float, seconds: float, rng: np.random.Generator,
               snr_db: float | None = 20.0, amplitude: float = 1.0) -> np.ndarray:
    """White noise from (``az``, ``el``) at ``mics`` in the free field (fractional delays), with
    sensor noise at ``snr_db``; [shape=(samples, mics)]."""
    from arraydaemon.research import simulate

    signal = rng.standard_normal(int(seconds * sample_rate)) * amplitude
    return simulate.free_field_scene(np.asarray(mics), [(signal, az, el)], sample_rate, snr_db=snr_db, rng=rng)


def room_speech(mics, az: float, el: float, seed: int, seconds: float = 1.5, rt60: float = 0.3) -> np.ndarray:
    """espeak-ng speech from (``az``, ``el``) at 1.5 m in a pyroomacoustics room, at 16 kHz."""
    from arraydaemon.research import simulate

    rng = np.random.default_rng(seed)
    sig = simulate.speech_source(rng, seconds, 16000)
    return simulate.room_scene(mics, [simulate.SourceSpec(sig, az, el, 1.5)], sample_rate=16000, rt60=rt60,
                               snr_db=25.0, rng=rng).audio


# --- running the stages ----------------------------------------------------------------------


def run_pipeline(profile, audio: np.ndarray, options=None, blocks=None, wall_time0: float = 1e9):
    """``(pipeline, window results)`` of ``audio [shape=(samples, mics)]`` fed to a new Pipeline
    whole, in ``blocks`` sizes, or with ``blocks="hop"`` in hop-sized blocks as replay does.
    ``options``: PipelineOptions (default: the SRP-PHAT estimator's)."""
    from arraydaemon.core.options import PipelineOptions
    from arraydaemon.pipeline import Pipeline

    pipeline = Pipeline(profile, PipelineOptions(estimator="srp-phat") if options is None else options)
    fs = profile.sample_rate
    if blocks is None:
        sizes = [len(audio)]
    elif blocks == "hop":
        hop = pipeline.layout.hop_samples
        sizes = [min(hop, len(audio) - start) for start in range(0, len(audio), hop)]
    else:
        sizes = blocks
    results, start = [], 0
    for seq, size in enumerate(sizes):
        chunk = np.ascontiguousarray(audio[start:start + size])
        results.extend(pipeline.process(AudioBlock(seq, fs, start / fs, wall_time0 + start / fs, chunk)))
        start += size
    assert start == len(audio)
    return pipeline, results


def feature_windows(profile, audio: np.ndarray):
    """``(features stage, its FeatureWindows)`` of ``audio`` as one block, default FeatureConfig."""
    from arraydaemon.core.options import FeatureConfig
    from arraydaemon.stages.features import GccPhatFeatures

    feats = GccPhatFeatures(profile, FeatureConfig())
    return feats, feats.process(AudioBlock(0, profile.sample_rate, 0.0, 0.0, audio.astype(np.float32)))


def neural_estimates(profile, audio: np.ndarray, model) -> list:
    """The neural localizer's Estimates with ``model`` for each window of ``audio``."""
    from arraydaemon.core.options import FeatureConfig, LocalizerConfig
    from arraydaemon.localizers.neural.stage import NeuralLocalizer
    from arraydaemon.stages.features import GccPhatFeatures

    feats = GccPhatFeatures(profile, FeatureConfig())
    loc = NeuralLocalizer(profile, feats.layout, LocalizerConfig(), model)  # pins BLAS to one thread first
    windows = feats.process(AudioBlock(0, profile.sample_rate, 0.0, 0.0, audio.astype(np.float32)))
    return [loc.process(w) for w in windows]


def tiny_model(seed: int, layers: int = 2):
    """An untrained small SpatialTransformer (d_model 32, 2 heads) in eval mode, seeded."""
    import torch

    from arraydaemon.localizers.neural.model import ModelArgs, SpatialTransformer

    torch.manual_seed(seed)
    return SpatialTransformer(ModelArgs(d_model=32, heads=2, layers=layers, ff=64)).eval()


def tiny_weights(path: Path, seed: int = 0) -> Path:
    """A one-layer :func:`tiny_model` saved as a weights file at ``path``."""
    from arraydaemon.localizers.neural.weights import save_model

    save_model(tiny_model(seed, layers=1), path)
    return path


def tiny_model_and_inputs(seed: int, batch: int, pairs: int, layers: int = 2):
    """A :func:`tiny_model` and random tokens, pair positions and an all-real mask for it."""
    import torch

    model = tiny_model(seed, layers)
    tokens = torch.randn(batch, model.args.groups, pairs, model.args.token_features)
    pos = torch.randn(batch, pairs, 2, 3) * 0.05
    return model, tokens, pos, torch.ones(batch, pairs, dtype=torch.bool)

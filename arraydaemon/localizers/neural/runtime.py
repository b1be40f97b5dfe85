"""Running the model at one window per call, without torch: its exported forward graph (ONNX) in
ONNX Runtime, and thread pinning.

A weights file ``W.safetensors`` has its graph beside it, ``W.onnx`` (``arraydaemon train`` and
``arraydaemon export-onnx`` write it; the shipped model ships both). The graph carries what the
stage needs in its metadata — the model arguments, the spectrum's scale and bias, the model's name —
and the SHA-256 of the weights file it was exported from, so a graph that no longer matches its
weights is never run (``graphs.py`` finds a weights file's graph).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from arraydaemon.core.errors import UserError
from arraydaemon.localizers.neural.args import ModelArgs
from arraydaemon.localizers.neural.weights import MODEL_NAME

OUTPUTS = ("clean", "weight", "activity", "embedding")
INPUTS = ("tokens", "pair_pos", "pair_mask")
GRAPH_SUFFIX = ".onnx"
GRAPH_FORMAT = "1"  # the metadata keys and the inputs/outputs above


def set_threads(n: int = 1) -> None:
    """Pin numpy's BLAS (and OpenMP, should anything use it) to ``n`` threads: two threads on a busy
    2-core machine run far slower, and OpenBLAS, left alone, split the estimator's small products over
    both cores (the live 8-channel neural daemon: 116 % CPU, 19 % once limited, at the same latency;
    docs/research/benchmark-history.md). ONNX Runtime's sessions have one thread (:func:`session`)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    threadpool_limits(limits=n, user_api="blas")  # lasts for the process (not used as a context)


def session(graph: bytes | Path, pairs: int | None = None, optimize: bool = True):
    """An ONNX Runtime session of a graph (bytes or a file): one thread, no spinning (the audio thread
    and the other stages share the cores), every graph optimisation. ``pairs``: the pair axis fixed
    to that size, so the optimiser folds the graph's shape arithmetic for the array (forward 1.49 →
    1.11 ms at 8 mics, 28 pairs). ``optimize=False``: no optimisation (reading the metadata only)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    if pairs is not None:
        options.add_free_dimension_override_by_name("pairs", int(pairs))
    if not optimize:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = str(graph) if isinstance(graph, Path) else graph
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


class NeuralGraph:
    """The model's forward as an ONNX Runtime session, with what the stage reads from the model:
    ``args`` (:class:`ModelArgs`), ``score_scale`` and ``score_bias`` (the spectrum's sigmoid),
    ``name`` and ``metadata`` (the graph's metadata: strings)."""

    def __init__(self, graph: bytes | Path, source: str = "graph"):
        self.graph = graph
        self._sessions: dict[int, object] = {}
        try:
            meta = dict(session(graph, optimize=False).get_modelmeta().custom_metadata_map)
            if meta.get("graph_format") != GRAPH_FORMAT:
                raise ValueError(f"graph format {meta.get('graph_format')!r}, expected {GRAPH_FORMAT}")
            self.args = ModelArgs(**json.loads(meta["model_args"]))
            self.score_scale = float(meta["score_scale"])
            self.score_bias = float(meta["score_bias"])
        except UserError:
            raise
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
            raise UserError(f"{source}: not a neural graph arraydaemon can run ({str(exc).splitlines()[0]}); "
                            "export it again with `arraydaemon export-onnx`") from None
        self.metadata = meta
        name = meta.get("model_name", MODEL_NAME)
        self.name = f"{name}@{meta['train_steps']}" if "train_steps" in meta else name

    @property
    def weights_digest(self) -> str:
        """SHA-256 of the weights file the graph was exported from ("" for an in-memory model)."""
        return self.metadata.get("weights_sha256", "")

    def forward(self, pair_pos: np.ndarray, pair_mask: np.ndarray) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
        """The forward for one array (``pair_pos [shape=(1, P, 2, 3)]`` float32, ``pair_mask
        [shape=(1, P)]`` bool): ``tokens [shape=(1, groups, P, features)]`` float32 → the outputs of
        the one window, batch axis dropped, as numpy (equal to the torch model's to float rounding;
        tested). The pair count is a dynamic axis of the graph, so one graph serves every array; each
        pair count gets its own session, with that axis fixed."""
        feeds = {"pair_pos": np.ascontiguousarray(pair_pos, dtype=np.float32),
                 "pair_mask": np.ascontiguousarray(pair_mask, dtype=bool)}
        pairs = feeds["pair_mask"].shape[1]
        if pairs not in self._sessions:
            self._sessions[pairs] = session(self.graph, pairs)
        run = self._sessions[pairs].run

        def forward(tokens: np.ndarray) -> dict[str, np.ndarray]:
            return {k: np.asarray(v[0]) for k, v in zip(OUTPUTS, run(None, {"tokens": tokens, **feeds}))}
        return forward


def graph_path(weights: Path) -> Path:
    """Where the graph of ``weights`` is written beside it: the same name with ``.onnx``."""
    return Path(weights).with_suffix(GRAPH_SUFFIX)

"""Running the model at one window per call: thread pinning and a compiled forward (ONNX Runtime)."""

from __future__ import annotations

import io
import os
import warnings
import weakref
from collections.abc import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from arraydaemon.localizers.neural.model import SpatialTransformer


def set_threads(n: int = 1) -> None:
    """Pin torch and numpy's BLAS to ``n`` threads: two OpenMP threads on a busy 2-core machine run
    far slower, and OpenBLAS, left alone, split the estimator's small products over both cores (the
    live 8-channel neural daemon: 116 % CPU, 19 % once limited, at the same latency;
    docs/research/benchmark-history.md)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    threadpool_limits(limits=n, user_api="blas")  # lasts for the process (not used as a context)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set once in this process


OUTPUTS = ("clean", "weight", "activity", "embedding")
_EXPORTED: "weakref.WeakKeyDictionary[SpatialTransformer, object]" = weakref.WeakKeyDictionary()


def _session(model: SpatialTransformer):
    """An ONNX Runtime session of ``model``'s forward, exported once per model object and weights (the
    pair count is a dynamic axis, so every array shares it): one thread, no spinning (the audio thread
    and the other stages share the cores)."""
    import onnxruntime

    # Parameters' version counters move with every in-place change (an optimiser step,
    # load_state_dict): changed weights are exported again.
    version = tuple(p._version for p in model.parameters())
    cached = _EXPORTED.get(model)
    if cached is not None and cached[0] == version:
        return cached[1]
    pairs = 3
    example = (torch.zeros(1, model.args.groups, pairs, model.args.token_features),
               torch.zeros(1, pairs, 2, 3), torch.ones(1, pairs, dtype=torch.bool))

    class Outputs(torch.nn.Module):  # the exporter wants a tuple, not the model's dict
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, tokens, pair_pos, pair_mask):
            out = self.model(tokens, pair_pos, pair_mask)
            return tuple(out[k] for k in OUTPUTS)

    buffer = io.BytesIO()
    # The TorchScript-based exporter: the dynamo one needs onnxscript and seconds per export. Its
    # tracer warns about branches on the (all-real) pair mask, which the export rightly fixes.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(Outputs().eval(), example, buffer, input_names=["tokens", "pair_pos", "pair_mask"],
                          output_names=list(OUTPUTS), opset_version=17, dynamo=False,
                          dynamic_axes={"tokens": {2: "pairs"}, "pair_pos": {1: "pairs"}, "pair_mask": {1: "pairs"}})
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    _EXPORTED[model] = (version, session)
    return session


def compiled_forward(model: SpatialTransformer, pair_pos: np.ndarray,
                     pair_mask: np.ndarray) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """``model``'s forward for one array (``pair_pos [shape=(1, P, 2, 3)]`` float32, ``pair_mask
    [shape=(1, P)]`` bool): ``tokens [shape=(1, groups, P, features)]`` float32 → the outputs of the
    one window, batch axis dropped, as numpy. In eval mode it runs in ONNX Runtime: on this
    per-window graph per-operator overhead dominates, and ONNX Runtime's is lower than TorchScript's
    (a frozen, inference-optimised trace took 1.35× its time at 8 mics;
    docs/research/benchmark-history.md). The outputs equal the model's to float rounding (tested). A
    model in training mode runs as it is."""
    if model.training:
        def eager(tokens: np.ndarray) -> dict[str, np.ndarray]:
            with torch.no_grad():
                out = model(torch.from_numpy(tokens), torch.from_numpy(pair_pos), torch.from_numpy(pair_mask))
            return {k: out[k][0].numpy() for k in OUTPUTS}
        return eager
    session = _session(model)
    feeds = {"pair_pos": np.ascontiguousarray(pair_pos, dtype=np.float32), "pair_mask": np.ascontiguousarray(pair_mask)}

    def run(tokens: np.ndarray) -> dict[str, np.ndarray]:
        return {k: np.asarray(v[0]) for k, v in zip(OUTPUTS, session.run(None, {"tokens": tokens, **feeds}))}
    return run

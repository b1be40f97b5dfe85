"""Exporting the model's forward to the ONNX graph the daemon runs (needs torch and onnx: the
``train`` extra). ``arraydaemon train`` writes the graph beside the weights it writes;
``arraydaemon export-onnx`` exports any weights file; evaluation and tests export models in memory."""

from __future__ import annotations

import io
import json
import os
import warnings
import weakref
from dataclasses import asdict
from pathlib import Path

import torch

from arraydaemon.localizers.neural.model import SpatialTransformer
from arraydaemon.localizers.neural.runtime import GRAPH_FORMAT, INPUTS, OUTPUTS, NeuralGraph, graph_path, set_threads
from arraydaemon.localizers.neural.weights import MODEL_NAME, load_model, weights_digest

OPSET = 17
_IN_MEMORY: "weakref.WeakKeyDictionary[SpatialTransformer, dict[bool, tuple]]" = weakref.WeakKeyDictionary()


def set_torch_threads(n: int = 1) -> None:
    """:func:`runtime.set_threads` plus torch's own thread pools (training)."""
    set_threads(n)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set once in this process


def graph_metadata(model: SpatialTransformer, weights_meta: dict | None = None, digest: str = "") -> dict[str, str]:
    """What the run time reads from the graph instead of the model (strings)."""
    meta = {"graph_format": GRAPH_FORMAT, "model_args": json.dumps(asdict(model.args)),
            "score_scale": repr(float(model.score_scale.detach())),
            "score_bias": repr(float(model.score_bias.detach())),
            "model_name": MODEL_NAME, "weights_sha256": digest}
    for key in ("model_name", "train_steps"):
        if weights_meta and key in weights_meta:
            meta[key] = str(weights_meta[key])
    return meta


def quantize_int8(proto) -> "onnx.ModelProto":
    """``proto`` with its matrix products' weights in int8 (ONNX Runtime's dynamic quantisation: one
    scale per output channel, the activations quantised per call): the forward 1.7 → 1.2 ms at 8 mics,
    the outputs within a few hundredths (docs/research/lean-runtime.md)."""
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp, "float.onnx"), Path(tmp, "int8.onnx")
        onnx.save(proto, src)
        quantize_dynamic(src, out, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"])
        return onnx.load(out)


def graph_bytes(model: SpatialTransformer, metadata: dict[str, str], int8: bool = True) -> bytes:
    """The ONNX graph of ``model``'s forward (eval behaviour; the pair count a dynamic axis, so every
    array shares it) with ``metadata`` in its metadata properties. ``int8``: the matrix products'
    weights quantised (:func:`quantize_int8`: what the daemon runs); False: the float32 export, equal
    to the torch model to float rounding."""
    import logging

    import onnx

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
    was_training = model.training
    # The TorchScript-based exporter: the dynamo one needs onnxscript and seconds per export. Its
    # tracer warns about branches on the (all-real) pair mask, which the export rightly fixes.
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", UserWarning)
            torch.onnx.export(Outputs().eval(), example, buffer, input_names=list(INPUTS),
                              output_names=list(OUTPUTS), opset_version=OPSET, dynamo=False,
                              dynamic_axes={"tokens": {2: "pairs"}, "pair_pos": {1: "pairs"},
                                            "pair_mask": {1: "pairs"}})
    finally:
        model.train(was_training)
    proto = onnx.load_from_string(buffer.getvalue())
    if int8:
        root = logging.getLogger()  # the quantiser warns on the root logger to pre-process the graph
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            proto = quantize_int8(proto)
        finally:
            root.setLevel(level)
        del proto.metadata_props[:]
    metadata = {**metadata, "weights_dtype": "int8" if int8 else "float32"}
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    return proto.SerializeToString()


def graph_of(model: SpatialTransformer, int8: bool = True) -> NeuralGraph:
    """An in-memory graph of ``model`` (evaluation, tests; ``int8`` as :func:`graph_bytes`: by
    default what the daemon runs), exported once per model object, weights and ``int8``: parameters'
    version counters move with every in-place change (an optimiser step, ``load_state_dict``), and
    changed weights are exported again."""
    version = (tuple(p._version for p in model.parameters()), int8)
    cached = _IN_MEMORY.get(model, {}).get(int8)
    if cached is not None and cached[0] == version:
        return cached[1]
    graph = NeuralGraph(graph_bytes(model, graph_metadata(model), int8), "in-memory model")
    _IN_MEMORY.setdefault(model, {})[int8] = (version, graph)
    return graph


def export_weights(weights: Path, out: Path | None = None, int8: bool = True) -> Path:
    """Writes the graph of the weights file ``weights`` to ``out`` (default: beside it, ``.onnx``),
    atomically, tied to the weights by their SHA-256 (``int8`` as :func:`graph_bytes`); returns ``out``."""
    weights = Path(weights)
    out = graph_path(weights) if out is None else Path(out)
    model, meta = load_model(weights)
    data = graph_bytes(model, graph_metadata(model, meta, weights_digest(weights)), int8)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)  # shipped data: readable by the service user
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out

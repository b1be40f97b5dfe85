"""Running the model at one window per call: thread pinning and a traced, frozen forward."""

from __future__ import annotations

import os
import warnings

import torch
from threadpoolctl import threadpool_limits

from arraydaemon.localizers.neural.model import SpatialTransformer


def set_threads(n: int = 1) -> None:
    """Pin torch and numpy's BLAS to ``n`` threads: two OpenMP threads on a busy 2-core machine run
    far slower, and OpenBLAS, left alone, split the estimator's small products over both cores (the
    live 8-channel neural daemon: 116 % CPU, 19 % once limited, at the same latency; BENCHMARKS.md)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    threadpool_limits(limits=n, user_api="blas")  # lasts for the process (not used as a context)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set once in this process


def traced_forward(model: SpatialTransformer, pair_pos: torch.Tensor, pair_mask: torch.Tensor):
    """``model``'s forward for one array (``pair_pos [shape=(1, P, 2, 3)]``), traced, frozen and
    optimised for inference with TorchScript when the model is in eval mode: the per-window graph is
    small, so per-operator overhead matters, and the optimised graph runs faster with the same outputs
    (to float rounding; tested). The pair count is baked in, which is why it is traced per array."""
    if model.training:
        return model
    example = torch.zeros(1, model.args.groups, pair_pos.shape[1], model.args.token_features)
    # TorchScript is deprecated in favour of torch.compile, which needs a C++ toolchain at run time and
    # compiles for seconds; the pinned torch traces fine. The tracer's warnings are about branches on
    # the (constant, all-real) pair mask, which the trace rightly fixes.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, (example, pair_pos, pair_mask), strict=False, check_trace=False)
        # freeze, then optimize_for_inference: prepacked (oneDNN) weights for the linear layers
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced))

"""Neural weights on disk: safetensors with the model arguments stored beside them (JSON metadata);
nothing is unpickled."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from arraydaemon.core.errors import UserError
from arraydaemon.core.paths import SHIPPED_WEIGHTS as WEIGHTS_PATH
from arraydaemon.localizers.neural.model import ModelArgs, SpatialTransformer

MODEL_NAME = "arraydaemon-spatial-transformer"


def save_model(model: SpatialTransformer, path: Path, extra_metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    meta = {"model_args": json.dumps(asdict(model.args)), "model_name": MODEL_NAME}
    meta.update({k: str(v) for k, v in (extra_metadata or {}).items()})
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=meta)
    os.chmod(path, 0o644)  # shipped data: readable by the service user


def load_model(path: Path) -> tuple[SpatialTransformer, dict]:
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        args = ModelArgs(**json.loads(meta["model_args"]))
        model = SpatialTransformer(args)
        model.load_state_dict(load_file(str(path)))
    except (OSError, KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as exc:
        raise UserError(f"{path}: cannot load neural weights ({str(exc).splitlines()[0]})") from None
    model.eval()
    return model, meta


def shipped_weights_available() -> bool:
    return WEIGHTS_PATH.is_file()

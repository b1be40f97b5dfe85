"""Neural weights on disk: safetensors with the model arguments stored beside them (JSON metadata);
nothing is unpickled. Reading the metadata and the file's digest needs no torch; loading the model
(training, evaluation, export) does."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from arraydaemon.core.errors import UserError
from arraydaemon.core.paths import SHIPPED_WEIGHTS as WEIGHTS_PATH
from arraydaemon.localizers.neural.args import ModelArgs

if TYPE_CHECKING:
    from arraydaemon.localizers.neural.model import SpatialTransformer

MODEL_NAME = "arraydaemon-spatial-transformer"


def save_model(model: SpatialTransformer, path: Path, extra_metadata: dict | None = None) -> None:
    from safetensors.torch import save_file

    meta = {"model_args": json.dumps(asdict(model.args)), "model_name": MODEL_NAME}
    meta.update({k: str(v) for k, v in (extra_metadata or {}).items()})
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=meta)
    os.chmod(path, 0o644)  # shipped data: readable by the service user


def read_metadata(path: Path) -> dict[str, str]:
    """The weights file's metadata (model arguments, name, training steps), read without torch; a
    missing or unreadable file, or one without model arguments, is a :class:`UserError`."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
        ModelArgs(**json.loads(meta["model_args"]))
    except (OSError, KeyError, TypeError, ValueError, SafetensorError) as exc:
        raise UserError(f"{path}: cannot load neural weights ({str(exc).splitlines()[0]})") from None
    return meta


def weights_digest(path: Path) -> str:
    """SHA-256 (hex) of the weights file's bytes: what ties an exported graph to its weights."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise UserError(f"{path}: cannot read neural weights ({exc.strerror})") from None


def load_model(path: Path) -> tuple[SpatialTransformer, dict]:
    """The model in eval mode and the file's metadata (needs torch: the ``train`` extra)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from arraydaemon.localizers.neural.model import SpatialTransformer

    meta = read_metadata(path)
    try:
        model = SpatialTransformer(ModelArgs(**json.loads(meta["model_args"])))
        model.load_state_dict(load_file(str(path)))
    except (OSError, KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as exc:
        raise UserError(f"{path}: cannot load neural weights ({str(exc).splitlines()[0]})") from None
    model.eval()
    return model, meta


def shipped_weights_available() -> bool:
    return WEIGHTS_PATH.is_file()

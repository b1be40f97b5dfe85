"""Simulation, datasets, training, evaluation and benchmarks."""

from __future__ import annotations

import importlib.util

from arraydaemon.core.errors import UserError

#: Top-level modules that the ``train`` extra (``pip install 'arraydaemon[train]'``) provides and a
#: plain install lacks: room simulation, the evaluation plots, progress bars, tracking metrics, the
#: torch model and its exporter.
TRAINING_EXTRA_MODULES: tuple[str, ...] = ("pyroomacoustics", "matplotlib", "tqdm", "motmetrics", "torch", "onnx")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken install, or a module in sys.modules without a spec
        return False


def require_training_extra(command: str) -> None:
    """Raise :class:`UserError` (one line) when a module of the ``train`` extra is missing.

    ``command``: the CLI command that needs it, e.g. ``"train"`` or ``"arraydaemon eval"``.
    Only looks the modules up (``importlib.util.find_spec``); nothing heavy is imported.
    """
    missing = [m for m in TRAINING_EXTRA_MODULES if not _installed(m)]
    if missing:
        name = command if command.startswith("arraydaemon") else f"arraydaemon {command}"
        raise UserError(
            f"`{name}` needs the training extra: pip install 'arraydaemon[train]' "
            f"(missing: {', '.join(missing)})"
        )

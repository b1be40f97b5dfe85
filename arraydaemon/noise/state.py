"""``--noise-state FILE``: what the online noise field (and the evidence tests' noise floor) learned,
kept across restarts, so a daemon that restarts on a humming robot does not spend its first
seconds learning the hum again (the seconds a track is born on it).

The file is a noise file (``files.py``) of kind ``noise-state``: tied to the profile and the STFT,
versioned, written atomically. It also names the noise model the state was learned on top of (with
a model, the online field learns from the whitened cells): a state of another model, or of none,
is refused with one line, like a state of another profile.
"""

from __future__ import annotations

import os
from pathlib import Path

from arraydaemon.core.errors import UserError
from arraydaemon.noise import files


def _model_id(pipeline) -> str | None:
    return pipeline.noise_model.checksum if pipeline.noise_model is not None else None


def save_noise_state(path: str | os.PathLike, pipeline) -> bool:
    """Writes ``pipeline``'s online noise state to ``path`` (atomically); False when it has none."""
    arrays = pipeline.features.noise_state()
    if not arrays:
        return False
    extra = {"noise_model": _model_id(pipeline), "noise_field_s": pipeline.options.features.noise_field_s}
    files.save(path, "noise-state", pipeline.profile, pipeline.layout, arrays, extra)
    return True


def restore_noise_state(path: str | os.PathLike, pipeline) -> bool:
    """Loads the noise state at ``path`` into ``pipeline``; False when there is no such file yet (a
    first start). :class:`UserError` (one line) when it does not match the profile, the STFT, the
    noise model or the pipeline's noise field."""
    path = Path(path)
    if not path.exists():
        return False
    header, arrays = files.load(path, "noise-state", pipeline.profile, pipeline.layout)
    if header.get("noise_model") != _model_id(pipeline):
        learned = f"noise model {header.get('noise_model')}" if header.get("noise_model") else "no noise model"
        now = f"noise model {_model_id(pipeline)}" if _model_id(pipeline) else "none"
        raise UserError(f"{path}: noise state was learned with {learned}, this run has {now}; remove the file "
                        "to learn afresh")
    try:
        pipeline.features.load_noise_state(arrays)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path}: noise state does not fit this pipeline ({exc})") from None
    return True

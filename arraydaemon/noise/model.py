"""A noise model: the spatial covariance of the robot's own noise in every STFT bin, measured once
at installation (``learn.py``) and kept in a profile-tied file (``files.py``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from arraydaemon.core.errors import UserError
from arraydaemon.noise import files


@dataclass(frozen=True, eq=False)
class NoiseModel:
    """``covariance [shape=(bins, mics, mics)]`` complex128, every bin of the STFT; ``header``: the
    file's (profile, STFT, what was learned)."""

    covariance: np.ndarray
    header: dict

    @property
    def checksum(self) -> str:
        """A short hash of the covariances (what a noise state learned on top of this model names)."""
        import hashlib

        return hashlib.sha256(np.ascontiguousarray(self.covariance).tobytes()).hexdigest()[:12]


def save_noise_model(path: str | os.PathLike, covariance: np.ndarray, profile, layout, extra: dict | None = None):
    """Writes a noise model for ``profile`` (atomically, ``files.save``)."""
    return files.save(path, "noise-model", profile, layout, {"covariance": np.asarray(covariance, np.complex128)},
                      extra)


def load_noise_model(path: str | os.PathLike, profile, layout) -> NoiseModel:
    """The noise model at ``path``, checked against ``profile`` and the STFT ``layout`` (one-line
    :class:`UserError` when it does not match)."""
    header, arrays = files.load(path, "noise-model", profile, layout)
    cov = arrays.get("covariance")
    shape = (layout.bins, profile.num_mics, profile.num_mics)
    if cov is None or cov.shape != shape or not np.iscomplexobj(cov) or not np.isfinite(cov).all():
        raise UserError(f"{path}: noise model covariance missing, not finite or not of shape {shape}")
    return NoiseModel(cov.astype(np.complex128), header)

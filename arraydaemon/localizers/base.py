"""What an estimator is, and the one registry of their names.

An estimator is a pipeline stage, FeatureWindow → Estimate, that follows :class:`Localizer`. The
registry maps each name the command line, the configuration file and the wire use (``doa.estimator``)
to a factory. Implementations are imported only when built, so this module stays light (no numpy,
numba, ONNX Runtime) and the command line can read the names for its help.

Adding an estimator: write a class with ``name``, ``grid``, ``process`` and ``reset`` (compose the
parts in ``scan.py``, ``refine.py`` and ``integration.py`` rather than subclassing another
estimator), then add one :class:`EstimatorEntry` to :data:`ESTIMATORS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from arraydaemon.core.errors import UserError
from arraydaemon.core.options import LocalizerConfig
from arraydaemon.core.paths import SHIPPED_WEIGHTS

if TYPE_CHECKING:
    from arraydaemon.core.grids import DirectionGrid
    from arraydaemon.core.messages import Estimate, FeatureWindow
    from arraydaemon.core.profiles import ArrayProfile
    from arraydaemon.stages.features import FrameLayout


class Localizer(Protocol):
    """A direction-of-arrival estimator stage."""

    name: str  # its registry name, published as ``doa.estimator``
    grid: DirectionGrid  # the directions of ``Estimate.spectrum``

    def process(self, window: FeatureWindow) -> Estimate:
        """Sources (strongest first) and a spatial spectrum over ``grid`` for one window."""

    def reset(self) -> None:
        """Forget every earlier window (a new stream)."""


Factory = Callable[..., Localizer]


@dataclass(frozen=True)
class EstimatorEntry:
    name: str
    summary: str  # one line, for help texts
    build: Factory  # (profile, layout, config, weights file or None, noise whitener or None) -> Localizer
    takes_weights: bool = False


def _srp_phat(profile, layout, config, weights, noise=None) -> Localizer:
    from arraydaemon.localizers.srp_phat import SrpPhatLocalizer

    return SrpPhatLocalizer(profile, layout, config, noise)


def _neural(profile, layout, config, weights, noise=None) -> Localizer:
    if weights and not Path(weights).is_file():  # before importing numba and ONNX Runtime
        raise UserError(f"{weights}: neural weights not found")
    from arraydaemon.localizers.neural.stage import NeuralLocalizer  # ONNX Runtime only when asked for

    return NeuralLocalizer.from_weights(profile, layout, config, Path(weights) if weights else None, noise=noise)


ESTIMATORS: dict[str, EstimatorEntry] = {
    entry.name: entry for entry in (
        EstimatorEntry("srp-phat", "steered response power with phase transform", _srp_phat),
        EstimatorEntry("neural", "causal transformer over GCC-PHAT tokens, placed by SRP-PHAT", _neural,
                       takes_weights=True),
    )
}
ESTIMATOR_NAMES = tuple(ESTIMATORS)


def make_localizer(name: str, profile: ArrayProfile, layout: FrameLayout, config: LocalizerConfig = LocalizerConfig(),
                   weights: str | None = None, noise=None) -> Localizer:
    """The estimator registered as ``name`` (``weights``: a weights file for estimators that take one;
    ``noise``: a ``noise.whiten.NoiseWhitener`` of the robot's own noise)."""
    entry = ESTIMATORS.get(name)
    if entry is None:
        raise UserError(f"unknown estimator {name!r}; choose one of {', '.join(ESTIMATOR_NAMES)}")
    if weights and not entry.takes_weights:
        raise UserError(f"--weights is for the neural estimator, not --estimator {name}")
    return entry.build(profile, layout, config, weights, noise)


def default_estimator() -> str:
    """``neural`` when the shipped weights are present, else ``srp-phat``."""
    return "neural" if SHIPPED_WEIGHTS.is_file() else "srp-phat"

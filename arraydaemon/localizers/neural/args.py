"""The neural model's arguments: what is stored beside its weights and its graph, readable without torch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arraydaemon.core import grids
from arraydaemon.localizers.neural.tokens import GROUPS, INPUT_FEATURES


@dataclass(frozen=True)
class ModelArgs:
    d_model: int = 128
    heads: int = 4
    layers: int = 4
    ff: int = 256
    pos_freqs: int = 8
    position: str = "relative"  # "relative" | "absolute" (ablation)
    input: str = "gcc+energy"  # a key of INPUT_FEATURES: "gcc+energy", "gcc" or "phase" (ablations)
    groups: int = GROUPS
    embed_dim: int = 32
    canonical_dirs: int = 64  # directions of the embedding's auxiliary spectrum decoder

    @property
    def token_features(self) -> int:
        return INPUT_FEATURES[self.input]


def canonical_directions(n: int) -> np.ndarray:
    """Fixed directions ``[shape=(n, 3)]`` the embedding decoder predicts the spectrum on."""
    return grids.fibonacci_sphere(n)

"""The neural estimator at run time: FeatureWindow → Estimate, with the transformer's spatial spectrum.

It composes the same parts as SRP-PHAT (scan, refiner, temporal integration) and adds the model:
the model decides whether anything is active, how many sources there are and, where the physics is
ambiguous, which lobe; the exact SRP places them (see :meth:`NeuralLocalizer.sources`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from arraydaemon.core import grids, kernels
from arraydaemon.core.errors import UserError
from arraydaemon.core.grids import pick_peaks, source_direction
from arraydaemon.core.messages import Estimate, FeatureWindow, SourceDirection
from arraydaemon.core.options import LocalizerConfig
from arraydaemon.core.profiles import ArrayProfile
from arraydaemon.localizers.further import FurtherSources
from arraydaemon.localizers.integration import CrossSpectrumIntegral, WeightedSpectrumAverage, WindowDecay
from arraydaemon.localizers.neural.args import canonical_directions
from arraydaemon.localizers.neural.graphs import load_graph
from arraydaemon.localizers.neural.runtime import NeuralGraph, set_threads
from arraydaemon.localizers.neural.tokens import (
    LAG_STEP_S,
    MAX_LAG,
    N_LAGS,
    LagProjector,
    TokenPairs,
    group_cross,
    model_tokens,
)
from arraydaemon.localizers.neural.weights import WEIGHTS_PATH
from arraydaemon.localizers.refine import Refiner
from arraydaemon.localizers.scan import SrpScan
from arraydaemon.stages.features import FrameLayout

if TYPE_CHECKING:
    from arraydaemon.localizers.neural.model import SpatialTransformer

EMBED_DIRS = 48  # fixed directions of the embedding's direction part
MODES = ("fused", "head")


@dataclass(frozen=True, eq=False)
class NeuralAnalysis:
    """What the model and the integrals make of one window, before sources are chosen.

    ``out``: model outputs as numpy (``clean [shape=(P, N_LAGS)]``, ``weight [shape=(P,)]``,
    ``scaled`` (weight-scaled GCCs), ``activity`` logit, ``embedding``); ``activity`` the probability;
    ``learned [shape=(scan,)]`` the (integrated) model spectrum over the scan points;
    ``sums [shape=(pairs, bins)]`` the (integrated) pair cross-spectra of the SRP scan's pairs;
    ``window_learned``: the model spectrum of this window alone; ``window_sums``: this window's pair
    cross-spectra over its evidence bins (``stages/evidence.py``), what the tracker's detections use.
    """

    out: dict
    activity: float
    learned: np.ndarray
    sums: np.ndarray
    window_learned: np.ndarray
    window_sums: np.ndarray
    # PHAT spectra and lag tables of the sums above, by the array's id, formed once a window: the
    # detections and the evidence check both read the window's (``replace`` shares this dict)
    phat: dict = field(default_factory=dict, repr=False)

    def lags(self, scan: SrpScan, sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``scan.lags(sums)`` of ``sums`` (``self.sums`` or ``self.window_sums``), computed once."""
        key = id(sums)
        if key not in self.phat:
            self.phat[key] = (sums, *scan.lags(sums))  # holds sums, so its id stays its own
        return self.phat[key][1:]


class NeuralLocalizer:
    """Stage: FeatureWindow → Estimate over the run-time grid, with a spatial embedding.

    ``model``: the model's graph (:class:`NeuralGraph`, what the daemon runs: no torch), or a torch
    model (evaluation, tests), exported to a graph in memory. ``mode``: ``"fused"`` (the run-time
    rule, :meth:`fused_sources`) or ``"head"`` (peaks of the model's spectrum alone, refined on it:
    "neural head" in the model card's evaluation).
    """

    name = "neural"
    # Calibrated on training-split scenes (see the model card): the activity head decides whether
    # anything is active; soft direction labels keep uncertain peaks low, so the first peak only
    # needs to stand out a little, while further sources must be clear peaks of their own.
    activity_threshold = 0.5
    peak_threshold = 0.1
    secondary_threshold = 0.3
    # The masked search for further sources (further.py) runs only where the model's spectrum reaches
    # this away from the first source: on one talker it is skipped in ~19 windows of 20, on the
    # tracking benchmark's several-talker scenes in 3-5 % (docs/research/lean-runtime.md).
    further_threshold = 0.05

    def __init__(self, profile: ArrayProfile, layout: FrameLayout, config: LocalizerConfig,
                 model: NeuralGraph | SpatialTransformer, mode: str = "fused", noise=None):
        if mode not in MODES:
            raise ValueError(f"neural mode: expected one of {', '.join(MODES)}, got {mode!r}")
        set_threads(1)
        if not isinstance(model, NeuralGraph):
            from arraydaemon.localizers.neural.export import graph_of  # torch: a model, not a graph

            model = graph_of(model)
        self.profile = profile
        self.layout = layout
        self.config = config
        self.mode = mode
        self.scan = SrpScan(profile, layout, config, noise)
        self.noise = noise  # a noise.whiten.NoiseWhitener (see scan.py), or None
        self.grid = self.scan.grid
        self.refiner = Refiner(self.scan)
        self.further = FurtherSources(self.scan, self.refiner, config)
        self.decay = WindowDecay(config.integration_s)
        self.integral = CrossSpectrumIntegral(config.integration_s)
        self.learned_average = WeightedSpectrumAverage(config.integration_s)
        self.model = model
        self.model_name = model.name
        self.projector = LagProjector.for_layout(layout)
        self.token_pairs = pairs = TokenPairs.for_array(profile.mics, profile.reference_mic)
        self.pair_pos = pairs.positions(profile.mics).astype(np.float32)[None]  # (1, P, 2, 3)
        self.pair_mask = np.ones((1, len(pairs)), dtype=bool)
        self._forward = model.forward(self.pair_pos, self.pair_mask)
        self._token_baselines = pairs.baselines(profile.mics)
        # Up to 8 mics the SRP scan sums the same pairs over the same band: its window sums are the
        # sums of the token groups' cross-spectra, computed once.
        # (not with a noise model: the scan's sums are then the cleaned ones, noise/whiten.py)
        self._shares_sums = (np.array_equal(self.scan.pair_i, pairs.pair_i)
                             and np.array_equal(self.scan.pair_j, pairs.pair_j) and self.projector.span == layout.band
                             and noise is None)
        # Lag lookups of the scan (the grid first) and of the embedding's fixed directions, once.
        self._scan_lookup = self._lookup(self.scan.points)
        self._embed_lookup = self._lookup(canonical_directions(EMBED_DIRS))
        self._scale = model.score_scale
        self._bias = model.score_bias

    @classmethod
    def from_weights(cls, profile: ArrayProfile, layout: FrameLayout, config: LocalizerConfig,
                     path: Path | None = None, mode: str = "fused", noise=None) -> "NeuralLocalizer":
        """The estimator with the weights at ``path`` (None: the shipped model), run from their graph
        (:func:`graphs.load_graph`)."""
        if path is None:
            path = WEIGHTS_PATH
            if not path.is_file():
                raise UserError(f"neural weights not found at {path}; use --estimator srp-phat or train them "
                                "with `arraydaemon train`")
        elif not path.is_file():
            raise UserError(f"{path}: neural weights not found")
        return cls(profile, layout, config, load_graph(path), mode, noise)

    def reset(self) -> None:
        self.decay.reset()
        self.integral.reset()
        self.further.reset()
        self.learned_average.reset()

    # -- the model

    def run_model(self, window: FeatureWindow) -> tuple[dict, np.ndarray]:
        """Model outputs for one window as numpy — clean [shape=(P, N_LAGS)], weight [shape=(P,)],
        activity, embedding, scaled — and the token pairs' group cross-spectra [shape=(GROUPS, P, bins)]."""
        cross = group_cross(window.spectra, self.token_pairs, self.projector.span)
        tokens = model_tokens(self.model.args.input, window, cross, self.projector, self.token_pairs)
        out = self._forward(np.ascontiguousarray(tokens[None], dtype=np.float32))
        # The head's weighted mean over pairs as a plain mean of weight-scaled GCCs (kernels.srp_interp).
        w = out["weight"]
        out["scaled"] = np.ascontiguousarray(out["clean"] * (w * (len(w) / max(float(w.sum()), 1e-6)))[:, None],
                                             dtype=np.float32)
        return out, cross

    def _lookup(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lag-table lookup (:func:`kernels.lag_lookup`) of the token pairs' delays for ``vectors``."""
        delays = grids.pair_delays(vectors, self._token_baselines, self.profile.speed_of_sound)
        return kernels.lag_lookup(delays / LAG_STEP_S + MAX_LAG, N_LAGS)

    def score(self, out: dict, vectors: np.ndarray) -> np.ndarray:
        """The model's spatial spectrum ``[shape=(n,)]`` at ``vectors [shape=(n, 3)]``."""
        return self._score_lookup(out, self._lookup(vectors))

    def _score_lookup(self, out: dict, lookup: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Sigmoid spatial spectrum ``[shape=(D,)]`` of the directions of ``lookup``: the numba twin of
        :func:`model.srp_scores` (torch call overhead dominates at one window; tests check they agree)."""
        score = kernels.srp_interp(out["scaled"], *lookup)
        return 1.0 / (1.0 + np.exp(-(self._scale * score + self._bias)))

    def spatial_embedding(self, out: dict) -> np.ndarray:
        """The published embedding, ``[shape=(EMBED_DIRS + embed_dim,)]`` float32, unit length.

        Disentangled: the first ``EMBED_DIRS`` values are the spatial spectrum on fixed directions
        (:func:`canonical_directions`, array frame), so they mean the same on every array; the rest
        is the encoder's pooled representation (trained to decode the spectrum and activity).
        Weights √0.75 and √0.25 make direction dominate the cosine similarity.
        """
        direction = self._score_lookup(out, self._embed_lookup)
        direction = direction / max(float(np.linalg.norm(direction)), 1e-6)
        learned = out["embedding"] / max(float(np.linalg.norm(out["embedding"])), 1e-6)
        return np.concatenate([math.sqrt(0.75) * direction, math.sqrt(0.25) * learned]).astype(np.float32)

    # -- the stage

    def analyse(self, window: FeatureWindow) -> NeuralAnalysis:
        """Runs the model and updates the integrals with ``window`` (call once per window, in order)."""
        out, cross = self.run_model(window)
        activity = float(1.0 / (1.0 + np.exp(-float(out["activity"]))))
        decay = self.decay.step(window.t_end)
        # The scan starts with the grid.
        window_learned = self._score_lookup(out, self._scan_lookup)
        every_bin = cross.sum(axis=0) if self._shares_sums else self.scan.pair_sum(window.spectra)
        window_sums = every_bin if window.evidence is None else self.scan.pair_sum(window.spectra, window.evidence)
        learned = self.learned_average.add(window_learned, activity, decay)
        sums = self.integral.add(every_bin, decay)
        return NeuralAnalysis(out, activity, learned, sums, window_learned, window_sums)

    def sources(self, window: FeatureWindow, analysis: NeuralAnalysis, alone: bool = False) -> list[SourceDirection]:
        """The window's sources: none when it is too quiet or the model calls it inactive. ``alone``:
        from this window's spectra only, without the integrals (what the tracker measures)."""
        if window.level_db < self.config.min_level_db or analysis.activity < self.activity_threshold:
            return []
        if alone:
            analysis = replace(analysis, learned=analysis.window_learned, sums=analysis.window_sums)
        if self.mode == "head":
            return self.head_sources(analysis)
        return self.fused_sources(analysis, window)

    def process(self, window: FeatureWindow) -> Estimate:
        analysis = self.analyse(window)
        if self.mode == "head" or (self.config.integration_s <= 0 and window.evidence is None):
            sources, detections = self.sources(window, analysis), None
        else:
            # The tracker measures the window alone (the integrals lag a walking talker, and it
            # smooths by itself); the published first source is the integrals', the further ones the
            # window's (one masked search serves both).
            alone = self.sources(window, analysis, alone=True)
            first = self.fused_sources(analysis, None) if alone else []
            sources = self.further.after_first(first[0], alone) if first else []
            detections = tuple(alone if not alone or self._evidence_supports(analysis, alone[0]) else alone[1:])
        return Estimate.of_window(window, self.name, sources, analysis.learned[:len(self.grid)],
                                  embedding=self.spatial_embedding(analysis.out),
                                  extras={"activity": analysis.activity, "model": self.model_name,
                                          "room_dry": self.further.room.dryness()},
                                  detections=detections)

    def _evidence_supports(self, analysis: NeuralAnalysis, source: SourceDirection) -> bool:
        """Whether the SRP of the window's evidence cells reaches ``min_confidence`` at ``source``.

        A first source that passed SRP-PHAT's gates does by construction. One placed by the model
        (the peak of its spectrum times SRP, where the gates fail) may not: the model sees every cell,
        so a fan whose cells are not evidence (``stages/noise_field.py``) still peaks its spectrum.
        Such a source is published (the model's activity decision is what it adds on one talker) but
        not given to the tracker, which would keep a track on the fan."""
        gcc, _ = analysis.lags(self.scan, analysis.window_sums)
        return float(self.scan.exact(gcc, np.asarray(source.vector)[None])[0]) >= self.config.min_confidence

    def head_sources(self, analysis: NeuralAnalysis) -> list[SourceDirection]:
        """Sources from the model's own spatial spectrum over the scan, refined on it. The scan, not
        just the grid: on a planar array's azimuth ring an elevated source's delays match no
        direction, so its peak lies off the ring."""
        cfg, points, learned = self.config, self.scan.points, analysis.learned
        peaks = pick_peaks(learned, points, cfg.max_sources, cfg.min_separation_deg,
                           self.peak_threshold, cfg.relative_threshold)
        peaks = peaks[:1] + [i for i in peaks[1:] if learned[i] >= self.secondary_threshold]
        return [source_direction(*self.refiner.score(lambda v: self.score(analysis.out, v), points[i]))
                for i in peaks]

    def fused_sources(self, analysis: NeuralAnalysis, window: FeatureWindow | None = None) -> list[SourceDirection]:
        """Sources where the model's spectrum and SRP-PHAT agree, refined on the exact SRP of the
        (integrated) pair cross-spectra (sub-degree precision in dry rooms) and reported with the
        model's confidence there. The first is SRP-PHAT's own peak when it passes SRP-PHAT's gates
        (it is then right ~9 times in 10 on validation scenes), else the peak of the product of both
        spectra over the scan points. Further sources come from the masked SRP search of ``window``
        (``further.py``; none when ``window`` is None, nor where the model's spectrum stays below
        ``further_threshold`` away from the first), as SRP-PHAT's do: on the multi-talker
        development scenes it finds more talkers with fewer ghosts than the product's further peaks
        (coverage 73 % → 76 %, ghost track reports 19 % → 13 %)."""
        cfg, scan, learned = self.config, self.scan, analysis.learned
        gcc, lags = analysis.lags(scan, analysis.sums)
        srp = scan.scan(lags)
        clear = scan.gated_peak(srp, cfg)
        if clear is not None:
            peaks = [clear]
        else:  # the product, only where SRP-PHAT's own peak does not pass its gates
            fused = learned * np.clip(srp, 0.0, None)
            peaks = pick_peaks(fused, scan.points, 1, cfg.min_separation_deg, 1e-6, cfg.relative_threshold)
        if not peaks:
            return []
        vec, value = self.refiner.exact(gcc, scan.points[peaks[0]])
        sources = [source_direction(vec, float(self.score(analysis.out, vec[None])[0]))]
        if cfg.max_sources > 1 and window is not None:
            if self._more_possible(analysis.learned, vec):
                sources += self.further.search(window, vec, value)
            else:
                self.further.first_only(value)
        return sources

    def _more_possible(self, learned: np.ndarray, first: np.ndarray) -> bool:
        """Whether the model's spectrum ``learned [shape=(scan,)]`` reaches ``further_threshold``
        anywhere ``min_separation_deg`` or more from ``first``: where it does not, the masked search
        for further sources is skipped."""
        if self.further_threshold <= 0:
            return True
        far = self.scan.separation_cos_to_points(first) < math.cos(math.radians(self.config.min_separation_deg))
        return bool(np.any(learned[far] >= self.further_threshold))

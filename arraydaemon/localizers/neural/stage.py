"""The neural localizer: a geometry-agnostic causal transformer over GCC-PHAT tokens.

Model (see ``arraydaemon/data/MODEL_CARD.md``):

- tokens are (time group, mic pair) GCC-PHAT lag vectors over every pair of (up to 8) mics
  (``neural_features``), each carrying the pair's relative position ``r_j - r_i`` through a
  sinusoidal encoding, so any registered array works without retraining and mic order does not
  matter;
- a transformer encoder with a causal mask over time groups (a token sees its own and earlier
  groups only);
- a physically grounded direction head: from the last group, each pair outputs a cleaned GCC over
  ±1 ms and a weight; a differentiable SRP over whatever direction grid is given at run time turns
  them into a spatial spectrum (sigmoid), whose peaks are the sources;
- an activity output and a pooled spatial embedding (published on the ``embedding`` topic).

Weights ship as safetensors with the model arguments stored beside them (JSON metadata); nothing
is unpickled.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from arraydaemon.core import grids, kernels
from arraydaemon.core.errors import UserError
from arraydaemon.stages.features import FrameLayout
from arraydaemon.localizers.srp_phat import LocalizerConfig, SrpPhatLocalizer, make_source, pair_delays, pick_peaks
from arraydaemon.core.messages import Estimate, FeatureWindow
from arraydaemon.localizers.neural.tokens import (GROUPS, INPUT_FEATURES, LAG_STEP_S, MAX_LAG, N_LAGS, LagProjector, TokenPairs,
                              group_cross, model_tokens)
from arraydaemon.core.profiles import ArrayProfile

from arraydaemon.core.paths import SHIPPED_WEIGHTS as WEIGHTS_PATH
MODEL_NAME = "arraydaemon-spatial-transformer"
EMBED_DIRS = 48  # fixed directions of the embedding's direction part


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


def set_threads(n: int = 1) -> None:
    """Pin torch and numpy's BLAS to ``n`` threads: two OpenMP threads on a busy 2-core machine run
    far slower, and OpenBLAS, left alone, split the estimator's small products over both cores (the
    live 8-channel neural daemon: 116 % CPU, 19 % once limited, at the same latency; README "Latency")."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    threadpool_limits(limits=n, user_api="blas")  # lasts for the process (not used as a context)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set once in this process


def position_encoding(xyz: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """Sinusoidal encoding of positions ``[shape=(..., 3)]`` metres → ``[shape=(..., 6 * n_freqs)]``.

    Wavelengths are log-spaced from 1 m down to 1 cm, the scale of array apertures and spacings.
    """
    wavelengths = torch.logspace(0.0, -2.0, n_freqs, device=xyz.device, dtype=xyz.dtype)
    phase = xyz[..., None] * (2 * math.pi / wavelengths)  # (..., 3, F)
    return torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1).flatten(-2)


def srp_scores(clean: torch.Tensor, weight: torch.Tensor, tdoa: torch.Tensor, pair_mask: torch.Tensor) -> torch.Tensor:
    """Differentiable SRP of cleaned GCCs over directions.

    ``clean [shape=(B, P, N_LAGS)]``, ``weight [shape=(B, P)]``, ``tdoa [shape=(B, D, P)]`` seconds,
    ``pair_mask [shape=(B, P)]`` True for real pairs → ``[shape=(B, D)]`` weighted mean of each
    pair's GCC linearly interpolated at the direction's TDOA.
    """
    pos = (tdoa / LAG_STEP_S + MAX_LAG).clamp(0.0, N_LAGS - 1.000001)
    lo = pos.floor()
    frac = pos - lo
    lo = lo.long()
    src = clean[:, None, :, :].expand(-1, pos.shape[1], -1, -1)  # (B, D, P, L)
    v0 = torch.gather(src, 3, lo[..., None])[..., 0]
    v1 = torch.gather(src, 3, (lo + 1)[..., None])[..., 0]
    value = v0 + frac * (v1 - v0)
    w = weight * pair_mask
    return (value * w[:, None, :]).sum(-1) / w.sum(-1, keepdim=True).clamp_min(1e-6)


def group_causal_attention(attn: nn.MultiheadAttention, h: torch.Tensor, n_pairs: int, first_group: int,
                           keys: torch.Tensor | None) -> torch.Tensor:
    """``attn``'s self-attention over ``h [shape=(B, G * P, d)]`` (group-major tokens) for the
    queries of groups ``first_group``..G-1, each attending to its own and the earlier groups' tokens:
    ``[shape=(B, (G - first_group) * P, d)]``. ``keys [shape=(B, G * P)]``: True for real tokens
    (None: all). The same as ``attn`` with the causal mask of ``SpatialTransformer.causal_mask``."""
    b, n, d = h.shape
    heads = attn.num_heads
    qkv = nn.functional.linear(h, attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = qkv.view(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4).unbind(0)  # (B, heads, N, d/heads)
    out = []
    for group in range(first_group, n // n_pairs):
        start, end = group * n_pairs, (group + 1) * n_pairs
        mask = None if keys is None else keys[:, None, None, :end]
        out.append(nn.functional.scaled_dot_product_attention(q[:, :, start:end], k[:, :, :end], v[:, :, :end],
                                                              attn_mask=mask))
    return attn.out_proj(torch.cat(out, dim=2).transpose(1, 2).reshape(b, -1, d))


class SpatialTransformer(nn.Module):
    """tokens ``[shape=(B, G, P, F)]`` + the pairs' mic positions ``[shape=(B, P, 2, 3)]`` → cleaned
    GCC per pair, pair weights, activity logit and spatial embedding."""

    def __init__(self, args: ModelArgs = ModelArgs()):
        super().__init__()
        self.args = args
        d = args.d_model
        pos_dim = 6 * args.pos_freqs * (1 if args.position == "relative" else 2)
        self.token_in = nn.Sequential(nn.Linear(args.token_features, d), nn.GELU(), nn.Linear(d, d))
        self.pos_in = nn.Linear(pos_dim, d)
        self.group_embedding = nn.Parameter(torch.zeros(args.groups, d))
        layer = nn.TransformerEncoderLayer(d, args.heads, args.ff, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, args.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.clean_head = nn.Linear(d, N_LAGS)
        self.weight_head = nn.Linear(d, 1)
        self.activity_head = nn.Linear(d, 1)
        self.embed_head = nn.Linear(d, args.embed_dim)
        self.embed_decoder = nn.Linear(args.embed_dim, args.canonical_dirs)  # training-time only
        self.score_scale = nn.Parameter(torch.tensor(8.0))
        self.score_bias = nn.Parameter(torch.tensor(-4.0))

    def encode_positions(self, pair_pos: torch.Tensor) -> torch.Tensor:
        if self.args.position == "relative":
            return position_encoding(pair_pos[..., 1, :] - pair_pos[..., 0, :], self.args.pos_freqs)
        # Ablation: the absolute positions of the pair's two mics instead of their difference.
        return torch.cat([position_encoding(pair_pos[..., 0, :], self.args.pos_freqs),
                          position_encoding(pair_pos[..., 1, :], self.args.pos_freqs)], dim=-1)

    def causal_mask(self, n_pairs: int, device) -> torch.Tensor:
        """True where attention is *not* allowed: to tokens of later time groups."""
        group = torch.arange(self.args.groups, device=device).repeat_interleave(n_pairs)
        return group[None, :] > group[:, None]

    def _embed_tokens(self, tokens: torch.Tensor, pair_pos: torch.Tensor, pair_mask: torch.Tensor):
        """Input embeddings ``[shape=(B, G * P, d)]`` (group-major) and the key padding mask."""
        b, g, p, _ = tokens.shape
        x = self.token_in(tokens)
        x = x + self.pos_in(self.encode_positions(pair_pos))[:, None]
        x = x + self.group_embedding[None, :, None, :]
        padding = (~pair_mask)[:, None, :].expand(b, g, p).reshape(b, g * p)
        return x.reshape(b, g * p, -1), padding

    def encode(self, tokens: torch.Tensor, pair_pos: torch.Tensor, pair_mask: torch.Tensor) -> torch.Tensor:
        """Token representations ``[shape=(B, G, P, d)]``; group g depends on groups ≤ g only."""
        b, g, p, _ = tokens.shape
        x, padding = self._embed_tokens(tokens, pair_pos, pair_mask)
        x = self.encoder(x, mask=self.causal_mask(p, x.device), src_key_padding_mask=padding)
        return x.reshape(b, g, p, -1)

    def encode_newest(self, tokens: torch.Tensor, pair_pos: torch.Tensor, pair_mask: torch.Tensor) -> torch.Tensor:
        """``encode(...)[:, -1]`` ``[shape=(B, P, d)]``, computed faster: the causal mask becomes
        separate attention calls, group g's queries against the keys of groups 0..g (no masked
        softmax, the slowest operation at these sizes: forward 5.4 → 4.3 ms at 8 mics), and the last
        block runs for the newest group only, since nothing reads the older groups' outputs (tested
        equal)."""
        b, g, p, _ = tokens.shape
        x, padding = self._embed_tokens(tokens, pair_pos, pair_mask)
        # Keys to attend to, for arrays padded to a batch's largest; None when all pairs are real
        # (always at run time, where the trace fixes this branch for the array).
        keys = None if bool(pair_mask.all()) else ~padding
        *layers, last = self.encoder.layers
        for layer in layers:
            x = x + group_causal_attention(layer.self_attn, layer.norm1(x), p, 0, keys)
            x = x + layer.linear2(layer.activation(layer.linear1(layer.norm2(x))))
        q = x[:, -p:] + group_causal_attention(last.self_attn, last.norm1(x), p, g - 1, keys)
        return q + last.linear2(last.activation(last.linear1(last.norm2(q))))

    def forward(self, tokens: torch.Tensor, pair_pos: torch.Tensor, pair_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        last = self.norm(self.encode_newest(tokens, pair_pos, pair_mask))
        m = pair_mask[..., None].to(last.dtype)
        pooled = (last * m).sum(1) / m.sum(1).clamp_min(1.0)
        return {
            "clean": torch.tanh(self.clean_head(last)),
            "weight": nn.functional.softplus(self.weight_head(last))[..., 0] + 1e-3,
            "activity": self.activity_head(pooled)[..., 0],
            "embedding": nn.functional.normalize(self.embed_head(pooled), dim=-1),
        }

    def spectrum_logits(self, out: dict, tdoa: torch.Tensor, pair_mask: torch.Tensor) -> torch.Tensor:
        """Spatial-spectrum logits ``[shape=(B, D)]`` for directions with ``tdoa [shape=(B, D, P)]``."""
        return self.score_scale * srp_scores(out["clean"], out["weight"], tdoa, pair_mask) + self.score_bias


# ----------------------------------------------------------------------------------------------
# Weights


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


# ----------------------------------------------------------------------------------------------
# The stage


class NeuralLocalizer(SrpPhatLocalizer):
    """Stage: FeatureWindow → Estimate, with the transformer's spatial spectrum over the run-time grid.

    Shares grid, peak picking and sub-grid refinement with SRP-PHAT; only the scoring differs.
    """

    name = "neural"
    # Calibrated on training-split scenes (see the model card): the activity head decides whether
    # anything is active; soft direction labels keep uncertain peaks low, so the first peak only
    # needs to stand out a little, while further sources must be clear peaks of their own.
    activity_threshold = 0.5
    peak_threshold = 0.1
    secondary_threshold = 0.3
    fuse_srp = True  # False: peaks of the model's spectrum alone (reported as "neural head" in the card)

    def __init__(self, profile: ArrayProfile, layout: FrameLayout, config: LocalizerConfig,
                 model: SpatialTransformer, model_name: str = MODEL_NAME):
        super().__init__(profile, layout, config)
        set_threads(1)
        self.model = model
        self.model_name = model_name
        self.projector = LagProjector.for_layout(layout)
        self.token_pairs = pairs = TokenPairs.for_array(profile.mics, profile.reference_mic)
        self._nn_pair_pos = torch.from_numpy(pairs.positions(profile.mics)).float()[None]
        self._nn_pair_mask = torch.ones(1, len(pairs), dtype=torch.bool)
        self._nn_forward = traced_forward(model, self._nn_pair_pos, self._nn_pair_mask)
        self._nn_baselines = pairs.baselines(profile.mics)
        # Up to 8 mics SRP-PHAT sums the same pairs over the same band: its window sums are the sums
        # of the token groups' cross-spectra, computed once.
        self._nn_shares_sums = (np.array_equal(self._pair_i, pairs.pair_i) and np.array_equal(self._pair_j, pairs.pair_j)
                                and self.projector.span == layout.band)
        # Lag lookups of the scan (the grid first) and of the embedding's fixed directions, once.
        self._nn_scan_lookup = self._nn_lookup(self._scan)
        self._nn_embed_lookup = self._nn_lookup(canonical_directions(EMBED_DIRS))
        self._scale = float(model.score_scale.detach())
        self._bias = float(model.score_bias.detach())

    @classmethod
    def from_shipped(cls, profile: ArrayProfile, layout: FrameLayout, config: LocalizerConfig,
                     path: Path | None = None) -> "NeuralLocalizer":
        if path is None:
            path = WEIGHTS_PATH
            if not path.is_file():
                raise UserError(f"neural weights not found at {path}; use --estimator srp-phat or train them "
                                "with `arraydaemon train`")
        elif not path.is_file():
            raise UserError(f"{path}: neural weights not found")
        model, meta = load_model(path)
        name = meta.get("model_name", MODEL_NAME)
        if "train_steps" in meta:
            name += f"@{meta['train_steps']}"
        return cls(profile, layout, config, model, name)

    def _run(self, window: FeatureWindow) -> tuple[dict, np.ndarray]:
        """Model outputs for one window as numpy — clean [shape=(P, N_LAGS)], weight [shape=(P,)],
        activity, embedding — and the token pairs' group cross-spectra [shape=(GROUPS, P, bins)]."""
        cross = group_cross(window.spectra, self.token_pairs, self.projector.span)
        tokens = model_tokens(self.model.args.input, window, cross, self.projector, self.token_pairs)
        with torch.inference_mode():
            out = self._nn_forward(torch.from_numpy(tokens)[None], self._nn_pair_pos, self._nn_pair_mask)
        out = {k: v[0].numpy() for k, v in out.items()}
        # The head's weighted mean over pairs as a plain mean of weight-scaled GCCs (kernels.srp_interp).
        w = out["weight"]
        out["scaled"] = np.ascontiguousarray(out["clean"] * (w * (len(w) / max(float(w.sum()), 1e-6)))[:, None],
                                             dtype=np.float32)
        return out, cross

    def spatial_embedding(self, out: dict) -> np.ndarray:
        """The published embedding, ``[shape=(EMBED_DIRS + embed_dim,)]`` float32, unit length.

        Disentangled: the first ``EMBED_DIRS`` values are the spatial spectrum on fixed directions
        (:func:`canonical_directions`, array frame), so they mean the same on every array; the rest
        is the encoder's pooled representation (trained to decode the spectrum and activity).
        Weights √0.75 and √0.25 make direction dominate the cosine similarity.
        """
        direction = self._score_lookup(out, self._nn_embed_lookup)
        direction = direction / max(float(np.linalg.norm(direction)), 1e-6)
        learned = out["embedding"] / max(float(np.linalg.norm(out["embedding"])), 1e-6)
        return np.concatenate([math.sqrt(0.75) * direction, math.sqrt(0.25) * learned]).astype(np.float32)

    def _nn_lookup(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lag-table lookup (:func:`kernels.lag_lookup`) of the token pairs' delays for ``vectors``."""
        delays = pair_delays(vectors, self._nn_baselines, self.profile.speed_of_sound)
        return kernels.lag_lookup(delays / LAG_STEP_S + MAX_LAG, N_LAGS)

    def _score(self, out: dict, vectors: np.ndarray) -> np.ndarray:
        return self._score_lookup(out, self._nn_lookup(vectors))

    def _score_lookup(self, out: dict, lookup: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Sigmoid spatial spectrum ``[shape=(D,)]`` of the directions of ``lookup``: the numba twin of
        :func:`srp_scores` (torch call overhead dominates at one window; tests check they agree)."""
        score = kernels.srp_interp(out["scaled"], *lookup)
        return 1.0 / (1.0 + np.exp(-(self._scale * score + self._bias)))

    def reset(self) -> None:
        super().reset()
        self._learned_sum: np.ndarray | None = None
        self._learned_weight = 0.0

    def _integrate_learned(self, learned: np.ndarray, activity: float, decay: float) -> np.ndarray:
        """The model's spectrum over the scan ``learned [shape=(scan,)]`` averaged with the earlier
        windows' (decayed by ``decay``), each weighted by its activity probability."""
        if self.config.integration_s <= 0.0:
            return learned
        if decay > 0.0 and self._learned_sum is not None:
            self._learned_sum = decay * self._learned_sum + activity * learned
            self._learned_weight = decay * self._learned_weight + activity
        else:
            self._learned_sum, self._learned_weight = activity * learned, activity
        if self._learned_weight < 1e-3:  # nothing active lately: this window's spectrum as it is
            return learned
        return self._learned_sum / self._learned_weight

    def process(self, window: FeatureWindow) -> Estimate:
        cfg = self.config
        out, cross = self._run(window)
        activity = float(1.0 / (1.0 + np.exp(-float(out["activity"]))))
        decay = self._decay(window)
        # The scan starts with the grid.
        learned = self._integrate_learned(self._score_lookup(out, self._nn_scan_lookup), activity, decay)
        sums = self._integrate(cross.sum(axis=0) if self._nn_shares_sums else self._pair_sum(window), decay)
        spectrum = learned[:len(self.grid)]
        sources = []
        if window.level_db >= cfg.min_level_db and activity >= self.activity_threshold:
            sources = (self._fused_sources(out, sums, learned) if self.fuse_srp
                       else self._head_sources(out, learned))
        return Estimate.of_window(window, self.name, sources, spectrum, embedding=self.spatial_embedding(out),
                                  extras={"activity": activity, "model": self.model_name})

    def _head_sources(self, out: dict, learned: np.ndarray) -> list:
        """Sources from the model's own spatial spectrum over the scan ``learned [shape=(scan,)]``,
        refined on it (``fuse_srp = False``). The scan, not just the grid: on a planar array's
        azimuth ring an elevated source's delays match no direction, so its peak lies off the ring."""
        cfg = self.config
        peaks = pick_peaks(learned, self._scan, cfg.max_sources, cfg.min_separation_deg,
                           self.peak_threshold, cfg.relative_threshold)
        peaks = peaks[:1] + [i for i in peaks[1:] if learned[i] >= self.secondary_threshold]
        return [make_source(*self.refine_with(lambda v: self._score(out, v), self._scan[i])) for i in peaks]

    def _fused_sources(self, out: dict, sums: np.ndarray, learned: np.ndarray) -> list:
        """Sources where the model's spectrum and SRP-PHAT agree, refined on the exact SRP of the
        (integrated) pair cross-spectra ``sums [shape=(pairs, bins)]`` (sub-degree precision in dry
        rooms) and reported with the model's confidence there. The first is SRP-PHAT's own peak when
        it passes SRP-PHAT's gates (it is then right ~9 times in 10 on validation scenes), else the
        peak of the product of both spectra over the scan directions; further sources are peaks of
        the product. The model decides activity, how many sources and, where the physics is
        ambiguous, which lobe; the physics places them."""
        cfg = self.config
        gcc, lags = self._lags(sums)
        srp = kernels.srp_interp(lags, *self._scan_lookup)
        fused = learned * np.clip(srp, 0.0, None)
        peaks = pick_peaks(fused, self._scan, cfg.max_sources, cfg.min_separation_deg, 1e-6, cfg.relative_threshold)
        clear = self._gated_peak(srp)
        if clear is not None:
            near = self._scan_separation_cos(self._scan[clear]) >= math.cos(math.radians(cfg.min_separation_deg))
            peaks = [clear] + [i for i in peaks if not near[i]]
        peaks = peaks[:1] + [i for i in peaks[1:] if learned[i] >= self.secondary_threshold]
        sources = []
        for idx in peaks[:cfg.max_sources]:
            vec, _ = self._refine(gcc, self._scan[idx])
            sources.append(make_source(vec, float(self._score(out, vec[None])[0])))
        return sources


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


def canonical_directions(n: int) -> np.ndarray:
    """Fixed directions ``[shape=(n, 3)]`` the embedding decoder predicts the spectrum on."""
    return grids.fibonacci_sphere(n)

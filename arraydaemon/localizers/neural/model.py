"""The neural localizer's model: a geometry-agnostic causal transformer over GCC-PHAT tokens.

Model (see ``arraydaemon/data/MODEL_CARD.md``):

- tokens are (time group, mic pair) GCC-PHAT lag vectors over every pair of (up to 8) mics
  (``tokens.py``), each carrying the pair's relative position ``r_j - r_i`` through a
  sinusoidal encoding, so any registered array works without retraining and mic order does not
  matter;
- a transformer encoder with a causal mask over time groups (a token sees its own and earlier
  groups only);
- a physically grounded direction head: from the last group, each pair outputs a cleaned GCC over
  ±1 ms and a weight; a differentiable SRP over whatever direction grid is given at run time turns
  them into a spatial spectrum (sigmoid), whose peaks are the sources;
- an activity output and a pooled spatial embedding (published on the ``embedding`` topic).

Weights ship as safetensors with the model arguments stored beside them (JSON metadata); nothing
is unpickled. The daemon runs the forward's exported graph (``export.py``, ``runtime.py``) without torch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from arraydaemon.localizers.neural.args import ModelArgs, canonical_directions
from arraydaemon.localizers.neural.tokens import LAG_STEP_S, MAX_LAG, N_LAGS

__all__ = ["ModelArgs", "SpatialTransformer", "canonical_directions", "position_encoding", "srp_scores"]


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

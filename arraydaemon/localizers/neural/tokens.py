"""Inputs of the neural localizer, computed from a FeatureWindow by the daemon's numba kernels.

Tokens are (time group, mic pair): the window's STFT frames are split into ``GROUPS`` consecutive
groups, and for each group and each pair of (up to ``MAX_TOKEN_MICS``) mics the GCC-PHAT is
evaluated at fixed *time* lags (±1 ms in 31.25 µs steps) in two frequency bands. Every pair, not
only the pairs with the reference mic: the cross-spectrum of two non-reference mics cannot be
recovered from their (frame-averaged, PHAT-weighted) spectra against the reference, and SRP-PHAT
gains most of its reverberation robustness from those pairs. Lags in seconds rather than samples make
the features independent of the array's sample rate, so one model serves 16 and 48 kHz arrays.
Live inference and training data generation both build them with :func:`group_cross`
and :func:`tokens_from_cross`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from arraydaemon.core import kernels
from arraydaemon.core.messages import FeatureWindow
from arraydaemon.stages.features import FrameLayout

LAG_STEP_S = 1.0 / 32000.0
MAX_LAG = 32  # ±1 ms: pairs up to 34 cm apart
N_LAGS = 2 * MAX_LAG + 1
GROUPS = 3
BANDS_HZ = ((200.0, 2000.0), (2000.0, 7000.0))
TOKEN_FEATURES = len(BANDS_HZ) * N_LAGS
LAG_TIMES = np.arange(-MAX_LAG, MAX_LAG + 1) * LAG_STEP_S
MAX_TOKEN_MICS = 8  # larger arrays: a spread-out subset (all its pairs: at most 28 per group)
MAX_PAIRS = MAX_TOKEN_MICS * (MAX_TOKEN_MICS - 1) // 2
PHASE_BINS = 64  # raw-phase ablation input: bins per mic (see :func:`window_phases`)
# Model inputs: the pairs' GCC-PHAT; plus their energy-weighted GCC; or both mics' raw STFT phase.
INPUT_FEATURES = {"gcc": TOKEN_FEATURES, "gcc+energy": 2 * TOKEN_FEATURES, "phase": 4 * PHASE_BINS}


@dataclass(frozen=True, eq=False)
class LagProjector:
    """Maps GCC-PHAT spectra to band-limited GCC at ``LAG_TIMES`` (one matrix per band)."""

    bands: tuple[tuple[int, int], ...]
    matrices: tuple[np.ndarray, ...]  # each [shape=(2 * band bins, N_LAGS)] float32: [cos; -sin]

    @classmethod
    def for_layout(cls, layout: FrameLayout) -> "LagProjector":
        freqs = np.arange(layout.bins) * layout.bin_hz
        bands, mats = [], []
        for lo_hz, hi_hz in BANDS_HZ:
            hi_hz = min(hi_hz, 0.5 * layout.sample_rate)
            # [lo, hi) except the top band, which includes its edge like FrameLayout's band does
            top = hi_hz if hi_hz < BANDS_HZ[-1][1] else hi_hz + 1e-6
            idx = np.nonzero((freqs >= lo_hz) & (freqs < top))[0]
            lo, hi = int(idx[0]), int(idx[-1]) + 1
            # gcc(tau) = mean_k Re(G_k exp(j 2π f_k tau)): the same steering sign as srp_phat.
            # Re(G e^{jφ}) = G.re cos φ - G.im sin φ: one real matmul on stacked [re, im].
            phase = 2 * np.pi * freqs[lo:hi, None] * LAG_TIMES[None, :]
            mat = np.concatenate([np.cos(phase), -np.sin(phase)]) / (hi - lo)
            bands.append((lo, hi))
            mats.append(mat.astype(np.float32))
        return cls(tuple(bands), tuple(mats))

    @property
    def span(self) -> tuple[int, int]:
        """Bins ``[lo, hi)`` covering every band (the default feature band: SRP-PHAT's sums are shared)."""
        return self.bands[0][0], self.bands[-1][1]

    def __call__(self, gcc: np.ndarray) -> np.ndarray:
        """``gcc [shape=(..., pairs, bins)]`` → ``[shape=(..., pairs, bands * N_LAGS)]`` float32."""
        parts = [np.concatenate([gcc[..., lo:hi].real, gcc[..., lo:hi].imag], axis=-1) @ mat
                 for (lo, hi), mat in zip(self.bands, self.matrices)]
        return np.concatenate(parts, axis=-1).astype(np.float32, copy=False)


@dataclass(frozen=True, eq=False)
class TokenPairs:
    """The mic pairs an array's tokens are made of: ``pair_i``, ``pair_j`` ``[shape=(P,)]`` indices."""

    mics: np.ndarray  # [shape=(M,)] the token mics, M ≤ MAX_TOKEN_MICS, ascending
    pair_i: np.ndarray
    pair_j: np.ndarray

    @classmethod
    def for_array(cls, positions: np.ndarray, ref: int) -> "TokenPairs":
        """All pairs of the array's mics ``positions [shape=(mics, 3)]`` if there are at most
        ``MAX_TOKEN_MICS``; otherwise of a spread-out subset: farthest-point sampling from the
        reference mic, which keeps the aperture (resolution) and a mix of short and long baselines."""
        mics = np.arange(len(positions))
        if len(mics) > MAX_TOKEN_MICS:
            chosen = [ref]
            dist = np.linalg.norm(positions - positions[ref], axis=1)
            while len(chosen) < MAX_TOKEN_MICS:
                chosen.append(int(np.argmax(dist)))
                dist = np.minimum(dist, np.linalg.norm(positions - positions[chosen[-1]], axis=1))
            mics = np.sort(np.array(chosen))
        pairs = np.array(list(itertools.combinations(mics, 2)), dtype=np.intp).reshape(-1, 2)
        return cls(mics, pairs[:, 0].copy(), pairs[:, 1].copy())

    def __len__(self) -> int:
        return len(self.pair_i)

    @property
    def slots(self) -> np.ndarray:
        """Each pair's two mics as positions in ``mics`` (rows of :func:`window_phases`), ``[shape=(P, 2)]``."""
        return np.stack([np.searchsorted(self.mics, self.pair_i), np.searchsorted(self.mics, self.pair_j)], axis=1)

    def positions(self, mics: np.ndarray) -> np.ndarray:
        """Both mics' positions per pair, ``[shape=(P, 2, 3)]``."""
        return np.stack([mics[self.pair_i], mics[self.pair_j]], axis=1)

    def baselines(self, mics: np.ndarray) -> np.ndarray:
        """``r_j - r_i`` per pair, ``[shape=(P, 3)]`` metres."""
        return mics[self.pair_j] - mics[self.pair_i]


def group_edges(frames: int, groups: int = GROUPS) -> np.ndarray:
    """Frame boundaries of the time groups, ``[shape=(groups + 1,)]`` (oldest group first)."""
    return np.linspace(0, frames, groups + 1).round().astype(int)


def group_cross(spectra: np.ndarray, pairs: TokenPairs, band: tuple[int, int], groups: int = GROUPS) -> np.ndarray:
    """Pair cross-spectra ``X_j conj(X_i)`` summed within each time group, ``[shape=(groups, P, bins)]``
    complex64 (0 outside ``band``), from the window's STFT frames ``spectra [shape=(frames, mics, bins)]``."""
    edges = group_edges(spectra.shape[0], groups)
    keep = np.ones((int(np.max(np.diff(edges))), spectra.shape[2]), dtype=bool)  # every cell
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        out.append(kernels.masked_pair_sum(spectra[a:b], pairs.pair_i, pairs.pair_j, keep[:b - a], band))
    return np.stack(out)


def _phat(cross: np.ndarray) -> np.ndarray:
    """:func:`kernels.gcc_phat` of every row of ``cross [shape=(..., bins)]`` in one call (it works row by row)."""
    return kernels.gcc_phat(cross.reshape(-1, cross.shape[-1])).reshape(cross.shape)


def tokens_from_cross(cross: np.ndarray, projector: LagProjector) -> np.ndarray:
    """Token features ``[shape=(groups, P, TOKEN_FEATURES)]`` float32 of group cross-spectra."""
    return projector(_phat(cross))


def energy_tokens_from_cross(cross: np.ndarray, projector: LagProjector) -> np.ndarray:
    """Energy-weighted GCC tokens ``[shape=(groups, P, TOKEN_FEATURES)]`` float32: the cross-spectra
    without PHAT whitening, scaled per pair by the loudest group's mean magnitude over the bands.

    PHAT gives every bin one vote, so a broadband noise 10 dB below a talker wins the many bins the
    talker leaves empty; these tokens keep the loudness (which source dominates, and how the level
    moves across the groups) that the whitened tokens discard.
    """
    return projector(_energy_scaled(cross, projector))


def _energy_scaled(cross: np.ndarray, projector: LagProjector) -> np.ndarray:
    """The cross-spectra of :func:`energy_tokens_from_cross`, scaled, before the lag projection."""
    lo, hi = projector.span
    loudest = np.abs(cross[..., lo:hi]).mean(axis=-1).max(axis=0)  # (P,)
    scale = 1.0 / np.maximum(loudest, 1e-20)
    return cross * scale[None, :, None].astype(np.float32)


def clean_gcc_target(window: FeatureWindow, projector: LagProjector, pairs: TokenPairs) -> np.ndarray:
    """Full-window GCC at ``LAG_TIMES`` per pair, both bands averaged, ``[shape=(P, N_LAGS)]``;
    computed on the direct-path (anechoic) rendering of a scene, it is the distillation target."""
    cross = group_cross(window.spectra, pairs, projector.span, groups=1)[0]
    lags = projector(kernels.gcc_phat(cross)[None])[0]
    return lags.reshape(len(pairs), len(BANDS_HZ), N_LAGS).mean(axis=1)


def phase_bins(projector: LagProjector) -> np.ndarray:
    """``PHASE_BINS`` bins spread evenly over the bands, ``[shape=(PHASE_BINS,)]``."""
    lo, hi = projector.span
    return np.linspace(lo, hi - 1, PHASE_BINS).round().astype(np.intp)


def window_phases(window: FeatureWindow, projector: LagProjector, pairs: TokenPairs) -> np.ndarray:
    """Raw STFT phase (ablation input): per time group and token mic, cos and sin of the phase of the
    group's newest frame at :func:`phase_bins`, ``[shape=(GROUPS, M, 2 * PHASE_BINS)]`` float32."""
    newest = group_edges(window.spectra.shape[0])[1:] - 1
    spec = window.spectra[newest][:, pairs.mics][:, :, phase_bins(projector)]  # (G, M, bins)
    phase = np.angle(spec)
    return np.concatenate([np.cos(phase), np.sin(phase)], axis=-1).astype(np.float32)


def phase_tokens(phases: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Pair tokens of the raw-phase ablation: both mics' phase features side by side,
    ``phases [shape=(G, M, 2 * PHASE_BINS)]``, ``slots [shape=(P, 2)]`` (:attr:`TokenPairs.slots`)
    → ``[shape=(G, P, 4 * PHASE_BINS)]``."""
    return np.concatenate([phases[:, slots[:, 0]], phases[:, slots[:, 1]]], axis=-1)


def model_tokens(kind: str, window: FeatureWindow, cross: np.ndarray, projector: LagProjector,
                 pairs: TokenPairs) -> np.ndarray:
    """The tokens of model input ``kind`` (a key of ``INPUT_FEATURES``), ``[shape=(GROUPS, P, F)]``,
    given the window's group cross-spectra ``cross`` (:func:`group_cross`)."""
    if kind == "phase":
        return phase_tokens(window_phases(window, projector, pairs), pairs.slots)
    if kind == "gcc+energy":
        # Both halves through one projection (one matrix product per band over twice the rows):
        # what tokens_from_cross and energy_tokens_from_cross give, side by side (a test holds it).
        both = projector(np.concatenate([_phat(cross), _energy_scaled(cross, projector)]))
        return np.concatenate([both[:len(cross)], both[len(cross):]], axis=-1)
    return tokens_from_cross(cross, projector)

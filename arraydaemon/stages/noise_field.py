"""Stationary directional noise — a robot's fan, a motor, an air-conditioning vent — learned from the
STFT cells at the noise floor, so that the evidence tests (``evidence.py``) can set it aside.

Why the floor test alone does not: a machine's power fluctuates about the floor, so in every window
some of its cells pass the tests, and after PHAT weighting a bin with one passing cell weighs as
much as a talker's. A fan 1 m away then forms the strongest peak of most windows, and the tracker
keeps a track on it; on the tracking benchmark's test scenes with a fan, 49 % of track reports were
ghosts before this stage.

What it learns, per frequency bin: the spatial covariance ``R [shape=(mics, mics)]`` of the noise
cells (at the floor and not rising, ``EvidenceBins.at_floor``), averaged with a time constant of
``time_constant_s``. Every ``LEARN_EVERY`` frames each band bin's dominant eigenvector is updated by
power iteration (a full eigendecomposition of every bin cost 2.4 ms at 8 mics and 10.6 ms at 16, the
power iteration 0.1 and 0.3 ms; the noise is stationary, so a few steps from the last vector every
0.4 s follow it; at the start, every 0.1 s). Where its eigenvalue is at least ``dominance`` times
the mean of the others (one direction carries most of the noise: diffuse noise and sensor noise
spread over every eigenvector, a directional source does not), its eigenvector ``u [shape=(mics,)]``
is that bin's noise direction. A bin's covariance is used once it has seen the weight of
``CELLS_PER_MIC`` × mics noise cells: fewer cells than mics give a rank-deficient estimate whose
eigenvalues spread even for diffuse noise. And the direction must be stationary: a talker's weakest
cells (partial onsets, the tails between words) can sit at the floor and teach the covariance the
talker's direction, but along it most cells are far louder than those; along a fan's, few are
(``LOUD``, ``MAX_LOUD_SHARE``). Without this test a talker speaking in 200 ms bursts with 100 ms
gaps was learned as noise within two seconds, and half its windows lost.

What it gives, per cell: the power left after removing the noise direction, ``(|x|² - |uᴴx|²) /
mics``, on which the features stage runs its evidence tests a second time (a talker's cell then
stands above the floor of the room, not of the fan), and the share ``|uᴴx|² / |x|²`` of the cell's
power along the noise direction, so that cells the fan dominates are not evidence. The spectra
themselves are left as they are: projecting the noise direction out of every cell would leave the
diffuse and sensor noise of the quiet cells correlated across mics (``(I - uuᴴ) R_n (I - uuᴴ)``), a
pattern the SRP scan would read as a broad source.

Measured on the tracking benchmark (neural estimator; docs/research/tracking.md, "A fan in the room"): test set, 20
scenes of which 5 have a fan, ghost track reports 19.1 % → 15.3 %, MOTA 0.41 → 0.45 (the scenes
with a fan: ghosts 49 % → 33 %, MOTA 0.00 → 0.18); development set (30 scenes, 12 with a fan):
ghosts 18.1 % → 15.1 %, MOTA 0.48 → 0.53. What remains on the fan scenes is half their first
seconds, before enough noise cells are seen, half detections that still leak through now and then.
The single-talker evaluation (``arraydaemon eval``) reports the same figures with and without it.
Without a directional noise no bin qualifies, and the evidence is
exactly that of the tests alone.
"""

from __future__ import annotations

import math

import numpy as np

LEARN_EVERY = 24  # frames between updates of the covariances and their directions (~0.4 s) ...
LEARN_EVERY_AT_START = 6  # ... and at the start (~0.1 s): until half the band bins are known, at most 4 time constants
POWER_STEPS = 4  # power-iteration steps per update, from the last direction (the noise is stationary)
CELLS_PER_MIC = 3  # a bin's covariance is used once it holds the weight of this many noise cells per mic
LOUD = 8.0  # a cell is loud along the noise direction at this many times the noise cells' mean power there ...
MAX_LOUD_SHARE = 0.35  # ... and a stationary noise's direction is loud in at most this share of all cells


class StationaryNoiseField:
    """Per-bin dominant direction of the noise-floor cells; one :meth:`update` per STFT frame.

    ``band``: the bins ``[lo, hi)`` the localizers use (the others are never learned or tested).
    """

    def __init__(self, bins: int, mics: int, frame_s: float, time_constant_s: float, dominance: float,
                 band: tuple[int, int]):
        self.bins = bins
        self.mics = mics
        self.band = band
        self.dominance = dominance
        self.keep = math.exp(-frame_s / time_constant_s)  # per-frame forgetting factor
        # the weight (0..1) of CELLS_PER_MIC x mics consecutive noise cells
        self.min_weight = 1.0 - self.keep ** (CELLS_PER_MIC * mics)
        self.start_frames = int(math.ceil(4.0 * time_constant_s / frame_s))
        self.reset()

    def reset(self) -> None:
        lo, hi = self.band
        self._cov = np.zeros((hi - lo, self.mics, self.mics), dtype=np.complex128)
        self._weight = np.zeros(hi - lo)
        self._loud = np.zeros(hi - lo)  # share of all recent cells loud along each bin's direction
        self._measured = np.zeros(hi - lo, dtype=bool)  # bins whose loud share has been measured
        self._frames = np.zeros((LEARN_EVERY, self.mics, hi - lo), dtype=np.complex64)
        self._noise = np.zeros((LEARN_EVERY, hi - lo), dtype=bool)
        self._count = 0
        self._seen = 0  # frames since the start or reset
        self._settled = False  # learning every LEARN_EVERY frames, no longer every LEARN_EVERY_AT_START
        # [shape=(band bins, mics)] unit noise directions (zero where none was estimated yet)
        self.directions = np.zeros((hi - lo, self.mics), dtype=np.complex128)
        self.active = np.zeros(hi - lo, dtype=bool)  # [shape=(band bins,)] bins with a directional noise
        self._conj_directions = np.zeros((hi - lo, self.mics), dtype=np.complex64)

    def update(self, spectrum: np.ndarray, at_floor: np.ndarray) -> None:
        """Learns from one frame: ``spectrum [shape=(mics, bins)]`` complex, ``at_floor [shape=(bins,)]``
        bool (the noise cells). Frames are learned ``LEARN_EVERY`` at a time (one batched product
        instead of one outer product per frame); the directions change only then."""
        lo, hi = self.band
        self._frames[self._count] = spectrum[:, lo:hi]
        self._noise[self._count] = at_floor[lo:hi]
        self._count += 1
        self._seen += 1
        if self._count >= LEARN_EVERY_AT_START and (self._count >= LEARN_EVERY or not self._is_settled()):
            self._learn()
            self._count = 0

    def _is_settled(self) -> bool:
        """Past the start: ``start_frames`` seen, or half the band bins known. Once true it stays true
        (the frame count only grows, and so does every bin's weight), so it is remembered rather than
        tested again."""
        if not self._settled:
            self._settled = self._seen > self.start_frames or np.mean(self._weight >= self.min_weight) >= 0.5
        return self._settled

    def _learn(self) -> None:
        x, noise = self._frames[:self._count], self._noise[:self._count]  # (frames, mics, bins), (frames, bins)
        # Exponential forgetting per noise cell, as if learned one frame at a time: a cell's weight at
        # the end of the batch is (1 - keep) keep^(noise cells after it in its bin).
        later = np.cumsum(noise[::-1], axis=0)[::-1] - noise
        cell_weight = np.where(noise, (1.0 - self.keep) * self.keep ** later, 0.0)
        fade = self.keep ** noise.sum(axis=0)  # (band bins,)
        y = np.ascontiguousarray((x * np.sqrt(cell_weight).astype(np.float32)[:, None, :]).transpose(2, 1, 0))
        self._cov = fade[:, None, None] * self._cov + y @ y.conj().transpose(0, 2, 1)  # y: (band bins, mics, frames)
        self._weight = fade * self._weight + (1.0 - fade)
        top = self._decompose()
        # Stationary? Along a fan's direction every cell holds about the noise cells' power; along a
        # talker's (whose weakest cells can sit at the floor between words) most cells are far louder.
        # (Bins not known yet have no noise power; their share is replaced when first measured.)
        noise_power = top / np.maximum(self._weight, 1e-30)
        along = np.abs(np.einsum("bm,tmb->tb", self.directions.conj(), x)) ** 2  # (frames, band bins)
        loud = np.mean(along > LOUD * noise_power, axis=0)
        every = self.keep ** len(x)
        # a bin's first measurement starts its average (from 0 it would call every new direction quiet)
        self._loud = np.where(self._measured, every * self._loud + (1.0 - every) * loud, loud)
        self._measured |= self._weight >= self.min_weight
        self.active &= self._loud <= MAX_LOUD_SHARE
        # conjugated, zero where inactive, single precision: what residual() multiplies every frame by
        self._conj_directions = np.where(self.active[:, None], self.directions.conj(), 0).astype(np.complex64)

    def _decompose(self) -> np.ndarray:
        """Each known bin's dominant eigenvector by power iteration from its last one (from its
        strongest column at first), and whether it dominates: its Rayleigh quotient against the mean
        of the other eigenvalues ((trace - λ₁) / (mics - 1)). An unconverged vector underestimates
        λ₁, so a bin is only ever left out, never wrongly called directional. Returns that quotient,
        the covariance's power along the direction ``[shape=(band bins,)]`` (0 in bins not known)."""
        known = self._weight >= self.min_weight
        active = np.zeros_like(known)
        rayleigh = np.zeros(len(known))
        if known.any():
            cov = self._cov[known]
            u = self.directions[known]
            fresh = ~np.any(u, axis=1)
            if fresh.any():
                strongest = np.argmax(np.real(np.einsum("bii->bi", cov[fresh])), axis=1)
                u[fresh] = cov[fresh][np.arange(int(fresh.sum())), :, strongest]
            for _ in range(POWER_STEPS):
                u = (cov @ u[:, :, None])[:, :, 0]
                u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-30)
            top = np.real(np.sum(u.conj() * (cov @ u[:, :, None])[:, :, 0], axis=1))
            others = (np.real(np.trace(cov, axis1=1, axis2=2)) - top) / (self.mics - 1)
            active[known] = top >= self.dominance * np.maximum(others, 1e-30)
            self.directions[known] = u
            rayleigh[known] = top
        self.active = active
        return rayleigh

    STATE = ("_cov", "_weight", "_loud", "_measured", "directions", "active", "_conj_directions")

    def state(self) -> dict[str, np.ndarray]:
        """What the field learned (covariances, weights, directions), as arrays that :meth:`load_state`
        takes back; the frames of a batch not yet learned are left out."""
        out = {name.lstrip("_"): np.array(getattr(self, name), copy=True) for name in self.STATE}
        out["seen"] = np.array(self._seen)
        out["settled"] = np.array(self._settled)
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Takes back :meth:`state` (of a field of the same band and mics; ValueError otherwise)."""
        self.reset()
        for name in self.STATE:
            value = np.asarray(state[name.lstrip("_")])
            current = getattr(self, name)
            if value.shape != current.shape:
                raise ValueError(f"noise field state {name.lstrip('_')}: shape {value.shape}, expected {current.shape}")
            setattr(self, name, value.astype(current.dtype))
        self._seen = int(np.asarray(state["seen"]).reshape(-1)[0])
        self._settled = bool(np.asarray(state["settled"]).reshape(-1)[0])

    def noise_covariance(self) -> tuple[np.ndarray, np.ndarray]:
        """The band bins' learned noise covariances ``[shape=(band bins, mics, mics)]`` (normalised by
        their weight) and which bins hold a directional noise ``[shape=(band bins,)]``."""
        return self._cov / np.maximum(self._weight, 1e-30)[:, None, None], self.active.copy()

    def residual(self, spectrum: np.ndarray, power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For one frame ``spectrum [shape=(mics, bins)]`` with mic-averaged ``power [shape=(bins,)]``:
        the power left once the noise direction is removed ``[shape=(bins,)]`` (``power`` itself in
        bins without a directional noise) and the share of the cell's power along the noise direction
        ``[shape=(bins,)]`` (0 in those bins)."""
        share = np.zeros(self.bins)
        if not self.active.any():
            return power, share
        lo, hi = self.band
        x = spectrum[:, lo:hi]
        along = np.abs(np.einsum("bm,mb->b", self._conj_directions, x)) ** 2
        total = np.einsum("mb,mb->b", x.real, x.real) + np.einsum("mb,mb->b", x.imag, x.imag)
        left = np.array(power, dtype=np.float64, copy=True)
        left[lo:hi] = np.where(self.active, np.maximum(total - along, 0.0) / self.mics, left[lo:hi])
        share[lo:hi] = np.where(self.active, along / np.maximum(total, 1e-30), 0.0)
        return left, share

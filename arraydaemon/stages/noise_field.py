"""Stationary directional noise — a robot's fan, a motor, an air-conditioning vent — learned from the
STFT cells at the noise floor, so that the evidence tests (``evidence.py``) can set it aside.

Why the floor test alone does not: a machine's power fluctuates about the floor, so in every window
some of its cells pass the tests, and after PHAT weighting a bin with one passing cell weighs as
much as a talker's. A fan 1 m away then forms the strongest peak of most windows, and the tracker
keeps a track on it; on the tracking benchmark's scenes with a fan, 47-49 % of track reports were
ghosts (test set) before this stage.

What it learns, per frequency bin: the spatial covariance ``R [shape=(mics, mics)]`` of the cells
the floor test calls noise, averaged with a time constant of ``time_constant_s``. Every
``EIGEN_EVERY`` frames each band bin's covariance is decomposed; where its largest eigenvalue is at
least ``dominance`` times the mean of the others (one direction carries most of the noise: diffuse
noise and sensor noise spread over every eigenvector, a directional source does not), its
eigenvector ``u [shape=(mics,)]`` is that bin's noise direction. A bin's covariance is used once it
has seen the weight of ``CELLS_PER_MIC`` × mics noise cells: fewer cells than mics give a
rank-deficient estimate whose eigenvalues spread even for diffuse noise.

What it gives, per cell: the power left after removing the noise direction,
``(|x|² - |uᴴx|²) / mics``, on which the features stage runs its evidence tests a second time (a
talker's cell then stands above the floor of the room, not of the fan), and the share
``|uᴴx|² / |x|²`` of the cell's power along the noise direction, so that cells the fan dominates
are not evidence. The spectra themselves are left as they are: projecting the noise direction out
of every cell would leave the diffuse and sensor noise of the quiet cells correlated across mics
(``(I - uuᴴ) R_n (I - uuᴴ)``), a pattern the SRP scan would read as a broad source.

Measured on the tracking benchmark (test set, neural estimator, 20 scenes of which 5 have a fan):
ghost track reports 19.1 % → 14.6 %, MOTA 0.41 → 0.45 (scenes with a fan: ghosts 47 % → 31 %,
MOTA 0.00 → 0.20); development set (30 scenes, 12 with a fan): ghosts 18.1 % → 15.7 %, MOTA 0.48 →
0.50. What remains on the fan scenes is mostly their first 1-2 s, before enough noise cells are seen.
The single-talker evaluation (``arraydaemon eval``) reports the same figures with and without it.
Without a directional noise no bin qualifies, and the evidence is exactly that of the tests alone.
"""

from __future__ import annotations

import math

import numpy as np

EIGEN_EVERY = 6  # frames between decompositions (~0.1 s): the noise is stationary
CELLS_PER_MIC = 3  # a bin's covariance is used once it holds the weight of this many noise cells per mic


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
        self.reset()

    def reset(self) -> None:
        lo, hi = self.band
        self._cov = np.zeros((hi - lo, self.mics, self.mics), dtype=np.complex128)
        self._weight = np.zeros(hi - lo)
        self._frames = 0
        self.directions: np.ndarray | None = None  # [shape=(band bins, mics)] unit noise directions
        self.active = np.zeros(hi - lo, dtype=bool)  # [shape=(band bins,)] bins with a directional noise

    def update(self, spectrum: np.ndarray, at_floor: np.ndarray) -> None:
        """Learns from one frame: ``spectrum [shape=(mics, bins)]`` complex, ``at_floor [shape=(bins,)]``
        bool (the cells the floor test calls noise)."""
        lo, hi = self.band
        noise = at_floor[lo:hi]
        if noise.any():
            x = spectrum[:, lo:hi][:, noise].astype(np.complex128)
            outer = np.einsum("ib,jb->bij", x, x.conj())
            self._cov[noise] = self.keep * self._cov[noise] + (1.0 - self.keep) * outer
            self._weight[noise] = self.keep * self._weight[noise] + (1.0 - self.keep)
        self._frames += 1
        if self._frames % EIGEN_EVERY == 0:
            self._decompose()

    def _decompose(self) -> None:
        known = self._weight >= self.min_weight
        active = np.zeros_like(known)
        if known.any():
            values, vectors = np.linalg.eigh(self._cov[known])  # ascending eigenvalues
            others = np.mean(values[:, :-1], axis=1)
            active[known] = values[:, -1] >= self.dominance * np.maximum(others, 1e-30)
            if active.any():
                directions = np.zeros((len(known), self.mics), dtype=np.complex128)
                directions[known] = vectors[:, :, -1]
                self.directions = directions
        self.active = active

    def residual(self, spectrum: np.ndarray, power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For one frame ``spectrum [shape=(mics, bins)]`` with mic-averaged ``power [shape=(bins,)]``:
        the power left once the noise direction is removed ``[shape=(bins,)]`` (``power`` itself in
        bins without a directional noise) and the share of the cell's power along the noise direction
        ``[shape=(bins,)]`` (0 in those bins)."""
        share = np.zeros(self.bins)
        if not self.active.any():
            return power, share
        lo, hi = self.band
        x = spectrum[:, lo:hi][:, self.active]
        u = self.directions[self.active].T  # (mics, active bins)
        along = np.abs(np.sum(u.conj() * x, axis=0)) ** 2
        total = np.sum(np.abs(x) ** 2, axis=0)
        left = np.array(power, dtype=np.float64, copy=True)
        idx = lo + np.flatnonzero(self.active)
        left[idx] = np.maximum(total - along, 0.0) / self.mics
        share[idx] = along / np.maximum(total, 1e-30)
        return left, share

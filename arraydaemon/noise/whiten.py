"""The robot's noise whitened out of every bin, from its measured spatial covariance.

With the noise covariance ``R_n [shape=(mics, mics)]`` of a bin (a noise model, ``files.py``) and
its Cholesky factor ``R_n = L Lᴴ``:

- **evidence** (``stages/features.py``): the STFT cells are whitened, ``x̃ = L⁻¹ x``. The noise then
  has the same power along every direction (identity covariance), however loud and directional it
  was, and a talker's cell stands above the whitened floor wherever its direction differs from the
  noise's. The evidence tests and the online noise field run on ``x̃``.
- **localization** (``localizers/scan.py``): a window's cross-spectra are cleaned by the generalized
  eigendecomposition of its covariance ``C = Σ_t x xᴴ`` (over the frames the evidence keeps) against
  ``n R_n`` (``n`` those frames): the eigenvalues ``λ`` of ``L⁻¹ C L⁻ᴴ`` are ``n`` where only noise is,
  more where a talker adds power. The talkers' covariance is ``L Q diag(λ - n) Qᴴ Lᴴ`` over the
  eigenvalues above ``threshold × n`` (``Q`` their eigenvectors): the noise subtracted in the
  directions it fills, and the small eigenvalues, where the noise's own fluctuation would leave a
  residue pointing at the noise, dropped. The pair cross-spectra the SRP scan whitens (PHAT) are
  its elements, so the scan, its lag tables and the integrals stay as they are; only their input
  no longer carries the noise. (GEVD-MUSIC, as HARK uses, takes the same decomposition but scans
  the noise subspace instead; the SRP keeps the estimators' scan, refinement and tracking.)

The noise's power drifts (a fan's speed, the room's reverberation of it), so the subtraction is of
the model's level: where the noise is louder than measured, the threshold keeps its excess small.
"""

from __future__ import annotations

import numpy as np

LOADING = 0.5  # diagonal loading of the noise covariance, relative to its mean eigenvalue (see the module doc)
ADAPT = True
THRESHOLD = 1.0  # generalized eigenvalues above the largest the noise alone gives are a talker's


class NoiseWhitener:
    """The whitening and cleaning of one noise model's covariances ``[shape=(bins, mics, mics)]``
    (all STFT bins), in the bins ``band = (lo, hi)``."""

    def __init__(self, covariance: np.ndarray, band: tuple[int, int], threshold: float | None = None):
        lo, hi = band
        self.band = band
        self.threshold = THRESHOLD if threshold is None else threshold
        r = np.asarray(covariance, dtype=np.complex128)[lo:hi]
        mics = r.shape[1]
        r = 0.5 * (r + r.conj().transpose(0, 2, 1))
        scale = np.maximum(np.real(np.trace(r, axis1=1, axis2=2)) / mics, 1e-30)
        self.mics = mics
        loaded = r + (LOADING * scale)[:, None, None] * np.eye(mics)[None]
        self.chol = np.linalg.cholesky(loaded)  # (band bins, mics, mics)
        self.inverse = np.linalg.inv(self.chol)
        self._inverse64 = self.inverse.astype(np.complex64)
        # the noise's own covariance once whitened (the loading keeps it below the identity)
        self.white_noise = self.inverse @ r @ self.inverse.conj().transpose(0, 2, 1)
        self._noise_top = np.linalg.eigvalsh(self.white_noise)[:, -1]
        self.covariance = r

    # -- cells

    def whiten(self, spectrum: np.ndarray) -> np.ndarray:
        """One frame ``spectrum [shape=(mics, bins)]`` complex64 with its band bins whitened (``L⁻¹ x``)
        and the others as they were: ``[shape=(mics, bins)]`` complex64."""
        lo, hi = self.band
        out = np.array(spectrum, dtype=np.complex64, copy=True)
        out[:, lo:hi] = np.einsum("kmn,nk->mk", self._inverse64, spectrum[:, lo:hi])
        return out

    # -- windows

    def signal_factors(self, spectra: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
        """The talkers' covariance of each band bin as factors ``Y [shape=(band bins, mics, mics)]``
        (covariance ``Y Yᴴ``) from STFT frames ``spectra [shape=(frames, mics, bins)]`` summed over
        the frames ``keep [shape=(frames, bins)]`` selects (all when None); see the module doc."""
        lo, hi = self.band
        x = spectra[:, :, lo:hi]
        if keep is None:
            n = np.full(hi - lo, float(x.shape[0]))
            xm = x
        else:
            k = keep[:, lo:hi]
            n = k.sum(axis=0).astype(np.float64)
            xm = x * k[:, None, :]
        white = np.einsum("kmn,tnk->ktm", self._inverse64, xm)  # (band bins, frames, mics)
        c = np.einsum("ktm,ktn->kmn", white, white.conj()).astype(np.complex128)
        per_frame = np.maximum(n, 1.0)
        excess = c / per_frame[:, None, None] - self.white_noise
        lam, q = np.linalg.eigh(excess)
        # how far n frames of the noise alone stray from its covariance (Marchenko-Pastur: the
        # largest sample eigenvalue of n frames of m dimensions is (1 + sqrt(m/n))² times the true)
        ratio = self.mics / per_frame
        if ADAPT:
            # more noise than measured (another room's reverberation of it, a faster fan): what its
            # smallest eigenvalues hold beyond the model, in every direction (talkers fill few)
            offset = np.maximum(np.mean(lam[:, :max(1, self.mics // 2)], axis=1), 0.0)
            lam = lam - offset[:, None]
            stray = (self._noise_top + offset) * (2.0 * np.sqrt(ratio) + ratio)
        else:
            stray = self._noise_top * (2.0 * np.sqrt(ratio) + ratio)
        gain = np.where((lam > self.threshold * stray[:, None]) & (n[:, None] > 0), lam * per_frame[:, None], 0.0)
        return self.chol @ (q * np.sqrt(gain)[:, None, :])

    def pair_sum(self, spectra: np.ndarray, keep: np.ndarray | None, pair_i: np.ndarray, pair_j: np.ndarray,
                 bins: int) -> np.ndarray:
        """The talkers' pair cross-spectra ``[shape=(pairs, bins)]`` complex64 (``X_j conj(X_i)``, 0
        outside the band): what ``kernels.masked_pair_sum`` gives of the frames without the noise."""
        lo, hi = self.band
        y = self.signal_factors(spectra, keep)
        out = np.zeros((len(pair_i), bins), dtype=np.complex64)
        out[:, lo:hi] = np.einsum("kpr,kpr->pk", y[:, pair_j, :], y[:, pair_i, :].conj())
        return out

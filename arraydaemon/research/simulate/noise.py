"""Noise fields at the microphones: spherically-isotropic (diffuse) noise and white sensor noise."""

from __future__ import annotations

import math

import numpy as np

from arraydaemon.research.simulate.geometry import as_mic_positions

__all__ = ["diffuse_noise"]


def diffuse_mixing(
    mic_positions: np.ndarray, frame: int, sample_rate: int, speed_of_sound: float
) -> np.ndarray:
    """Per-bin real mixing matrices A with A A^T = spherically-isotropic coherence.

    Coherence between mics i and j at frequency f: sinc(2 pi f d_ij / c), on the ``frame``-point
    rfft grid. Returns ``[shape=(frame // 2 + 1, mics, mics)]`` float64.
    """
    mics = as_mic_positions(mic_positions)
    d = np.linalg.norm(mics[:, None, :] - mics[None, :, :], axis=-1)
    f = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    gamma = np.sinc(2.0 * f[:, None, None] * d[None, :, :] / speed_of_sound)
    w, v = np.linalg.eigh(gamma)
    return v * np.sqrt(np.clip(w, 0.0, None))[:, None, :]


def diffuse_frame(sample_rate: int) -> int:
    """STFT frame for diffuse-noise synthesis: ~16 Hz resolution (1024 points at 16 kHz)."""
    return max(256, 1 << int(math.ceil(math.log2(sample_rate / 16.0))))


def diffuse_synth(
    mixing: np.ndarray, num_samples: int, sample_rate: int, rng: np.random.Generator, exponent: float
) -> np.ndarray:
    """Stationary Gaussian noise with the cross-spectral coherence given by ``mixing``.

    Independent complex Gaussian STFT frames are mixed per bin, then overlap-added at 50 % with a
    sqrt-Hann window (whose square sums to one, so the power is constant in time). Spectrum
    ~ 1/f**exponent. Returns float64 ``[shape=(num_samples, mics)]``, mean power 1.
    """
    n_bins, m, _ = mixing.shape
    frame = 2 * (n_bins - 1)
    hop = frame // 2
    n_frames = int(math.ceil(num_samples / hop)) + 2
    w = rng.standard_normal((n_frames, n_bins, m)) + 1j * rng.standard_normal((n_frames, n_bins, m))
    spec = np.einsum("fij,tfj->tfi", mixing, w)
    f = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    gain = np.maximum(f, 20.0) ** (-exponent / 2.0) if exponent != 0 else np.ones_like(f)
    gain[0] = 0.0
    spec *= gain[None, :, None]
    frames = np.fft.irfft(spec, frame, axis=1)  # (n_frames, frame, mics)
    window = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame) / frame))
    frames *= window[None, :, None]
    out = np.zeros(((n_frames + 1) * hop, m))
    for t in range(n_frames):
        out[t * hop : t * hop + frame] += frames[t]
    x = out[hop : hop + num_samples]  # skip the first half frame, where the windows don't sum to 1
    return x / (np.sqrt(np.mean(x**2)) + 1e-20)


def diffuse_noise(
    mic_positions: np.ndarray,
    num_samples: int,
    sample_rate: int,
    rng: np.random.Generator,
    *,
    speed_of_sound: float = 343.0,
    spectrum: str = "pink",
) -> np.ndarray:
    """Spherically-isotropic (diffuse) noise at the microphones.

    Gaussian noise whose coherence between every pair of mics is the diffuse-field
    sinc(2 pi f d / c): the coherence matrix is factored per frequency bin (eigen-decomposition,
    ~16 Hz bins) and applied to independent STFT frames, overlap-added. ``spectrum``: "white",
    "pink" or "brown". Mean power over mics is 1.

    ``mic_positions`` ``[shape=(mics, 3)]``; returns float32 ``[shape=(num_samples, mics)]``.
    """
    exponents = {"white": 0.0, "pink": 1.0, "brown": 2.0}
    if spectrum not in exponents:
        raise ValueError(f"spectrum must be one of {sorted(exponents)}, got {spectrum!r}")
    if num_samples <= 0:
        raise ValueError("num_samples must be positive")
    mixing = diffuse_mixing(mic_positions, diffuse_frame(sample_rate), sample_rate, speed_of_sound)
    x = diffuse_synth(mixing, num_samples, sample_rate, rng, exponents[spectrum])
    return x.astype(np.float32)


def add_sensor_noise(
    clean: np.ndarray, snr_db: float, rng: np.random.Generator
) -> np.ndarray:
    power = float(np.mean(clean.astype(np.float64) ** 2))
    sigma = math.sqrt(power * 10.0 ** (-snr_db / 10.0))
    return clean + sigma * rng.standard_normal(clean.shape)

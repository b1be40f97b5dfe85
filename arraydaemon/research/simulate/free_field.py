"""Free-field scenes: far-field plane waves at the microphones with exact fractional delays."""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

from arraydaemon.research.simulate.geometry import as_mic_positions, as_signal, direction_vector
from arraydaemon.research.simulate.noise import add_sensor_noise

__all__ = ["free_field_scene"]


def free_field_scene(
    mic_positions: np.ndarray,
    sources: list[tuple[np.ndarray, float, float]],
    sample_rate: int,
    speed_of_sound: float = 343.0,
    snr_db: float | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Far-field plane waves at the microphones, with exact fractional delays.

    Each source is ``(signal [shape=(samples,)], azimuth_deg, elevation_deg)``. The wave from unit
    direction d reaches the mic at position r earlier than the array origin by r . d / c; the
    delay is applied as a linear phase in the frequency domain (ideal band-limited interpolation)
    on a buffer zero-padded on both sides by more than the largest shift, so nothing wraps
    around (bar the far sinc tails, ~1e-4 of the peak). Signals shorter than the longest are
    zero-padded at the end. With ``snr_db``, independent white Gaussian noise is added to every
    mic at that SNR relative to the mean signal power over all mics (``rng`` is then required).

    ``mic_positions`` ``[shape=(mics, 3)]``; returns float32 ``[shape=(samples, mics)]``.
    """
    mics = as_mic_positions(mic_positions)
    if not sources:
        raise ValueError("free_field_scene needs at least one source")
    sigs = [as_signal(s[0], f"source {i} signal") for i, s in enumerate(sources)]
    n = max(s.shape[0] for s in sigs)
    out = np.zeros((n, mics.shape[0]), dtype=np.float64)
    for sig, (_, az, el) in zip(sigs, sources):
        tau = mics @ direction_vector(az, el) / speed_of_sound  # advance of each mic (s)
        # zero-pad both sides by more than the largest shift: the band-limited delay then acts
        # on the zero-extended signal (only the far sinc tails wrap, at ~1e-4). The FFT size
        # depends on this source alone, so scenes superpose exactly.
        pad = int(math.ceil(float(np.max(np.abs(tau))) * sample_rate)) + 1024
        nfft = scipy.fft.next_fast_len(sig.shape[0] + 2 * pad, real=True)
        f = np.fft.rfftfreq(nfft, 1.0 / sample_rate)
        buf = np.zeros(nfft)
        buf[pad : pad + sig.shape[0]] = sig
        spec = scipy.fft.rfft(buf)
        # advance by tau: x_m(t) = s(t + tau_m)  <=>  S(f) exp(+j 2 pi f tau_m)
        phase = np.exp(2j * np.pi * f[:, None] * tau[None, :])
        if nfft % 2 == 0:  # Nyquist bin must stay real: keep the symmetric (cosine) part
            phase[-1] = phase[-1].real
        y = scipy.fft.irfft(spec[:, None] * phase, nfft, axis=0)
        take = min(n, sig.shape[0] + pad)
        out[:take] += y[pad : pad + take]
    if snr_db is not None:
        if rng is None:
            raise ValueError("free_field_scene: rng is required when snr_db is set")
        out = add_sensor_noise(out, snr_db, rng)
    return out.astype(np.float32)

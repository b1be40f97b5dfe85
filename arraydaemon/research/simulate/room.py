"""Reverberant shoebox rooms: :func:`room_scene`, its inputs and outputs, and the late tail.

Room scenes use the image-source method of pyroomacoustics for the early part of each room
impulse response, up to an image order that keeps the runtime bounded; when the requested RT60
needs a higher order than that, the impulse response is completed beyond the time up to which the
image set is complete by a late-reverberation tail: spherically-isotropic diffuse noise (sinc
coherence between the microphones of the actual geometry) decaying at exactly the requested RT60,
level-matched to the image-source response where they meet.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.fft

from arraydaemon.research.simulate.geometry import as_mic_positions, as_signal, direction_vector, vector_to_angles
from arraydaemon.research.simulate.noise import diffuse_frame, diffuse_mixing, diffuse_synth

__all__ = ["ISM_ORDER_CAP", "SceneResult", "SourceSpec", "room_scene"]


#: Image-source order above which the room impulse response is completed by a diffuse tail.
#: Order 40 keeps the image-source stage well under a second for 8 mics and makes the image set
#: complete up to 0.8 * 40 * R_min / c (~170 ms in a 3 x 3 x 2.5 m room, ~330 ms in 10 x 8 x 4 m),
#: so direct path and early reflections are always exact.
ISM_ORDER_CAP = 40

_WALL_MARGIN_SOURCE = 0.3
_WALL_MARGIN_ARRAY = 0.5
_MIN_SOURCE_DISTANCE = 0.5
_ROOM_MIN = (3.0, 3.0, 2.5)
_ROOM_MAX = (10.0, 8.0, 4.0)


@dataclass(frozen=True, eq=False)
class SourceSpec:
    """A point source for :func:`room_scene`: dry ``signal`` ``[shape=(samples,)]`` at a
    direction and distance from the array centre (array frame = room axes)."""

    signal: np.ndarray
    azimuth_deg: float
    elevation_deg: float
    distance_m: float = 1.5


@dataclass(eq=False)
class SceneResult:
    """Output of :func:`room_scene`.

    ``audio`` float32 ``[shape=(samples, mics)]``: what the array records (reverberant sources,
    diffuse noise, sensor noise). ``clean`` float32 ``[shape=(samples, mics)]``: the reverberant
    sources alone. ``sources``: true ``(azimuth_deg, elevation_deg, distance_m)`` of each source in
    the array frame, from the actual positions (the distance may be smaller than requested when the
    source had to be moved inside the room). ``source_positions`` ``[shape=(sources, 3)]`` and
    ``array_centre`` ``[shape=(3,)]`` are room coordinates (metres from the room corner).
    """

    audio: np.ndarray
    sample_rate: int
    sources: list[tuple[float, float, float]]
    room_dim: tuple[float, float, float]
    rt60: float
    array_centre: np.ndarray
    source_positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    clean: np.ndarray | None = None
    snr_db: float | None = None
    diffuse_noise_db: float | None = None
    ism_order: int = 0


def _r_min(room_dim: np.ndarray) -> float:
    return min(a * b / math.hypot(a, b) for a, b in itertools.combinations(room_dim, 2))


def _max_distance_inside(centre: np.ndarray, d: np.ndarray, room_dim: np.ndarray, margin: float) -> float:
    """Largest t >= 0 with centre + t d inside [margin, dim - margin] on every axis."""
    t = math.inf
    for i in range(3):
        if d[i] > 1e-12:
            t = min(t, (room_dim[i] - margin - centre[i]) / d[i])
        elif d[i] < -1e-12:
            t = min(t, (margin - centre[i]) / d[i])
    return t


def _array_margins(mics: np.ndarray) -> np.ndarray:
    return np.maximum(_WALL_MARGIN_ARRAY, np.max(np.abs(mics), axis=0) + 0.05)


def _sample_centre(rng: np.random.Generator, room_dim: np.ndarray, margins: np.ndarray) -> np.ndarray:
    lo = margins.copy()
    hi = room_dim - margins
    if np.any(hi < lo):
        raise ValueError(
            f"room {tuple(float(v) for v in room_dim)} is too small for the array "
            f"(needs {tuple(float(2 * v) for v in margins)} m)"
        )
    z_lo = min(max(0.7, lo[2]), hi[2])
    z_hi = max(min(1.8, hi[2]), z_lo)
    return np.array([rng.uniform(lo[0], hi[0]), rng.uniform(lo[1], hi[1]), rng.uniform(z_lo, z_hi)])


def _place_sources(
    centre: np.ndarray, room_dim: np.ndarray, sources: list[SourceSpec]
) -> tuple[list[np.ndarray], float]:
    """Positions (shrunk to fit) and the smallest ratio of actual to requested distance."""
    positions = []
    worst = 1.0
    for i, s in enumerate(sources):
        d = direction_vector(s.azimuth_deg, s.elevation_deg)
        t_max = _max_distance_inside(centre, d, room_dim, _WALL_MARGIN_SOURCE)
        dist = min(float(s.distance_m), t_max)
        if dist < _MIN_SOURCE_DISTANCE:
            raise ValueError(
                f"source {i} (azimuth {s.azimuth_deg:g}, elevation {s.elevation_deg:g}) cannot be "
                f"placed >= {_MIN_SOURCE_DISTANCE} m from the array and >= {_WALL_MARGIN_SOURCE} m "
                f"from the walls of room {tuple(round(float(v), 3) for v in room_dim)}"
            )
        worst = min(worst, dist / float(s.distance_m))
        positions.append(centre + dist * d)
    return positions, worst


def _late_tail_rir(
    h_ism: np.ndarray,
    t_complete: float,
    rt60: float,
    sample_rate: int,
    offset: int,
    tail: np.ndarray,
) -> np.ndarray:
    """Splice a diffuse exponentially-decaying tail onto image-source RIRs.

    ``h_ism`` ``[shape=(mics, taps)]``; ``t_complete``: time (s from emission) up to which the image
    set is complete; ``offset``: pyroomacoustics' global delay in samples; ``tail``
    ``[shape=(tail_samples, mics)]`` unit-power diffuse noise. Returns ``[shape=(mics, taps')]``.
    """
    i_c = offset + int(round(t_complete * sample_rate))
    delta = 3.0 * math.log(10.0) / rt60  # amplitude decay rate (1/s): -60 dB energy in rt60
    win = max(int(0.02 * sample_rate), int(0.25 * t_complete * sample_rate))
    win = min(win, i_c - offset)
    seg = h_ism[:, max(0, i_c - win) : i_c]
    energy = float(np.mean(seg**2)) if seg.size else 0.0
    w_s = win / sample_rate
    g = 2.0 * delta * w_s
    level = math.sqrt(energy * g / math.expm1(g)) if g > 0 else math.sqrt(energy)
    xf = max(2, int(0.005 * sample_rate))
    start = i_c - xf // 2
    n_tail = tail.shape[0]
    t = (np.arange(n_tail) + start - i_c) / sample_rate
    late = tail.T * (level * np.exp(-delta * t))[None, :]
    out = np.zeros((h_ism.shape[0], start + n_tail))
    keep = min(start + xf, h_ism.shape[1])
    out[:, :keep] = h_ism[:, :keep]
    ramp = (np.arange(xf) + 0.5) / xf
    fade_out = np.cos(0.5 * np.pi * ramp)
    fade_in = np.sin(0.5 * np.pi * ramp)
    out[:, start : start + xf] *= fade_out[None, :]
    late[:, :xf] *= fade_in[None, :]
    out[:, start:] += late
    return out


def room_scene(
    mic_positions: np.ndarray,
    sources: list[SourceSpec],
    *,
    sample_rate: int,
    rt60: float,
    room_dim: tuple[float, float, float] | None = None,
    snr_db: float | None = 30.0,
    rng: np.random.Generator,
    diffuse_noise_db: float | None = None,
    max_order: int | None = None,
    speed_of_sound: float = 343.0,
    array_centre: np.ndarray | None = None,
    late_reverb: bool = True,
) -> SceneResult:
    """Reverberant shoebox room: sources at given directions/distances from the array.

    The array frame axes equal the room axes. The array centre is drawn at random (>= 0.5 m from
    every wall, height 0.7-1.8 m clipped to the room; up to 50 draws are tried to fit every source
    at its requested distance) unless ``array_centre`` (room coordinates) is given. Each source is
    placed at centre + distance * direction; if that is not >= 0.3 m inside every wall the distance
    is shrunk (not below 0.5 m, else ValueError) and the actual distance is reported.
    ``room_dim`` is drawn between 3 x 3 x 2.5 and 10 x 8 x 4 m when None.

    Walls get the energy absorption of Sabine's formula for ``rt60``
    (``pyroomacoustics.inverse_sabine``); image sources up to ``max_order`` (default: what
    ``rt60`` needs, capped at :data:`ISM_ORDER_CAP`) give the early response; if that order is
    below what ``rt60`` needs and ``late_reverb`` is True, a diffuse tail decaying at exactly
    ``rt60`` completes the response. No air absorption, no randomised ISM, no ray tracing.

    Noise: ``snr_db`` sets white sensor noise (independent per mic) and ``diffuse_noise_db``
    spherically-isotropic pink noise, each as a ratio in dB of the mean reverberant source power at
    the mics to that noise's power (higher = quieter noise; None = none).

    The output is aligned with the dry signals: pyroomacoustics' filter delay and the integer
    part of each source's propagation delay to the array centre are removed, and it is trimmed
    to the longest dry signal.

    ``mic_positions`` ``[shape=(mics, 3)]`` in the array frame.
    """
    import pyroomacoustics as pra

    mics = as_mic_positions(mic_positions)
    if not sources:
        raise ValueError("room_scene needs at least one source")
    if rt60 <= 0:
        raise ValueError(f"rt60 must be positive, got {rt60}")
    sigs = [as_signal(s.signal, f"source {i} signal") for i, s in enumerate(sources)]
    for i, s in enumerate(sources):
        if not s.distance_m > 0:
            raise ValueError(f"source {i}: distance_m must be positive, got {s.distance_m}")
    n = max(s.shape[0] for s in sigs)
    margins = _array_margins(mics)

    # room and wall absorption
    for attempt in range(100):
        if room_dim is None:
            dim = np.array([rng.uniform(a, b) for a, b in zip(_ROOM_MIN, _ROOM_MAX)])
            if attempt:  # the room was too large for a short rt60: shrink the draw
                dim = np.maximum(np.array(_ROOM_MIN), dim * 0.97**attempt)
        else:
            dim = np.asarray(room_dim, dtype=np.float64).reshape(3)
        try:
            e_absorption, needed_order = pra.inverse_sabine(rt60, dim, c=speed_of_sound)
            break
        except ValueError as exc:
            if room_dim is not None or attempt == 99:
                raise ValueError(
                    f"rt60 {rt60} s is too short for room {tuple(float(v) for v in dim)} "
                    f"(Sabine absorption > 1): {exc}"
                ) from None

    # array centre and source positions
    if array_centre is not None:
        centre = np.asarray(array_centre, dtype=np.float64).reshape(3)
        if np.any(centre + mics.min(axis=0) <= 0) or np.any(centre + mics.max(axis=0) >= dim):
            raise ValueError("array_centre puts microphones outside the room")
        positions, _ = _place_sources(centre, dim, sources)
    else:
        best = None
        for _ in range(50):
            centre = _sample_centre(rng, dim, margins)
            try:
                positions, worst = _place_sources(centre, dim, sources)
            except ValueError as exc:
                if best is None:
                    best = (None, None, -1.0, exc)
                continue
            if best is None or worst > best[2]:
                best = (centre, positions, worst, None)
            if worst >= 1.0:
                break
        if best[0] is None:
            raise best[3]
        centre, positions = best[0], best[1]

    order = needed_order if max_order is None else int(max_order)
    if max_order is None:
        order = min(order, ISM_ORDER_CAP)
    order = max(order, 0)
    add_tail = late_reverb and order < needed_order

    room = pra.ShoeBox(
        dim,
        fs=sample_rate,
        materials=pra.Material(e_absorption),
        max_order=order,
        air_absorption=False,
        ray_tracing=False,
        use_rand_ism=False,
    )
    room.set_sound_speed(speed_of_sound)
    for p in positions:
        room.add_source(p)
    room.add_microphone_array((centre[None, :] + mics).T)
    room.compute_rir()

    offset = pra.constants.get("frac_delay_length") // 2
    n_mics = mics.shape[0]
    mixing = diffuse_mixing(mics, diffuse_frame(sample_rate), sample_rate, speed_of_sound)
    if add_tail:
        n_tail = int(math.ceil(rt60 * sample_rate)) + int(0.01 * sample_rate)
        direct_max = max(
            float(np.max(np.linalg.norm(centre + mics - p, axis=1))) for p in positions
        ) / speed_of_sound
        t_complete = max(0.8 * order * _r_min(dim) / speed_of_sound, direct_max + 0.02)

    clean = np.zeros((n, n_mics), dtype=np.float64)
    for s, (sig, p) in enumerate(zip(sigs, positions)):
        taps = max(len(room.rir[m][s]) for m in range(n_mics))
        h = np.zeros((n_mics, taps))
        for m in range(n_mics):
            r = room.rir[m][s]
            h[m, : len(r)] = r
        if add_tail:
            tail = diffuse_synth(mixing, n_tail, sample_rate, rng, 0.0)
            h = _late_tail_rir(h, t_complete, rt60, sample_rate, offset, tail)
        shift = offset + int(round(np.linalg.norm(p - centre) / speed_of_sound * sample_rate))
        # Only the signal's non-zero span is convolved: a moving source is many short segments.
        nonzero = np.flatnonzero(sig)
        if nonzero.size == 0:
            continue
        first, last = int(nonzero[0]), int(nonzero[-1]) + 1
        nfft = scipy.fft.next_fast_len(last - first + h.shape[1] - 1, real=True)
        y = scipy.fft.irfft(
            scipy.fft.rfft(h, nfft, axis=1) * scipy.fft.rfft(sig[first:last], nfft)[None, :], nfft, axis=1
        )
        # y[:, k] is the output at sample first + k; keep output samples [0, n) after the shift
        lo = max(0, shift - first)
        seg = y[:, lo : lo + n - max(0, first - shift)]
        start = max(0, first - shift)
        clean[start : start + seg.shape[1]] += seg.T

    audio = clean.copy()
    signal_power = float(np.mean(clean**2))
    if diffuse_noise_db is not None:
        noise = diffuse_synth(mixing, n, sample_rate, rng, 1.0)
        audio += noise * math.sqrt(signal_power * 10.0 ** (-diffuse_noise_db / 10.0))
    if snr_db is not None:
        audio += math.sqrt(signal_power * 10.0 ** (-snr_db / 10.0)) * rng.standard_normal(audio.shape)

    true_dirs = []
    for p in positions:
        v = p - centre
        az, el = vector_to_angles(v)
        true_dirs.append((az, el, float(np.linalg.norm(v))))

    return SceneResult(
        audio=audio.astype(np.float32),
        sample_rate=int(sample_rate),
        sources=true_dirs,
        room_dim=tuple(float(v) for v in dim),
        rt60=float(rt60),
        array_centre=centre,
        source_positions=np.array(positions, dtype=np.float64).reshape(-1, 3),
        clean=clean.astype(np.float32),
        snr_db=snr_db,
        diffuse_noise_db=diffuse_noise_db,
        ism_order=order,
    )

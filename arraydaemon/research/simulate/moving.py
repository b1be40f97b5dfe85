"""A source moving along a path of directions, rendered as cross-faded static segments in a room."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from arraydaemon.research.simulate.geometry import as_signal
from arraydaemon.research.simulate.room import SceneResult, SourceSpec, room_scene

__all__ = ["MovingSceneResult", "moving_source_scene", "moving_sources_scene", "path_segments"]


@dataclass
class MovingSceneResult:
    """Output of :func:`moving_source_scene`.

    ``scene``: the room scene (``scene.audio`` float32 ``[shape=(samples, mics)]``, ...); its
    ``sources`` list the static sources first, then one entry per segment of the moving source.
    ``times_s``, ``azimuth_deg``, ``elevation_deg`` ``[shape=(segments,)]``: centre time of each
    segment and the moving source's true direction during it (azimuth unwrapped, i.e. continuous).
    """

    scene: SceneResult
    times_s: np.ndarray
    azimuth_deg: np.ndarray
    elevation_deg: np.ndarray
    static_sources: int = 0

    def direction_at(self, t_s) -> tuple[np.ndarray, np.ndarray]:
        """True ``(azimuth_deg in (-180, 180], elevation_deg)`` of the moving source at times
        ``t_s`` (seconds, scalar or array), interpolated between segment centres."""
        az = np.interp(t_s, self.times_s, self.azimuth_deg)
        el = np.interp(t_s, self.times_s, self.elevation_deg)
        az = 180.0 - np.mod(180.0 - az, 360.0)  # (-180, 180]
        return az, el


def path_segments(signal: np.ndarray, path, distance_m: float, sample_rate: int,
              segment_s: float) -> tuple[list[SourceSpec], list[float]]:
    """``signal`` cut into raised-cosine segments placed along ``path`` (see :func:`moving_source_scene`):
    one :class:`SourceSpec` per non-silent segment, and its centre time. The segments sum to
    ``signal``; rendered in free field they give the moving source's direct path."""
    sig = as_signal(signal, "signal")
    way = np.asarray(path, dtype=np.float64)
    if way.ndim != 2 or way.shape[1] != 3 or way.shape[0] < 1 or np.any(np.diff(way[:, 0]) <= 0):
        raise ValueError("path must be a list of (time_s, azimuth_deg, elevation_deg) with increasing times")
    n = sig.shape[0]
    hop = max(1, int(round(segment_s * sample_rate)))
    window = 0.5 - 0.5 * np.cos(np.pi * (np.arange(2 * hop) + 0.5) / hop)
    starts = np.arange(-hop, n, hop)  # segment k covers [start, start + 2 hop)
    total = np.zeros(n)
    for s0 in starts:
        lo, hi = max(0, s0), min(n, s0 + 2 * hop)
        total[lo:hi] += window[lo - s0 : hi - s0]
    specs, times = [], []
    for s0 in starts:
        lo, hi = max(0, s0), min(n, s0 + 2 * hop)
        piece = np.zeros(n)
        piece[lo:hi] = sig[lo:hi] * window[lo - s0 : hi - s0] / total[lo:hi]
        if not np.any(piece):
            continue  # silent segment: nothing to render
        t_c = (s0 + hop) / sample_rate
        az = float(np.interp(t_c, way[:, 0], way[:, 1]))
        el = float(np.interp(t_c, way[:, 0], way[:, 2]))
        specs.append(SourceSpec(piece, az, el, distance_m))
        times.append(t_c)
    return specs, times


def moving_sources_scene(
    mic_positions: np.ndarray,
    movers: list[tuple[np.ndarray, list[tuple[float, float, float]], float]],
    *,
    sample_rate: int,
    rt60: float,
    rng: np.random.Generator,
    static_sources: list[SourceSpec] = (),
    segment_s: float = 0.1,
    **room_kwargs,
) -> tuple[SceneResult, list[MovingSceneResult]]:
    """Several sources moving along paths in one :func:`room_scene` room, plus static sources.

    ``movers``: ``(signal [shape=(samples,)], path, distance_m)`` each, rendered as
    :func:`moving_source_scene` renders one. Returns the scene and, per mover, a
    :class:`MovingSceneResult` (sharing the scene) with its true directions over time.
    """
    statics = list(static_sources)
    specs: list[SourceSpec] = list(statics)
    spans, times = [], []
    for signal, path, distance in movers:
        segs, t = path_segments(signal, path, distance, sample_rate, segment_s)
        if not segs:
            raise ValueError("a moving source's signal is silent")
        spans.append((len(specs), len(specs) + len(segs)))
        specs.extend(segs)
        times.append(np.array(t))
    scene = room_scene(mic_positions, specs, sample_rate=sample_rate, rt60=rt60, rng=rng, **room_kwargs)
    results = []
    for (lo, hi), t in zip(spans, times):
        moving = np.array([s[:2] for s in scene.sources[lo:hi]], dtype=np.float64).reshape(-1, 2)
        azimuth = np.degrees(np.unwrap(np.radians(moving[:, 0])))
        results.append(MovingSceneResult(scene, t, azimuth, moving[:, 1], len(statics)))
    return scene, results


def moving_source_scene(
    mic_positions: np.ndarray,
    signal: np.ndarray,
    path: list[tuple[float, float, float]],
    *,
    sample_rate: int,
    rt60: float,
    rng: np.random.Generator,
    static_sources: list[SourceSpec] = (),
    distance_m: float = 1.5,
    segment_s: float = 0.1,
    **room_kwargs,
) -> MovingSceneResult:
    """A source moving along ``path`` in a :func:`room_scene` room, plus optional static sources.

    ``path``: waypoints ``(time_s, azimuth_deg, elevation_deg)`` with increasing times; the
    direction is interpolated linearly between them (azimuth as given, so 170 → 190 passes behind
    the array) and held before the first and after the last. ``signal [shape=(samples,)]`` is cut
    into raised-cosine segments of ``2 * segment_s`` overlapping by half (they sum to exactly 1);
    each segment is rendered from the path's direction at its centre, at ``distance_m``, through
    the same room as the static sources, so the motion is a cross-faded sequence of steps of
    ``segment_s`` seconds (with every segment's own reverberation). ``room_kwargs`` go to
    :func:`room_scene` (``room_dim``, ``array_centre``, ``snr_db``, ``max_order``, ...).
    """
    _, (result,) = moving_sources_scene(mic_positions, [(signal, path, distance_m)], sample_rate=sample_rate,
                                        rt60=rt60, rng=rng, static_sources=static_sources, segment_s=segment_s,
                                        **room_kwargs)
    return result

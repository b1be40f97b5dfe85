"""ODAS beside arraydaemon in the tracking benchmark: ODAS's tracked sources (``sst``) on a scene,
as ``tracks`` messages at the pipeline's window times, for :func:`score.score_scene`.

ODAS runs with its stock settings on the scene's samples (``research/odas.py``); its tracks are all
tracked sources it outputs (id > 0), as a subscriber of its ``tracked`` output would read them. At
each of the pipeline's window ends (every hop from the first full window) the latest ODAS frame
ending by then is taken.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from arraydaemon.core.options import FrameLayout, PipelineOptions
from arraydaemon.research import dataset, odas
from arraydaemon.research.tracking.scenes import TrackingScene


def odas_messages(scene: TrackingScene, odaslive: str, options: PipelineOptions = PipelineOptions(),
                  work: Path | None = None) -> list:
    """``(profile, t_end, [(id, unit vector), ...])`` per pipeline window from ODAS run on ``scene``
    (its files under ``work``, else a temporary directory)."""
    profile = dataset.geometry_profile(scene.mics, "tracking")
    with tempfile.TemporaryDirectory(prefix="odas-") as tmp:
        frames = odas.run_odas(odaslive, profile, scene.audio, Path(work or tmp) / scene.name)
    if not frames:
        raise RuntimeError(f"{odaslive} wrote no tracked frames for {scene.name}")
    layout = FrameLayout.from_config(options.features, profile.sample_rate)
    hop = layout.hop_frames * layout.frame_hop
    window = layout.n_fft + (layout.window_frames - 1) * layout.frame_hop
    ends = np.array([stamp * odas.HOP for stamp, _ in frames])
    out = []
    for end in range(window, len(scene.audio) + 1, hop):
        k = int(np.searchsorted(ends, end, side="right")) - 1
        tracks = [(sid, v) for sid, v, _ in frames[k][1]] if k >= 0 else []
        out.append((profile, end / profile.sample_rate, tracks))
    if not out:
        raise ValueError(f"{scene.name}: too short for one window")
    return out

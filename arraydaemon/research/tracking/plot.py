"""A picture of one scene's tracks against the truth (matplotlib, the ``train`` extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from arraydaemon.core import grids
from arraydaemon.research.tracking.score import SceneScore


def _angle(score: SceneScore, vectors: np.ndarray) -> np.ndarray:
    """What the geometry measures, in degrees: the angle from the axis (linear arrays), else azimuth."""
    if score.kind == "linear":
        return np.degrees(np.arccos(np.clip(vectors @ np.asarray(score.orient), -1.0, 1.0)))
    return grids.vector_to_azel(vectors)[0]


def plot_scene(score: SceneScore, path: Path, title: str = "") -> Path:
    """Azimuth (planar and 3-D arrays; linear arrays: angle from the axis) over time: each talker's
    truth (bold where speaking) and each track id's reports as dots of one colour. Returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=110)
    talkers = sorted({k for _, k, _, _ in score.truth_log})
    for k in talkers:
        rows = [(t, v, speaking) for t, kk, v, speaking in score.truth_log if kk == k]
        t = np.array([r[0] for r in rows])
        az = _angle(score, np.array([r[1] for r in rows]))
        az[1:][np.abs(np.diff(az)) > 180.0] = np.nan  # no line across the ±180° wrap
        speaking = np.array([r[2] for r in rows])
        ax.plot(t, az, color="0.8", lw=1, zorder=1)
        ax.plot(t, np.where(speaking, az, np.nan), color="0.35", lw=3, zorder=1,
                label="talkers (bold: speaking)" if k == talkers[0] else None)
    ids = sorted({i for _, i, _ in score.track_log})
    cmap = plt.get_cmap("tab10")
    for n, track_id in enumerate(ids):
        rows = [(t, v) for t, i, v in score.track_log if i == track_id]
        t = np.array([r[0] for r in rows])
        az = _angle(score, np.array([r[1] for r in rows]))
        ax.scatter(t, az, s=9, color=cmap(n % 10), zorder=2, label=f"track {track_id}")
    ax.set_xlabel("capture time (s)")
    ax.set_ylabel("angle from the array axis (°)" if score.kind == "linear" else "azimuth (°)")
    ax.set_ylim(*((-5, 185) if score.kind == "linear" else (-185, 185)))
    ax.set_title(title or f"{score.scene}: {score.geometry}, {score.mics} mics, RT60 {score.rt60:.2f} s")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path

"""``profile verify --plot OUT.png``: per mic pair, the histogram of observed delays against the
range the declared geometry allows, and the diffuse-noise coherence with its fitted sinc.

Needs matplotlib (the ``train`` extra); :func:`require_matplotlib` says so in one line.
"""

from __future__ import annotations

import math

import numpy as np

from arraydaemon.core.errors import UserError
from arraydaemon.verify.report import Report

MAX_PAIRS = 28  # the 28 pairs of 8 mics; larger arrays show their first 28


def require_matplotlib() -> None:
    """Raise a one-line :class:`UserError` when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install 'arraydaemon[train]'") from None


def save_plot(report: Report, path: str) -> None:
    """Draw the pairs' delay histograms and coherence fits of ``report`` into ``path`` (PNG)."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [p for p in report.pairs if p.hist is not None][:MAX_PAIRS]
    if not pairs:
        raise UserError("--plot: no pair of working mics to draw")
    cols = min(7, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    fig, axes = plt.subplots(2 * rows, cols, figsize=(2.6 * cols, 2.2 * 2 * rows), squeeze=False)
    freqs = report.coherence.freqs if report.coherence is not None else None
    span = 1.6 * max(max(p.allowed_delay_s, p.max_observed_delay_s or 0.0) for p in pairs) * 1e6
    for k, p in enumerate(pairs):
        ax = axes[k // cols][k % cols]
        centres = 0.5 * (p.edges_s[1:] + p.edges_s[:-1]) * 1e6
        bad = "exceeds" in p.problems
        ax.bar(centres, p.hist, width=(p.edges_s[1] - p.edges_s[0]) * 1e6, color="tab:red" if bad else "tab:blue")
        for x in (-p.allowed_delay_s, p.allowed_delay_s):
            ax.axvline(x * 1e6, color="k", ls="--", lw=0.8)
        if p.max_observed_delay_s is not None:
            for x in (-p.max_observed_delay_s, p.max_observed_delay_s):
                ax.axvline(x * 1e6, color="tab:orange", lw=0.8)
        ax.set_xlim(-span, span)
        ax.set_title(f"mics {p.mics[0]}-{p.mics[1]} (ch {p.channels[0]}-{p.channels[1]})", fontsize=8)
        ax.tick_params(labelsize=6)
        if k % cols == 0:
            ax.set_ylabel("weight", fontsize=7)
        ax.set_xlabel("delay µs (dashed: allowed)", fontsize=6)
        cax = axes[rows + k // cols][k % cols]
        if freqs is not None and p.coherence is not None:
            cax.plot(freqs / 1000, p.coherence, lw=0.6, color="tab:gray", label="measured")
            if p.coherence_model is not None:
                cax.plot(freqs / 1000, p.coherence_model, lw=1.0, color="tab:green",
                         label=f"fit {p.coherence_distance_m * 100:.1f} cm")
            d = p.declared_m
            cax.plot(freqs / 1000, np.sinc(2 * freqs * d / report.speed_of_sound), lw=0.8, ls="--", color="k",
                     label=f"declared {d * 100:.1f} cm")
            cax.legend(fontsize=5, loc="upper right")
        cax.set_ylim(-0.5, 1.05)
        cax.set_title(f"coherence {p.mics[0]}-{p.mics[1]}", fontsize=8)
        cax.tick_params(labelsize=6)
        cax.set_xlabel("kHz", fontsize=6)
    for k in range(len(pairs), rows * cols):
        axes[k // cols][k % cols].axis("off")
        axes[rows + k // cols][k % cols].axis("off")
    fig.suptitle(report.verdict()[:160], fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise UserError(f"--plot: cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)

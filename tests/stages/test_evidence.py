"""The evidence tests of stages/evidence.py on hand-made power sequences: stationary noise is not
evidence once the floor is known, an onset is, a decaying tail is not."""

from __future__ import annotations

import numpy as np

from arraydaemon.stages.evidence import EvidenceBins

FRAME_S = 0.016


def _bins(rise: float = 1.2, floor_s: float = 1.5, margin_db: float = 0.0) -> EvidenceBins:
    return EvidenceBins(4, FRAME_S, floor_s, margin_db, rise)


def test_stationary_noise_counts_far_less_once_the_floor_is_known():
    # A fan: the same exponentially distributed power in every bin, frame after frame. The onset test
    # alone passes its upward fluctuations; with the floor known, most of those go too.
    def share(ev: EvidenceBins) -> float:
        rng = np.random.default_rng(1)
        kept = [ev.update(rng.exponential(1.0, 4)) for _ in range(400)]  # 6.4 s
        return float(np.mean(kept[200:]))

    onset_only, both = share(_bins(floor_s=0.0)), share(_bins())
    assert both < 0.7 * onset_only, (both, onset_only)
    assert share(_bins(margin_db=6.0)) < 0.02


def test_an_onset_above_the_floor_counts_and_its_decay_does_not():
    rng = np.random.default_rng(2)
    ev = _bins()
    for _ in range(200):
        ev.update(rng.exponential(0.01, 4))
    onset = ev.update(np.full(4, 10.0))  # 30 dB above the floor
    assert onset.all()
    sustained = [ev.update(np.full(4, 10.0)) for _ in range(5)]
    assert all(s.all() for s in sustained)  # steady speech keeps counting
    decay = [ev.update(np.full(4, 10.0 * 0.5 ** (k + 1))) for k in range(6)]  # halving every frame
    assert not any(d.any() for d in decay)


def test_disabled_tests_keep_every_bin():
    ev = _bins(rise=0.0, floor_s=0.0)
    assert all(ev.update(np.full(4, p)).all() for p in (1.0, 0.1, 5.0, 0.0))


def test_reset_forgets_the_floor():
    ev = _bins(rise=0.0)
    for _ in range(300):
        ev.update(np.full(4, 1.0))
    assert not ev.update(np.full(4, 1.0)).any()
    ev.reset()
    assert ev.update(np.full(4, 1.0)).all()  # floor unknown again: every bin counts

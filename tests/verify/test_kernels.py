"""The map-scoring kernels against their numpy references (within 1e-5), and bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from arraydaemon.verify import kernels, reference

pytestmark = pytest.mark.usefixtures("kernel_backend")


def _case(seed: int, n_ch: int = 5, n_mics: int = 4, n_win: int = 7):
    rng = np.random.default_rng(seed)
    mics = rng.normal(0, 0.04, (n_mics, 3))
    pos = mics - mics.mean(axis=0)
    u, s, vt = np.linalg.svd(pos, full_matrices=False)
    pinv = (vt.T / s) @ u.T
    tau = rng.normal(0, 2e-4, (n_win, n_ch))
    weight = rng.uniform(0, 1, n_win)
    maps = np.array(list(itertools.permutations(range(n_ch), n_mics))[:50], dtype=np.intp)
    return tau, weight, maps, pos, pinv


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tdoa_scores_match_reference(seed):
    tau, weight, maps, pos, pinv = _case(seed)
    args = (tau, weight, maps, pos, pinv, 5e-5, 343.0, (0.8, 1.2), 0.1)
    np.testing.assert_allclose(kernels.tdoa_scores(*args), reference.tdoa_scores(*args), atol=1e-5)


def test_tdoa_scores_best_for_the_true_map():
    rng = np.random.default_rng(5)
    mics = np.array([[0.05, 0, 0], [0, 0.04, 0], [-0.045, 0.01, 0], [0.01, -0.05, 0]])
    pos = mics - mics.mean(axis=0)
    u, s, vt = np.linalg.svd(pos, full_matrices=False)
    keep = s > 1e-3
    pinv = (vt[keep].T / s[keep]) @ u[:, keep].T
    az = rng.uniform(-np.pi, np.pi, 20)
    dirs = np.stack([np.cos(az), np.sin(az), np.zeros(20)], axis=1)
    true = np.array([2, 0, 3, 1])
    tau = np.zeros((20, 4))
    tau[:, true] = -(dirs @ mics.T) / 343.0
    maps = np.array(list(itertools.permutations(range(4))), dtype=np.intp)
    scores = kernels.tdoa_scores(tau, np.ones(20), maps, pos, pinv, 2e-5, 343.0, (0.0, 1.2), 0.1)
    assert np.array_equal(maps[np.argmax(scores)], true)


@pytest.mark.parametrize("seed", [0, 3])
def test_srp_scores_match_reference(seed):
    rng = np.random.default_rng(seed)
    n_ch, n_mics, max_lag = 5, 4, 20
    pairs = list(itertools.combinations(range(n_ch), 2))
    pair_row = -np.ones((n_ch, n_ch), dtype=np.intp)
    for p, (a, b) in enumerate(pairs):
        pair_row[a, b] = pair_row[b, a] = p
    tables = rng.normal(0, 0.3, (6, len(pairs), 2 * max_lag + 1)).astype(np.float32)
    maps = np.array(list(itertools.permutations(range(n_ch), n_mics))[::7], dtype=np.intp)
    lag_pos = rng.uniform(-25, 25, (30, n_mics * (n_mics - 1) // 2))  # some beyond the table: clipped
    got = kernels.srp_scores(tables, pair_row, maps, lag_pos, max_lag)
    want = reference.srp_scores(tables, pair_row, maps, lag_pos, max_lag)
    assert got.shape == (len(maps), 6) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_kernels_reject_bad_input():
    tau, weight, maps, pos, pinv = _case(0)
    with pytest.raises(TypeError):
        kernels.tdoa_scores(tau.astype(np.float32), weight, maps, pos, pinv, 5e-5, 343.0, (0, 1.2), 0.1)
    with pytest.raises(ValueError, match="below"):
        kernels.tdoa_scores(tau, weight, maps + 10, pos, pinv, 5e-5, 343.0, (0, 1.2), 0.1)
    with pytest.raises(ValueError, match="twice"):
        kernels.tdoa_scores(tau, weight, np.array([[0, 0, 1, 2]], dtype=np.intp), pos, pinv, 5e-5, 343.0, (0, 1.2), 0.1)
    with pytest.raises(ValueError, match="windows"):
        kernels.tdoa_scores(tau, weight[:3], maps, pos, pinv, 5e-5, 343.0, (0, 1.2), 0.1)
    with pytest.raises(ValueError, match="positive"):
        kernels.tdoa_scores(tau, weight, maps, pos, pinv, 0.0, 343.0, (0, 1.2), 0.1)
    pair_row = np.zeros((5, 5), dtype=np.intp)
    tables = np.zeros((2, 10, 41), dtype=np.float32)
    with pytest.raises(ValueError, match="pairs"):
        kernels.srp_scores(tables, pair_row, maps, np.zeros((3, 5)), 20)
    with pytest.raises(ValueError, match="lags"):
        kernels.srp_scores(tables, pair_row, maps, np.zeros((3, 6)), 19)

"""core/assignment.py: its numba kernel against scipy's linear_sum_assignment (the reference), on every
shape the tracker makes and on hostile costs (ties, the tracker's 1e6 "gated out" entries)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import linear_sum_assignment

from arraydaemon.core.assignment import min_cost_assignment

pytestmark = pytest.mark.usefixtures("kernel_backend")

costs = st.tuples(st.integers(0, 9), st.integers(0, 9)).flatmap(
    lambda shape: arrays(float, shape, elements=st.one_of(st.sampled_from([0.0, 1.0, 1e6]),
                                                          st.floats(0.0, 50.0, allow_nan=False))))


@given(costs)
def test_the_total_cost_is_scipys(cost):
    rows, cols = min_cost_assignment(cost)
    ref_rows, ref_cols = linear_sum_assignment(cost)
    assert len(rows) == len(ref_rows) == min(cost.shape)
    assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
    assert list(rows) == sorted(rows)
    assert cost[rows, cols].sum() == pytest.approx(cost[ref_rows, ref_cols].sum(), rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (5, 1), (3, 3), (2, 6), (8, 4), (8, 8), (10, 3), (20, 30)])
def test_the_matching_is_scipys_where_it_is_unique(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(50):
        cost = rng.uniform(0, 30, shape)
        cost[rng.random(shape) < 0.3] = 1e6  # gated out, as the tracker marks them
        rows, cols = min_cost_assignment(cost)
        ref_rows, ref_cols = linear_sum_assignment(cost)
        assert rows.tolist() == ref_rows.tolist() and cols.tolist() == ref_cols.tolist()


def test_bad_costs_are_refused():
    with pytest.raises(ValueError, match="2-D"):
        min_cost_assignment(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        min_cost_assignment(np.array([[np.inf, 1.0]]))
    rows, cols = min_cost_assignment(np.zeros((0, 3)))
    assert rows.size == cols.size == 0

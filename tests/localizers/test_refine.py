"""Peak refinement (localizers/refine.py)."""

from __future__ import annotations

import numpy as np

from arraydaemon.core.grids import quadratic_vertex


def test_quadratic_vertex_of_a_paraboloid():
    patch = np.stack(np.meshgrid([-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]), axis=-1).reshape(-1, 2) * 0.5
    x0, y0 = 0.2, -0.35
    dx, dy = patch[:, 0] - x0, patch[:, 1] - y0
    values = 3.0 - 2.0 * dx**2 - 1.0 * dy**2 + 0.8 * dx * dy
    np.testing.assert_allclose(quadratic_vertex(values, patch), [x0, y0], atol=1e-12)
    assert quadratic_vertex(-values, patch) is None  # curving up: no maximum
    line = patch[3:6]
    np.testing.assert_allclose(quadratic_vertex(1.0 - (line[:, 0] - 0.1) ** 2, line), [0.1, 0.0], atol=1e-12)

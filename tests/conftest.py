"""Fixtures shared across the test tree. Plain helpers (scenes, pipeline runners, array
geometries, paths) are in ``tests/helpers.py``; the markers are registered in pyproject.toml:

- ``live``: needs a JACK/PortAudio device, or real processes talking over sockets for seconds;
- ``sim``: builds simulated rooms (pyroomacoustics) or speech (espeak-ng), or trains a model;
- ``slow``: takes more than about 5 s.

``pytest -m "not live and not sim"`` is the quick run; ``pytest tests/stages -m "not sim"`` one stage.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Property-based tests: a quick budget by default, thousands of inputs per test in the full run
# (tools/test.sh, which CI runs, sets HYPOTHESIS_PROFILE=thorough). No example database: runs
# are reproducible from the printed seed and leave no files behind.
settings.register_profile("quick", max_examples=100, deadline=None, database=None)
settings.register_profile("thorough", max_examples=2000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))


@pytest.fixture(scope="session")
def speech():
    """3 s of espeak-ng speech at 16 kHz (seed 2024), for the reverberant-room scenes."""
    from arraydaemon.research import simulate

    return simulate.speech_source(np.random.default_rng(2024), 3.0, 16000)


@pytest.fixture(scope="module", params=["compiled", "jit"])
def kernel_backend(request):
    """Runs a module's tests with each build of the kernels (``core/compiled.py``): the compiled module
    (skipped where it is not built, unless ``ARRAYDAEMON_REQUIRE_COMPILED`` is set, as tools/test.sh
    does) and numba's JIT. Use with ``pytestmark = pytest.mark.usefixtures("kernel_backend")``."""
    import importlib

    from arraydaemon.core import compiled

    if request.param == "compiled" and compiled.compiled_problem() is not None:
        if os.environ.get("ARRAYDAEMON_REQUIRE_COMPILED"):
            pytest.fail(compiled.compiled_problem())
        pytest.skip(compiled.compiled_problem())
    backend = compiled.kernels(request.param)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("arraydaemon.core.kernels", "arraydaemon.core.assignment", "arraydaemon.verify.kernels"):
            patch.setattr(importlib.import_module(name), "_k", backend)
        yield request.param

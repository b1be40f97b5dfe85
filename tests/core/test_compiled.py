"""core/compiled.py: the kernels compiled ahead of time give numba's JIT results, and with them the
running daemon imports neither numba nor llvmlite."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from arraydaemon.core import compiled

PROBLEM = compiled.compiled_problem()
needs_compiled = pytest.mark.skipif(PROBLEM is not None and not os.environ.get("ARRAYDAEMON_REQUIRE_COMPILED"),
                                    reason=str(PROBLEM))


def operands():
    """Every kernel's operands at the daemon's sizes (8 mics, 28 pairs, a 16-frame window)."""
    rng = np.random.default_rng(7)
    spec = (rng.standard_normal((16, 8, 257)) + 1j * rng.standard_normal((16, 8, 257))).astype(np.complex64)
    pairs = np.array(list(itertools.combinations(range(8), 2)), dtype=np.intp)
    pi, pj = pairs[:, 0].copy(), pairs[:, 1].copy()
    keep = rng.random((16, 257)) < 0.6
    gcc = (rng.standard_normal((28, 257)) + 1j * rng.standard_normal((28, 257))).astype(np.complex64)
    k = np.arange(6, 225)[:, None] * np.arange(-29, 30)[None, :] * 2 * np.pi / 2048
    steer_re, steer_im = np.cos(k).astype(np.float32), np.sin(k).astype(np.float32)
    lags = rng.standard_normal((28, 59)).astype(np.float32)
    pos = rng.random((28, 900)) * 57
    index, frac = np.floor(pos).astype(np.int32), (pos - np.floor(pos)).astype(np.float32)
    plane = rng.standard_normal((3, 28)) * 3e-4
    cost = rng.random((4, 6))
    tau = rng.normal(0, 2e-4, (7, 5))
    maps = np.array(list(itertools.permutations(range(5), 4))[:50], dtype=np.intp)
    pinv = rng.standard_normal((3, 4))
    tables = rng.standard_normal((7, 10, 21)).astype(np.float32)
    pair_row = rng.integers(0, 10, (5, 5)).astype(np.intp)
    return {
        "frames": (rng.standard_normal((2000, 8)).astype(np.float32), np.hanning(512), 256, 6),
        "gcc_phat": (gcc, 1e-20),
        "srp_phat": (gcc, 6, 225, 31.25, rng.standard_normal((50, 28)) * 3e-4, -1),
        "plane_srp": (gcc, 6, 225, 31.25, plane, rng.random((20, 2)) * 0.7),
        "climb_plane": (gcc, 6, 225, 31.25, plane, np.array([0.3, -0.2]), 0.1),
        "masked_pair_sum": (spec, pi, pj, keep, 6, 225),
        "phase_agreement": (spec, pi, pj, rng.standard_normal(8) * 3e-4, 6, 225, 31.25, 1e-20),
        "srp_lags_direct": (gcc, 6, 225, steer_re, steer_im),
        "srp_interp": (lags, index, frac),
        "assign": (cost, np.empty(4, dtype=np.int64)),
        "tdoa_scores": (tau, rng.random(7), maps, rng.standard_normal((4, 3)) * 0.04, pinv, 5e-5, 343.0, 0.8, 1.2,
                        0.1),
        "srp_scores": (tables, pair_row, maps, rng.random((30, 6)) * 20 - 10, 10),
    }


def test_every_export_has_operands_here():
    assert set(operands()) == {name for names in compiled.EXPORTS.values() for name in names}


@needs_compiled
@pytest.mark.parametrize("name", sorted(operands()))
def test_the_compiled_kernel_gives_the_jit_kernels_result(name):
    args = operands()[name]
    got = getattr(compiled.kernels("compiled"), name)(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    want = getattr(compiled.kernels("jit"), name)(*args)
    # The same code through the same LLVM: equal to float rounding (bitwise, measured on x86-64).
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)
    if name == "assign":  # the answer is filled in place
        out_c, out_j = np.full(4, -1, np.int64), np.full(4, -1, np.int64)
        assert compiled.kernels("compiled").assign(args[0], out_c) and compiled.kernels("jit").assign(args[0], out_j)
        assert np.array_equal(out_c, out_j) and sorted(set(out_c.tolist())) == sorted(out_c.tolist())


def test_a_module_compiled_for_missing_instructions_is_not_used(monkeypatch):
    if PROBLEM is not None:
        pytest.skip(PROBLEM)
    monkeypatch.setattr(compiled, "host_features", lambda: 0)
    built = int(compiled.kernels("compiled").build_features())
    if built == 0:
        pytest.skip("built for the generic processor: runs anywhere")
    assert "lacks" in compiled.compiled_problem()
    assert compiled.kernels("auto") is compiled.kernels("jit")


def test_the_backend_setting_is_checked():
    with pytest.raises(ValueError, match="ARRAYDAEMON_KERNELS"):
        compiled.kernels("fast")


@needs_compiled
@pytest.mark.slow
def test_a_replay_imports_neither_numba_nor_llvmlite(tmp_path):
    """The neural default and SRP-PHAT replay of the demo recording, in a fresh interpreter."""
    code = ("import sys\n"
            "from arraydaemon.cli import main\n"
            "for estimator in ('neural', 'srp-phat'):\n"
            "    main(['demo', '--fast', '--no-publish', '--estimator', estimator])\n"
            "heavy = sorted(m for m in ('numba', 'llvmlite', 'torch', 'rocket_fft') if m in sys.modules)\n"
            "assert not heavy, heavy\n"
            "print('ok')\n")
    env = {**os.environ, "ARRAYDAEMON_KERNELS": "auto"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]

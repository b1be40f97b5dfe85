"""``arraydaemon bench`` (research/bench.py): the tables print; no timing assertions (numbers go to
the benchmark pages, docs/benchmarks/)."""

from __future__ import annotations

import pytest

from arraydaemon.research.bench import neural_available, run_benchmarks

KERNEL_NAMES = ("stft", "gcc_phat", "srp_phat", "masked_pair_sum", "phase_agreement",
                "srp_lags", "srp_lags_direct", "srp_interp", "climb_plane")


def test_benchmark_prints_both_tables():
    lines: list[str] = []
    results = run_benchmarks([4], seconds=0.5, repeats=2, three_d=False, out=lines.append, neural=False)
    rows = [line for line in lines if line.startswith("| ")]
    assert rows[0].startswith("| array |") and rows[1].startswith("| 4 mics, UCA r=10 cm | 360 (ring, ")
    kernel_rows = [r for r in rows if r.split("|")[1].strip() in KERNEL_NAMES]
    assert len(kernel_rows) == len(KERNEL_NAMES)
    assert results["uca4"]["active"] == results["uca4"]["windows"]  # every window localized something
    assert all(t_fast > 0 and t_slow > 0 for t_fast, t_slow in results["kernels"].values())


def test_benchmark_times_the_neural_estimator_when_its_weights_are_installed():
    if not neural_available():
        pytest.skip("no neural weights installed (arraydaemon/data/neural.safetensors)")
    lines: list[str] = []
    results = run_benchmarks([4], seconds=0.3, repeats=1, three_d=False, out=lines.append, neural=True)
    rows = [line for line in lines if line.startswith("| 4 mics, UCA r=10 cm, neural |")]
    assert len(rows) == 1
    assert results["uca4_neural"]["windows"] >= 3 and results["uca4_neural"]["stages"]["localizer"][0] > 0

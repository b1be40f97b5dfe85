"""`arraydaemon eval`: error definitions, same-window pairing, and a small end-to-end run."""

from __future__ import annotations

import numpy as np
import pytest

from arraydaemon.research import simulate
from arraydaemon.research.evaluate import (
    SNR_BANDS,
    WindowRecord,
    ablation_table,
    band_label,
    both_answered,
    build_records,
    direction_error_deg,
    mic_count_label,
    plot_error_vs_rt60,
    report,
    summarize,
    target_lines,
)
from tests.helpers import tiny_weights

torch = pytest.importorskip("torch")


def test_planar_error_ignores_the_mirror_image_and_elevation():
    up = np.array([0.0, 0.0, 1.0])
    truth = simulate.direction_vector(40.0, 30.0)
    mirrored = simulate.direction_vector(43.0, -30.0)
    assert direction_error_deg(mirrored, truth, "planar", up) == pytest.approx(3.0, abs=1e-6)


def test_linear_error_is_the_cone_angle_error():
    axis = np.array([0.0, 1.0, 0.0])
    truth = simulate.direction_vector(60.0, 0.0)  # 30° from the axis
    same_cone = np.array([0.0, np.cos(np.radians(30.0)), 0.5])  # also 30° from the axis
    assert direction_error_deg(same_cone, truth, "linear", axis) == pytest.approx(0.0, abs=1e-6)
    assert direction_error_deg(simulate.direction_vector(0.0, 0.0), truth, "linear", axis) == pytest.approx(60.0)  # broadside


def _rec(est, err, window, rt60=0.6):
    return WindowRecord("unseen", "a", "planar", rt60, 10.0, est, err, window)


def test_both_answered_keeps_only_windows_every_estimator_answered():
    records = [_rec("neural", 5.0, "w1"), _rec("srp-phat", 1.0, "w1"),
               _rec("neural", 50.0, "w2"), _rec("srp-phat", None, "w2"),
               _rec("neural", None, "w3"), _rec("srp-phat", 3.0, "w3")]
    kept = both_answered(records)
    assert {r.window for r in kept} == {"w1"}
    rows = {r["estimator"]: r for r in summarize(records, lambda r: "all")}
    assert rows["neural"]["miss_rate"] == pytest.approx(1 / 3)
    assert rows["neural"]["mae_deg"] == pytest.approx(27.5)
    assert rows["srp-phat"]["within_10"] == pytest.approx(2 / 3)


def test_summarize_orders_bands_numerically():
    records = [WindowRecord("unseen", "a", "planar", 0.6, snr, "neural", 1.0, f"w{snr}") for snr in (20.0, -2.0, 8.0)]
    labels = [r["group"] for r in summarize(records, lambda r: band_label(r.snr_db, SNR_BANDS, "dB"))]
    assert labels == ["-5–5 dB", "5–15 dB", "15–30 dB"]
    assert band_label(30.0, SNR_BANDS, "dB") == "15–30 dB"  # the last band includes its top
    assert [mic_count_label(n) for n in (3, 4, 5, 16)] == ["3–4 mics", "3–4 mics", "5–8 mics", "9–16 mics"]
    assert [r["group"] for r in summarize(records, lambda r: r.array)] == ["a"]


def test_target_lines_measure_each_target_on_own_and_shared_windows():
    def dry(est, err, window, array):
        return WindowRecord("dry", array, "planar", 0.15, 25.0, est, err, window)

    records = [_rec("neural", 4.0, "w1"), _rec("srp-phat", 10.0, "w1"),
               _rec("neural", 30.0, "w2"), _rec("srp-phat", None, "w2"),
               _rec("neural", 1.0, "w3", rt60=0.2), _rec("srp-phat", 1.0, "w3", rt60=0.2),
               dry("neural", 1.0, "d1", "a"), dry("srp-phat", 1.0, "d1", "a"),
               dry("neural", 40.0, "d2", "a"), dry("srp-phat", None, "d2", "a"),
               dry("neural", 2.0, "d3", "b"), dry("srp-phat", 0.5, "d3", "b")]
    lines = target_lines(records)
    assert "neural MAE 17.0° vs SRP-PHAT 10.0° = 1.70× (target ≤ 0.60×: not met)" in lines[0]
    assert "windows both answered: neural MAE 4.0° vs SRP-PHAT 10.0° = 0.40× (target ≤ 0.60×: met)" in lines[1]
    assert "67 % (target ≥ 85 %: not met)" in lines[2]
    assert "own answers: neural at most +19.5° from SRP-PHAT (a) (target ≤ +1°: not met)" in lines[3]
    assert "both answered: neural at most +1.5° from SRP-PHAT (b) (target ≤ +1°: not met)" in lines[4]


@pytest.mark.sim
def test_small_evaluation_runs_every_estimator_on_the_same_windows(tmp_path):
    weights = tiny_weights(tmp_path / "w.safetensors")
    records = build_records(3, 0, weights, progress=False)
    assert records
    by_window: dict[str, set] = {}
    for r in records:
        by_window.setdefault(r.window, set()).add(r.estimator)
        assert r.error_deg is None or 0.0 <= r.error_deg <= 180.0
        assert 3 <= r.mics <= 16 and 3.0 <= r.aperture_cm <= 32.0
    assert all(ests == {"neural", "neural-head", "srp-phat", "srp-phat-ungated"} for ests in by_window.values())
    assert all(r.error_deg is not None for r in records if r.estimator == "srp-phat-ungated")
    text = report(records)
    assert "Unseen geometries by RT60" in text and "| srp-phat |" in text
    assert "Unseen geometries by number of mics" in text and "Unseen geometries by aperture" in text
    assert plot_error_vs_rt60(records, tmp_path / "p.png").stat().st_size > 1000


@pytest.mark.sim
def test_ablation_table_has_a_row_per_model_and_the_references(tmp_path):
    table = ablation_table({"a": tiny_weights(tmp_path / "a.safetensors", 1),
                            "b": tiny_weights(tmp_path / "b.safetensors", 2)}, 3)
    names = [line.split("|")[1].strip() for line in table.splitlines()[2:]]
    assert names == ["a", "b", "srp-phat (reference)", "srp-phat-ungated (reference)"]
    windows = {line.split("|")[2].strip() for line in table.splitlines()[2:]}
    assert len(windows) == 1 and int(windows.pop()) > 0  # every row scored on the same windows

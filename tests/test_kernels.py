"""Every numba kernel against its plain-numpy reference (arraydaemon/reference.py), to 1e-5."""

from __future__ import annotations

import numpy as np
import pytest

from arraydaemon import kernels, reference
from arraydaemon.features import hann

TOL = 1e-5


def assert_close(got: np.ndarray, want: np.ndarray) -> None:
    """Max abs difference within TOL of the reference's scale (its largest magnitude)."""
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    assert np.isfinite(got).all()
    scale = max(float(np.max(np.abs(want))), 1e-30) if want.size else 1.0
    err = float(np.max(np.abs(got.astype(np.complex128) - want))) if want.size else 0.0
    assert err <= TOL * scale, f"max error {err:.3g} vs scale {scale:.3g}"


def random_spectra(rng, shape) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


# --- stft ------------------------------------------------------------------------------------


@pytest.mark.parametrize("samples, mics, n_fft, hop", [
    (4000, 4, 512, 256),
    (1234, 1, 64, 32),
    (8001, 7, 512, 128),
    (3000, 16, 256, 256),
    (700, 3, 128, 200),  # hop longer than the frame
    (512, 2, 512, 256),  # exactly one frame
])
def test_stft_matches_reference(samples, mics, n_fft, hop):
    rng = np.random.default_rng(samples + mics)
    signal = rng.standard_normal((samples, mics)).astype(np.float32)
    window = hann(n_fft)
    got = kernels.stft(signal, window, hop)
    want = reference.stft(signal, window, hop)
    assert got.shape == (1 + (samples - n_fft) // hop, mics, n_fft // 2 + 1)
    assert_close(got, want)


def test_stft_too_short_and_non_contiguous_input():
    rng = np.random.default_rng(1)
    window = hann(256)
    assert kernels.stft(np.zeros((255, 3), np.float32), window, 128).shape == (0, 3, 129)
    # A Fortran-ordered (channel-major) array and a strided view are framed like their copies.
    fortran = np.asfortranarray(rng.standard_normal((2000, 5)).astype(np.float32))
    assert_close(kernels.stft(fortran, window, 128), reference.stft(np.ascontiguousarray(fortran), window, 128))
    view = rng.standard_normal((2000, 10)).astype(np.float32)[:, ::2]
    assert_close(kernels.stft(view, window, 100), reference.stft(view.copy(), window, 100))


def test_stft_is_the_same_for_a_signal_split_at_frame_boundaries():
    rng = np.random.default_rng(2)
    signal = rng.standard_normal((5000, 4)).astype(np.float32)
    window = hann(512)
    whole = kernels.stft(signal, window, 256)
    head = kernels.stft(signal[: 256 * 7 + 512], window, 256)
    tail = kernels.stft(signal[256 * 8:], window, 256)
    np.testing.assert_array_equal(np.concatenate([head, tail]), whole)


# --- cross_spectra ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape, ref", [((5, 4, 257), 0), ((1, 8, 129), 3), ((12, 2, 33), 1), ((3, 32, 257), 31)])
def test_cross_spectra_matches_reference(shape, ref):
    spec = random_spectra(np.random.default_rng(sum(shape)), shape)
    got = kernels.cross_spectra(spec, ref)
    assert_close(got, reference.cross_spectra(spec, ref))
    # the reference row is |X_ref|^2, real and non-negative
    assert np.all(got[:, ref].imag == 0) and np.all(got[:, ref].real >= 0)


# --- gcc_phat --------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 257), (8, 129), (1, 17), (32, 513)])
def test_gcc_phat_matches_reference(shape):
    rng = np.random.default_rng(shape[0] * shape[1])
    cross = random_spectra(rng, shape) * rng.uniform(1e-6, 1e3, shape).astype(np.float32)
    cross[0, :5] = 0  # digital silence: zero, not NaN
    got = kernels.gcc_phat(cross)
    assert_close(got, reference.gcc_phat(cross))
    assert np.all(got[0, :5] == 0)
    np.testing.assert_allclose(np.abs(got[cross != 0]), 1.0, atol=1e-6)


def test_gcc_phat_floor():
    cross = np.array([[1e-12 + 0j, 1e-3 + 1e-3j, 0j, 5 - 5j]], dtype=np.complex64)
    for floor in (1e-20, 1e-6):
        assert_close(kernels.gcc_phat(cross, floor), reference.gcc_phat(cross, floor))
    assert kernels.gcc_phat(cross, 1e-6)[0, 0] == 0
    assert kernels.gcc_phat(cross, 1e-20)[0, 0] == 1


# --- srp_phat --------------------------------------------------------------------------------


@pytest.mark.parametrize("mics, bins, dirs, band, ref", [
    (4, 257, 360, (7, 225), 0),
    (8, 129, 200, (1, 129), 5),
    (2, 33, 50, (0, 33), 1),
    (16, 257, 1000, (13, 200), 0),
    (6, 65, 10, (30, 31), 2),  # a single bin
])
def test_srp_phat_matches_reference(mics, bins, dirs, band, ref):
    rng = np.random.default_rng(mics * bins + dirs)
    gcc = random_spectra(rng, (mics, bins))
    gcc /= np.abs(gcc)
    bin_hz = 16000 / (2 * (bins - 1))
    tdoa = rng.uniform(-6e-4, 6e-4, (dirs, mics))
    tdoa[:, ref] = 0
    got = kernels.srp_phat(gcc, band, bin_hz, tdoa, ref)
    want = reference.srp_phat(gcc, band, bin_hz, tdoa, ref)
    assert got.shape == (dirs,)
    assert_close(got, want)


def test_srp_phat_peaks_at_the_true_fractional_delay():
    # A perfectly coherent plane wave: G_mk = exp(-j w_k tau_m) steers back to exactly 1.
    rng = np.random.default_rng(3)
    bins, bin_hz = 257, 31.25
    true_tau = np.array([0.0, 1.37e-4, -2.21e-4, 0.53e-4])
    f = np.arange(bins) * bin_hz
    gcc = np.exp(-2j * np.pi * f[None, :] * true_tau[:, None]).astype(np.complex64)
    tdoa = np.vstack([true_tau, rng.uniform(-3e-4, 3e-4, (20, 4))])
    tdoa[:, 0] = 0
    got = kernels.srp_phat(gcc, (7, 225), bin_hz, tdoa, 0)
    assert got[0] == pytest.approx(1.0, abs=1e-5)
    assert np.all(got[1:] < got[0])
    assert_close(got, reference.srp_phat(gcc, (7, 225), bin_hz, tdoa, 0))


# --- gcc_lags --------------------------------------------------------------------------------


@pytest.mark.parametrize("mics, n_fft, max_lag, upsample", [(4, 512, 10, 1), (8, 256, 40, 4), (3, 64, 31, 1),
                                                            (2, 512, 100, 8)])
def test_gcc_lags_matches_reference(mics, n_fft, max_lag, upsample):
    gcc = random_spectra(np.random.default_rng(n_fft + mics), (mics, n_fft // 2 + 1))
    got = kernels.gcc_lags(gcc, n_fft, max_lag, upsample)
    assert got.shape == (mics, 2 * max_lag + 1)
    assert_close(got, reference.gcc_lags(gcc, n_fft, max_lag, upsample))


def test_gcc_lags_coherent_pair_peaks_near_one_at_the_delay():
    n_fft, upsample, delay = 512, 4, 3.25  # samples; a multiple of 1/upsample
    k = np.arange(n_fft // 2 + 1)
    gcc = np.exp(-2j * np.pi * k * delay / n_fft)[None, :].astype(np.complex64)
    lags = kernels.gcc_lags(gcc, n_fft, 40, upsample)[0]
    assert np.argmax(lags) - 40 == delay * upsample
    assert lags.max() == pytest.approx(1.0, abs=0.01)


# --- argument checks -------------------------------------------------------------------------


def test_wrong_dtypes_and_ranks_raise_type_error():
    sig = np.zeros((1000, 4), np.float32)
    win = hann(256)
    spec = np.zeros((2, 4, 129), np.complex64)
    gcc = np.zeros((4, 129), np.complex64)
    tdoa = np.zeros((10, 4))
    bad_calls = [
        lambda: kernels.stft(sig.astype(np.float64), win, 128),
        lambda: kernels.stft(sig[:, 0], win, 128),
        lambda: kernels.stft(sig.tolist(), win, 128),
        lambda: kernels.stft(sig, win.astype(np.float32), 128),
        lambda: kernels.cross_spectra(spec.astype(np.complex128), 0),
        lambda: kernels.cross_spectra(spec[0], 0),
        lambda: kernels.gcc_phat(spec),
        lambda: kernels.gcc_phat(gcc.real.copy()),
        lambda: kernels.srp_phat(gcc.astype(np.complex128), (1, 100), 31.25, tdoa, 0),
        lambda: kernels.srp_phat(gcc, (1, 100), 31.25, tdoa.astype(np.float32), 0),
        lambda: kernels.gcc_lags(gcc[0], 256, 10),
    ]
    for call in bad_calls:
        with pytest.raises(TypeError):
            call()


def test_bad_shapes_and_ranges_raise_value_error():
    sig = np.zeros((1000, 4), np.float32)
    spec = np.zeros((2, 4, 129), np.complex64)
    gcc = np.zeros((4, 129), np.complex64)
    tdoa = np.zeros((10, 4))
    bad_calls = [
        lambda: kernels.stft(sig, hann(256), 0),
        lambda: kernels.stft(sig, hann(256), -3),
        lambda: kernels.cross_spectra(spec, 4),
        lambda: kernels.cross_spectra(spec, -1),
        lambda: kernels.srp_phat(gcc, (100, 100), 31.25, tdoa, 0),
        lambda: kernels.srp_phat(gcc, (1, 130), 31.25, tdoa, 0),
        lambda: kernels.srp_phat(gcc, (-1, 10), 31.25, tdoa, 0),
        lambda: kernels.srp_phat(gcc, (1, 100), 31.25, np.zeros((10, 3)), 0),
        lambda: kernels.srp_phat(gcc, (1, 100), 31.25, tdoa, 4),
        lambda: kernels.gcc_lags(gcc, 512, 10),
        lambda: kernels.gcc_lags(gcc, 256, 10, upsample=0),
    ]
    for i, call in enumerate(bad_calls):
        with pytest.raises(ValueError):
            call()


# --- the benchmark runs (no timing assertions: numbers go to the README) -----------------------


def test_benchmark_prints_both_tables():
    from arraydaemon.bench import run_benchmarks

    lines: list[str] = []
    results = run_benchmarks([4], seconds=0.5, repeats=2, three_d=False, out=lines.append)
    rows = [line for line in lines if line.startswith("| ")]
    assert rows[0].startswith("| array |") and rows[1].startswith("| 4 mics, UCA r=10 cm | 360 (ring) |")
    kernel_rows = [r for r in rows if r.split("|")[1].strip() in ("stft", "cross_spectra", "gcc_phat", "srp_phat",
                                                                   "gcc_lags")]
    assert len(kernel_rows) == 5
    assert results["uca4"]["active"] == results["uca4"]["windows"]  # every window localized something
    assert all(t_fast > 0 and t_slow > 0 for t_fast, t_slow in results["kernels"].values())

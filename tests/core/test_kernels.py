"""Every kernel (core/kernels.py) against its plain-numpy reference (core/reference.py), to 1e-5, in both
builds (compiled ahead of time and numba's JIT, ``core/compiled.py``); and the two builds against each other."""

from __future__ import annotations

import numpy as np
import pytest

from arraydaemon.core import kernels, reference
from arraydaemon.stages.features import hann

TOL = 1e-5
pytestmark = pytest.mark.usefixtures("kernel_backend")


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


# --- plane_srp and climb_plane (the refinement of planar arrays) ------------------------------


def plane_wave_pairs(rng, pairs: int, bins: int, bin_hz: float, noise: float):
    """Pair spectra of a plane wave from a random in-plane point, with ``noise``; its plane delays."""
    plane_delays = rng.uniform(-3e-4, 3e-4, (3, pairs))
    truth = rng.uniform(-0.7, 0.7, 2)
    height = np.sqrt(1 - truth @ truth)
    tau = truth @ plane_delays[:2] + height * plane_delays[2]
    f = np.arange(bins) * bin_hz
    gcc = np.exp(2j * np.pi * f[None, :] * tau[:, None]) + noise * random_spectra(rng, (pairs, bins))
    return (gcc / np.abs(gcc)).astype(np.complex64), plane_delays, truth


@pytest.mark.parametrize("pairs, bins, band, noise", [(28, 257, (7, 225), 0.3), (6, 129, (3, 129), 1.0),
                                                      (120, 257, (7, 225), 3.0), (1, 33, (2, 33), 0.0)])
def test_plane_srp_and_climb_plane_match_reference(pairs, bins, band, noise):
    rng = np.random.default_rng(pairs + bins)
    bin_hz = 16000 / (2 * (bins - 1))
    for trial in range(8):
        gcc, plane_delays, truth = plane_wave_pairs(rng, pairs, bins, bin_hz, noise)
        points = rng.uniform(-0.75, 0.75, (50, 2))
        assert_close(kernels.plane_srp(gcc, band, bin_hz, plane_delays, points),
                     reference.plane_srp(gcc, band, bin_hz, plane_delays, points))
        start = truth + rng.normal(0, 0.05, 2)
        step = float(rng.choice([0.01, 0.03, 0.2]))
        got, got_value = kernels.climb_plane(gcc, band, bin_hz, plane_delays, start, step)
        want, want_value = reference.climb_plane(gcc, band, bin_hz, plane_delays, start, step)
        assert np.max(np.abs(got - want)) <= 1e-6, (trial, got, want)
        assert got_value == pytest.approx(want_value, abs=TOL)
        if noise == 0.0 and pairs > 1:  # a clean wave: the climb ends on it
            np.testing.assert_allclose(got, truth, atol=1e-3)


def test_climb_plane_rejects_bad_input():
    gcc = np.ones((3, 33), np.complex64)
    delays = np.zeros((3, 3))
    with pytest.raises(ValueError, match="plane_delays"):
        kernels.climb_plane(gcc, (1, 33), 250.0, np.zeros((2, 3)), np.zeros(2), 0.1)
    with pytest.raises(ValueError, match="step"):
        kernels.climb_plane(gcc, (1, 33), 250.0, delays, np.zeros(2), float("nan"))
    with pytest.raises(TypeError, match="start"):
        kernels.climb_plane(gcc, (1, 33), 250.0, delays, np.zeros(2, np.float32), 0.1)


def all_pairs(mics: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(mics, 1)
    return i.astype(np.intp), j.astype(np.intp)


# --- masked_pair_sum -------------------------------------------------------------------------


@pytest.mark.parametrize("frames, mics, bins, band", [(14, 8, 257, (7, 225)), (3, 4, 129, (1, 129)), (1, 2, 33, (5, 6)),
                                                      (6, 16, 65, (0, 65))])
def test_masked_pair_sum_matches_reference(frames, mics, bins, band):
    rng = np.random.default_rng(frames * mics + bins)
    spec = random_spectra(rng, (frames, mics, bins))
    pair_i, pair_j = all_pairs(mics)
    for fraction in (0.6, 0.1, 0.0):  # the kernel sums dense and sparse frames differently
        keep = rng.random((frames, bins)) < fraction
        got = kernels.masked_pair_sum(spec, pair_i, pair_j, keep, band)
        assert got.shape == (len(pair_i), bins)
        assert_close(got, reference.masked_pair_sum(spec, pair_i, pair_j, keep, band))
        assert np.all(got[:, :band[0]] == 0) and np.all(got[:, band[1]:] == 0)
    # everything kept: the plain sum of the pairs' cross-spectra; reference pairs work as well
    full = kernels.masked_pair_sum(spec, pair_i, pair_j, np.ones_like(keep), band)
    want = (spec[:, pair_j] * np.conj(spec[:, pair_i])).sum(axis=0)
    assert_close(full[:, band[0]:band[1]], want[:, band[0]:band[1]])
    ref_i, ref_j = np.zeros(mics - 1, np.intp), np.arange(1, mics)
    assert_close(kernels.masked_pair_sum(spec, ref_i, ref_j, keep, band),
                 reference.masked_pair_sum(spec, ref_i, ref_j, keep, band))


# --- phase_agreement -------------------------------------------------------------------------


@pytest.mark.parametrize("frames, mics, bins, band", [(14, 8, 257, (7, 225)), (2, 3, 65, (1, 65)), (5, 2, 9, (4, 5))])
def test_phase_agreement_matches_reference(frames, mics, bins, band):
    rng = np.random.default_rng(frames + mics + bins)
    spec = random_spectra(rng, (frames, mics, bins))
    spec[0, 0, band[0]] = 0  # digital silence on one mic adds nothing
    pair_i, pair_j = all_pairs(mics)
    tdoa = rng.uniform(-4e-4, 4e-4, mics)
    got = kernels.phase_agreement(spec, pair_i, pair_j, tdoa, band, 31.25)
    assert got.shape == (frames, bins) and got.dtype == np.float32
    assert_close(got, reference.phase_agreement(spec, pair_i, pair_j, tdoa, band, 31.25))
    assert np.all(got[:, :band[0]] == 0) and np.all(got[:, band[1]:] == 0)
    # a frame that is exactly a plane wave with these delays agrees fully, whatever the mic gains
    f = np.arange(bins) * 31.25
    plane = rng.uniform(0.1, 10.0, (mics, 1)) * np.exp(-2j * np.pi * f[None, :] * tdoa[:, None] + 0.7j)
    spec[frames - 1] = plane.astype(np.complex64)
    agree = kernels.phase_agreement(spec, pair_i, pair_j, tdoa, band, 31.25)
    np.testing.assert_allclose(agree[frames - 1, band[0]:band[1]], 1.0, atol=1e-5)


# --- srp_lags, srp_lags_direct and srp_interp ------------------------------------------------


@pytest.mark.parametrize("pairs, bins, band, upsample, max_lag", [
    (28, 257, (7, 225), 4, 40), (3, 129, (1, 129), 2, 20), (6, 65, (2, 64), 1, 16), (1, 257, (100, 101), 8, 3),
    (2, 33, (1, 5), 4, 200),  # lags wider than one period wrap around
])
def test_srp_lags_and_srp_lags_direct_match_reference(pairs, bins, band, upsample, max_lag):
    rng = np.random.default_rng(pairs + bins + max_lag)
    gcc = random_spectra(rng, (pairs, bins))
    gcc /= np.abs(gcc)
    want = reference.srp_lags(gcc, band, upsample, max_lag)
    got = kernels.srp_lags(gcc, band, upsample, max_lag)
    assert got.shape == (pairs, 2 * max_lag + 1)
    assert_close(got, want)
    steering = kernels.lag_steering(band, 2 * (bins - 1), upsample, max_lag)
    assert_close(kernels.srp_lags_direct(gcc, band, steering), want)


@pytest.mark.parametrize("pairs", [1, 4, 7, 28])
def test_srp_lags_direct_sums_each_lag_over_the_bins_in_order(pairs):
    """The kernel takes four pairs at a time; each output is still the float32 sum over the band's
    bins in order, to the bit (float32 numpy, one bin at a time), masked (zero) bins included."""
    rng = np.random.default_rng(pairs)
    band = (3, 40)
    gcc = random_spectra(rng, (pairs, 48))
    gcc /= np.abs(gcc)
    gcc[:, 10:14] = 0.0  # masked in every pair
    gcc[0, 20] = 0.0  # in one
    steer_re, steer_im = kernels.lag_steering(band, 94, 2, 12)
    acc = np.zeros((pairs, steer_re.shape[1]), dtype=np.float32)
    for q, k in enumerate(range(*band)):
        g = gcc[:, k]
        acc = acc + (g.real[:, None] * steer_re[q] - g.imag[:, None] * steer_im[q])
    want = acc * np.float32(1.0 / (band[1] - band[0]))
    np.testing.assert_array_equal(kernels.srp_lags_direct(gcc, band, (steer_re, steer_im)), want)


@pytest.mark.parametrize("dirs, pairs, lags", [(360, 28, 81), (50, 3, 9), (7, 1, 2), (2000, 31, 161)])
def test_srp_interp_matches_reference(dirs, pairs, lags):
    rng = np.random.default_rng(dirs + pairs)
    table = rng.standard_normal((pairs, lags)).astype(np.float32)
    positions = rng.uniform(-2.0, lags + 1.0, (dirs, pairs))  # some outside the table: clipped
    positions[0] = 0.0
    positions[-1] = lags - 1
    index, frac = kernels.lag_lookup(positions, lags)
    assert index.shape == frac.shape == (pairs, dirs)
    assert index.min() >= 0 and index.max() <= lags - 2 and frac.min() >= 0 and frac.max() <= 1
    got = kernels.srp_interp(table, index, frac)
    assert got.shape == (dirs,)
    assert_close(got, reference.srp_interp(table, index, frac))
    # linear interpolation: the same as np.interp of each pair's row (which clips the same way)
    grid = np.arange(lags)
    want = np.mean([np.interp(positions[:, p], grid, table[p]) for p in range(pairs)], axis=0)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_lag_domain_srp_equals_srp_phat_on_the_lag_lattice_and_is_close_between():
    # The lag-domain SRP is exact where every pair delay falls on the 1/upsample lattice, and off it
    # by at most the linear-interpolation error, small at 4x upsampling.
    rng = np.random.default_rng(11)
    bins, fs, upsample, band = 257, 16000.0, 4, (7, 225)
    bin_hz = fs / (2 * (bins - 1))
    true_tau = rng.uniform(-5e-4, 5e-4, 6)
    f = np.arange(bins) * bin_hz
    gcc = np.exp(-2j * np.pi * f[None, :] * true_tau[:, None]) + 0.6 * random_spectra(rng, (6, bins))
    gcc = (gcc / np.abs(gcc)).astype(np.complex64)
    max_lag = int(np.ceil(6e-4 * fs * upsample)) + 1
    lags = kernels.srp_lags(gcc, band, upsample, max_lag)
    on_lattice = rng.integers(-max_lag + 1, max_lag, (40, 6)) / (fs * upsample)
    off_lattice = rng.uniform(-5.5e-4, 5.5e-4, (400, 6))
    off_lattice[0] = true_tau
    for tdoa, tol in ((on_lattice, 1e-5), (off_lattice, 0.03)):
        exact = kernels.srp_phat(gcc, band, bin_hz, tdoa, None)
        looked_up = kernels.srp_interp(lags, *kernels.lag_lookup(tdoa * fs * upsample + max_lag, lags.shape[1]))
        assert np.max(np.abs(looked_up - exact)) <= tol
    assert exact[0] > 0.5 and np.argmax(looked_up) == 0


def test_srp_phat_without_reference_row_is_the_mean_over_all_rows():
    rng = np.random.default_rng(12)
    gcc = random_spectra(rng, (5, 129))
    tdoa = rng.uniform(-3e-4, 3e-4, (30, 5))
    got = kernels.srp_phat(gcc, (3, 120), 62.5, tdoa, None)
    assert_close(got, reference.srp_phat(gcc, (3, 120), 62.5, tdoa, None))
    padded = np.vstack([gcc, np.zeros((1, 129), np.complex64)])  # a zero reference row changes nothing
    assert_close(got, kernels.srp_phat(padded, (3, 120), 62.5, np.hstack([tdoa, np.zeros((30, 1))]), 5))


# --- argument checks -------------------------------------------------------------------------


def valid_operands():
    """Valid operands of the kernels, for the argument checks: signal, spectra, one window's
    cross-spectra, delays, bin mask, lag steering, lag table and its lookup (index, fraction)."""
    sig = np.zeros((1000, 4), np.float32)
    spec = np.zeros((2, 4, 129), np.complex64)
    gcc = np.zeros((4, 129), np.complex64)
    tdoa = np.zeros((10, 4))
    keep = np.ones((2, 129), bool)
    steer = kernels.lag_steering((1, 100), 256, 4, 10)
    lags = np.zeros((4, 21), np.float32)
    index, frac = kernels.lag_lookup(np.zeros((10, 4)), 21)
    return sig, spec, gcc, tdoa, keep, steer, lags, index, frac


def test_wrong_dtypes_and_ranks_raise_type_error():
    sig, spec, gcc, tdoa, keep, steer, lags, index, frac = valid_operands()
    win = hann(256)
    bad_calls = [
        lambda: kernels.stft(sig.astype(np.float64), win, 128),
        lambda: kernels.stft(sig[:, 0], win, 128),
        lambda: kernels.stft(sig.tolist(), win, 128),
        lambda: kernels.stft(sig, win.astype(np.float32), 128),
        lambda: kernels.gcc_phat(spec),
        lambda: kernels.gcc_phat(gcc.real.copy()),
        lambda: kernels.srp_phat(gcc.astype(np.complex128), (1, 100), 31.25, tdoa, 0),
        lambda: kernels.srp_phat(gcc, (1, 100), 31.25, tdoa.astype(np.float32), 0),
        lambda: kernels.masked_pair_sum(spec.astype(np.complex128), [0], [1], keep, (1, 100)),
        lambda: kernels.masked_pair_sum(spec, [0], [1], keep.astype(np.int8), (1, 100)),
        lambda: kernels.phase_agreement(spec, [0], [1], np.zeros(4, np.float32), (1, 100), 31.25),
        lambda: kernels.srp_lags(gcc.real.copy(), (1, 100), 4, 10),
        lambda: kernels.srp_lags_direct(gcc, (1, 100), (steer[0].astype(np.float64), steer[1])),
        lambda: kernels.srp_interp(lags.astype(np.float64), index, frac),
        lambda: kernels.srp_interp(lags, index.astype(np.int64), frac),
        lambda: kernels.srp_interp(lags, index, frac.astype(np.float64)),
    ]
    for call in bad_calls:
        with pytest.raises(TypeError):
            call()


def test_bad_shapes_and_ranges_raise_value_error():
    sig, spec, gcc, tdoa, keep, steer, lags, index, frac = valid_operands()
    bad_calls = [
        lambda: kernels.stft(sig, hann(256), 0),
        lambda: kernels.stft(sig, hann(256), -3),
        lambda: kernels.srp_phat(gcc, (100, 100), 31.25, tdoa, 0),
        lambda: kernels.srp_phat(gcc, (1, 130), 31.25, tdoa, 0),
        lambda: kernels.srp_phat(gcc, (-1, 10), 31.25, tdoa, 0),
        lambda: kernels.srp_phat(gcc, (1, 100), 31.25, np.zeros((10, 3)), 0),
        lambda: kernels.srp_phat(gcc, (1, 100), 31.25, tdoa, 4),
        lambda: kernels.masked_pair_sum(spec, [0, 1], [1], keep, (1, 100)),
        lambda: kernels.masked_pair_sum(spec, [0], [4], keep, (1, 100)),
        lambda: kernels.masked_pair_sum(spec, [0], [1], keep, (1, 130)),
        lambda: kernels.masked_pair_sum(spec, [0], [1], keep[:, :128], (1, 100)),
        lambda: kernels.phase_agreement(spec, [0], [1], np.zeros(3), (1, 100), 31.25),
        lambda: kernels.phase_agreement(spec, [0], [-1], np.zeros(4), (1, 100), 31.25),
        lambda: kernels.srp_lags(gcc, (0, 100), 4, 10),  # bin 0
        lambda: kernels.srp_lags(gcc, (1, 129), 1, 10),  # the Nyquist bin without upsampling
        lambda: kernels.srp_lags(gcc, (1, 100), 0, 10),
        lambda: kernels.srp_lags(gcc, (1, 100), 4, -1),
        lambda: kernels.srp_lags_direct(gcc, (1, 50), steer),
        lambda: kernels.lag_steering((1, 100), 256, 0, 10),
        lambda: kernels.lag_lookup(np.zeros((10, 4)), 1),
        lambda: kernels.srp_interp(lags[:3], index, frac),
        lambda: kernels.srp_interp(lags, index, frac[:, :5]),
        lambda: kernels.srp_interp(lags[:, :1], index, frac),
    ]
    for i, call in enumerate(bad_calls):
        with pytest.raises(ValueError):
            call()

"""Tests of arraydaemon.research.simulate: real espeak-ng, real pyroomacoustics, no fakes."""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
import scipy.signal

from arraydaemon.research import simulate as sim
from arraydaemon.research.simulate import sources as sim_sources  # private espeak-ng helpers

FS = 16000
C = 343.0

# 8 mics: a 10 cm-radius ring plus one mic off the plane, to exercise elevation
RING = np.array(
    [[0.1 * math.cos(a), 0.1 * math.sin(a), 0.0] for a in np.arange(7) * 2 * np.pi / 7]
    + [[0.0, 0.0, 0.08]]
)
RESPEAKER_4 = np.array(
    [[-0.0405, 0.0, 0.0], [0.0, 0.0405, 0.0], [0.0405, 0.0, 0.0], [0.0, -0.0405, 0.0]]
)


def gcc_lag(a: np.ndarray, b: np.ndarray, max_lag: int = 40, up: int = 64) -> float:
    """Lag L (samples, sub-sample) with a(t) ~ b(t - L): upsampled GCC-PHAT + parabolic peak."""
    n = 2 * len(a)
    r = np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n))
    r /= np.abs(r) + 1e-20
    cc = np.fft.irfft(r, n * up)
    cc = np.concatenate([cc[-max_lag * up :], cc[: max_lag * up + 1]])
    k = int(np.argmax(cc))
    y0, y1, y2 = cc[k - 1], cc[k], cc[k + 1]
    frac = 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
    return (k + frac - max_lag * up) / up


def snr_of(result: sim.SceneResult) -> float:
    noise = result.audio.astype(np.float64) - result.clean
    return 10 * math.log10(np.mean(result.clean.astype(np.float64) ** 2) / np.mean(noise**2))


# --- geometry -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "az, el, vec",
    [(0, 0, (1, 0, 0)), (90, 0, (0, 1, 0)), (180, 0, (-1, 0, 0)), (-90, 0, (0, -1, 0)), (0, 90, (0, 0, 1))],
)
def test_direction_vector_rep103(az, el, vec):
    np.testing.assert_allclose(sim.direction_vector(az, el), vec, atol=1e-12)


def test_vector_to_angles_roundtrip_and_range():
    rng = np.random.default_rng(0)
    for az, el in zip(rng.uniform(-180, 180, 50), rng.uniform(-89, 89, 50)):
        a, e = sim.vector_to_angles(3.0 * sim.direction_vector(az, el))
        assert a == pytest.approx(az, abs=1e-9) and e == pytest.approx(el, abs=1e-9)
    assert sim.vector_to_angles(np.array([-1.0, 0.0, 0.0]))[0] == 180.0  # (-180, 180]
    assert sim.vector_to_angles(np.array([-1.0, -0.0, 0.0]))[0] == 180.0


# --- dry sources ----------------------------------------------------------------------------


@pytest.mark.sim
def test_speech_source_length_level_and_activity():
    x = sim.speech_source(np.random.default_rng(1), 2.5, FS)
    assert x.dtype == np.float32 and x.shape == (40000,)
    assert np.max(np.abs(x)) == pytest.approx(0.5, rel=1e-5)
    assert np.sqrt(np.mean(x**2)) > 0.03
    frame_rms = np.sqrt(np.mean(x[: 40000 // 400 * 400].reshape(-1, 400) ** 2, axis=1))
    active = frame_rms > 0.01
    assert 0.2 < active.mean() <= 1.0  # speech with some pauses
    # most energy in the speech band
    f, p = scipy.signal.welch(x, FS, nperseg=1024)
    assert p[(f > 80) & (f < 4000)].sum() > 0.8 * p.sum()


@pytest.mark.sim
def test_speech_source_deterministic_and_seed_dependent():
    sim_sources._espeak.cache_clear()  # make espeak-ng itself run again
    a = sim.speech_source(np.random.default_rng(7), 1.5, FS)
    sim_sources._espeak.cache_clear()
    b = sim.speech_source(np.random.default_rng(7), 1.5, FS)
    c = sim.speech_source(np.random.default_rng(8), 1.5, FS)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.sim
def test_speech_source_other_sample_rate():
    x = sim.speech_source(np.random.default_rng(2), 1.0, 48000)
    assert x.shape == (48000,) and np.max(np.abs(x)) > 0.4


@pytest.mark.sim
def test_espeak_voices_and_variants_exist():
    """espeak-ng silently ignores unknown variants: check every one changes the audio."""
    exe = shutil.which("espeak-ng")

    def run(voice):
        return subprocess.run([exe, "--stdout", "-v", voice, "one two"], capture_output=True)

    for voice, _ in sim_sources._VOICES:
        proc = run(voice)
        assert proc.returncode == 0 and len(proc.stdout) > 1000, voice
    base = run("en").stdout
    for variant in sim_sources._VARIANTS:
        assert run(f"en+{variant}").stdout != base, variant


def test_speech_source_without_espeak(monkeypatch):
    sim_sources._espeak_binary.cache_clear()
    sim_sources._espeak.cache_clear()
    monkeypatch.setattr(sim_sources.shutil, "which", lambda name: None)
    try:
        with pytest.raises(RuntimeError, match="apt-get install espeak-ng"):
            sim.speech_source(np.random.default_rng(0), 1.0, FS)
    finally:
        sim_sources._espeak_binary.cache_clear()


@pytest.mark.parametrize("fn", [sim.noise_burst_source, sim.harmonic_source])
def test_other_sources(fn):
    a = fn(np.random.default_rng(3), 2.0, FS)
    b = fn(np.random.default_rng(3), 2.0, FS)
    assert a.dtype == np.float32 and a.shape == (32000,)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(a)) and np.max(np.abs(a)) == pytest.approx(0.5, rel=1e-5)
    assert np.sqrt(np.mean(a**2)) > 0.02


def test_stationary_noise_source_is_unit_rms_and_stationary():
    a = sim.stationary_noise_source(np.random.default_rng(5), 2.0, FS)
    np.testing.assert_array_equal(a, sim.stationary_noise_source(np.random.default_rng(5), 2.0, FS))
    assert a.dtype == np.float32 and a.shape == (32000,)
    assert np.sqrt(np.mean(a.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
    for seed in range(8):  # no onsets or pauses: every 100 ms frame within a factor 2 of the others
        x = sim.stationary_noise_source(np.random.default_rng(seed), 2.0, FS)
        frame_rms = np.sqrt(np.mean(x.reshape(-1, 1600).astype(np.float64) ** 2, axis=1))
        assert frame_rms.max() < 2.0 * frame_rms.min()


def test_harmonic_source_is_harmonic():
    x = sim.harmonic_source(np.random.default_rng(4), 3.0, FS)
    f, p = scipy.signal.welch(x, FS, nperseg=4096)
    # a tonal signal: the strongest bins hold far more power than a flat spectrum would
    assert np.sort(p)[-20:].sum() > 0.3 * p.sum()


@pytest.mark.sim
def test_random_dry_source_mixture():
    kinds = set()
    for seed in range(12):
        x = sim.random_dry_source(np.random.default_rng(seed), 0.5, FS, speech_prob=0.4)
        assert x.shape == (8000,) and x.dtype == np.float32
        np.testing.assert_array_equal(x, sim.random_dry_source(np.random.default_rng(seed), 0.5, FS, 0.4))
        kinds.add(np.random.default_rng(seed).random() < 0.4)
    assert kinds == {True, False}


# --- diffuse noise --------------------------------------------------------------------------


def test_diffuse_noise_has_sinc_coherence():
    mics = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.04, 0.03]])
    x = sim.diffuse_noise(mics, 10 * FS, FS, np.random.default_rng(5), spectrum="white")
    assert x.shape == (10 * FS, 3) and x.dtype == np.float32
    assert np.mean(x.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-3)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        d = np.linalg.norm(mics[i] - mics[j])
        f, csd = scipy.signal.csd(x[:, i], x[:, j], FS, nperseg=512)
        _, pi = scipy.signal.welch(x[:, i], FS, nperseg=512)
        _, pj = scipy.signal.welch(x[:, j], FS, nperseg=512)
        coh = csd.real / np.sqrt(pi * pj)
        band = (f > 50) & (f < 7500)
        # average over groups of 8 bins to beat the estimation noise down
        n8 = band.sum() // 8 * 8
        got = coh[band][:n8].reshape(-1, 8).mean(axis=1)
        want = np.sinc(2 * f[band][:n8] * d / C).reshape(-1, 8).mean(axis=1)
        np.testing.assert_allclose(got, want, atol=0.05)


# --- free field -----------------------------------------------------------------------------


def test_free_field_fractional_delays_subsample():
    rng = np.random.default_rng(11)
    s = rng.standard_normal(2 * FS)
    mics = np.array([[0.0, 0.0, 0.0], [0.21, 0.0, 0.0], [-0.05, 0.13, 0.0], [0.03, -0.07, 0.11]])
    for az, el in ((37.0, 20.0), (-120.0, -35.0)):
        x = sim.free_field_scene(mics, [(s, az, el)], FS)
        assert x.shape == (2 * FS, 4) and x.dtype == np.float32
        tau = mics @ sim.direction_vector(az, el) / C * FS  # advance of each mic, samples
        # the mic at the origin receives the dry signal itself
        np.testing.assert_allclose(x[:, 0], s, atol=1e-5)
        for m in range(1, 4):
            # x_m(t) = s(t + tau_m) = x_0(t - (-tau_m)): lag of x_m relative to x_0 is -tau_m
            assert gcc_lag(x[:, m], x[:, 0]) == pytest.approx(-tau[m], abs=0.02)


def test_free_field_no_circular_wrap_and_superposition():
    s = np.zeros(400)
    s[3] = 1.0  # an impulse near the start, advanced by more than 3 samples on mic 0
    mics = np.array([[0.2, 0.0, 0.0], [-0.2, 0.0, 0.0]])
    x = sim.free_field_scene(mics, [(s, 0.0, 0.0)], FS)
    tau = 0.2 / C * FS  # 9.33 samples early on mic 0, late on mic 1
    k = np.arange(400)
    # band-limited (sinc) interpolation of the zero-extended signal: the part advanced before
    # t = 0 is gone, not wrapped around to the end
    np.testing.assert_allclose(x[:, 0], np.sinc(k - (3 - tau)), atol=2e-4)
    np.testing.assert_allclose(x[:, 1], np.sinc(k - (3 + tau)), atol=2e-4)
    assert int(np.argmax(x[:, 1])) == 3 + round(tau)
    s2 = np.random.default_rng(0).standard_normal(300)
    both = sim.free_field_scene(mics, [(s, 30.0, 0.0), (s2, -100.0, 10.0)], FS)
    one = sim.free_field_scene(mics, [(s, 30.0, 0.0)], FS)
    two = sim.free_field_scene(mics, [(s2, -100.0, 10.0)], FS)
    assert both.shape == (400, 2)
    np.testing.assert_allclose(both[:300], one[:300] + two, atol=1e-6)


def test_free_field_snr_and_rng():
    s = np.random.default_rng(1).standard_normal(FS)
    x = sim.free_field_scene(RESPEAKER_4, [(s, 10.0, 0.0)], FS, snr_db=10.0, rng=np.random.default_rng(2))
    clean = sim.free_field_scene(RESPEAKER_4, [(s, 10.0, 0.0)], FS)
    snr = 10 * np.log10(np.mean(clean.astype(float) ** 2) / np.mean((x - clean).astype(float) ** 2))
    assert snr == pytest.approx(10.0, abs=0.2)
    with pytest.raises(ValueError, match="rng"):
        sim.free_field_scene(RESPEAKER_4, [(s, 10.0, 0.0)], FS, snr_db=10.0)


# --- rooms ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def speech2s():
    return sim.speech_source(np.random.default_rng(21), 2.0, FS)


@pytest.mark.sim
def test_room_scene_shapes_directions_snr(speech2s):
    noise = sim.noise_burst_source(np.random.default_rng(22), 1.5, FS)
    specs = [sim.SourceSpec(speech2s, 60.0, 15.0, 1.2), sim.SourceSpec(noise, -135.0, -10.0, 0.9)]
    res = sim.room_scene(
        RING, specs, sample_rate=FS, rt60=0.4, room_dim=(6.0, 5.0, 3.0), snr_db=20.0,
        rng=np.random.default_rng(3),
    )  # fmt: skip
    assert res.audio.shape == (2 * FS, 8) and res.audio.dtype == np.float32
    assert res.clean.shape == (2 * FS, 8)
    assert res.sample_rate == FS and res.rt60 == 0.4 and res.room_dim == (6.0, 5.0, 3.0)
    assert np.all(np.isfinite(res.audio))
    for (az, el, dist), spec in zip(res.sources, specs):
        assert az == pytest.approx(spec.azimuth_deg, abs=1e-6)
        assert el == pytest.approx(spec.elevation_deg, abs=1e-6)
        assert dist == pytest.approx(spec.distance_m, abs=1e-6)
    c = res.array_centre
    assert np.all(c >= 0.5) and np.all(c <= np.array(res.room_dim) - 0.5) and 0.7 <= c[2] <= 1.8
    assert np.all(res.source_positions >= 0.3 - 1e-9)
    assert np.all(res.source_positions <= np.array(res.room_dim) - 0.3 + 1e-9)
    assert snr_of(res) == pytest.approx(20.0, abs=0.3)


@pytest.mark.sim
def test_room_scene_deterministic(speech2s):
    kw = dict(sample_rate=FS, rt60=0.9, snr_db=25.0, diffuse_noise_db=15.0)
    spec = [sim.SourceSpec(speech2s[: FS // 2], 100.0, 5.0, 2.0)]
    a = sim.room_scene(RESPEAKER_4, spec, rng=np.random.default_rng(9), **kw)
    b = sim.room_scene(RESPEAKER_4, spec, rng=np.random.default_rng(9), **kw)
    c = sim.room_scene(RESPEAKER_4, spec, rng=np.random.default_rng(10), **kw)
    np.testing.assert_array_equal(a.audio, b.audio)
    assert a.room_dim == b.room_dim and a.sources == b.sources
    assert not np.array_equal(a.audio, c.audio) and a.room_dim != c.room_dim
    lo, hi = np.array([3.0, 3.0, 2.5]), np.array([10.0, 8.0, 4.0])
    assert np.all(np.array(a.room_dim) >= lo) and np.all(np.array(a.room_dim) <= hi)


@pytest.mark.sim
def test_room_scene_direct_path_aligned_and_tdoas():
    s = np.random.default_rng(4).standard_normal(FS)
    res = sim.room_scene(
        RING, [sim.SourceSpec(s, -70.0, 25.0, 1.5)], sample_rate=FS, rt60=0.2,
        room_dim=(7.0, 6.0, 3.0), snr_db=None, rng=np.random.default_rng(5),
    )  # fmt: skip
    # aligned with the dry signal (propagation delay to the centre removed)
    assert abs(gcc_lag(res.clean[:, 0].astype(np.float64), s)) < 2.0
    # inter-mic delays of the direct path match the (near-field) geometry
    mics_room = res.array_centre + RING
    dist = np.linalg.norm(res.source_positions[0] - mics_room, axis=1)
    for m in (1, 3, 5, 7):
        expected = (dist[m] - dist[0]) / C * FS
        assert gcc_lag(res.clean[:, m], res.clean[:, 0]) == pytest.approx(expected, abs=0.25)


@pytest.mark.sim
def test_room_scene_shrinks_far_sources_and_rejects_impossible(speech2s):
    sig = speech2s[: FS // 4]
    res = sim.room_scene(
        RESPEAKER_4, [sim.SourceSpec(sig, 30.0, 0.0, 25.0)], sample_rate=FS, rt60=0.3,
        room_dim=(4.0, 3.5, 2.7), rng=np.random.default_rng(6),
    )  # fmt: skip
    az, el, dist = res.sources[0]
    assert 0.5 <= dist < 25.0
    assert az == pytest.approx(30.0, abs=1e-6) and el == pytest.approx(0.0, abs=1e-6)
    p = res.source_positions[0]
    assert np.all(p >= 0.3 - 1e-9) and np.all(p <= np.array(res.room_dim) - 0.3 + 1e-9)
    with pytest.raises(ValueError, match="cannot be placed"):
        sim.room_scene(
            RESPEAKER_4, [sim.SourceSpec(sig, 0.0, 0.0, 2.0)], sample_rate=FS, rt60=0.3,
            room_dim=(4.0, 3.5, 2.7), rng=np.random.default_rng(6),
            array_centre=np.array([3.4, 1.7, 1.2]),
        )  # fmt: skip
    with pytest.raises(ValueError, match="too short"):
        sim.room_scene(
            RESPEAKER_4, [sim.SourceSpec(sig, 0.0, 0.0, 1.0)], sample_rate=FS, rt60=0.05,
            room_dim=(10.0, 8.0, 4.0), rng=np.random.default_rng(6),
        )  # fmt: skip


@pytest.mark.sim
def test_room_scene_diffuse_noise_level(speech2s):
    res = sim.room_scene(
        RESPEAKER_4, [sim.SourceSpec(speech2s, 0.0, 0.0, 1.0)], sample_rate=FS, rt60=0.3,
        snr_db=None, diffuse_noise_db=10.0, rng=np.random.default_rng(8),
    )  # fmt: skip
    assert snr_of(res) == pytest.approx(10.0, abs=0.05)


def _edc_db(h: np.ndarray) -> np.ndarray:
    e = np.mean(h.astype(np.float64) ** 2, axis=1)
    edc = np.cumsum(e[::-1])[::-1]
    return 10 * np.log10(edc / edc[0] + 1e-300)


@pytest.mark.sim
def test_late_reverb_tail_matches_image_sources_and_rt60():
    imp = np.zeros(int(1.2 * FS))
    imp[0] = 1.0
    kw = dict(
        sample_rate=FS, rt60=0.4, room_dim=(10.0, 8.0, 4.0), snr_db=None,
        array_centre=np.array([4.0, 3.5, 1.4]),
    )  # fmt: skip
    spec = [sim.SourceSpec(imp, 150.0, 10.0, 2.0)]
    full = sim.room_scene(RING, spec, rng=np.random.default_rng(0), **kw)  # order 38, no tail
    hybrid = sim.room_scene(RING, spec, rng=np.random.default_rng(0), max_order=12, **kw)
    short = sim.room_scene(RING, spec, rng=np.random.default_rng(0), max_order=12, late_reverb=False, **kw)
    assert full.ism_order == 38 and hybrid.ism_order == 12

    def level_db(res, a, b):
        return 10 * np.log10(np.mean(res.clean[int(a * FS) : int(b * FS)].astype(np.float64) ** 2) + 1e-300)

    # order 12 is complete up to ~100 ms here: the first 40 ms are the image-source model's
    np.testing.assert_allclose(hybrid.clean[: int(0.04 * FS)], full.clean[: int(0.04 * FS)], atol=1e-5)
    e_full, e_hyb = (float(np.sum(r.clean.astype(np.float64) ** 2)) for r in (full, hybrid))
    assert 10 * np.log10(e_hyb / e_full) == pytest.approx(0.0, abs=0.1)
    # the tail takes over at the level of the full image-source response...
    assert level_db(hybrid, 0.12, 0.2) == pytest.approx(level_db(full, 0.12, 0.2), abs=1.5)
    # ...where the truncated image set has nothing left
    assert level_db(short, 0.4, 0.8) < -200 < level_db(hybrid, 0.4, 0.8)
    # and decays at exactly the requested rt60 (60 dB per rt60)
    slope = (level_db(hybrid, 0.45, 0.55) - level_db(hybrid, 0.15, 0.25)) / 0.3
    assert -60.0 / slope == pytest.approx(0.4, rel=0.1)


@pytest.mark.sim
def test_room_scene_renders_a_delayed_burst_as_the_same_burst_delayed():
    # room_scene convolves only a signal's non-zero span (a walker is many short segments): the
    # output of a burst must not depend on where in the signal it sits.
    rng = np.random.default_rng(3)
    burst = rng.standard_normal(2000)
    early, late = np.zeros(16000), np.zeros(16000)
    early[1000:3000] = burst
    late[9000:11000] = burst
    mics = np.array([[0.05, 0, 0], [-0.05, 0, 0], [0, 0.05, 0]])
    kwargs = dict(sample_rate=16000, rt60=0.3, room_dim=(5.0, 4.0, 3.0), array_centre=np.array([2.5, 2.0, 1.2]),
                  snr_db=None, max_order=6, late_reverb=False)
    a = sim.room_scene(mics, [sim.SourceSpec(early, 40.0, 0.0, 1.5)], rng=np.random.default_rng(0), **kwargs)
    b = sim.room_scene(mics, [sim.SourceSpec(late, 40.0, 0.0, 1.5)], rng=np.random.default_rng(0), **kwargs)
    assert np.allclose(a.audio[:7000], b.audio[8000:15000], atol=1e-6)
    assert np.abs(b.audio[:8000]).max() < 1e-6 < np.abs(a.audio[1000:3000]).max()


@pytest.mark.sim
def test_moving_sources_scene_renders_each_walker_along_its_path():
    rng = np.random.default_rng(4)
    mics = np.array([[0.05, 0, 0], [-0.05, 0, 0], [0, 0.05, 0], [0, -0.05, 0]])
    walkers = [(rng.standard_normal(16000), [(0.0, 0.0, 0.0), (1.0, 40.0, 0.0)], 1.5),
               (rng.standard_normal(16000), [(0.0, 90.0, 10.0), (1.0, 50.0, 10.0)], 1.2)]
    scene, results = sim.moving_sources_scene(mics, walkers, sample_rate=16000, rt60=0.2, rng=rng,
                                                   room_dim=(5.0, 4.0, 3.0), array_centre=np.array([2.5, 2.0, 1.2]),
                                                   max_order=3)
    assert scene.audio.shape == (16000, 4) and len(results) == 2
    az0, _ = results[0].direction_at(0.5)
    az1, el1 = results[1].direction_at(0.5)
    assert abs(az0 - 20.0) < 3.0 and abs(az1 - 70.0) < 3.0 and abs(el1 - 10.0) < 1.0
    assert all(r.scene is scene for r in results)

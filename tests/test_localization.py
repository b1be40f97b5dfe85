"""SRP-PHAT localization end to end (features → localizer → publish), on real simulated scenes:
free-field fractional-delay plane waves, a pyroomacoustics reverberant room with espeak-ng speech,
streaming, the activity gate and NaN input."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from arraydaemon.core import grids

from arraydaemon.research import simulate

from arraydaemon.io import wire
from arraydaemon.core.options import INTEGRATION_S, FeatureConfig, LocalizerConfig, PipelineOptions
from arraydaemon.core.messages import AudioBlock
from arraydaemon.pipeline import Pipeline
from arraydaemon.core.profiles import load_profile, parse_profile

# Bundled horizontal planar arrays; ps3_eye is the bundled linear one.
PLANAR_PROFILES = ["respeaker_4mic_hat", "respeaker_6mic_hat", "respeaker_usb_4mic", "matrix_creator",
                   "matrix_voice", "minidsp_uma8", "demo"]
# (azimuth, elevation) in degrees; planar arrays are tested up to 40° out of their plane (see
# test_planar_high_elevation for what happens above).
DIRECTIONS = [(0.0, 0.0), (37.3, 10.0), (-123.4, 25.0), (171.2, -20.0), (95.5, 40.0), (-60.7, -35.0)]
DIRECTIONS_3D = DIRECTIONS + [(140.0, -60.0), (-20.0, 75.0), (10.0, -85.0)]


def make_profile(name: str, mics, sample_rate: int = 16000):
    return parse_profile({"name": name, "sample_rate": sample_rate, "mics": np.asarray(mics).tolist()})


def ring(n: int, radius: float, rotation=None) -> np.ndarray:
    a = 2 * np.pi * np.arange(n) / n
    mics = np.stack([radius * np.cos(a), radius * np.sin(a), np.zeros(n)], axis=1)
    return mics if rotation is None else mics @ np.asarray(rotation).T


def rotation_x(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


TETRAHEDRON = 0.05 / math.sqrt(3) * np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]])
OCTAHEDRON = 0.05 * np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
CUBE = 0.03 * np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])


def run(profile, audio: np.ndarray, blocks=None, options=PipelineOptions(estimator="srp-phat")):
    """All window results of ``audio [shape=(samples, mics)]`` fed whole or in ``blocks`` sizes."""
    pipeline = Pipeline(profile, options)
    fs = profile.sample_rate
    sizes = [len(audio)] if blocks is None else blocks
    results, start = [], 0
    for seq, size in enumerate(sizes):
        chunk = audio[start:start + size]
        results.extend(pipeline.process(AudioBlock(seq, fs, start / fs, 1e9 + start / fs, chunk)))
        start += size
    assert start == len(audio)
    return pipeline, results


def plane_wave(profile, az: float, el: float, seconds: float, rng, snr_db: float = 20.0) -> np.ndarray:
    fs = profile.sample_rate
    signal = rng.standard_normal(int(seconds * fs))
    return simulate.free_field_scene(profile.mics, [(signal, az, el)], fs, snr_db=snr_db, rng=rng)


def in_plane_angle_deg(a: np.ndarray, b: np.ndarray, normal) -> float:
    """Angle between the projections of ``a`` and ``b`` onto the plane with unit ``normal``."""
    n = np.asarray(normal)
    pa, pb = a - (a @ n) * n, b - (b @ n) * n
    cos = pa @ pb / (np.linalg.norm(pa) * np.linalg.norm(pb))
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def cone_angle_deg(v: np.ndarray, axis) -> float:
    return math.degrees(math.acos(min(1.0, max(-1.0, float(v @ np.asarray(axis))))))


def azimuth_error_deg(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def only_source(result):
    sources = result.estimate.sources
    assert len(sources) == 1, f"window {result.estimate.seq}: expected one source, got {len(sources)}"
    return sources[0]


# --- free field ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PLANAR_PROFILES)
def test_free_field_bundled_planar_azimuth_within_2_degrees(name):
    profile = load_profile(name)
    assert profile.geometry.kind == "planar"
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for az, el in DIRECTIONS:
        _, results = run(profile, plane_wave(profile, az, el, 0.45, rng))
        assert len(results) == 3
        for r in results:
            s = only_source(r)
            assert azimuth_error_deg(s.azimuth_deg, az) <= 2.0, (name, az, el, s)
            assert s.elevation_deg >= 0.0  # the up/down ambiguity is reported on the upper side
            assert r.payloads[0][1]["ambiguity"] == "up-down"


@pytest.mark.parametrize("tilt", [90.0, 28.6, -90.0])
def test_free_field_tilted_planar_in_plane_angle_within_2_degrees(tilt):
    # A 6-mic ring rotated about x: ±90° is a wall-mounted array in the x-z plane (normal ±y).
    profile = make_profile("tilted", ring(6, 0.05, rotation_x(tilt)))
    normal = np.asarray(profile.geometry.normal)
    rng = np.random.default_rng(int(tilt) + 1000)
    for az, el in DIRECTIONS + [(-100.0, 70.0)]:
        truth = simulate.direction_vector(az, el)
        if abs(truth @ normal) > math.sin(math.radians(40)):
            continue  # too far out of the array plane (see test_planar_high_elevation)
        _, results = run(profile, plane_wave(profile, az, el, 0.3, rng))
        v = np.array(only_source(results[0]).vector)
        assert in_plane_angle_deg(v, truth, normal) <= 2.0, (tilt, az, el, v)
        assert v @ normal >= -1e-9  # reported on the normal's side


@pytest.mark.parametrize("name, mics, rate", [
    ("ps3_eye", None, None),
    ("line_x", [[-0.06, 0, 0], [-0.02, 0, 0], [0.02, 0, 0], [0.06, 0, 0]], 16000),
    ("line_z", [[0, 0, -0.05], [0, 0, 0], [0, 0, 0.05]], 16000),
    ("line_diag", [[0, 0, 0], [0.03, 0.03, 0.01], [0.06, 0.06, 0.02]], 16000),
])
def test_free_field_linear_cone_angle_within_2_degrees(name, mics, rate):
    profile = load_profile(name) if mics is None else make_profile(name, mics, rate)
    geometry = profile.geometry
    assert geometry.kind == "linear"
    rng = np.random.default_rng(7)
    for az, el in DIRECTIONS:
        truth = simulate.direction_vector(az, el)
        _, results = run(profile, plane_wave(profile, az, el, 0.3, rng))
        r = results[0]
        v = np.array(only_source(r).vector)
        np.testing.assert_allclose(grids.fold(v, geometry), v, atol=1e-9)  # front half-plane
        # fold() maps the truth to the reported side; the cone angle about the axis is what a
        # line of mics measures.
        folded = grids.fold(truth, geometry)
        assert abs(cone_angle_deg(v, geometry.axis) - cone_angle_deg(folded, geometry.axis)) <= 2.0, (az, el, v)
        assert r.payloads[0][1]["ambiguity"] == "front-back"


@pytest.mark.parametrize("name, mics", [("tetrahedron", TETRAHEDRON), ("octahedron", OCTAHEDRON), ("cube", CUBE)])
def test_free_field_3d_great_circle_within_2_degrees(name, mics):
    profile = make_profile(name, mics)
    assert profile.geometry.kind == "3d"
    rng = np.random.default_rng(len(mics))
    for az, el in DIRECTIONS_3D:
        _, results = run(profile, plane_wave(profile, az, el, 0.3, rng))
        v = np.array(only_source(results[0]).vector)
        err = float(grids.angular_distance_deg(v, simulate.direction_vector(az, el)))
        assert err <= 2.0, (name, az, el, err)
        assert results[0].payloads[0][1]["ambiguity"] == "none"


def test_planar_high_elevation():
    profile = load_profile("respeaker_4mic_hat")
    rng = np.random.default_rng(12)
    for az in (-150.0, -80.0, 20.0, 110.0):
        _, results = run(profile, plane_wave(profile, az, 62.0, 0.3, rng))
        assert azimuth_error_deg(only_source(results[0]).azimuth_deg, az) <= 2.0


@pytest.mark.parametrize("name, elevation", [("respeaker_6mic_hat", 55.0), ("minidsp_uma8", 70.0),
                                             ("matrix_voice", 75.0)])
def test_planar_elevated_sources_are_found_at_their_azimuth(name, elevation):
    # The scan covers the half-space above a planar array, not only its plane.
    profile = load_profile(name)
    rng = np.random.default_rng(int(elevation))
    for az in (-170.0, -45.0, 80.0):
        _, results = run(profile, plane_wave(profile, az, elevation, 0.3, rng))
        s = only_source(results[0])
        assert azimuth_error_deg(s.azimuth_deg, az) <= 2.0, (name, az, s)
        assert abs(s.elevation_deg - elevation) <= 10.0, (name, az, s)


def test_hemisphere_scan_covers_the_half_space_evenly():
    grid = grids.make_grid(load_profile("respeaker_4mic_hat").geometry)
    step = 0.1
    rings = grids.hemisphere_rings(grid, step)
    np.testing.assert_allclose(np.linalg.norm(rings, axis=1), 1.0)
    assert np.all(rings @ grid.normal >= 0)
    scan = np.concatenate([grid.vectors, rings])
    rng = np.random.default_rng(0)
    probe = grids.fold(rng.standard_normal((2000, 3)), load_profile("respeaker_4mic_hat").geometry)
    probe /= np.linalg.norm(probe, axis=1, keepdims=True)
    inplane_probe, inplane_scan = grids.to_plane(probe, grid), grids.to_plane(scan, grid)
    nearest = np.min(np.linalg.norm(inplane_probe[:, None] - inplane_scan[None], axis=-1), axis=1)
    assert nearest.max() <= 0.75 * step  # every direction's in-plane delays are near a scanned one
    np.testing.assert_allclose(grids.from_plane(inplane_probe, grid), probe, atol=1e-9)


@pytest.mark.parametrize("name, mics", [("respeaker_6mic_hat", None), ("ps3_eye", None), ("cube", CUBE),
                                        ("ring_60cm", ring(8, 0.3))])  # the last one's lag table is by FFT
def test_lag_domain_scan_is_close_to_the_exact_srp(name, mics):
    from arraydaemon.core import kernels

    profile = load_profile(name) if mics is None else make_profile(name, mics)
    pipeline = Pipeline(profile, PipelineOptions(estimator="srp-phat"))
    loc = pipeline.localizer
    assert (loc.scan.lag_steering is None) == (name == "ring_60cm")
    audio = plane_wave(profile, 33.0, 12.0, 0.3, np.random.default_rng(21), snr_db=5.0)
    window = pipeline.features.process(AudioBlock(0, profile.sample_rate, 0.0, 0.0, audio))[0]
    scanned = loc.scan.scan(loc.scan.lags(loc.scan.pair_sum(window.spectra))[1], grid_only=True)
    np.testing.assert_array_equal(scanned, loc.process(window).spectrum)
    gcc = kernels.gcc_phat(loc.scan.pair_sum(window.spectra))
    exact = kernels.srp_phat(gcc, loc.layout.band, loc.layout.bin_hz, loc.scan.pair_delays(loc.grid.vectors), None)
    assert exact.max() > 0.3  # a real peak, not noise
    assert np.max(np.abs(scanned - exact)) <= 0.03


def test_quadratic_vertex_of_a_paraboloid():
    from arraydaemon.localizers.refine import quadratic_vertex

    patch = np.stack(np.meshgrid([-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]), axis=-1).reshape(-1, 2) * 0.5
    x0, y0 = 0.2, -0.35
    dx, dy = patch[:, 0] - x0, patch[:, 1] - y0
    values = 3.0 - 2.0 * dx**2 - 1.0 * dy**2 + 0.8 * dx * dy
    np.testing.assert_allclose(quadratic_vertex(values, patch), [x0, y0], atol=1e-12)
    assert quadratic_vertex(-values, patch) is None  # curving up: no maximum
    line = patch[3:6]
    np.testing.assert_allclose(quadratic_vertex(1.0 - (line[:, 0] - 0.1) ** 2, line), [0.1, 0.0], atol=1e-12)


def test_default_grids_and_explicit_resolution():
    planar, linear = load_profile("respeaker_4mic_hat").geometry, load_profile("ps3_eye").geometry
    sphere = make_profile("tetrahedron", TETRAHEDRON).geometry
    assert [len(grids.make_grid(g)) for g in (planar, linear, sphere)] == [360, 181, 2000]
    assert [len(grids.make_grid(g, 2.0)) for g in (planar, linear, sphere)] == [180, 91, 10314]
    assert len(grids.make_grid(sphere, 10.0)) == 2000  # never coarser than sphere_points
    fine = grids.make_grid(sphere, sphere_points=5000)
    assert len(fine) == 5000 and fine.spacing_deg == pytest.approx(math.degrees(math.sqrt(4 * math.pi / 5000)))
    np.testing.assert_allclose(np.linalg.norm(fine.vectors, axis=1), 1.0)


# --- reverberant room ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def speech():
    return simulate.speech_source(np.random.default_rng(2024), 3.0, 16000)


@pytest.mark.parametrize("az, el", [(50.0, 10.0), (-140.0, 20.0)])
def test_reverberant_room_speech_azimuth_mae_within_10_degrees(speech, az, el):
    profile = load_profile("respeaker_6mic_hat")
    scene = simulate.room_scene(profile.mics, [simulate.SourceSpec(speech, az, el, 1.5)], sample_rate=16000,
                                rt60=0.4, snr_db=20.0, rng=np.random.default_rng(int(az) + 500))
    true_az = scene.sources[0][0]
    _, results = run(profile, scene.audio)
    errors = [azimuth_error_deg(r.estimate.sources[0].azimuth_deg, true_az) for r in results if r.estimate.sources]
    assert len(errors) >= 0.5 * len(results), f"only {len(errors)}/{len(results)} windows active"
    assert np.mean(errors) <= 10.0, f"azimuth MAE {np.mean(errors):.1f}° over {len(errors)} windows"


# --- streaming, activity gate, NaN -----------------------------------------------------------


def assert_same_results(a, b):
    """Identical windows. Times only to 1 ns: a window's time is its block's clock plus the sample
    offset (to follow a live device's clock), so it is summed differently for other block sizes."""
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        ea, eb = ra.estimate, rb.estimate
        assert (ea.seq, ea.level_db, ea.sources) == (eb.seq, eb.level_db, eb.sources)
        assert ea.t_end == pytest.approx(eb.t_end, rel=0, abs=1e-9)
        assert ea.wall_time == pytest.approx(eb.wall_time, rel=1e-15, abs=1e-9)
        np.testing.assert_array_equal(ea.spectrum, eb.spectrum)
        assert [t for t, _ in ra.payloads] == [t for t, _ in rb.payloads]
        for (_, pa), (_, pb) in zip(ra.payloads, rb.payloads):
            times = ("t_end", "wall_time")
            assert {k: v for k, v in pa.items() if k not in times} == {k: v for k, v in pb.items() if k not in times}
            assert (pa["t_end"], pa["wall_time"]) == (ea.t_end, ea.wall_time)


@pytest.mark.parametrize("hop_s", [0.1, 0.05])
def test_streamed_output_equals_whole_file_output(speech, hop_s):
    profile = load_profile("respeaker_4mic_hat")
    scene = simulate.room_scene(profile.mics, [simulate.SourceSpec(speech[:24000], 70.0, 0.0, 1.5)],
                                sample_rate=16000, rt60=0.3, snr_db=25.0, rng=np.random.default_rng(1))
    audio = scene.audio
    options = PipelineOptions(estimator="srp-phat", features=FeatureConfig(hop_s=hop_s))
    _, whole = run(profile, audio, options=options)
    assert len(whole) >= 10 and any(r.estimate.sources for r in whole)
    rng = np.random.default_rng(int(hop_s * 1000))
    for max_block in (7, 300, 5000):
        sizes = []
        while sum(sizes) < len(audio):
            sizes.append(int(min(rng.integers(0, max_block + 1), len(audio) - sum(sizes))))
        _, streamed = run(profile, audio, blocks=sizes, options=options)
        assert_same_results(whole, streamed)
    # reset() returns the pipeline to its initial state
    pipeline, _ = run(profile, audio, options=options)
    pipeline.reset()
    again = pipeline.process(AudioBlock(0, 16000, 0.0, 1e9, audio))
    assert_same_results(whole, again)


@pytest.mark.parametrize("level", [0.0, 1e-4, 0.03])
def test_noise_only_scene_has_almost_no_active_windows(level):
    # Independent sensor noise (and digital silence): nothing directional, so the activity gate
    # publishes empty source lists, with finite levels and spectra. The SRP of noise over a grid
    # reaches the absolute gate (0.12) now and then with 4 mics (3 pairs), hardly ever with 6.
    rng = np.random.default_rng(3)
    for profile, allowed in ((load_profile("respeaker_6mic_hat"), 0), (make_profile("tetrahedron", TETRAHEDRON), 3)):
        audio = (level * rng.standard_normal((16000 * 3, profile.num_mics))).astype(np.float32)
        _, results = run(profile, audio)
        assert len(results) >= 25
        active = [r.estimate.sources[0] for r in results if r.estimate.sources]
        assert len(active) <= allowed, (profile.name, active)
        assert all(s.confidence < 0.2 for s in active)
        for r in results:
            doa = r.payloads[0][1]
            assert doa["active"] is bool(doa["sources"])
            assert math.isfinite(doa["level_db"]) and np.isfinite(r.estimate.spectrum).all()
            wire.encode("doa", doa)


@pytest.mark.parametrize("name, allowed", [("respeaker_6mic_hat", 1), ("respeaker_4mic_hat", 2)])
def test_diffuse_noise_only_scene_has_no_active_windows(name, allowed):
    # Diffuse noise is coherent at low frequencies: its SRP-PHAT is 0.25-0.35 everywhere (peaking
    # towards the array normal), above the absolute gate (0.12); the prominence gate rejects it.
    profile = load_profile(name)
    audio = 0.01 * simulate.diffuse_noise(profile.mics, 16000 * 2, 16000, np.random.default_rng(4))
    _, results = run(profile, audio)
    assert sum(bool(r.estimate.sources) for r in results) <= allowed


@pytest.mark.parametrize("bad, integration_s", [(np.nan, 0.0), (np.inf, 0.0), (np.nan, INTEGRATION_S)])
def test_nan_block_mid_stream_is_zeroed_counted_and_never_published(bad, integration_s):
    profile = load_profile("respeaker_4mic_hat")
    rng = np.random.default_rng(5)
    audio = plane_wave(profile, -30.0, 0.0, 3.0, rng)
    sizes = [1600] * 30
    options = PipelineOptions(estimator="srp-phat", localizer=LocalizerConfig(integration_s=integration_s))
    _, clean = run(profile, audio, blocks=sizes, options=options)
    dirty = audio.copy()
    dirty[12 * 1600 + 100:12 * 1600 + 200, 2] = bad  # inside block 12
    dirty[20 * 1600, :] = -bad  # first sample of block 20
    pipeline, results = run(profile, dirty, blocks=sizes, options=options)
    assert pipeline.features.bad_blocks == 2
    assert len(results) == len(clean)
    window = pipeline.layout.window_samples
    zeroed = [(12 * 1600, 13 * 1600), (20 * 1600, 21 * 1600)]
    for r, c in zip(results, clean):
        est = r.estimate
        assert np.isfinite(est.spectrum).all()
        for topic, payload in r.payloads:
            wire.encode(topic, payload)  # raises on any NaN/Inf
        end = int(round(est.t_end * 16000))
        # Integrating over windows, every window after a bad block remembers it.
        overlaps = any(lo < end and (end - window < hi or integration_s > 0) for lo, hi in zeroed)
        if not overlaps:  # windows away from the bad blocks are untouched
            assert est.sources == c.estimate.sources
            np.testing.assert_array_equal(est.spectrum, c.estimate.spectrum)
        elif est.sources:  # three quarters of a window of good audio still localize
            assert azimuth_error_deg(est.sources[0].azimuth_deg, -30.0) <= 5.0
    assert sum(1 for r in results if r.estimate.sources) >= len(results) - 6

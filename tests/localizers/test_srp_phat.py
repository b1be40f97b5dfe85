"""The SRP-PHAT localizer (localizers/srp_phat.py) through the real Pipeline (features → localizer →
publish): free-field fractional-delay plane waves on planar, tilted, linear and 3-D arrays, a
pyroomacoustics reverberant room with espeak-ng speech, and the activity gate on noise."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from arraydaemon.core import grids
from arraydaemon.core.angles import azimuth_difference
from arraydaemon.core.profiles import load_profile
from arraydaemon.io import wire
from arraydaemon.research import simulate
from tests.helpers import CUBE, OCTAHEDRON, TETRAHEDRON, make_profile, plane_wave, ring, rotation_x, run_pipeline

# Bundled horizontal planar arrays; ps3_eye is the bundled linear one.
PLANAR_PROFILES = ["respeaker_4mic_hat", "respeaker_6mic_hat", "respeaker_usb_4mic", "matrix_creator",
                   "matrix_voice", "minidsp_uma8", "demo"]
# (azimuth, elevation) in degrees; planar arrays are tested up to 40° out of their plane (see
# test_planar_high_elevation for what happens above).
DIRECTIONS = [(0.0, 0.0), (37.3, 10.0), (-123.4, 25.0), (171.2, -20.0), (95.5, 40.0), (-60.7, -35.0)]
DIRECTIONS_3D = DIRECTIONS + [(140.0, -60.0), (-20.0, 75.0), (10.0, -85.0)]


def in_plane_angle_deg(a: np.ndarray, b: np.ndarray, normal) -> float:
    """Angle between the projections of ``a`` and ``b`` onto the plane with unit ``normal``."""
    n = np.asarray(normal)
    pa, pb = a - (a @ n) * n, b - (b @ n) * n
    cos = pa @ pb / (np.linalg.norm(pa) * np.linalg.norm(pb))
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def cone_angle_deg(v: np.ndarray, axis) -> float:
    return math.degrees(math.acos(min(1.0, max(-1.0, float(v @ np.asarray(axis))))))


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
        _, results = run_pipeline(profile, plane_wave(profile.mics, profile.sample_rate, az, el, 0.45, rng))
        assert len(results) == 3
        for r in results:
            s = only_source(r)
            assert azimuth_difference(s.azimuth_deg, az) <= 2.0, (name, az, el, s)
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
        _, results = run_pipeline(profile, plane_wave(profile.mics, profile.sample_rate, az, el, 0.3, rng))
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
        _, results = run_pipeline(profile, plane_wave(profile.mics, profile.sample_rate, az, el, 0.3, rng))
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
        _, results = run_pipeline(profile, plane_wave(profile.mics, profile.sample_rate, az, el, 0.3, rng))
        v = np.array(only_source(results[0]).vector)
        err = float(grids.angular_distance_deg(v, simulate.direction_vector(az, el)))
        assert err <= 2.0, (name, az, el, err)
        assert results[0].payloads[0][1]["ambiguity"] == "none"


def test_planar_high_elevation():
    profile = load_profile("respeaker_4mic_hat")
    rng = np.random.default_rng(12)
    for az in (-150.0, -80.0, 20.0, 110.0):
        _, results = run_pipeline(profile, plane_wave(profile.mics, profile.sample_rate, az, 62.0, 0.3, rng))
        assert azimuth_difference(only_source(results[0]).azimuth_deg, az) <= 2.0


@pytest.mark.parametrize("name, elevation", [("respeaker_6mic_hat", 55.0), ("minidsp_uma8", 70.0),
                                             ("matrix_voice", 75.0)])
def test_planar_elevated_sources_are_found_at_their_azimuth(name, elevation):
    # The scan covers the half-space above a planar array, not only its plane.
    profile = load_profile(name)
    rng = np.random.default_rng(int(elevation))
    for az in (-170.0, -45.0, 80.0):
        _, results = run_pipeline(profile, plane_wave(profile.mics, profile.sample_rate, az, elevation, 0.3, rng))
        s = only_source(results[0])
        assert azimuth_difference(s.azimuth_deg, az) <= 2.0, (name, az, s)
        assert abs(s.elevation_deg - elevation) <= 10.0, (name, az, s)


# --- reverberant room ------------------------------------------------------------------------


@pytest.mark.sim
@pytest.mark.parametrize("az, el", [(50.0, 10.0), (-140.0, 20.0)])
def test_reverberant_room_speech_azimuth_mae_within_10_degrees(speech, az, el):
    profile = load_profile("respeaker_6mic_hat")
    scene = simulate.room_scene(profile.mics, [simulate.SourceSpec(speech, az, el, 1.5)], sample_rate=16000,
                                rt60=0.4, snr_db=20.0, rng=np.random.default_rng(int(az) + 500))
    true_az = scene.sources[0][0]
    _, results = run_pipeline(profile, scene.audio)
    errors = [azimuth_difference(r.estimate.sources[0].azimuth_deg, true_az) for r in results if r.estimate.sources]
    assert len(errors) >= 0.5 * len(results), f"only {len(errors)}/{len(results)} windows active"
    assert np.mean(errors) <= 10.0, f"azimuth MAE {np.mean(errors):.1f}° over {len(errors)} windows"


# --- the activity gate -----------------------------------------------------------------------


@pytest.mark.parametrize("level", [0.0, 1e-4, 0.03])
def test_noise_only_scene_has_almost_no_active_windows(level):
    # Independent sensor noise (and digital silence): nothing directional, so the activity gate
    # publishes empty source lists, with finite levels and spectra. The SRP of noise over a grid
    # reaches the absolute gate (0.12) now and then with 4 mics (3 pairs), hardly ever with 6.
    rng = np.random.default_rng(3)
    for profile, allowed in ((load_profile("respeaker_6mic_hat"), 0), (make_profile("tetrahedron", TETRAHEDRON), 3)):
        audio = (level * rng.standard_normal((16000 * 3, profile.num_mics))).astype(np.float32)
        _, results = run_pipeline(profile, audio)
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
    _, results = run_pipeline(profile, audio)
    assert sum(bool(r.estimate.sources) for r in results) <= allowed

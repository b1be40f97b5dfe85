"""The array's size, pair distances from diffuse noise, and the sample rate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

from arraydaemon.research import simulate
from arraydaemon.verify import from_array, read_file, verify_recording
from tests.helpers import ring
from tests.verify.scenes import IRREGULAR, profile, room_talker, walking_noise


@pytest.mark.parametrize("scale", [0.75, 1.3])
def test_free_field_scale_error(scale):
    prof = profile(IRREGULAR * scale)
    report = verify_recording(from_array(walking_noise(IRREGULAR, seed=8), prof), prof)
    assert report.scale.status == ("too_small" if scale < 1 else "too_large")
    assert report.scale.factor == pytest.approx(1 / scale, rel=0.1)
    assert not report.ok and any(p.startswith("geometry:") for p in report.problems)


@pytest.mark.sim
@pytest.mark.parametrize("scale", [0.8, 1.25])
def test_room_scale_error(scale):
    """A 20-25 % wrong geometry in a room with diffuse noise and a talker walking around."""
    room = room_talker(ring(6, 0.0463), seed=21)
    prof = profile(ring(6, 0.0463) * scale)
    report = verify_recording(from_array(room.device, prof), prof)
    assert report.scale.status == ("too_small" if scale < 1 else "too_large"), report.scale.message


def test_diffuse_noise_pair_distances():
    """30 s of diffuse noise 10 dB above sensor noise, no talker: distances within 1 cm."""
    rng = np.random.default_rng(9)
    mics = np.array([[0.0, 0.0, 0.0], [0.03, 0.0, 0.0], [0.0, 0.07, 0.0], [-0.12, 0.05, 0.0], [0.05, -0.15, 0.0]])
    x = simulate.diffuse_noise(mics, 30 * 16000, 16000, rng)
    x = (x + rng.standard_normal(x.shape).astype(np.float32) * np.float32(np.sqrt(np.mean(x**2) / 10))) * 0.05
    prof = profile(mics)
    report = verify_recording(from_array(x.astype(np.float32), prof), prof)
    errors = [abs(p.coherence_distance_m - p.declared_m) for p in report.pairs if p.declared_m <= 0.2]
    assert len(errors) == sum(p.declared_m <= 0.2 for p in report.pairs) >= 8
    assert np.median(errors) < 0.01 and max(errors) < 0.02
    assert report.order.status == "undetermined"  # no talker: the order cannot be checked


def test_diffuse_noise_finds_a_wrong_geometry_size():
    rng = np.random.default_rng(10)
    mics = ring(6, 0.0463)
    x = simulate.diffuse_noise(mics, 20 * 16000, 16000, rng) * 0.05
    prof = profile(mics * 0.75)
    report = verify_recording(from_array(x, prof), prof)
    assert report.scale.status == "too_small" and report.scale.coherence_factor == pytest.approx(1 / 0.75, rel=0.05)


def test_device_sampling_at_another_rate():
    """48 kHz samples taken for 16 kHz ones: every delay is 3x too long."""
    audio = walking_noise(IRREGULAR, seed=12, seconds=4.0, fs=48000)
    prof = profile(IRREGULAR)
    report = verify_recording(from_array(audio, prof), prof)
    assert report.rate.delay_ratio == pytest.approx(3.0, rel=0.1)
    assert report.problems[0].startswith("delays are") and "48000 Hz" in report.problems[0]
    assert report.order.status == "undetermined" and report.suggested_map is None


def test_upsampled_device_and_resampled_file(tmp_path):
    """16 kHz audio upsampled to 48 kHz: a warning that names 16000 Hz; a 48 kHz file for a 16 kHz
    profile: resampled, with a warning."""
    import soundfile as sf

    audio = walking_noise(IRREGULAR, seed=13)
    up = resample_poly(audio, 3, 1, axis=0).astype(np.float32)
    prof48 = profile(IRREGULAR, sample_rate=48000)
    report = verify_recording(from_array(up, prof48), prof48)
    assert report.rate.content_hz == 16000 and report.ok
    assert any("sampled at 16000 Hz" in w for w in report.warnings)
    path = tmp_path / "rec48.wav"
    sf.write(path, up, 48000, subtype="FLOAT")
    prof16 = profile(IRREGULAR)
    notes = []
    report = verify_recording(read_file(path, prof16, notify=notes.append), prof16)
    assert report.rate.file_hz == 48000 and notes and report.ok
    assert any("the recording is at 48000 Hz" in w for w in report.warnings)

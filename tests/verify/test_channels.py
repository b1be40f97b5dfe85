"""Per-channel problems on free-field recordings (white-noise bursts stepping around an irregular
5-mic array): dead (silent, constant, far too quiet, or hearing nothing the others hear), clipped,
DC, gain, inverted, duplicated; and a correct recording is ok."""

from __future__ import annotations

import numpy as np
import pytest

from arraydaemon.verify import from_array, verify_recording
from tests.verify.scenes import IRREGULAR, profile, walking_noise


@pytest.fixture(scope="module")
def clean():
    return walking_noise(IRREGULAR, seed=1)


@pytest.fixture(scope="module")
def prof():
    return profile(IRREGULAR)


def verify(audio, prof):
    return verify_recording(from_array(audio, prof), prof)


def problems_of(report) -> dict[int, list[str]]:
    return {c.channel: c.problems for c in report.channels if c.problems}


def test_correct_recording_is_ok(clean, prof):
    report = verify(clean, prof)
    assert report.ok, report.problems
    assert report.order.status == "consistent" and report.suggested_map is None
    assert report.scale.status == "ok"
    assert all(p.max_observed_delay_s <= 1.15 * p.allowed_delay_s + 3e-5 for p in report.pairs)


@pytest.mark.parametrize("style", ["zeros", "constant", "quiet", "deaf"])
def test_dead_channel(clean, prof, style):
    x = clean.copy()
    rng = np.random.default_rng(2)
    x[:, 3] = {"zeros": 0.0, "constant": 0.2, "quiet": rng.standard_normal(len(x)) * 1e-4,
               "deaf": rng.standard_normal(len(x)) * float(np.std(clean[:, 3]))}[style]
    report = verify(x, prof)
    assert not report.ok
    assert "dead" in problems_of(report)[3]
    assert set(problems_of(report)) == {3}, problems_of(report)


def test_clipped_dc_gain(clean, prof):
    x = clean.copy()
    x[:, 0] = np.clip(x[:, 0] * 6.0, -0.3, 0.3)  # flat tops below full scale
    x[:, 1] += 0.05
    x[:, 2] *= 0.25  # -12 dB
    found = problems_of(verify(x, prof))
    assert "clipped" in found[0]
    assert found[1] == ["dc"]
    assert found[2] == ["gain"]


def test_inverted_channel(clean, prof):
    x = clean.copy()
    x[:, 4] *= -1.0
    report = verify(x, prof)
    assert problems_of(report) == {4: ["polarity"]}
    assert report.order.status == "consistent"  # turned upright before the order search


def test_duplicated_channel(clean, prof):
    x = clean.copy()
    x[:, 2] = x[:, 1]
    found = problems_of(verify(x, prof))
    assert "duplicate" in found[1] and "duplicate" in found[2]


def test_unused_device_channels_are_not_problems(clean):
    """Mics on 5 of 8 device channels, the rest silent (a loopback, an unused input)."""
    device = np.zeros((len(clean), 8), dtype=np.float32)
    cmap = [6, 0, 2, 5, 1]
    device[:, cmap] = clean
    prof = profile(IRREGULAR, channels=8, channel_map=cmap)
    report = verify(device, prof)
    assert report.ok, report.problems
    assert [c.channel for c in report.channels] == list(range(8))
    assert {c.channel: c.mic for c in report.channels}[6] == 0

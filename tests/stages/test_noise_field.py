"""The stationary noise field (stages/noise_field.py) on synthetic plane waves: it learns a fan's
direction from its cells, sets the fan's cells apart from a talker's, and stays out of the way when
the noise has no direction; and the features stage's evidence with and without it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from arraydaemon.core.messages import AudioBlock
from arraydaemon.core.options import FeatureConfig
from arraydaemon.core.profiles import load_profile
from arraydaemon.research import simulate
from arraydaemon.stages.features import GccPhatFeatures
from arraydaemon.stages.noise_field import StationaryNoiseField

FS = 16000
N_FFT = 512
BINS = N_FFT // 2 + 1
BAND = (7, 225)
FRAME_S = 0.016
MICS = load_profile("respeaker_6mic_hat").mics  # (6, 3), 4.6 cm ring


def _steering(azimuth_deg: float, elevation_deg: float = 0.0) -> np.ndarray:
    """Plane-wave steering vectors ``[shape=(mics, bins)]`` of a direction."""
    delays = -(MICS @ simulate.direction_vector(azimuth_deg, elevation_deg)) / 343.0
    freqs = np.arange(BINS) * FS / N_FFT
    return np.exp(-2j * np.pi * freqs[None, :] * delays[:, None])


def _gaussian(rng, shape) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2.0)


def _field(time_constant_s: float = 2.0) -> StationaryNoiseField:
    return StationaryNoiseField(BINS, len(MICS), FRAME_S, time_constant_s, 4.0, BAND)


def _fan_frame(rng, fan) -> np.ndarray:
    """One STFT frame ``[shape=(mics, bins)]``: the fan's plane wave plus sensor noise 20 dB below."""
    return fan * _gaussian(rng, BINS)[None, :] + 0.1 * _gaussian(rng, (len(MICS), BINS))


def test_a_fan_is_learned_and_its_cells_are_told_from_a_talkers():
    rng = np.random.default_rng(3)
    fan, talker = _steering(-100.0, -10.0), _steering(40.0, 10.0)
    field = _field()
    every = np.ones(BINS, dtype=bool)
    for _ in range(240):  # 3.8 s of fan cells at the floor
        field.update(_fan_frame(rng, fan), every)
    lo, hi = BAND
    assert field.active.mean() > 0.95
    overlap = np.abs(np.sum(field.directions.conj() * fan[:, lo:hi].T, axis=1)) ** 2 / len(MICS)
    assert np.all(overlap[field.active] > 0.95)

    cell = _fan_frame(rng, fan)
    power = np.mean(np.abs(cell) ** 2, axis=0)
    left, share = field.residual(cell, power)
    assert np.median(share[lo:hi]) > 0.9  # the fan's own cell: nearly all along the noise direction
    assert np.median(left[lo:hi] / power[lo:hi]) < 0.05  # and what is left of it is the sensor noise

    # A talker 20 dB above the fan: its share is what its steering vector has in common with the fan's.
    cell = 10.0 * talker * _gaussian(rng, BINS)[None, :] + _fan_frame(rng, fan)
    power = np.mean(np.abs(cell) ** 2, axis=0)
    left, share = field.residual(cell, power)
    freqs = np.arange(BINS) * FS / N_FFT
    high = (freqs >= 2000.0) & (np.arange(BINS) >= lo) & (np.arange(BINS) < hi)
    assert np.median(share[high]) < 0.2
    assert np.median(left[high] / power[high]) > 0.8


def test_noise_without_a_direction_leaves_every_bin_alone():
    rng = np.random.default_rng(4)
    field = _field()
    every = np.ones(BINS, dtype=bool)
    for _ in range(240):  # sensor noise only: independent at every mic
        field.update(_gaussian(rng, (len(MICS), BINS)), every)
    assert not field.active.any()
    cell = _gaussian(rng, (len(MICS), BINS))
    power = np.mean(np.abs(cell) ** 2, axis=0)
    left, share = field.residual(cell, power)
    assert left is power and not share.any()


def test_too_few_noise_cells_teach_nothing_and_reset_forgets():
    rng = np.random.default_rng(5)
    fan = _steering(30.0)
    field = _field()
    every = np.ones(BINS, dtype=bool)
    for _ in range(12):  # fewer cells than 3 per mic: a rank-deficient covariance is not trusted
        field.update(_fan_frame(rng, fan), every)
    assert not field.active.any()
    for _ in range(120):
        field.update(_fan_frame(rng, fan), every)
    assert field.active.any()
    field.reset()
    assert not field.active.any() and not field.directions.any()


def _render(rng, seconds: float, fan_gain: float, talker_gain: float = 1.0) -> np.ndarray:
    """6-mic ring, free field: a talker at 40° whose noise bursts start every 0.5 s, and a fan at
    -100°, each delayed to every mic by whole samples (a fractional delay would smear the bursts'
    edges over the silences between them, a directional leak no room has)."""
    n = int(seconds * FS)
    speech = talker_gain * rng.standard_normal(n) * (np.arange(n) % (FS // 2) < FS // 5)
    fan = rng.standard_normal(n) * fan_gain

    def delayed(x, azimuth_deg, elevation_deg):
        delays = -(MICS @ simulate.direction_vector(azimuth_deg, elevation_deg)) / 343.0 * FS
        return np.stack([np.roll(x, int(round(d))) for d in delays], axis=1)

    audio = 0.05 * delayed(speech, 40.0, 10.0) + 0.05 * delayed(fan, -100.0, -10.0)
    return (audio + 2e-3 * rng.standard_normal(audio.shape)).astype(np.float32)  # sensor noise, 28 dB below


def _evidence(audio: np.ndarray, config: FeatureConfig) -> np.ndarray:
    feats = GccPhatFeatures(load_profile("respeaker_6mic_hat"), config)
    return np.array([w.evidence for w in feats.process(AudioBlock(0, FS, 0.0, 0.0, audio))])


def test_the_features_stage_evidence_is_unchanged_without_a_directional_noise():
    audio = _render(np.random.default_rng(6), 4.0, fan_gain=0.0)
    on, off = FeatureConfig(), replace(FeatureConfig(), noise_field_s=0.0)
    assert np.array_equal(_evidence(audio, on), _evidence(audio, off))


def test_the_features_stage_sets_a_fans_cells_apart():
    # A fan alone: without the field some of its cells pass the tests in every window (its power
    # fluctuates about the floor); with it, once learned, hardly any do.
    fan_only = _render(np.random.default_rng(7), 6.0, fan_gain=0.5, talker_gain=0.0)
    on = _evidence(fan_only, FeatureConfig())[-20:].mean()
    off = _evidence(fan_only, replace(FeatureConfig(), noise_field_s=0.0))[-20:].mean()
    assert on < 0.25 * off, (on, off)
    # With a talker's bursts 6 dB above the fan, the talker's cells stay evidence.
    both = _render(np.random.default_rng(8), 6.0, fan_gain=0.5)
    on = _evidence(both, FeatureConfig())[-20:].mean()
    assert on > 2.0 * _evidence(fan_only, FeatureConfig())[-20:].mean(), on


def test_its_settings_are_checked():
    for bad in (dict(noise_field_s=-1.0), dict(noise_field_s=float("nan")), dict(noise_dominance=1.0),
                dict(noise_share=0.0), dict(noise_share=1.5)):
        try:
            replace(FeatureConfig(), **bad).validate()
        except ValueError as exc:
            assert "noise" in str(exc)
        else:
            raise AssertionError(f"{bad} passed validation")
    FeatureConfig(noise_field_s=0.0).validate()  # 0: off


def test_a_talker_with_short_pauses_is_not_learned_as_noise():
    # 200 ms bursts, 100 ms gaps, 20 dB SNR: the gaps are too short for the floor to fall to the
    # sensor noise, so the talker's weakest cells sit at the floor; along its direction most cells
    # are loud, which a stationary noise's are not (noise_field.MAX_LOUD_SHARE).
    from arraydaemon.research.bench import bench_audio, bench_profile

    profile = bench_profile(8)
    audio = bench_audio(profile, 6.0).astype(np.float32)

    def evidence(config):
        feats = GccPhatFeatures(profile, config)
        return np.array([w.evidence for w in feats.process(AudioBlock(0, FS, 0.0, 0.0, audio))])[-20:]

    on, off = evidence(FeatureConfig()), evidence(replace(FeatureConfig(), noise_field_s=0.0))
    assert on.mean() >= 0.9 * off.mean(), (on.mean(), off.mean())

"""The neural localizer's inputs (localizers/neural/tokens.py): pair selection, group GCC tokens,
clean targets, raw-phase and energy tokens."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from arraydaemon.core.profiles import load_profile
from arraydaemon.localizers.neural.tokens import (
    GROUPS,
    LAG_TIMES,
    MAX_PAIRS,
    MAX_TOKEN_MICS,
    LagProjector,
    TokenPairs,
    clean_gcc_target,
    group_cross,
    group_edges,
    model_tokens,
    phase_bins,
    phase_tokens,
    window_phases,
)
from arraydaemon.research import simulate
from arraydaemon.research.dataset import geometry_profile, random_geometry
from tests.helpers import feature_windows


def _windows(mics, audio):
    """The features stage of a 16 kHz array at ``mics`` and its windows of ``audio``."""
    return feature_windows(geometry_profile(mics), audio)


def test_small_arrays_use_every_pair():
    pairs = TokenPairs.for_array(load_profile("respeaker_6mic_hat").mics, 0)
    assert list(zip(pairs.pair_i, pairs.pair_j)) == list(itertools.combinations(range(6), 2))


def test_large_arrays_use_a_spread_subset_with_the_reference():
    mics = next(m for seed in range(100) if len(m := random_geometry(np.random.default_rng(seed), "irregular_planar")[0])
                > MAX_TOKEN_MICS + 3)
    pairs = TokenPairs.for_array(mics, 2)
    assert len(pairs.mics) == MAX_TOKEN_MICS and len(pairs) == MAX_PAIRS and 2 in pairs.mics
    span = lambda pts: np.linalg.norm(pts[:, None] - pts[None], axis=-1).max()
    assert span(mics[pairs.mics]) >= 0.8 * span(mics)
    np.testing.assert_allclose(pairs.baselines(mics), mics[pairs.pair_j] - mics[pairs.pair_i])


def _reference_tokens(spectra, pairs, projector):
    """Direct numpy formula: gcc(tau) = mean_k Re(G_k e^{j 2π f_k tau}), G = PHAT of the group sum."""
    freqs = np.arange(spectra.shape[2]) * 16000 / 512
    edges = group_edges(spectra.shape[0])
    out = np.zeros((GROUPS, len(pairs), 2 * len(LAG_TIMES)))
    for g, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        for p, (i, j) in enumerate(zip(pairs.pair_i, pairs.pair_j)):
            c = (spectra[a:b, j] * np.conj(spectra[a:b, i])).astype(np.complex128).sum(axis=0)
            phat = c / np.maximum(np.abs(c), 1e-30)
            for band, (lo, hi) in enumerate(projector.bands):
                steer = np.exp(2j * np.pi * freqs[lo:hi, None] * LAG_TIMES[None, :])
                out[g, p, band * len(LAG_TIMES):(band + 1) * len(LAG_TIMES)] = (phat[lo:hi, None] * steer).real.mean(0)
    return out


def test_tokens_match_the_direct_gcc_formula():
    profile = load_profile("respeaker_4mic_hat")
    rng = np.random.default_rng(0)
    feats, windows = _windows(profile.mics, rng.standard_normal((8000, 4)))
    projector = LagProjector.for_layout(feats.layout)
    pairs = TokenPairs.for_array(profile.mics, 0)
    w = windows[-1]
    cross = group_cross(w.spectra, pairs, feats.layout.band)
    np.testing.assert_allclose(model_tokens("gcc", w, cross, projector, pairs),
                               _reference_tokens(w.spectra, pairs, projector), atol=2e-5)
    # the groups' cross-spectra sum to the whole window's (what SRP-PHAT reuses)
    whole = group_cross(w.spectra, pairs, feats.layout.band, groups=1)[0]
    np.testing.assert_allclose(cross.sum(0), whole, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("mics", [4, 8])
def test_gcc_energy_tokens_are_both_halves_side_by_side(mics):
    """model_tokens("gcc+energy") projects both halves in one product: what the dataset's two
    separate calls give (the shipped model was trained on those), per group and pair."""
    from arraydaemon.localizers.neural.tokens import energy_tokens_from_cross, tokens_from_cross
    from arraydaemon.research.bench import bench_audio, bench_profile

    profile = bench_profile(mics)
    feats, windows = _windows(profile.mics, bench_audio(profile, 1.0))
    projector = LagProjector.for_layout(feats.layout)
    pairs = TokenPairs.for_array(profile.mics, 0)
    for w in windows[-3:]:
        cross = group_cross(w.spectra, pairs, projector.span)
        separate = np.concatenate([tokens_from_cross(cross, projector), energy_tokens_from_cross(cross, projector)],
                                  axis=-1)
        np.testing.assert_allclose(model_tokens("gcc+energy", w, cross, projector, pairs), separate,
                                   rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("az, el", [(30.0, 10.0), (-120.0, -20.0)])
def test_each_pair_peaks_at_its_delay_for_a_plane_wave(az, el):
    mics, _ = random_geometry(np.random.default_rng(7), "cluster_3d")
    rng = np.random.default_rng(1)
    sig = rng.standard_normal(16000).astype(np.float32)
    audio = simulate.free_field_scene(mics, [(sig, az, el)], 16000)
    feats, windows = _windows(mics, audio)
    projector = LagProjector.for_layout(feats.layout)
    pairs = TokenPairs.for_array(mics, 0)
    target = clean_gcc_target(windows[-1], projector, pairs)
    delays = -(pairs.baselines(mics) @ simulate.direction_vector(az, el)) / 343.0
    peaks = LAG_TIMES[np.argmax(target, axis=1)]
    np.testing.assert_allclose(peaks, delays, atol=LAG_TIMES[1] - LAG_TIMES[0])


def test_phase_tokens_pair_up_both_mics_raw_phase():
    profile = load_profile("matrix_voice")
    feats, windows = _windows(profile.mics, np.random.default_rng(2).standard_normal((8000, profile.num_mics)))
    projector = LagProjector.for_layout(feats.layout)
    pairs = TokenPairs.for_array(profile.mics, 0)
    w = windows[-1]
    tokens = phase_tokens(window_phases(w, projector, pairs), pairs.slots)
    newest = group_edges(w.spectra.shape[0])[1:] - 1
    g, p = 1, 5
    i, j = pairs.pair_i[p], pairs.pair_j[p]
    phase_i = np.angle(w.spectra[newest[g], i, phase_bins(projector)])
    phase_j = np.angle(w.spectra[newest[g], j, phase_bins(projector)])
    expected = np.concatenate([np.cos(phase_i), np.sin(phase_i), np.cos(phase_j), np.sin(phase_j)])
    np.testing.assert_allclose(tokens[g, p], expected, atol=1e-6)


def test_energy_tokens_follow_the_louder_source_and_ignore_overall_gain():
    from scipy.signal import butter, sosfilt

    from arraydaemon.localizers.neural.tokens import energy_tokens_from_cross, tokens_from_cross

    mics = load_profile("respeaker_6mic_hat").mics
    rng = np.random.default_rng(3)
    talker = sosfilt(butter(4, 1500, fs=16000, output="sos"), rng.standard_normal(16000)).astype(np.float32)
    noise = rng.standard_normal(16000).astype(np.float32)
    noise *= 10 ** (-12 / 20) * np.std(talker) / np.std(noise)  # broadband, 12 dB quieter
    audio = simulate.free_field_scene(mics, [(talker, 60.0, 0.0), (noise, -90.0, 0.0)], 16000)
    feats, windows = _windows(mics, audio)
    projector = LagProjector.for_layout(feats.layout)
    pairs = TokenPairs.for_array(mics, 0)
    cross = group_cross(windows[-1].spectra, pairs, projector.span)
    n = len(LAG_TIMES)
    delay_of = lambda az: -(pairs.baselines(mics) @ simulate.direction_vector(az, 0.0)) / 343.0
    longest = int(np.argmax(np.linalg.norm(pairs.baselines(mics), axis=1)))
    energy = energy_tokens_from_cross(cross, projector)[-1, longest]
    phat = tokens_from_cross(cross, projector)[-1, longest]
    energy_peak = LAG_TIMES[np.argmax(energy[:n] + energy[n:])]
    assert abs(energy_peak - delay_of(60.0)[longest]) <= 2 * (LAG_TIMES[1] - LAG_TIMES[0])
    # PHAT's high band (where only the noise has energy) points at the noise instead
    assert abs(LAG_TIMES[np.argmax(phat[n:])] - delay_of(-90.0)[longest]) <= 2 * (LAG_TIMES[1] - LAG_TIMES[0])
    louder = group_cross((windows[-1].spectra * 10).astype(np.complex64), pairs, projector.span)
    np.testing.assert_allclose(energy_tokens_from_cross(louder, projector), energy_tokens_from_cross(cross, projector),
                               rtol=1e-4, atol=1e-5)

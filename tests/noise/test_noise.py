"""The robot's own noise (``arraydaemon/noise``): the noise files, learning a model (and refusing a
recording with speech in it), whitening it out, never tracking it, and the online state across a
restart."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from arraydaemon.core.errors import UserError
from arraydaemon.core.options import FeatureConfig, PipelineOptions
from arraydaemon.core.profiles import load_profile
from arraydaemon.noise import files
from arraydaemon.noise.learn import learn
from arraydaemon.noise.model import load_noise_model, save_noise_model
from arraydaemon.noise.state import restore_noise_state, save_noise_state
from arraydaemon.noise.whiten import NoiseWhitener
from arraydaemon.research import simulate
from arraydaemon.stages.features import FrameLayout
from tests.helpers import make_profile, plane_wave, ring, run_pipeline

SR = 16000


def _layout():
    return FrameLayout.from_config(FeatureConfig(), SR)


def _identity_model(profile, tmp_path, name="model.npz"):
    layout = _layout()
    cov = np.tile(np.eye(profile.num_mics, dtype=np.complex128), (layout.bins, 1, 1))
    return save_noise_model(tmp_path / name, cov, profile, layout)


# --- files --------------------------------------------------------------------------------------


def test_a_noise_model_of_another_profile_is_refused_with_one_line(tmp_path):
    profile = load_profile("respeaker_6mic_hat")
    path = _identity_model(profile, tmp_path)
    load_noise_model(path, profile, _layout())  # its own profile: fine
    others = [load_profile("respeaker_4mic_hat"),  # another name and mic count
              make_profile(profile.name, profile.mics + np.array([0.01, 0.0, 0.0])),  # same name, moved mics
              make_profile(profile.name, profile.mics, sample_rate=48000)]
    for other in others:
        layout = FrameLayout.from_config(FeatureConfig(), other.sample_rate)
        with pytest.raises(UserError) as err:
            load_noise_model(path, other, layout)
        assert "\n" not in str(err.value) and str(path) in str(err.value) and "learn one for this profile" in str(err.value)


def test_noise_files_refuse_other_kinds_versions_and_garbage(tmp_path):
    profile = load_profile("respeaker_4mic_hat")
    layout = _layout()
    model = _identity_model(profile, tmp_path)
    with pytest.raises(UserError, match="a noise model, not a noise state"):
        files.load(model, "noise-state", profile, layout)
    old = files.save(tmp_path / "old.npz", "noise-model", profile, layout, {"covariance": np.zeros(1)})
    with np.load(old) as z:
        arrays = {k: z[k] for k in z.files}
    header = bytes(arrays["header"]).decode().replace('"version": 1', '"version": 99')
    arrays["header"] = np.frombuffer(header.encode(), dtype=np.uint8)
    np.savez(tmp_path / "v99.npz", **arrays)
    with pytest.raises(UserError, match="format version 99"):
        files.load(tmp_path / "v99.npz", "noise-model", profile, layout)
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(UserError, match="not a noise model file"):
        load_noise_model(tmp_path / "junk.npz", profile, layout)
    with pytest.raises(UserError, match="not found"):
        load_noise_model(tmp_path / "missing.npz", profile, layout)
    with pytest.raises(UserError, match="covariance missing"):
        load_noise_model(old, profile, layout)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    profile = load_profile("respeaker_4mic_hat")
    path = _identity_model(profile, tmp_path)
    before = path.read_bytes()

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(UserError, match="cannot write"):
        _identity_model(profile, tmp_path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


# --- whitening -----------------------------------------------------------------------------------


def test_whitened_cross_spectra_of_the_noise_alone_are_nearly_empty_and_a_talker_survives():
    """A directional noise 10 dB over a talker (both white, free field): the cleaned pair
    cross-spectra of the noise alone hold a small fraction of its power, and with the talker the
    SRP-PHAT of the cleaned cross-spectra peaks at the talker, while the raw one peaks at the noise."""
    from arraydaemon.core.options import LocalizerConfig
    from arraydaemon.localizers.scan import SrpScan
    from arraydaemon.noise.learn import stft

    profile = load_profile("respeaker_6mic_hat")
    layout = _layout()
    rng = np.random.default_rng(3)
    fan = plane_wave(profile.mics, SR, 150.0, 0.0, 6.0, rng, snr_db=30.0, amplitude=math.sqrt(10.0))
    talker = plane_wave(profile.mics, SR, -40.0, 0.0, 6.0, rng, snr_db=None)
    frames = stft(fan[:3 * SR], layout)
    cov = np.einsum("tmk,tnk->kmn", frames, frames.conj()) / len(frames)
    whitener = NoiseWhitener(cov, layout.band)
    window = stft(fan[3 * SR:3 * SR + 4000], layout)[:14]
    scan = SrpScan(profile, layout, LocalizerConfig())
    raw = scan.pair_sum(window)
    clean = whitener.pair_sum(window, None, scan.pair_i, scan.pair_j, layout.bins)
    assert np.abs(clean).sum() < 0.05 * np.abs(raw).sum()
    mixed = stft(fan[3 * SR:3 * SR + 4000] + talker[3 * SR:3 * SR + 4000], layout)[:14]
    for sums, expected in ((scan.pair_sum(mixed), 150.0),
                           (whitener.pair_sum(mixed, None, scan.pair_i, scan.pair_j, layout.bins), -40.0)):
        values = scan.scan(scan.lags(sums)[1])
        peak = scan.points[int(np.argmax(values))]
        azimuth = math.degrees(math.atan2(peak[1], peak[0]))
        assert abs((azimuth - expected + 180) % 360 - 180) <= 5.0


# --- learning ------------------------------------------------------------------------------------


def _fan_recording(mics, seconds: float, rng, room_dim=(5.0, 4.0, 3.0), rt60=0.35):
    """A fan 0.25 m from the array centre in a pyroomacoustics room: ``[shape=(samples, mics)]``."""
    from arraydaemon.research.tracking.robot import render_near

    fan = simulate.stationary_noise_source(rng, seconds, SR)
    offset = 0.25 * simulate.direction_vector(120.0, -30.0)
    audio = render_near(mics, fan, offset, room_dim, rt60, np.array([2.0, 2.0, 1.2]))
    return audio + 1e-3 * np.std(audio) * rng.standard_normal(audio.shape)


@pytest.mark.sim
def test_a_noise_recording_with_speech_in_it_is_reported_not_learned():
    profile = load_profile("respeaker_6mic_hat")
    rng = np.random.default_rng(11)
    fan = _fan_recording(profile.mics, 6.0, rng)
    learn(fan, _layout())  # the noise alone: learned
    speech = simulate.speech_source(rng, 2.0, SR).astype(np.float64)
    room = simulate.room_scene(profile.mics, [simulate.SourceSpec(speech, -60.0, 10.0, 1.5)], sample_rate=SR,
                               rt60=0.35, rng=rng, snr_db=None).audio
    talk = np.zeros_like(fan)
    talk[2 * SR:2 * SR + len(room)] = room[:len(talk) - 2 * SR]
    # the talker 6 dB below the fan over the recording's talking seconds
    talk *= math.sqrt(np.mean(fan ** 2) / np.mean(room ** 2) * 10 ** (-6 / 10))
    with pytest.raises(UserError) as err:
        learn(fan + talk, _layout(), source="rec.wav")
    text = str(err.value)
    assert "\n" not in text and "not the noise alone" in text and "--drop-loud" in text
    cov, report = learn(fan + talk, _layout(), drop_loud=True)
    assert report.loud and all(1.8 <= a and b <= 4.3 for a, b in report.loud)
    assert report.learned_s < 6.0 and cov.shape == (_layout().bins, 6, 6)


# --- the pipeline ----------------------------------------------------------------------------------


def _track_coverage(results, talker_az: float, fan_az: float, after_s: float = 1.0):
    """(share of windows from ``after_s`` on with a track within 10° of the talker, whether any track
    ever came within 10° of the fan)."""
    near = lambda a, b: abs((a - b + 180) % 360 - 180) <= 10.0
    covered = windows = 0
    on_fan = False
    for r in results:
        tracks = r.tracks.tracks if r.tracks is not None else ()
        on_fan |= any(near(t.azimuth_deg, fan_az) for t in tracks)
        if r.estimate.t_end >= after_s:
            windows += 1
            covered += any(near(t.azimuth_deg, talker_az) for t in tracks)
    return covered / max(windows, 1), on_fan


@pytest.mark.sim
def test_a_fan_louder_than_the_talker_with_a_noise_model_talker_tracked_no_fan_track(tmp_path):
    """A 6-mic ring on a robot: its fan 0.25 m away, 6 dB louder at the mics than a talker 1.8 m
    away; the noise model from 6 s of the fan alone in another room. Without the model the fan
    is tracked; with it the talker is and the fan never is, and ``doa.noise`` says where it is."""
    from arraydaemon.research.tracking.robot import render_near

    mics = ring(6, 0.0463)
    profile = make_profile("robot6", mics)
    rng = np.random.default_rng(5)
    seconds = 6.0
    fan_signal = simulate.stationary_noise_source(rng, 6.0 + seconds, SR)
    offset = 0.25 * simulate.direction_vector(120.0, -30.0)
    speech = simulate.speech_source(rng, seconds, SR).astype(np.float64)
    room = simulate.room_scene(mics, [simulate.SourceSpec(speech, -50.0, 10.0, 1.8)], sample_rate=SR, rt60=0.4,
                               rng=rng, snr_db=35.0, room_dim=(6.0, 5.0, 3.0), array_centre=np.array([3.0, 2.2, 1.2]))
    fan = render_near(mics, fan_signal[int(6.0 * SR):], offset, (6.0, 5.0, 3.0), 0.4, np.array([3.0, 2.2, 1.2]))
    gain = math.sqrt(np.mean(room.clean ** 2) / np.mean(fan ** 2) * 10 ** (6 / 10))
    audio = (room.audio + gain * fan[:len(room.audio)]).astype(np.float32)
    install = gain * render_near(mics, fan_signal[:int(6.0 * SR)], offset, (4.0, 3.5, 2.6), 0.3,
                                 np.array([1.5, 1.5, 0.9]))
    install += 1e-3 * np.std(install) * rng.standard_normal(install.shape)
    cov, _ = learn(install, _layout())
    model = save_noise_model(tmp_path / "robot.noise", cov, profile, _layout())

    _, plain = run_pipeline(profile, audio, PipelineOptions(estimator="srp-phat"), blocks="hop")
    _, on_fan = _track_coverage(plain, -50.0, 120.0)
    assert on_fan  # the test can fail: without the model the fan is a track

    _, results = run_pipeline(profile, audio, PipelineOptions(estimator="srp-phat", noise_model=str(model)),
                              blocks="hop")
    coverage, on_fan = _track_coverage(results, -50.0, 120.0)
    assert coverage >= 0.7 and not on_fan
    doa = dict(results[-1].payloads)["doa"]
    assert len(doa["noise"]) == 1 and doa["noise"][0]["origin"] == "model"
    assert abs((doa["noise"][0]["azimuth_deg"] - 120.0 + 180) % 360 - 180) <= 10.0
    assert all(abs((s["azimuth_deg"] - 120.0 + 180) % 360 - 180) > 8.0 for r in results
               for s in dict(r.payloads)["doa"]["sources"])


def test_the_online_noise_state_is_kept_across_a_restart(tmp_path):
    """A stationary directional noise learned online, saved, and restored into a new pipeline (a
    restart): the same arrays come back, and the restored pipeline's gate knows the noise's direction
    from its first window, where a fresh one needs seconds."""
    from arraydaemon.pipeline import Pipeline

    profile = load_profile("respeaker_6mic_hat")
    rng = np.random.default_rng(2)
    audio = plane_wave(profile.mics, SR, 70.0, 0.0, 8.0, rng, snr_db=15.0).astype(np.float32)
    options = PipelineOptions(estimator="srp-phat", noise_gate="online")
    first, _ = run_pipeline(profile, audio[:5 * SR], options, blocks="hop")
    assert first.noise_gate.directions  # learned within 5 s
    path = tmp_path / "state.npz"
    assert save_noise_state(path, first)
    saved = first.features.noise_state()

    restarted = Pipeline(profile, options)
    assert restore_noise_state(path, restarted)
    restored = restarted.features.noise_state()
    assert sorted(restored) == sorted(saved)
    for name in saved:
        np.testing.assert_array_equal(restored[name], saved[name])
    _, after = run_pipeline(profile, audio[5 * SR:5 * SR + 8000], options, blocks="hop")
    fresh_noise = dict(after[0].payloads)["doa"]["noise"]
    from arraydaemon.core.messages import AudioBlock

    hop = restarted.layout.hop_samples
    outputs = []
    for start in range(0, 8000 - hop + 1, hop):
        outputs += restarted.process(AudioBlock(0, SR, start / SR, 0.0, audio[5 * SR + start:5 * SR + start + hop]))
    noise = dict(outputs[0].payloads)["doa"]["noise"]
    assert fresh_noise == [] and len(noise) == 1 and noise[0]["origin"] == "online"
    assert abs((noise[0]["azimuth_deg"] - 70.0 + 180) % 360 - 180) <= 5.0

    # a state is tied like a model: another profile, or a noise model it was not learned with
    other = load_profile("respeaker_4mic_hat")
    with pytest.raises(UserError, match="learn one for this profile"):
        restore_noise_state(path, Pipeline(other, options))
    model = _identity_model(profile, tmp_path)
    with pytest.raises(UserError, match="learned with no noise model"):
        restore_noise_state(path, Pipeline(profile, PipelineOptions(estimator="srp-phat", noise_model=str(model))))
    assert not restore_noise_state(tmp_path / "first-start.npz", Pipeline(profile, options))


def test_noise_settings_resolve_from_the_config_file_then_flags(tmp_path):
    import argparse

    from arraydaemon.core.errors import ConfigError
    from arraydaemon.service.settings import load_config, resolve_pipeline

    config = tmp_path / "arraydaemon.yaml"
    config.write_text("noise_model: robot.noise\nnoise_state: /var/lib/arraydaemon/noise.state\nnoise_gate: online\n")
    cfg = load_config(config)
    assert cfg.noise_model == str(tmp_path / "robot.noise")  # relative to the config file
    opts = resolve_pipeline(argparse.Namespace(), cfg)
    assert (opts.noise_model, opts.noise_state, opts.noise_gate) == (str(tmp_path / "robot.noise"),
                                                                       "/var/lib/arraydaemon/noise.state", "online")
    flags = argparse.Namespace(noise_model="other.noise", noise_state=None, noise_gate="off")
    opts = resolve_pipeline(flags, cfg)
    assert (opts.noise_model, opts.noise_gate) == ("other.noise", "off")
    assert resolve_pipeline(argparse.Namespace()).noise_gate == "model"
    config.write_text("noise_gate: always\n")
    with pytest.raises(ConfigError, match="noise_gate.*one of model, online, off"):
        load_config(config)
    config.write_text("noise_model: 3\n")
    with pytest.raises(ConfigError, match="noise_model"):
        load_config(config)


def test_noise_learn_on_the_command_line(tmp_path, capsys):
    import soundfile as sf

    from arraydaemon.cli import main

    profile = load_profile("respeaker_4mic_hat")
    rng = np.random.default_rng(4)
    audio = plane_wave(profile.mics, SR, 100.0, 0.0, 4.0, rng, snr_db=20.0) * 0.1
    rec = tmp_path / "robot.wav"
    sf.write(rec, audio.astype(np.float32), SR, subtype="FLOAT")
    out = tmp_path / "robot.noise"
    assert main(["noise", "learn", "--profile", "respeaker_4mic_hat", "--file", str(rec), "--out", str(out)]) == 0
    assert "noise model of respeaker_4mic_hat" in capsys.readouterr().out
    load_noise_model(out, profile, _layout())
    other = tmp_path / "other4.yaml"  # the same mics, another array's profile
    other.write_text("name: other4\nsample_rate: 16000\nmics: " + str(profile.mics.tolist()) + "\n")
    assert main(["replay", str(rec), "--profile", str(other), "--fast", "--no-publish", "--quiet",
                 "--noise-model", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "noise model is for profile 'respeaker_4mic_hat'" in err


def test_any_bytes_as_a_noise_file_give_one_line_or_load(tmp_path_factory):
    """Untrusted bytes (a truncated or corrupted file, anything at all): a one-line UserError, never
    another exception."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    profile = load_profile("respeaker_4mic_hat")
    layout = _layout()
    good = _identity_model(profile, tmp_path_factory.mktemp("good")).read_bytes()
    where = tmp_path_factory.mktemp("fuzz") / "model.npz"

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.one_of(st.binary(max_size=2048),
                     st.tuples(st.integers(0, len(good)), st.binary(min_size=1, max_size=16)).map(
                         lambda cut: good[:cut[0]] + cut[1] + good[cut[0] + len(cut[1]):])))
    def check(data):
        where.write_bytes(data)
        try:
            load_noise_model(where, profile, layout)
        except UserError as exc:
            assert "\n" not in str(exc)

    check()


def test_a_reload_carries_the_online_noise_state_over(tmp_path):
    """SIGHUP: the running pipeline's noise state (learned since the file was last written) is saved
    at the swap and the new pipeline loads it, instead of the file's older contents."""
    from arraydaemon.cli import build_parser
    from arraydaemon.core.messages import AudioBlock
    from arraydaemon.service.daemon import Daemon
    from arraydaemon.service.settings import resolve_run

    profile = load_profile("respeaker_6mic_hat")
    state = tmp_path / "noise.state"
    config = tmp_path / "arraydaemon.yaml"
    config.write_text(f"profile: respeaker_6mic_hat\nestimator: srp-phat\nnoise_gate: online\nnoise_state: {state}\n")
    args = build_parser().parse_args(["run", "--config", str(config)])
    daemon = Daemon(resolve_run(args), args)
    daemon.session = daemon._build_session(profile, daemon.settings.options, min_generation=0)
    assert not state.exists()
    running = daemon.session.pipeline
    audio = plane_wave(profile.mics, SR, 70.0, 0.0, 5.0, np.random.default_rng(2), snr_db=15.0).astype(np.float32)
    hop = running.layout.hop_samples
    for start in range(0, len(audio) - hop + 1, hop):
        running.process(AudioBlock(0, SR, start / SR, 0.0, audio[start:start + hop]))
    assert running.noise_gate.directions  # learned, never written: the file does not exist yet
    learned = running.features.noise_state()

    daemon._reload()
    assert daemon._pending is not None and daemon._pending.pipeline is not running
    daemon._maybe_swap(None)  # the consumer thread's swap
    assert daemon.session.pipeline is not running and state.exists()
    carried = daemon.session.pipeline.features.noise_state()
    assert sorted(carried) == sorted(learned)
    for name in learned:
        np.testing.assert_array_equal(carried[name], learned[name])


def test_with_the_noise_gated_online_a_steady_directional_noise_does_not_read_as_a_dry_room():
    """A fan next to the array is as coherent as a talker in a dry room: read as the room, it would
    lower the further-source gate (localizers/room.py) and let more of it through."""
    mics = ring(6, 0.05)
    profile = make_profile("fan6", mics)
    audio = plane_wave(mics, 16000, 120.0, 0.0, 3.0, np.random.default_rng(5), snr_db=40.0)
    read = {}
    for gate in ("model", "online"):
        pipeline, _ = run_pipeline(profile, audio, PipelineOptions(estimator="srp-phat", noise_gate=gate), blocks="hop")
        room = pipeline.localizer.further.room
        read[gate] = (room.dryness(), room.relative_threshold(), pipeline.tracker.config.dry_birth_hits)
    cfg = PipelineOptions().localizer
    assert read["model"][0] > 0.5 and read["model"][1] < cfg.relative_threshold  # no gate: read as a dry room
    assert read["online"][1] == cfg.relative_threshold
    assert read["online"][2] == PipelineOptions().tracker.birth_hits

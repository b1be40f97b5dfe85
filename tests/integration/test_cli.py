"""The command line as a user runs it (subprocesses): exit codes and one-line errors for bad input,
and `replay --fast --jsonl -` printing correct directions for simulated recordings."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from arraydaemon.core.angles import azimuth_difference
from arraydaemon.core.paths import SHIPPED_WEIGHTS
from arraydaemon.core.profiles import load_profile
from tests.helpers import ARRAYDAEMON
from tests.helpers import plane_wave as free_field_plane_wave

AZIMUTH, ELEVATION = 135.0, 10.0


def start(*args, cwd=None) -> subprocess.Popen:
    return subprocess.Popen([*ARRAYDAEMON, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd)


def finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=180)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run(*args) -> subprocess.CompletedProcess:
    return finish(start(*args))


def plane_wave(mics, sample_rate: int, seconds: float = 1.5) -> np.ndarray:
    """White noise from (AZIMUTH, ELEVATION) at 20 dB SNR, seed 0."""
    return free_field_plane_wave(mics, sample_rate, AZIMUTH, ELEVATION, seconds, np.random.default_rng(0),
                                 amplitude=0.1)


def parse_jsonl(stdout: str) -> list[dict]:
    def refuse(constant):
        raise AssertionError(f"non-finite number {constant} in the output")

    return [json.loads(line, parse_constant=refuse) for line in stdout.splitlines()]


def assert_directions(records: list[dict], az: float = AZIMUTH, tolerance: float = 2.0) -> None:
    active = [r for r in records if r["sources"]]
    assert len(active) >= 0.8 * len(records)
    for r in active:
        assert azimuth_difference(r["sources"][0]["azimuth_deg"], az) <= tolerance, r


# --- bad input -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    demo = load_profile("demo")
    good = plane_wave(demo.mics, 16000, seconds=0.5)
    (d / "text.wav").write_text("this is not audio\n")
    (d / "a_directory.wav").mkdir()
    sf.write(d / "stereo.wav", good[:, :2], 16000)
    sf.write(d / "empty.wav", np.zeros((0, 4), np.float32), 16000)
    nan = good.copy()
    nan[:] = np.nan
    sf.write(d / "all_nan.wav", nan, 16000, subtype="FLOAT")
    inf = good.copy()
    inf[::100] = np.inf  # every block has an Inf
    sf.write(d / "all_inf.wav", inf, 16000, subtype="FLOAT")
    sf.write(d / "good.wav", good, 16000)
    (d / "coincident.yaml").write_text("name: coincident\nsample_rate: 16000\n"
                                       "mics: [[0, 0, 0], [0.05, 0, 0], [0.05, 0.0005, 0], [0, 0.05, 0]]\n")
    return d


BAD_CASES = [
    ("missing-file", ["replay", "{d}/nope.wav", "--profile", "demo"], "nope.wav: file not found"),
    ("unreadable-file", ["replay", "{d}/text.wav", "--profile", "demo"], "text.wav: cannot read audio"),
    ("directory", ["replay", "{d}/a_directory.wav", "--profile", "demo"], "a_directory.wav"),
    ("too-few-channels", ["replay", "{d}/stereo.wav", "--profile", "demo"], "has 2 channel(s); profile 'demo' needs 4"),
    ("empty-file", ["replay", "{d}/empty.wav", "--profile", "demo"], "empty.wav: empty audio file"),
    ("all-nan", ["replay", "{d}/all_nan.wav", "--profile", "demo"], "all_nan.wav: every block contains NaN/Inf"),
    ("all-inf", ["replay", "{d}/all_inf.wav", "--profile", "demo"], "all_inf.wav: every block contains NaN/Inf"),
    ("coincident-mics", ["replay", "{d}/good.wav", "--profile", "{d}/coincident.yaml"],
     "coincident.yaml: key 'mics[2]': expected a position distinct from mics[1]"),
    ("unknown-profile", ["replay", "{d}/good.wav", "--profile", "respeaker_9mic"], "profile 'respeaker_9mic' not found"),
    ("profile-check-broken", ["profile", "check", "{d}/coincident.yaml"], "key 'mics[2]'"),
    ("unwritable-jsonl", ["replay", "{d}/good.wav", "--profile", "demo", "--jsonl", "{d}/no/such/dir/out.jsonl"],
     "out.jsonl: cannot write"),
    ("bad-band", ["replay", "{d}/good.wav", "--profile", "demo", "--fmin", "7000", "--fmax", "300"], "frequency band"),
    ("bad-max-sources", ["replay", "{d}/good.wav", "--profile", "demo", "--max-sources", "0"], "--max-sources"),
    ("bad-integration", ["replay", "{d}/good.wav", "--profile", "demo", "--integration", "-1"],
     "--integration: expected seconds in [0, 5] (0: none), got -1"),
    ("bad-endpoint", ["replay", "{d}/good.wav", "--profile", "demo", "--endpoint", "localhost:5570"],
     "expected tcp://HOST:PORT"),
    ("missing-weights", ["replay", "{d}/good.wav", "--profile", "demo", "--weights", "{d}/nope.safetensors"],
     "nope.safetensors: neural weights not found"),
    ("corrupt-weights", ["replay", "{d}/good.wav", "--profile", "demo", "--weights", "{d}/text.wav"],
     "text.wav: cannot load neural weights"),
    ("train-bad-layers", ["train", "--layers", "0"], "--layers: expected a positive number, got 0"),
    ("train-bad-width", ["train", "--d-model", "100", "--heads", "3"], "--d-model: expected a multiple of --heads (3), got 100"),
    ("weights-with-srp", ["replay", "{d}/good.wav", "--profile", "demo", "--weights", "{d}/text.wav",
                          "--estimator", "srp-phat"], "--weights is for the neural estimator, not --estimator srp-phat"),
]


@pytest.mark.slow
def test_bad_input_exits_2_with_one_line_and_no_traceback(bad_inputs):
    procs = []
    for name, args, _ in BAD_CASES:
        args = [a.format(d=bad_inputs) for a in args]
        if args[0] == "replay":
            args += ["--fast"] + ([] if "--endpoint" in args else ["--no-publish"])
            args += [] if "--weights" in args else ["--estimator", "srp-phat"]
        procs.append(start(*args))
    failures = []
    for (name, _, expected), proc in zip(BAD_CASES, procs):
        done = finish(proc)
        lines = done.stderr.strip().splitlines()
        ok = (done.returncode == 2 and len(lines) == 1 and lines[0].startswith("arraydaemon: error: ")
              and expected in lines[0] and "Traceback" not in done.stderr and done.stdout == "")
        if not ok:
            failures.append(f"{name}: exit {done.returncode}, stderr {done.stderr!r}, stdout {done.stdout[:200]!r}")
    assert not failures, "\n".join(failures)


# --- replay ----------------------------------------------------------------------------------


def test_replay_jsonl_prints_one_object_per_window_with_correct_directions(tmp_path):
    profile = load_profile("respeaker_6mic_hat")  # 8 device channels, mics on channels 0-5
    audio = plane_wave(profile.mics, 16000, seconds=2.0)
    device = np.zeros((len(audio), 8), np.float32)
    device[:, :6] = audio
    path = tmp_path / "rec.flac"
    sf.write(path, device, 16000)
    done = run("replay", path, "--profile", "respeaker_6mic_hat", "--fast", "--jsonl", "-", "--no-publish",
               "--estimator", "srp-phat")
    assert done.returncode == 0, done.stderr
    records = parse_jsonl(done.stdout)
    # 250 ms windows every 96 ms (6 frames of 16 ms) over 2 s
    assert len(records) == 1 + (32000 - 4096) // 1536
    for i, r in enumerate(records):
        assert r["seq"] == i and r["array"] == "respeaker_6mic_hat" and r["estimator"] == "srp-phat"
        assert r["t_end"] == pytest.approx((4096 + i * 1536) / 16000, abs=1e-9)
        assert r["active"] is bool(r["sources"])
        for s in r["sources"]:
            assert set(s) >= {"azimuth_deg", "elevation_deg", "confidence"}
            assert 0.0 <= s["confidence"] <= 1.0
            assert math.hypot(s["x"], s["y"], s["z"]) == pytest.approx(1.0)
            assert s["elevation_deg"] == pytest.approx(ELEVATION, abs=3.0)
    assert_directions(records)
    assert "replayed 2.00 s" in done.stderr and f"{len(records)} windows" in done.stderr


def test_replay_with_weights_from_a_file_runs_the_neural_estimator(tmp_path):
    # the shipped model, copied: what an installer's own `arraydaemon train --out FILE` weights look like
    weights = tmp_path / "mine.safetensors"
    shutil.copy(SHIPPED_WEIGHTS, weights)
    profile = load_profile("respeaker_4mic_hat")
    path = tmp_path / "rec.wav"
    sf.write(path, plane_wave(profile.mics, 16000, seconds=1.5), 16000)
    done = run("replay", path, "--profile", "respeaker_4mic_hat", "--fast", "--jsonl", "-", "--no-publish",
               "--weights", weights)
    assert done.returncode == 0, done.stderr
    records = parse_jsonl(done.stdout)
    assert records and all(r["estimator"] == "neural" for r in records)
    assert_directions(records)


def test_replay_jsonl_to_file_and_real_time_pacing(tmp_path):
    profile = load_profile("demo")
    path = tmp_path / "rec.wav"
    sf.write(path, plane_wave(profile.mics, 16000, seconds=0.6), 16000)
    out = tmp_path / "out.jsonl"
    done = run("replay", path, "--profile", "demo", "--jsonl", out, "--no-publish", "--estimator", "srp-phat")
    assert done.returncode == 0, done.stderr
    records = parse_jsonl(out.read_text())
    assert len(records) == 1 + (9600 - 4096) // 1536
    assert_directions(records)
    human = [line for line in done.stdout.splitlines() if line.startswith("t=")]
    assert len(human) == len(records)  # one terminal line per window when the JSON goes to a file
    # paced like a live device: the last block is due 0.6 s after the start (a lower bound only)
    wall = float(re.search(r"replayed 0\.60 s in ([0-9.]+) s", done.stderr).group(1))
    assert wall >= 0.55


def test_replay_resamples_48k_file_for_16k_profile_with_a_notice(tmp_path):
    profile = load_profile("demo")
    path = tmp_path / "rec48k.wav"
    sf.write(path, plane_wave(profile.mics, 48000, seconds=1.5), 48000, subtype="FLOAT")
    done = run("replay", path, "--profile", "demo", "--fast", "--jsonl", "-", "--no-publish",
               "--estimator", "srp-phat")
    assert done.returncode == 0, done.stderr
    assert "note: resampling rec48k.wav from 48000 Hz to 16000 Hz" in done.stderr
    records = parse_jsonl(done.stdout)
    assert len(records) == 1 + (24000 - 4096) // 1536
    assert_directions(records)


def test_replay_uses_channel_map_for_files_with_more_channels_than_mics(tmp_path):
    profile = load_profile("respeaker_usb_4mic")  # 6 device channels, mics on 1-4
    assert profile.channel_map == (1, 2, 3, 4)
    audio = plane_wave(profile.mics, 16000, seconds=1.0)
    rng = np.random.default_rng(9)
    device = (0.3 * rng.standard_normal((len(audio), 6))).astype(np.float32)  # loud unrelated channels 0 and 5
    device[:, 1:5] = audio
    sf.write(tmp_path / "device.wav", device, 16000, subtype="FLOAT")
    sf.write(tmp_path / "mics_only.wav", audio, 16000, subtype="FLOAT")  # one channel per mic: taken in order
    outputs = []
    for name in ("device.wav", "mics_only.wav"):
        done = run("replay", tmp_path / name, "--profile", "respeaker_usb_4mic", "--fast", "--jsonl", "-",
                   "--no-publish", "--estimator", "srp-phat")
        assert done.returncode == 0, done.stderr
        records = parse_jsonl(done.stdout)
        assert_directions(records)
        outputs.append([{k: v for k, v in r.items() if k != "wall_time"} for r in records])
    assert outputs[0] == outputs[1]


def test_replay_skips_and_counts_a_nan_block_mid_file(tmp_path):
    profile = load_profile("demo")
    audio = plane_wave(profile.mics, 16000, seconds=2.0)
    audio[15000:15100, 1] = np.nan
    sf.write(tmp_path / "nan.wav", audio, 16000, subtype="FLOAT")
    done = run("replay", tmp_path / "nan.wav", "--profile", "demo", "--fast", "--jsonl", "-", "--no-publish",
               "--estimator", "srp-phat")
    assert done.returncode == 0, done.stderr
    assert "1 NaN/Inf block(s) skipped" in done.stderr
    assert "NaN" not in done.stdout and "Infinity" not in done.stdout
    records = parse_jsonl(done.stdout)
    assert len(records) == 1 + (32000 - 4096) // 1536
    assert_directions(records, tolerance=5.0)

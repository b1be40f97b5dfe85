"""The daemon's configuration file (service/settings.py): validation errors, flags over the file,
and `config check`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from arraydaemon.cli import build_parser
from arraydaemon.core.errors import ConfigError
from arraydaemon.core.options import INTEGRATION_S
from arraydaemon.core.paths import SHIPPED_WEIGHTS
from arraydaemon.service.settings import DaemonConfig, load_config, parse_config, resolve_run
from tests.helpers import ARRAYDAEMON

GOOD = """\
endpoint: tcp://127.0.0.1:5581
estimator: srp-phat
hop: 0.05
profile: respeaker_4mic_hat
log_level: INFO
band: [300, 6000]
device: seeed
wait: true
latency: 0.02
integration: 0.25
"""


def write(tmp_path: Path, text: str, name: str = "arraydaemon.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_full_config_parses(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg == DaemonConfig(endpoint="tcp://127.0.0.1:5581", estimator="srp-phat", hop=0.05,
                               profile="respeaker_4mic_hat", log_level="info", band=(300.0, 6000.0),
                               device="seeed", wait=True, latency=0.02, integration=0.25,
                               path=tmp_path / "arraydaemon.yaml")


def test_empty_file_is_an_empty_config(tmp_path):
    assert load_config(write(tmp_path, "")).as_dict() == {}
    assert load_config(write(tmp_path, "# only comments\n")).as_dict() == {}


@pytest.mark.parametrize("text, message", [
    ("endpont: tcp://127.0.0.1:1\n", "unknown key 'endpont'; did you mean 'endpoint'?"),
    ("log-level: info\n", "unknown key 'log-level'; did you mean 'log_level'?"),
    ("colour: blue\n", "unknown key 'colour'; known keys: endpoint, estimator, hop"),
    ("endpoint: 127.0.0.1:5570\n", "key 'endpoint': expected a ZeroMQ endpoint"),
    ("estimator: music\n", "key 'estimator': expected one of srp-phat, neural, got 'music'"),
    ("hop: 0.5\n", "key 'hop': expected seconds between windows, a number in (0, 0.25], got 0.5"),
    ("hop: fast\n", "key 'hop': expected seconds between windows"),
    ("hop: .nan\n", "key 'hop': expected seconds between windows"),
    ("profile: 3\n", "key 'profile': expected a profile name or a path"),
    ("log_level: loud\n", "key 'log_level': expected one of debug, info, warning, error, got 'loud'"),
    ("band: [6000, 300]\n", "key 'band': expected [fmin, fmax] in Hz with 0 <= fmin < fmax"),
    ("band: 300\n", "key 'band': expected [fmin, fmax]"),
    ("device: -1\n", "key 'device': expected a substring of the PortAudio device name, or a device index"),
    ("device: true\n", "key 'device': expected a substring"),
    ("wait: yes please\n", "key 'wait': expected true or false"),
    ("latency: medium\n", "key 'latency': expected 'low', 'high' or seconds in (0, 2]"),
    ("weights: 3\n", "key 'weights': expected a path to a neural weights file"),
    ("integration: -0.1\n", "key 'integration': expected seconds in [0, 5] (0: no integration), got -0.1"),
    ("integration: long\n", "key 'integration': expected seconds in [0, 5]"),
    ("estimator: srp-phat\nweights: m.safetensors\n", "key 'weights' is for the neural estimator, but 'estimator' is srp-phat"),
    ("- endpoint\n", "expected a YAML mapping of settings"),
    ("hop: [\n", "invalid YAML at line 2"),
])
def test_errors_name_file_key_and_expectation(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.yaml")


def test_relative_profile_and_weights_paths_are_relative_to_the_config_file(tmp_path):
    cfg = parse_config({"profile": "arrays/mine.yaml", "weights": "models/mine.safetensors"}, "x",
                       tmp_path / "etc" / "arraydaemon.yaml")
    assert cfg.profile == str(tmp_path / "etc" / "arrays" / "mine.yaml")
    assert cfg.weights == str(tmp_path / "etc" / "models" / "mine.safetensors")
    assert parse_config({"weights": "/opt/m.safetensors"}, "x", tmp_path / "a.yaml").weights == "/opt/m.safetensors"
    assert parse_config({"profile": "respeaker_4mic_hat"}, "x", tmp_path / "a.yaml").profile == "respeaker_4mic_hat"


def _run_args(*argv: str):
    return build_parser().parse_args(["run", *argv])


def test_flags_override_the_file_and_the_file_overrides_defaults(tmp_path):
    path = write(tmp_path, GOOD)
    s = resolve_run(_run_args("--config", str(path)))
    assert (s.profile_ref, s.endpoint, s.device, s.wait, s.latency) == (
        "respeaker_4mic_hat", "tcp://127.0.0.1:5581", "seeed", True, 0.02)
    assert s.options.estimator == "srp-phat" and s.options.features.hop_s == 0.05
    assert (s.options.features.fmin_hz, s.options.features.fmax_hz) == (300.0, 6000.0)
    assert s.log_level == "info" and s.options.localizer.integration_s == 0.25

    s = resolve_run(_run_args("--config", str(path), "--profile", "demo", "--endpoint", "ipc:///tmp/x",
                                   "--device", "3", "--hop", "0.08", "--fmax", "5000", "--latency", "high",
                                   "--integration", "0"))
    assert (s.profile_ref, s.endpoint, s.device, s.latency) == ("demo", "ipc:///tmp/x", "3", "high")
    assert s.options.features.hop_s == 0.08 and s.options.localizer.integration_s == 0.0
    assert (s.options.features.fmin_hz, s.options.features.fmax_hz) == (300.0, 5000.0)

    # nothing in a file: built-in defaults
    s = resolve_run(_run_args("--config", str(write(tmp_path, "", "empty.yaml")), "--profile", "demo",
                                   "--estimator", "srp-phat"))
    assert (s.endpoint, s.device, s.wait, s.latency) == ("tcp://127.0.0.1:5570", None, False, "low")
    assert s.options.features.hop_s == 0.1 and s.options.localizer.integration_s == INTEGRATION_S


def test_weights_in_the_file_select_the_neural_estimator_unless_a_flag_says_otherwise(tmp_path):
    path = write(tmp_path, "profile: demo\nweights: mine.safetensors\n")
    s = resolve_run(_run_args("--config", str(path)))
    assert (s.options.estimator, s.options.weights) == ("neural", str(tmp_path / "mine.safetensors"))
    s = resolve_run(_run_args("--config", str(path), "--estimator", "srp-phat"))
    assert (s.options.estimator, s.options.weights) == ("srp-phat", None)
    s = resolve_run(_run_args("--config", str(path), "--weights", "/opt/other.safetensors"))
    assert (s.options.estimator, s.options.weights) == ("neural", "/opt/other.safetensors")


def test_run_needs_a_profile_from_somewhere(tmp_path):
    path = write(tmp_path, "estimator: srp-phat\n")
    out = subprocess.run(ARRAYDAEMON + ["run", "--config", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == f"arraydaemon: error: no array profile: give --profile NAME|FILE or key " \
                                 f"'profile' in {path}"


@pytest.mark.slow
def test_config_check_command(tmp_path):
    good = write(tmp_path, GOOD)
    out = subprocess.run(ARRAYDAEMON + ["config", "check", str(good)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "hop          0.05" in out.stdout and "profile ok   respeaker_4mic_hat: 4 mics" in out.stdout
    assert out.stdout.rstrip().endswith("ok")

    bad = write(tmp_path, "estimater: neural\n", "bad.yaml")
    out = subprocess.run(ARRAYDAEMON + ["config", "check", str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == f"arraydaemon: error: {bad}: unknown key 'estimater'; did you mean 'estimator'?"

    # a config naming a profile that does not exist fails the check too
    missing = write(tmp_path, "profile: respeaker_4mic_hatt\n", "missing.yaml")
    out = subprocess.run(ARRAYDAEMON + ["config", "check", str(missing)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "did you mean 'respeaker_4mic_hat'?" in out.stderr

    # and one naming weights that cannot be loaded
    weights = write(tmp_path, "weights: not_weights.yaml\n", "weights.yaml")
    out = subprocess.run(ARRAYDAEMON + ["config", "check", str(weights)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith(f"arraydaemon: error: {tmp_path / 'not_weights.yaml'}: cannot load neural weights")
    shutil.copy(SHIPPED_WEIGHTS, tmp_path / "mine.safetensors")
    weights.write_text("weights: mine.safetensors\n")
    out = subprocess.run(ARRAYDAEMON + ["config", "check", str(weights)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert re.search(r"weights ok   \S+, \d+ training steps", out.stdout)

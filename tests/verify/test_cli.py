"""``arraydaemon profile verify`` and ``profile add --verify`` as a user runs them: the bundled demo
recording verified against its own profile, JSON, the plot, and one-line errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from arraydaemon.cli import main
from arraydaemon.core.paths import DATA_DIR
from tests.helpers import ARRAYDAEMON
from tests.verify.scenes import IRREGULAR, walking_noise

DEMO = DATA_DIR / "demo.flac"
JSON_KEYS = {"ok", "suggested_channel_map", "channels", "pairs", "ambiguous_maps"}


def write_profile(path, mics=IRREGULAR, name="irr", channel_map=None, channels=None):
    lines = [f"name: {name}", "sample_rate: 16000", "mics:"] + [f"  - [{x}, {y}, {z}]" for x, y, z in mics]
    if channel_map is not None:
        lines.append(f"channel_map: {list(channel_map)}")
    if channels is not None:
        lines.append(f"channels: {channels}")
    path.write_text("\n".join(lines) + "\n")
    return path


def one_line_error(capsys, code: int) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("arraydaemon: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_demo_recording_verifies_against_its_profile():
    """The bundled demo recording, made with the bundled `demo` profile, is ok (subprocess, JSON)."""
    out = subprocess.run([*ARRAYDAEMON, "profile", "verify", "demo", "--file", str(DEMO), "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert JSON_KEYS <= set(report) and report["ok"] is True and report["suggested_channel_map"] is None
    assert [c["channel"] for c in report["channels"]] == [0, 1, 2, 3]
    assert all(c["problems"] == [] and c["level_db"] < -10 for c in report["channels"])
    assert len(report["pairs"]) == 6
    pair = report["pairs"][0]
    assert set(pair) >= {"mics", "declared_m", "max_observed_delay_s", "allowed_delay_s", "coherence_distance_m"}
    assert pair["max_observed_delay_s"] <= 1.15 * pair["allowed_delay_s"]


def test_text_report_and_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    png = tmp_path / "verify.png"
    assert main(["profile", "verify", "demo", "--file", str(DEMO), "--plot", str(png)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("ok: the recording agrees with profile 'demo'")
    assert any(line.startswith("order       consistent") for line in out)
    assert png.stat().st_size > 10000 and png.read_bytes()[:4] == b"\x89PNG"


def test_wrong_order_exits_1_with_the_map(tmp_path, capsys):
    rec = tmp_path / "rec.wav"
    audio = walking_noise(IRREGULAR, seed=14)
    sf.write(rec, audio[:, [0, 1, 2, 4, 3]], 16000, subtype="FLOAT")  # mics 3 and 4 on each other's channels
    prof = write_profile(tmp_path / "irr.yaml")
    assert main(["profile", "verify", str(prof), "--file", str(rec), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["suggested_channel_map"] == [0, 1, 2, 4, 3]


def test_too_few_channels_is_one_line(tmp_path, capsys):
    rec = tmp_path / "three.wav"
    sf.write(rec, walking_noise(IRREGULAR, seed=15, seconds=2.0)[:, :3], 16000)
    line = one_line_error(capsys, main(["profile", "verify", str(write_profile(tmp_path / "irr.yaml")),
                                        "--file", str(rec)]))
    assert "has 3 channel(s)" in line and "5 mics" in line


def test_silence_is_one_line(tmp_path, capsys):
    rec = tmp_path / "silence.wav"
    sf.write(rec, np.zeros((32000, 4), dtype=np.float32), 16000)
    line = one_line_error(capsys, main(["profile", "verify", "demo", "--file", str(rec)]))
    assert "silence only" in line


def test_missing_file_and_bad_azimuth(tmp_path, capsys):
    line = one_line_error(capsys, main(["profile", "verify", "demo", "--file", str(tmp_path / "nope.wav")]))
    assert "file not found" in line
    with pytest.raises(SystemExit):
        main(["profile", "verify", "demo", "--file", str(DEMO), "--source-azimuth", "north"])


def test_plot_without_matplotlib_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    line = one_line_error(capsys, main(["profile", "verify", "demo", "--file", str(DEMO), "--plot", "x.png"]))
    assert "pip install 'arraydaemon[train]'" in line


def test_add_with_verify(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    rec = tmp_path / "rec.wav"
    sf.write(rec, walking_noise(IRREGULAR, seed=16), 16000, subtype="FLOAT")
    installed = tmp_path / "config" / "arraydaemon" / "profiles" / "irr.yaml"
    wrong = write_profile(tmp_path / "wrong.yaml", channel_map=[1, 0, 2, 3, 4])
    assert main(["profile", "add", str(wrong), "--verify", str(rec), "--user"]) == 1
    assert not installed.exists()
    captured = capsys.readouterr()
    assert captured.out.startswith("NOT OK: channel order") and "not installed" in captured.err
    right = write_profile(tmp_path / "right.yaml")
    assert main(["profile", "add", str(right), "--verify", str(rec), "--user"]) == 0
    assert installed.exists() and "installed" in capsys.readouterr().out

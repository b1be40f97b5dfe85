"""Array profiles (core/profiles.py): bundled ones load; broken ones fail with a message naming file, key and
expectation; ``profile add`` installs per user and the profile then loads by name."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import textwrap

import numpy as np
import pytest
import yaml

from arraydaemon.core import profiles
from arraydaemon.core.errors import ProfileError, UserError
from arraydaemon.core.profiles import BUNDLED_DIR, available_profiles, load_profile, load_profile_file, parse_profile
from tests.helpers import ARRAYDAEMON

GOOD = {
    "name": "good",
    "sample_rate": 16000,
    "mics": [[-0.0405, 0.0, 0.0], [0.0, 0.0405, 0.0], [0.0405, 0.0, 0.0], [0.0, -0.0405, 0.0]],
}


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch):
    """Every test sees an empty per-user profile directory of its own."""
    config = tmp_path / "config"
    config.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    return config


def write(path, data) -> str:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return str(path)


# --- bundled ---------------------------------------------------------------------------------


def test_every_bundled_profile_loads_by_name_and_by_path():
    files = sorted(BUNDLED_DIR.glob("*.yaml"))
    assert len(files) >= 8
    found = available_profiles()
    for f in files:
        assert found[f.stem] == f
        by_name = load_profile(f.stem)
        by_path = load_profile(str(f))
        assert by_name.name == by_path.name == f.stem
        np.testing.assert_array_equal(by_name.mics, by_path.mics)
        p = by_name
        assert p.num_mics >= 2 and p.mics.shape == (p.num_mics, 3)
        assert not p.mics.flags.writeable
        assert len(p.channel_map) == p.num_mics and max(p.channel_map) < p.channels
        assert 0.02 < p.geometry.aperture_m < 0.25  # metres, not millimetres
        assert p.sample_rate in (16000, 48000)
        assert p.geometry.kind == ("linear" if f.stem == "ps3_eye" else "planar")
        assert p.geometry.ambiguity == {"linear": "front-back", "planar": "up-down"}[p.geometry.kind]
        # to_dict round-trips through the validator
        again = parse_profile(p.to_dict(), "roundtrip")
        assert (again.name, again.channel_map, again.channels, again.frame_id) == (p.name, p.channel_map,
                                                                                  p.channels, p.frame_id)
        np.testing.assert_array_equal(again.mics, p.mics)
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.name = "x"


def test_geometry_facts():
    p = load_profile("respeaker_4mic_hat")
    g = p.geometry
    assert g.aperture_m == pytest.approx(0.081)
    assert g.max_tdoa_s == pytest.approx(0.081 / 343.0)
    assert g.min_spacing_m == pytest.approx(0.0405 * np.sqrt(2))
    assert g.aliasing_hz == pytest.approx(343.0 / (2 * 0.0405 * np.sqrt(2)))
    assert g.normal == pytest.approx((0.0, 0.0, 1.0))
    usb = load_profile("respeaker_usb_4mic")
    assert usb.channels == 6 and usb.channel_map == (1, 2, 3, 4)
    tetra = parse_profile({**GOOD, "mics": [[0, 0, 0], [0.05, 0, 0], [0, 0.05, 0], [0, 0, 0.05]]})
    assert tetra.geometry.kind == "3d" and tetra.geometry.ambiguity == "none"
    assert tetra.frame_id == "good_array" and tetra.channels == 4 and tetra.reference_mic == 0


# --- the catalogue of broken profiles ----------------------------------------------------------

MICS = "[[-0.0405, 0, 0], [0, 0.0405, 0], [0.0405, 0, 0], [0, -0.0405, 0]]"


def profile_text(**fields) -> str:
    base = {"name": "broken", "sample_rate": "16000", "mics": MICS}
    base.update(fields)
    return "".join(f"{k}: {v}\n" for k, v in base.items() if v is not None)


# (id, YAML text, key the message must name, what-was-expected fragments)
BROKEN = [
    ("missing-name", profile_text(name=None), "name", ["missing required key"]),
    ("missing-rate", profile_text(sample_rate=None), "sample_rate", ["missing required key"]),
    ("missing-mics", profile_text(mics=None), "mics", ["missing required key"]),
    ("typo-did-you-mean", profile_text(sample_rte=16000), "sample_rte", ["unknown key", "did you mean 'sample_rate'"]),
    ("typo-channel-map", profile_text(chanel_map="[0, 1, 2, 3]"), "chanel_map", ["did you mean 'channel_map'"]),
    ("unknown-key", profile_text(colour="red"), "colour", ["unknown key", "known keys: name, sample_rate, mics"]),
    ("millimetres", profile_text(mics="[[-40.5, 0, 0], [0, 40.5, 0], [40.5, 0, 0], [0, -40.5, 0]]"), "mics",
     ["aperture under 5.0 m", "not millimetres", "81.00 m"]),
    ("coincident", profile_text(mics="[[0, 0, 0], [0.05, 0, 0], [0.0005, 0, 0]]"), "mics[2]",
     ["distinct from mics[0]", "0.5 mm apart", "minimum 2 mm"]),
    ("duplicate-row", profile_text(mics="[[0, 0, 0], [0.05, 0, 0], [0.05, 0, 0]]"), "mics[2]",
     ["distinct from mics[1]"]),
    ("channel-map-length", profile_text(channel_map="[0, 1, 2]"), "channel_map", ["a list of 4 non-negative"]),
    ("channel-map-duplicates", profile_text(channel_map="[0, 1, 1, 2]"), "channel_map", ["distinct channels"]),
    ("channel-map-out-of-range", profile_text(channels=4, channel_map="[0, 1, 2, 4]"), "channel_map",
     ["below 'channels' (4)"]),
    ("channel-map-negative", profile_text(channel_map="[0, 1, 2, -1]"), "channel_map", ["non-negative integers"]),
    ("channel-map-not-int", profile_text(channel_map="[0, 1, 2, 3.0]"), "channel_map", ["non-negative integers"]),
    ("too-few-channels", profile_text(channels=3), "channels", ["at least 4 (one per mic)"]),
    ("rate-string", profile_text(sample_rate="16k"), "sample_rate", ["an integer in 4000..384000", "'16k'"]),
    ("rate-zero", profile_text(sample_rate=0), "sample_rate", ["an integer in 4000..384000"]),
    ("rate-float", profile_text(sample_rate=44100.5), "sample_rate", ["an integer"]),
    ("rate-bool", profile_text(sample_rate="true"), "sample_rate", ["an integer"]),
    ("rate-huge", profile_text(sample_rate=16000000), "sample_rate", ["4000..384000"]),
    ("mics-row-string", profile_text(mics="[[0, 0, 0], '0.05 0 0']"), "mics[1]", ["a list of 3 numbers [x, y, z]"]),
    ("mics-row-two-numbers", profile_text(mics="[[0, 0, 0], [0.05, 0]]"), "mics[1]", ["a list of 3 numbers"]),
    ("mics-row-nan", profile_text(mics="[[0, 0, 0], [.nan, 0, 0]]"), "mics[1]", ["a list of 3 numbers"]),
    ("mics-row-mapping", profile_text(mics="[[0, 0, 0], {x: 0.05, y: 0, z: 0}]"), "mics[1]", ["3 numbers"]),
    ("mics-scalar", profile_text(mics=4), "mics", ["a list of at least 2 positions"]),
    ("one-mic", profile_text(mics="[[0, 0, 0]]"), "mics", ["at least 2 positions"]),
    ("reference-mic", profile_text(reference_mic=4), "reference_mic", ["a mic index", "0..3"]),
    ("speed-cm", profile_text(speed_of_sound=34300), "speed_of_sound", ["between 250 and 400"]),
    ("gain-length", profile_text(gain="[1, 1]"), "gain", ["a list of 4 positive numbers"]),
    ("gain-negative", profile_text(gain="[1, 1, -1, 1]"), "gain", ["positive"]),
    ("frame-id-empty", profile_text(frame_id="''"), "frame_id", ["a non-empty string"]),
    ("name-with-space", profile_text(name="'my array'"), "name", ["letters, digits"]),
    ("device-number", profile_text(device=3), "device", ["substring of the PortAudio device name"]),
    ("description-list", profile_text(description="[a, b]"), "description", ["a string"]),
    ("invalid-yaml", "name: broken\nsample_rate: 16000\nmics: [[0, 0, 0], [0.05, 0, 0]]]\n", "",
     ["invalid YAML at line 3", "column 32"]),
    ("unclosed-bracket", "name: broken\nmics: [[0, 0, 0], [0.05, 0, 0]\n", "", ["invalid YAML at line 3"]),
    ("tab-indent", "name: x\nmics:\n\t- [0, 0, 0]\n", "", ["invalid YAML", "line 3"]),
    ("empty-file", "", "name, sample_rate, mics", ["expected a YAML mapping", "NoneType"]),
    ("comments-only", "# nothing here\n", "name, sample_rate, mics", ["expected a YAML mapping"]),
    ("top-level-list", "- name: x\n", "name, sample_rate, mics", ["expected a YAML mapping", "list"]),
]


@pytest.mark.parametrize("text, key, expected", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_profile_fails_naming_file_key_and_expectation(tmp_path, text, key, expected):
    path = write(tmp_path / "broken.yaml", text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    message = str(info.value)
    assert isinstance(info.value, UserError)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    assert key in message, message
    for fragment in expected:
        assert fragment in message, message


def test_missing_unreadable_and_unknown_profiles(tmp_path):
    with pytest.raises(ProfileError, match="profile file not found"):
        load_profile(str(tmp_path / "nope.yaml"))
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ProfileError, match="binary.yaml: cannot read profile"):
        load_profile(str(binary))
    with pytest.raises(ProfileError, match=r"profile 'respeaker_4mic_ht' not found; did you mean 'respeaker_4mic_hat'\?"):
        load_profile("respeaker_4mic_ht")
    with pytest.raises(ProfileError, match="known: .*ps3_eye.*or give a path"):
        load_profile("zzzzzz")


def test_name_mismatch_when_loaded_by_name(isolated_config):
    user_dir = isolated_config / "arraydaemon" / "profiles"
    user_dir.mkdir(parents=True)
    path = write(user_dir / "kitchen.yaml", {**GOOD, "name": "living_room"})
    with pytest.raises(ProfileError) as info:
        load_profile("kitchen")
    message = str(info.value)
    assert message.startswith(f"{path}: key 'name': expected 'kitchen'") and "'living_room'" in message
    assert load_profile(path).name == "living_room"  # by path, the file's own name is fine


def test_user_profiles_shadow_bundled_ones(isolated_config):
    user_dir = isolated_config / "arraydaemon" / "profiles"
    user_dir.mkdir(parents=True)
    write(user_dir / "ps3_eye.yaml", {**GOOD, "name": "ps3_eye"})
    assert available_profiles()["ps3_eye"].parent == user_dir
    assert load_profile("ps3_eye").num_mics == 4 and load_profile("ps3_eye").geometry.kind == "planar"


# --- installing ------------------------------------------------------------------------------


def run_cli(*args, env_config):
    env = {**os.environ, "XDG_CONFIG_HOME": str(env_config)}
    return subprocess.run([*ARRAYDAEMON, *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_profile_add_installs_per_user_then_loads_by_name(tmp_path, isolated_config):
    source = write(tmp_path / "my_array.yaml", textwrap.dedent("""\
        # a comment that is kept
        name: my_array
        sample_rate: 16000
        channels: 6
        channel_map: [1, 2, 3, 4]
        mics: [[-0.032, 0, 0], [0, -0.032, 0], [0.032, 0, 0], [0, 0.032, 0]]
        """))
    assert not profiles.xdg_profile_dir().exists()
    # --user: the per-user directory even as root (root would otherwise install into /etc).
    done = run_cli("profile", "add", source, "--user", env_config=isolated_config)
    assert done.returncode == 0, done.stderr
    installed = isolated_config / "arraydaemon" / "profiles" / "my_array.yaml"
    assert done.stdout.strip() == f"installed {installed}"
    assert installed.read_text() == (tmp_path / "my_array.yaml").read_text()
    p = load_profile("my_array")
    assert p.path == installed and p.channel_map == (1, 2, 3, 4)
    check = run_cli("profile", "check", "my_array", env_config=isolated_config)
    assert check.returncode == 0 and "ok" in check.stdout.splitlines()[-1], check.stderr
    listing = run_cli("profile", "list", env_config=isolated_config)
    line = next(line for line in listing.stdout.splitlines() if line.startswith("my_array "))
    assert str(installed.parent) in line


def test_profile_add_default_directory(isolated_config):
    if os.geteuid() == 0:
        assert profiles.user_profile_dir() == profiles.user_profile_dir(user=False)
        assert str(profiles.user_profile_dir()) == "/etc/arraydaemon/profiles"
    else:
        assert profiles.user_profile_dir() == isolated_config / "arraydaemon" / "profiles"
    assert profiles.user_profile_dir(user=True) == isolated_config / "arraydaemon" / "profiles"
    assert profiles.search_dirs()[0] == isolated_config / "arraydaemon" / "profiles"


def test_profile_add_rejects_a_broken_profile_and_installs_nothing(tmp_path, isolated_config):
    source = write(tmp_path / "bad.yaml", profile_text(mics="[[0, 0, 0], [0, 0, 0]]"))
    done = run_cli("profile", "add", source, "--user", env_config=isolated_config)
    assert done.returncode == 2
    assert done.stderr.startswith("arraydaemon: error: ") and "mics[1]" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (isolated_config / "arraydaemon").exists()


def test_profile_add_into_an_unwritable_place_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    source = write(tmp_path / "good.yaml", GOOD)
    with pytest.raises(ProfileError, match="cannot install profile into"):
        profiles.install_profile(source, blocker / "profiles")


def test_load_profile_file_reports_the_path_it_was_given(tmp_path):
    path = write(tmp_path / "good.yaml", GOOD)
    p = load_profile_file(path)
    assert p.path == tmp_path / "good.yaml" and p.name == "good"

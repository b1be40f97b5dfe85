"""Hostile profile and configuration files: bounded time and memory, one-line errors."""

from __future__ import annotations

import os
import time

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from arraydaemon.core.errors import ConfigError, ProfileError, UserError
from arraydaemon.core.profiles import MAX_MICS, install_profile, load_profile_file, parse_profile
from arraydaemon.core.validation import MAX_YAML_BYTES
from arraydaemon.service.settings import load_config, parse_config

LAUGHS = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
    f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n" for i in range(8))
GOOD = "name: ok\nsample_rate: 16000\nmics: [[0.05, 0, 0], [-0.05, 0, 0], [0, 0.05, 0], [0, -0.05, 0]]\n"


@pytest.mark.parametrize("key", ["device", "description", "frame_id", "mics"])
def test_a_billion_laughs_is_refused_at_once(tmp_path, key):
    path = tmp_path / "bomb.yaml"
    path.write_text(LAUGHS + GOOD.replace("name: ok", "name: ok\nx_" + key + ": *i") .replace("x_", ""))
    start = time.monotonic()
    with pytest.raises(ProfileError, match="aliases") as caught:
        load_profile_file(path)
    assert time.monotonic() - start < 1.0 and len(str(caught.value)) < 300
    with pytest.raises(ConfigError, match="aliases"):
        load_config(path)


def test_large_files_and_non_regular_files_are_refused_before_reading(tmp_path):
    big = tmp_path / "big.yaml"
    rows = "".join(f"  - [{i * 1e-4}, 0.0, 0.0]\n" for i in range(60_000))
    big.write_text(GOOD.split("mics:")[0] + "mics:\n" + rows)
    assert big.stat().st_size > MAX_YAML_BYTES
    with pytest.raises(ProfileError, match="at most 256 kB"):
        load_profile_file(big)
    with pytest.raises(ProfileError, match="not a regular file"):
        load_profile_file("/dev/zero")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # nobody writes: reading it would block for ever
    with pytest.raises(ProfileError, match="not a regular file"):
        load_profile_file(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config("/dev/zero")


def test_too_many_mics_is_one_line_naming_the_limit():
    mics = [[0.001 * i, 0.002 * (i % 7), 0.0] for i in range(MAX_MICS + 1)]
    with pytest.raises(ProfileError, match=f"at most {MAX_MICS} mics"):
        parse_profile({"name": "many", "sample_rate": 16000, "mics": mics})


@pytest.mark.parametrize("name", ["evil\n", "a/b", "../x", "x" * 65, "", " x", "ok\nname: y"])
def test_names_are_matched_in_full(name):
    with pytest.raises(ProfileError, match="key 'name'"):
        parse_profile({**yaml.safe_load(GOOD), "name": name})


def test_shadowing_a_bundled_profile_needs_force(tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text(GOOD.replace("name: ok", "name: demo"))
    with pytest.raises(ProfileError, match="bundled profile's.*--force"):
        install_profile(path, tmp_path / "installed")
    assert install_profile(path, tmp_path / "installed", force=True).is_file()


yaml_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
yaml_values = st.recursive(yaml_scalars, lambda c: st.lists(c, max_size=6) | st.dictionaries(
    st.text(max_size=12), c, max_size=6), max_leaves=40)
profile_like = st.fixed_dictionaries(
    {"name": st.text(max_size=20) | st.just("p"), "sample_rate": st.integers(-10, 400_000) | yaml_scalars,
     "mics": st.lists(st.lists(st.floats(-1, 1) | yaml_scalars, max_size=4), max_size=10) | yaml_values},
    optional={k: yaml_values for k in ("channels", "channel_map", "device", "reference_mic", "frame_id", "gain",
                                       "speed_of_sound", "description", "bogus")})


@given(data=yaml_values | profile_like)
def test_the_profile_parser_raises_only_profile_errors(data):
    try:
        parse_profile(data, "p.yaml")
    except ProfileError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400


@given(data=yaml_values | st.dictionaries(st.sampled_from(
    ["endpoint", "estimator", "weights", "hop", "profile", "log_level", "band", "device", "wait", "latency",
     "integration", "colour"]), yaml_values, max_size=6))
def test_the_config_parser_raises_only_config_errors(data):
    try:
        parse_config(data, "c.yaml")
    except UserError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400


@given(text=st.text(max_size=300))
def test_arbitrary_yaml_text_gives_a_profile_or_a_profile_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("y") / "p.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_profile_file(path)
    except ProfileError as exc:
        assert "\n" not in str(exc)

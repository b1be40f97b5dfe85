"""The daemon's configuration file (YAML): defaults for ``arraydaemon run``.

Looked up at ``--config FILE`` or else :data:`DEFAULT_PATH` (used only if it exists). Every key is
optional; command-line flags override the file. Keys:

=========== ============================================================================
endpoint    ZeroMQ PUB endpoint, e.g. ``tcp://127.0.0.1:5570`` or ``ipc:///run/arraydaemon/doa``
estimator   ``srp-phat`` or ``neural``
weights     neural weights file (relative paths are relative to the config file); implies ``neural``
hop         seconds between windows, in (0, 0.25]
profile     array profile name or YAML path (relative paths are relative to the config file)
log_level   ``debug``, ``info``, ``warning`` or ``error``
band        ``[fmin, fmax]`` in Hz, the analysis band
device      PortAudio device: a name substring or an index (default: the profile's ``device``)
wait        ``true`` to wait for a missing device instead of exiting
latency     PortAudio input latency: ``low``, ``high`` or seconds
integration seconds, the time constant of the localizer's integration over past windows (0: none)
=========== ============================================================================

Errors name the file, the key and what was expected, and suggest a key for a misspelt one, like
profile errors do.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path


from arraydaemon.core.errors import ConfigError

DEFAULT_PATH = Path("/etc/arraydaemon/arraydaemon.yaml")
ESTIMATORS = ("srp-phat", "neural")
LOG_LEVELS = ("debug", "info", "warning", "error")
MAX_HOP_S = 0.25  # the analysis window; a hop longer than it would skip audio
INTEGRATION_S = 0.4  # localizer integration time constant, chosen on validation scenes (model card)
MAX_INTEGRATION_S = 5.0


@dataclass(frozen=True)
class DaemonConfig:
    """Parsed configuration; ``None`` means "not set" (the built-in default applies)."""

    endpoint: str | None = None
    estimator: str | None = None
    hop: float | None = None
    profile: str | None = None
    log_level: str | None = None
    band: tuple[float, float] | None = None
    device: str | int | None = None
    wait: bool | None = None
    latency: str | float | None = None
    weights: str | None = None
    integration: float | None = None
    path: Path | None = None

    def as_dict(self) -> dict:
        """The keys that are set, YAML-ready."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "path" and value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


KEYS = tuple(f.name for f in fields(DaemonConfig) if f.name != "path")


def _fail(source: str, key: str, expected: str, got) -> ConfigError:
    return ConfigError(f"{source}: key '{key}': expected {expected}, got {got!r}")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def parse_config(data, source: str = "<config>", path: Path | None = None) -> DaemonConfig:
    """Validate plain YAML data; ``source`` names the file in error messages."""
    if data is None:  # an empty file is a valid, empty configuration
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a YAML mapping of settings ({', '.join(KEYS)}), "
                          f"got {type(data).__name__}")
    for key in data:
        if key not in KEYS:
            close = difflib.get_close_matches(str(key), KEYS, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(KEYS)}"
            raise ConfigError(f"{source}: unknown key '{key}'{hint}")
    out = {}

    if "endpoint" in data:
        v = data["endpoint"]
        if not isinstance(v, str) or "://" not in v:
            raise _fail(source, "endpoint", "a ZeroMQ endpoint such as tcp://127.0.0.1:5570 or ipc:///PATH", v)
        out["endpoint"] = v
    if "estimator" in data:
        v = data["estimator"]
        if v not in ESTIMATORS:
            raise _fail(source, "estimator", f"one of {', '.join(ESTIMATORS)}", v)
        out["estimator"] = v
    if "weights" in data:
        v = data["weights"]
        if not isinstance(v, str) or not v:
            raise _fail(source, "weights", "a path to a neural weights file (.safetensors)", v)
        out["weights"] = _relative_to(path, v)
    if out.get("weights") and out.get("estimator", "neural") != "neural":
        raise ConfigError(f"{source}: key 'weights' is for the neural estimator, but 'estimator' is {out['estimator']}")
    if "hop" in data:
        v = data["hop"]
        if not _is_number(v) or not 0 < v <= MAX_HOP_S:
            raise _fail(source, "hop", f"seconds between windows, a number in (0, {MAX_HOP_S}]", v)
        out["hop"] = float(v)
    if "profile" in data:
        v = data["profile"]
        if not isinstance(v, str) or not v:
            raise _fail(source, "profile", "a profile name or a path to a profile YAML file", v)
        if v.endswith((".yaml", ".yml")) or os.sep in v:
            v = _relative_to(path, v)
        out["profile"] = v
    if "log_level" in data:
        v = data["log_level"]
        if not isinstance(v, str) or v.lower() not in LOG_LEVELS:
            raise _fail(source, "log_level", f"one of {', '.join(LOG_LEVELS)}", v)
        out["log_level"] = v.lower()
    if "band" in data:
        v = data["band"]
        if (not isinstance(v, list) or len(v) != 2 or not all(_is_number(x) for x in v)
                or not 0 <= v[0] < v[1]):
            raise _fail(source, "band", "[fmin, fmax] in Hz with 0 <= fmin < fmax", v)
        out["band"] = (float(v[0]), float(v[1]))
    if "device" in data:
        v = data["device"]
        if isinstance(v, bool) or not ((isinstance(v, str) and v) or (isinstance(v, int) and v >= 0)):
            raise _fail(source, "device", "a substring of the PortAudio device name, or a device index", v)
        out["device"] = v
    if "wait" in data:
        v = data["wait"]
        if not isinstance(v, bool):
            raise _fail(source, "wait", "true or false", v)
        out["wait"] = v
    if "latency" in data:
        out["latency"] = parse_latency(data["latency"], f"{source}: key 'latency'")
    if "integration" in data:
        v = data["integration"]
        if not _is_number(v) or not 0 <= v <= MAX_INTEGRATION_S:
            raise _fail(source, "integration", f"seconds in [0, {MAX_INTEGRATION_S:g}] (0: no integration)", v)
        out["integration"] = float(v)
    return DaemonConfig(path=path, **out)


def _relative_to(config_path: Path | None, value: str) -> str:
    """A path from the file, made relative to the config file's directory unless absolute."""
    if config_path is None or os.path.isabs(value):
        return value
    return str(config_path.parent / value)


def parse_latency(value, where: str) -> str | float:
    """``low``/``high`` or a positive number of seconds (strings of numbers accepted)."""
    if isinstance(value, str) and value in ("low", "high"):
        return value
    number = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if _is_number(number) and 0 < number <= 2.0:
        return float(number)
    raise ConfigError(f"{where}: expected 'low', 'high' or seconds in (0, 2], got {value!r}")


def load_config(path: str | os.PathLike) -> DaemonConfig:
    """Load and validate one configuration file."""
    from arraydaemon.core.profiles import read_yaml_file  # numpy and yaml: not for the commands that never read a config

    path = Path(path)
    data = read_yaml_file(path, ConfigError, "configuration")
    return parse_config(data, str(path), path)


def find_config(explicit: str | os.PathLike | None) -> DaemonConfig:
    """``--config FILE`` (must exist), else :data:`DEFAULT_PATH` if present, else an empty config."""
    if explicit is not None:
        return load_config(explicit)
    if DEFAULT_PATH.is_file():
        return load_config(DEFAULT_PATH)
    return DaemonConfig()


def cmd_config_check(args) -> int:
    """``arraydaemon config check [FILE]``: validate and print the settings a file makes."""
    cfg = load_config(args.file) if args.file else find_config(None)
    if cfg.path is None:
        print(f"no configuration file ({DEFAULT_PATH} does not exist); built-in defaults apply")
        return 0
    settings = cfg.as_dict()
    print(f"config       {cfg.path}")
    for key in KEYS:
        if key in settings:
            print(f"{key:<12} {settings[key]}")
    if cfg.profile is not None:
        from arraydaemon.core.profiles import load_profile

        profile = load_profile(cfg.profile)  # a missing or invalid profile is an error here too
        print(f"profile ok   {profile.name}: {profile.num_mics} mics at {profile.sample_rate} Hz ({profile.path})")
    if cfg.weights is not None:
        from arraydaemon.localizers.neural.stage import load_model

        _, meta = load_model(Path(cfg.weights))  # a missing or unreadable file is an error here too
        print(f"weights ok   {meta.get('model_name', 'model')}, {meta.get('train_steps', '?')} training steps")
    print("ok")
    return 0

"""Settings, resolved in one place: built-in defaults, then the configuration file, then flags.

:func:`resolve_pipeline` gives the :class:`~arraydaemon.core.options.PipelineOptions` of ``replay``,
``demo`` and ``run``; :func:`resolve_run` adds what only the daemon needs (profile, device, endpoint,
latency...). The defaults themselves live with their types in :mod:`arraydaemon.core.options`.

The configuration file (YAML) sets defaults for ``arraydaemon run``. Looked up at ``--config FILE`` or else :data:`DEFAULT_PATH` (used only if it exists). Every key is
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
noise_model a noise model file (``arraydaemon noise learn``; relative to the config file)
noise_state a file keeping the online noise field's state across restarts (relative to the config file)
noise_gate  ``model``, ``online`` or ``off``: whose noise direction is never a source (``docs/robot-noise.md``)
=========== ============================================================================

Errors name the file, the key and what was expected, and suggest a key for a misspelt one, like
profile errors do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

from arraydaemon.core.errors import ConfigError, UserError
from arraydaemon.core.options import (
    MAX_HOP_S,
    MAX_INTEGRATION_S,
    MAX_SOURCES,
    NOISE_GATES,
    PipelineOptions,
    valid_integration,
)
from arraydaemon.core.validation import check_keys, is_number, key_error, read_yaml_file, short_repr
from arraydaemon.io import wire
from arraydaemon.io.endpoints import check_endpoint
from arraydaemon.localizers.base import ESTIMATOR_NAMES, ESTIMATORS, default_estimator

DEFAULT_PATH = Path("/etc/arraydaemon/arraydaemon.yaml")
LOG_LEVELS = ("debug", "info", "warning", "error")


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
    noise_model: str | None = None
    noise_state: str | None = None
    noise_gate: str | None = None
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
    return key_error(ConfigError, source, key, expected, got)


def parse_config(data, source: str = "<config>", path: Path | None = None) -> DaemonConfig:
    """Validate plain YAML data; ``source`` names the file in error messages."""
    if data is None:  # an empty file is a valid, empty configuration
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a YAML mapping of settings ({', '.join(KEYS)}), "
                          f"got {type(data).__name__}")
    check_keys(data, KEYS, source, ConfigError)
    out = {}

    if "endpoint" in data:
        v = data["endpoint"]
        try:
            check_endpoint(v)
        except UserError:
            raise _fail(source, "endpoint", "a ZeroMQ endpoint such as tcp://127.0.0.1:5570 or ipc:///PATH", v) from None
        out["endpoint"] = v
    if "estimator" in data:
        v = data["estimator"]
        if not isinstance(v, str) or v not in ESTIMATORS:
            raise _fail(source, "estimator", f"one of {', '.join(ESTIMATOR_NAMES)}", v)
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
        if not is_number(v) or not 0 < v <= MAX_HOP_S:
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
        if (not isinstance(v, list) or len(v) != 2 or not all(is_number(x) for x in v)
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
        if not valid_integration(v):
            raise _fail(source, "integration", f"seconds in [0, {MAX_INTEGRATION_S:g}] (0: no integration)", v)
        out["integration"] = float(v)
    for key, what in (("noise_model", "a path to a noise model file (arraydaemon noise learn)"),
                      ("noise_state", "a path to a noise state file")):
        if key in data:
            v = data[key]
            if not isinstance(v, str) or not v:
                raise _fail(source, key, what, v)
            out[key] = _relative_to(path, v)
    if "noise_gate" in data:
        v = data["noise_gate"]
        if not isinstance(v, str) or v not in NOISE_GATES:
            raise _fail(source, "noise_gate", f"one of {', '.join(NOISE_GATES)}", v)
        out["noise_gate"] = v
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
    if is_number(number) and 0 < number <= 2.0:
        return float(number)
    raise ConfigError(f"{where}: expected 'low', 'high' or seconds in (0, 2], got {short_repr(value)}")


def load_config(path: str | os.PathLike) -> DaemonConfig:
    """Load and validate one configuration file."""
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


# ----------------------------------------------------------------------------------------------
# Resolution: defaults → configuration file → flags


def _flag(flags, name: str):
    """A flag's value, None when not given (or when the command has no such flag)."""
    return getattr(flags, name, None)


def resolve_pipeline(flags, config: DaemonConfig = DaemonConfig()) -> PipelineOptions:
    """The pipeline options of ``config`` with the command-line ``flags`` (an argparse namespace)
    over it. User mistakes raise :class:`UserError` naming the flag."""
    opts = PipelineOptions()
    feats, loc, tracker = opts.features, opts.localizer, opts.tracker
    if config.hop is not None:
        feats = replace(feats, hop_s=config.hop)
    if config.band is not None:
        feats = replace(feats, fmin_hz=config.band[0], fmax_hz=config.band[1])
    if config.integration is not None:
        loc = replace(loc, integration_s=config.integration)
    if _flag(flags, "hop") is not None:
        feats = replace(feats, hop_s=flags.hop)
    if _flag(flags, "fmin") is not None:
        feats = replace(feats, fmin_hz=flags.fmin)
    if _flag(flags, "fmax") is not None:
        feats = replace(feats, fmax_hz=flags.fmax)
    if _flag(flags, "resolution") is not None:
        loc = replace(loc, resolution_deg=flags.resolution)
    if _flag(flags, "max_sources") is not None:
        if not 1 <= flags.max_sources <= MAX_SOURCES:
            raise UserError(f"--max-sources: expected 1..{MAX_SOURCES}, got {flags.max_sources}")
        loc = replace(loc, max_sources=flags.max_sources)
    if _flag(flags, "integration") is not None:
        if not valid_integration(flags.integration):
            raise UserError(f"--integration: expected seconds in [0, {MAX_INTEGRATION_S:g}] (0: none), "
                            f"got {flags.integration:g}")
        loc = replace(loc, integration_s=flags.integration)
    if _flag(flags, "track_silence") is not None:
        tracker = replace(tracker, max_silence_s=flags.track_silence)
    try:
        feats.validate()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    # The estimator: a flag, else weights given by flag, else the file's estimator, else weights
    # given by the file, else the default. Weights go only to an estimator that takes them.
    flag_weights = _flag(flags, "weights")
    estimator = (_flag(flags, "estimator") or ("neural" if flag_weights else None) or config.estimator
                 or ("neural" if config.weights else None) or default_estimator())
    takes_weights = ESTIMATORS[estimator].takes_weights
    if flag_weights and not takes_weights:
        raise UserError(f"--weights is for the neural estimator, not --estimator {estimator}")
    weights = (flag_weights or config.weights) if takes_weights else None
    noise_model = _flag(flags, "noise_model") or config.noise_model
    noise_state = _flag(flags, "noise_state") or config.noise_state
    noise_gate = _flag(flags, "noise_gate") or config.noise_gate or opts.noise_gate
    return replace(opts, estimator=estimator, weights=weights, features=feats, localizer=loc, tracker=tracker,
                   noise_model=noise_model, noise_state=noise_state, noise_gate=noise_gate)


@dataclass(frozen=True)
class RunSettings:
    """What ``arraydaemon run`` runs with: command-line flags over the config file over defaults."""

    profile_ref: str
    device: str | int | None  # None: the profile's ``device``, else PortAudio's default input
    endpoint: str
    options: PipelineOptions
    log_level: str | None
    wait: bool
    latency: str | float
    config: DaemonConfig


def resolve_run(flags) -> RunSettings:
    """The daemon's settings: reads the configuration file (``--config`` or :data:`DEFAULT_PATH`)."""
    cfg = find_config(_flag(flags, "config"))
    options = resolve_pipeline(flags, cfg)
    profile_ref = flags.profile or cfg.profile
    if not profile_ref:
        where = f" or key 'profile' in {cfg.path}" if cfg.path else ""
        raise UserError(f"no array profile: give --profile NAME|FILE{where}")
    latency = parse_latency(flags.latency, "--latency") if flags.latency is not None else (cfg.latency or "low")
    return RunSettings(
        profile_ref=profile_ref,
        device=flags.device if flags.device is not None else cfg.device,
        endpoint=flags.endpoint or cfg.endpoint or wire.DEFAULT_ENDPOINT,
        options=options,
        log_level=cfg.log_level,
        wait=bool(flags.wait or cfg.wait),
        latency=latency,
        config=cfg,
    )

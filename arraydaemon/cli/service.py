"""``arraydaemon run``, ``devices`` and ``config check``: the daemon and what it needs."""

from __future__ import annotations

from pathlib import Path

from arraydaemon.cli.common import add_pipeline_args
from arraydaemon.io import wire


def register(sub) -> None:
    p = sub.add_parser("run", help="capture from a microphone array and publish directions (the daemon)")
    p.add_argument("--profile", help="array profile name or YAML file (default: the config file's)")
    p.add_argument("--device", help="PortAudio input device: name substring or index (default: the profile's)")
    p.add_argument("--endpoint", help=f"ZeroMQ PUB endpoint (default {wire.DEFAULT_ENDPOINT})")
    p.add_argument("--config", metavar="FILE",
                   help="configuration file (default /etc/arraydaemon/arraydaemon.yaml if it exists)")
    p.add_argument("--wait", action="store_true", help="wait for a missing device instead of exiting")
    p.add_argument("--latency", help="PortAudio input latency: low, high or seconds (default low)")
    add_pipeline_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("devices", help="audio input devices and the profiles that match them")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("config", help="check the daemon's configuration file")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    q = csub.add_parser("check", help="validate a configuration file and print its settings")
    q.add_argument("file", nargs="?", help="file to check (default /etc/arraydaemon/arraydaemon.yaml)")
    q.set_defaults(func=cmd_config_check)


def cmd_run(args) -> int:
    from arraydaemon.service.daemon import run_daemon

    return run_daemon(args)


def cmd_devices(args) -> int:
    from arraydaemon.io.capture.devices import devices_report

    print(devices_report())
    return 0


def cmd_config_check(args) -> int:
    """Validate a configuration file and print the settings it makes."""
    from arraydaemon.service.settings import DEFAULT_PATH, KEYS, find_config, load_config

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
        from arraydaemon.localizers.neural.weights import read_metadata

        meta = read_metadata(Path(cfg.weights))  # a missing or unreadable file is an error here too
        print(f"weights ok   {meta.get('model_name', 'model')}, {meta.get('train_steps', '?')} training steps")
    print("ok")
    return 0

"""``arraydaemon run``, ``devices`` and ``config check``: the daemon and what it needs."""

from __future__ import annotations

from pathlib import Path

from arraydaemon.cli.common import add_pipeline_args, command
from arraydaemon.io import wire


def register(sub) -> None:
    p = command(sub, "run", "capture from a microphone array and publish directions (the daemon)",
                "Opens the profile's device, runs the pipeline (features, localizer, tracker) on every window "
                "and publishes doa, tracks, embedding, health and array messages. Flags override the "
                "configuration file, which overrides the built-in defaults. Ctrl-C or SIGTERM stops it "
                "cleanly; SIGHUP re-reads the profile and the configuration file.",
                ("arraydaemon run --profile respeaker_6mic_hat",
                 "arraydaemon run --profile my_array.yaml --device seeed --estimator srp-phat --wait",
                 "arraydaemon run --config /etc/arraydaemon/arraydaemon.yaml --endpoint tcp://127.0.0.1:5571"))
    p.add_argument("--profile", help="array profile name or YAML file (default: the config file's `profile`)")
    p.add_argument("--device", help="PortAudio input device: name substring or index (default: the profile's)")
    p.add_argument("--endpoint", help=f"ZeroMQ PUB endpoint to bind (default {wire.DEFAULT_ENDPOINT}; a host other "
                   "than loopback publishes to the network, with a warning)")
    p.add_argument("--config", metavar="FILE",
                   help="configuration file (default /etc/arraydaemon/arraydaemon.yaml if it exists)")
    p.add_argument("--wait", action="store_true", help="wait for a missing device instead of exiting")
    p.add_argument("--latency", help="PortAudio input latency: low, high or seconds (default low)")
    add_pipeline_args(p)
    p.set_defaults(func=cmd_run)

    p = command(sub, "devices", "audio input devices and the profiles that match them",
                "Lists the PortAudio input devices (index, host API, channels, default rate, name) and the "
                "installed or bundled profiles whose `device` is a substring of the name and whose channel "
                "count the device has.", ("arraydaemon devices",))
    p.set_defaults(func=cmd_devices)

    p = command(sub, "config", "check the daemon's configuration file", example_lines=("arraydaemon config check",))
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    q = command(csub, "check", "validate a configuration file and print its settings",
                "Errors name the file, the key and what was expected (with a did-you-mean for a misspelt key); "
                "the profile and weights it names are loaded too.",
                ("arraydaemon config check                          # /etc/arraydaemon/arraydaemon.yaml",
                 "arraydaemon config check ./arraydaemon.yaml"))
    q.add_argument("file", nargs="?", help="file to check (default /etc/arraydaemon/arraydaemon.yaml)")
    q.add_argument("--profile", help="array profile to check the settings against (default: the file's 'profile')")
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
    profile_ref = args.profile or cfg.profile
    if profile_ref is not None:
        from arraydaemon.core.feasibility import check_runnable
        from arraydaemon.core.profiles import load_profile
        from arraydaemon.service.settings import resolve_pipeline

        profile = load_profile(profile_ref)  # a missing or invalid profile is an error here too
        print(f"profile ok   {profile.name}: {profile.num_mics} mics at {profile.sample_rate} Hz ({profile.path})")
        check_runnable(profile, resolve_pipeline(None, cfg))  # what run and a reload build from it
        print("pipeline ok  the band, hop and grid run on this profile")
    else:
        print("note         band, hop and grid are checked against a profile: add 'profile' or give --profile")
    if cfg.weights is not None:
        from arraydaemon.localizers.neural.weights import read_metadata

        meta = read_metadata(Path(cfg.weights))  # a missing or unreadable file is an error here too
        print(f"weights ok   {meta.get('model_name', 'model')}, {meta.get('train_steps', '?')} training steps")
    print("ok")
    return 0

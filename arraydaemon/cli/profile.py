"""``arraydaemon profile list|check|add|verify``: array profiles."""

from __future__ import annotations

import json
import math
import sys

from arraydaemon.cli.common import command
from arraydaemon.core.errors import UserError


def register(sub) -> None:
    p = command(sub, "profile", "list, check, verify or install array profiles",
                "A profile is a small YAML file: name, sample_rate and the mic positions in metres (REP-103: x "
                "forward, y left, z up); optionally channels, channel_map, device, reference_mic, frame_id, "
                "gain, speed_of_sound, description. Anywhere a profile is taken, a bundled or installed name or "
                "a path to a YAML file works.",
                ("arraydaemon profile list",
                 "arraydaemon profile check my_array.yaml",
                 "arraydaemon profile verify my_array.yaml --file rec.wav",
                 "sudo arraydaemon profile add my_array.yaml --verify rec.wav"))
    psub = p.add_subparsers(dest="profile_command", metavar="ACTION")
    psub.required = True
    q = command(psub, "list", "bundled and installed profiles",
                "One line per profile: name, mics, sample rate, kind (planar, linear, 3d), where it comes from "
                "and its description; an invalid installed profile is listed with its error.",
                ("arraydaemon profile list",))
    q.set_defaults(func=cmd_profile_list)
    q = command(psub, "check", "validate a profile and print its geometry",
                "Prints the mics and channels, the aperture, the largest delay between mics, the frequency above "
                "which spatial aliasing begins and what the geometry cannot tell apart (a planar array: up from "
                "down; a linear one: front from back). Errors name the file, the key and what was expected.",
                ("arraydaemon profile check respeaker_6mic_hat", "arraydaemon profile check ./my_array.yaml"))
    q.add_argument("profile", help="profile name or YAML file")
    q.set_defaults(func=cmd_profile_check)
    q = command(psub, "add", "validate a YAML profile and install it",
                "Installs into /etc/arraydaemon/profiles as root (where the service looks), else into "
                "~/.config/arraydaemon/profiles. A profile named like a bundled one would shadow it everywhere, "
                "so that needs --force.",
                ("sudo arraydaemon profile add my_array.yaml",
                 "arraydaemon profile add my_array.yaml --user --verify rec.wav --source-azimuth 0"))
    q.add_argument("file", help="the profile's YAML file")
    q.add_argument("--user", action="store_true", help="install into $XDG_CONFIG_HOME even as root (not /etc)")
    q.add_argument("--force", action="store_true", help="install even if it shadows a bundled profile of the same name")
    q.add_argument("--verify", metavar="REC", help="first verify the profile against this recording of the array "
                   "(see `profile verify`); install only if it is ok (default: install without verifying)")
    q.add_argument("--source-azimuth", type=_azimuth, metavar="DEG", help="with --verify: where the talker stood "
                   "during the first seconds of speech (default: not given)")
    q.set_defaults(func=cmd_profile_add)
    q = command(psub, "verify", "check a profile against a recording of the array: channel order, dead or "
                "inverted mics, geometry, sample rate",
                "Record (or read) someone talking while walking slowly around the array, "
                "and check the profile against it: per channel level, dead, clipped, DC, gain, polarity, "
                "duplicated; per mic pair the delays against those the geometry allows and the distance "
                "diffuse noise implies; the channel order (and the channel_map that fits, if not the "
                "declared one); the sample rate. The first line is the verdict. Exit 0 when ok, 1 when not, "
                "2 on errors.",
                ("arraydaemon profile verify my_array --device seeed-8mic      # records 20 s",
                 "arraydaemon profile verify my_array --file rec.wav",
                 "arraydaemon profile verify my_array --file rec.wav --source-azimuth 0 --json --plot verify.png"))
    q.add_argument("profile", help="profile name or YAML file")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", metavar="REC", help="a recording of all the device's channels (any libsndfile format); "
                     "this or --device is required")
    src.add_argument("--device", metavar="DEV", help="record from this PortAudio input device (name substring or index)"
                     "; this or --file is required")
    q.add_argument("--seconds", type=_seconds, default=20.0, help="with --device: how long to record, 1 to 600 "
                   "(default 20)")
    q.add_argument("--source-azimuth", type=_azimuth, metavar="DEG",
                   help="where the talker stood during the first seconds of speech (degrees counter-clockwise from "
                   "the array's +x): picks among maps the array's symmetry makes equal, and checks the rotation "
                   "(default: not given; such maps are listed as ambiguous)")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.add_argument("--plot", metavar="OUT.png", help="draw per-pair delay histograms and coherence fits (matplotlib; "
                   "default: no plot)")
    q.set_defaults(func=cmd_profile_verify)


def _azimuth(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected degrees, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected degrees, got {text!r}")
    return 180.0 - (180.0 - value) % 360.0  # (-180, 180]


def _seconds(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not math.isfinite(value) or not 1.0 <= value <= 600.0:
        raise argparse.ArgumentTypeError(f"expected 1 to 600 seconds, got {text!r}")
    return value


def cmd_profile_list(args) -> int:
    from arraydaemon.core.profiles import BUNDLED_DIR, available_profiles, load_profile_file

    rows = []
    for name, path in sorted(available_profiles().items()):
        origin = "bundled" if path.parent == BUNDLED_DIR else str(path.parent)
        try:
            p = load_profile_file(path)
            rows.append((name, str(p.num_mics), str(p.sample_rate), p.geometry.kind, origin, p.description))
        except UserError as exc:
            rows.append((name, "?", "?", "invalid", origin, str(exc)))
    header = ("name", "mics", "rate", "kind", "from", "description")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(5)]
    for r in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5])
    return 0


def cmd_profile_check(args) -> int:
    from arraydaemon.core.profiles import load_profile

    p = load_profile(args.profile)
    g = p.geometry
    print(f"profile      {p.name}  ({p.path})")
    if p.description:
        print(f"description  {p.description}")
    print(f"mics         {p.num_mics} ({g.kind}), reference mic {p.reference_mic}")
    print(f"device       {p.channels} channels at {p.sample_rate} Hz, mics on channels {list(p.channel_map)}"
          + (f", device name contains '{p.device}'" if p.device else ""))
    print(f"aperture     {g.aperture_m * 100:.1f} cm (closest pair {g.min_spacing_m * 100:.1f} cm)")
    print(f"max TDOA     {g.max_tdoa_s * 1e6:.0f} µs = {g.max_tdoa_s * p.sample_rate:.1f} samples "
          f"(c = {p.speed_of_sound:g} m/s)")
    print(f"aliasing     above {g.aliasing_hz:.0f} Hz (largest nearest-neighbour spacing "
          f"{g.nearest_neighbour_spacing_m * 100:.1f} cm)")
    print(f"ambiguity    {g.describe_ambiguity()}")
    from arraydaemon.core.feasibility import check_runnable
    from arraydaemon.core.options import PipelineOptions

    layout = check_runnable(p, PipelineOptions())  # the default pipeline runs on it
    lo, hi = layout.band
    print(f"analysis     {lo * layout.bin_hz:.0f}-{(hi - 1) * layout.bin_hz:.0f} Hz in {hi - lo} bins of "
          f"{layout.bin_hz:g} Hz, {layout.window_samples} samples a window")
    print("ok")
    return 0


def cmd_profile_add(args) -> int:
    from arraydaemon.core.profiles import install_profile, load_profile_file, user_profile_dir

    if args.verify:
        profile = load_profile_file(args.file)
        report = _verify(profile, args.verify, None, 0.0, args.source_azimuth)
        _print_report(report)
        if not report.ok:
            print(f"not installed: fix {args.file} (or the array) and verify again, or add it without --verify",
                  file=sys.stderr)
            return 1
    dest = install_profile(args.file, user_profile_dir(user=args.user), force=args.force)
    print(f"installed {dest}")
    return 0


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def _verify(profile, file, device, seconds: float, source_azimuth):
    from arraydaemon.verify import read_file, record_device, verify_recording

    if file is not None:
        recording = read_file(file, profile, notify=_note)
    else:
        recording = record_device(profile, device, seconds, notify=_note)
    return verify_recording(recording, profile, source_azimuth)


def _print_report(report) -> None:
    print(report.verdict())
    for line in report.lines():
        print(line)


def cmd_profile_verify(args) -> int:
    from arraydaemon.core.profiles import load_profile

    if args.plot:
        from arraydaemon.verify.plot import require_matplotlib

        require_matplotlib()  # before a 20 s recording, not after
    profile = load_profile(args.profile)
    report = _verify(profile, args.file, args.device, args.seconds, args.source_azimuth)
    if args.plot:
        from arraydaemon.verify.plot import save_plot

        save_plot(report, args.plot)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _print_report(report)
        if args.plot:
            print(f"plot        {args.plot}")
    return 0 if report.ok else 1

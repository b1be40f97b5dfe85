"""``arraydaemon profile list|check|add``: array profiles."""

from __future__ import annotations

from arraydaemon.core.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("profile", help="list, check or install array profiles")
    psub = p.add_subparsers(dest="profile_command", metavar="ACTION")
    psub.required = True
    q = psub.add_parser("list", help="bundled and installed profiles")
    q.set_defaults(func=cmd_profile_list)
    q = psub.add_parser("check", help="validate a profile and print its geometry")
    q.add_argument("profile", help="profile name or YAML file")
    q.set_defaults(func=cmd_profile_check)
    q = psub.add_parser("add", help="validate a YAML profile and install it")
    q.add_argument("file")
    q.add_argument("--user", action="store_true", help="install into $XDG_CONFIG_HOME even as root (not /etc)")
    q.set_defaults(func=cmd_profile_add)


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
    print("ok")
    return 0


def cmd_profile_add(args) -> int:
    from arraydaemon.core.profiles import install_profile, user_profile_dir

    dest = install_profile(args.file, user_profile_dir(user=args.user))
    print(f"installed {dest}")
    return 0

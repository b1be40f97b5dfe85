"""``arraydaemon room check`` and ``arraydaemon fuse``: several arrays, one map."""

from __future__ import annotations

import sys

from arraydaemon.cli.common import command, positive_float

DEFAULT_FUSE_ENDPOINT = "tcp://127.0.0.1:5580"
ROOM_HELP = ("A room file (YAML) lists the arrays: each with its profile (a name, or a path relative to the "
             "room file), the endpoint its daemon publishes on, its position [x, y, z] in metres and yaw_deg "
             "(counter-clockwise from room +x to the array's +x; pitch_deg and roll_deg optional) in the room "
             "frame (x, y on the floor, z up); optionally the room's size [x, y, z], bearing_sigma_deg, "
             "max_skew_s and landmarks (named places, each a name and a position [x, y] or [x, y, z], that "
             "`arraydaemon reason` answers with). See docs/fusion.md.")


def register(sub) -> None:
    p = command(sub, "room", "check a room file: what the arrays see together", ROOM_HELP,
                ("arraydaemon room check room.yaml",))
    rsub = p.add_subparsers(dest="room_command", metavar="ACTION")
    rsub.required = True
    q = command(rsub, "check", "validate a room file and map where the arrays' bearings cross",
                "Prints each array's pose, kind and ambiguity and whether its endpoint accepts connections, then "
                "a coarse floor map: where bearings cross at good angles (a talker there is placed well), where "
                "they are nearly parallel (a direction more than a place). Errors name the file, the array and "
                "the key.", ("arraydaemon room check room.yaml", "arraydaemon room check room.yaml --no-probe"))
    q.add_argument("room", help="room file (YAML)")
    q.add_argument("--no-probe", action="store_true", help="do not try to connect to the arrays' endpoints")
    q.add_argument("--cell", type=positive_float, metavar="METRES",
                   help="map cell size (default: a fortieth of the room's longer side, at least 0.1)")
    q.set_defaults(func=cmd_room_check)

    p = command(sub, "fuse", "fuse several arrays' tracks into positions in the room",
                "Subscribes to the tracks of every array of the room file (one daemon per array, anywhere on the "
                "network), aligns them by capture time (the daemons' clocks synchronised by NTP or PTP; skew up "
                "to the room's max_skew_s, default 0.1 s), triangulates each talker two or more arrays hear, "
                "tracks the positions with their own ids and publishes the positions topic (with the "
                "bearings only one array has, and each array's state) and health. An array that goes away "
                "degrades the map and is fused again when it returns.",
                ("arraydaemon fuse room.yaml                    # then: arraydaemon listen tcp://127.0.0.1:5580",
                 "arraydaemon fuse room.yaml --endpoint tcp://127.0.0.1:5590"))
    p.add_argument("room", help="room file (YAML)")
    p.add_argument("--endpoint", help=f"ZeroMQ PUB endpoint to bind (default {DEFAULT_FUSE_ENDPOINT})")
    p.add_argument("--seconds", type=positive_float, metavar="S", help="stop after S seconds (default: until "
                   "interrupted)")
    p.set_defaults(func=cmd_fuse)


def _probe(endpoint: str, timeout: float = 0.5) -> str:
    """Whether something accepts connections at ``endpoint``, in words."""
    import os
    import socket

    if endpoint.startswith("ipc://"):
        return "listening" if os.path.exists(endpoint[6:]) else "unreachable (no such socket file)"
    host, _, port = endpoint[6:].rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return "listening"
    except OSError as exc:
        return f"unreachable ({exc.strerror or exc})"


def cmd_room_check(args) -> int:
    from arraydaemon.fusion.coverage import coverage, report
    from arraydaemon.fusion.room import load_room

    room = load_room(args.room)
    size = "size not given" if room.size is None else "size " + " x ".join(f"{v:g}" for v in room.size) + " m"
    print(f"room '{room.name}': {len(room.arrays)} array(s), {size}")
    for k, a in enumerate(room.arrays):
        probe = "" if args.no_probe else f", {_probe(a.endpoint)}"
        print(f"  {chr(ord('A') + k) if k < 26 else '*'} {a.name}: {a.profile_name} ({a.kind}, ambiguity {a.ambiguity}) "
              f"at [{', '.join(f'{v:.2f}' for v in a.position)}] yaw {a.yaw_deg:g} deg, {a.endpoint}{probe}")
    for m in room.landmarks:
        print(f"  landmark {m.name} at [{', '.join(f'{v:.2f}' for v in m.position)}]")
    print("\n".join(report(room, coverage(room, args.cell))))
    return 0


def cmd_fuse(args) -> int:
    from arraydaemon.fusion.room import load_room
    from arraydaemon.fusion.service import run_fuse
    from arraydaemon.io.publisher import ZmqPublisher

    room = load_room(args.room)
    publisher = ZmqPublisher(args.endpoint or DEFAULT_FUSE_ENDPOINT)
    print(f"fusing {len(room.arrays)} array(s) of room '{room.name}'; publishing positions on "
          f"{publisher.bound_endpoint}", file=sys.stderr, flush=True)
    try:
        service = run_fuse(room, publisher, args.seconds,
                           notify=lambda text: print(f"note: {text}", file=sys.stderr, flush=True))
    finally:
        publisher.close()
    print(f"fused {service.fuser.fused} steps, published {service.published} positions messages", file=sys.stderr)
    return 0

"""``arraydaemon web``: the live view's flags (it runs in ``arraydaemon.web``, which imports neither
numpy, numba nor torch)."""

from __future__ import annotations

from arraydaemon.cli.common import command
from arraydaemon.io import wire

DEFAULT_HTTP = "127.0.0.1:8570"  # arraydaemon.web.server.DEFAULT_HTTP (not imported: aiohttp loads on use)


def register(sub) -> None:
    p = command(sub, "web", "serve a live view of the published directions to a browser",
                "Subscribe to the daemon's topics and serve one page (polar view, azimuth "
                "timeline, health, the array's geometry) with a WebSocket feed. Given `arraydaemon fuse`'s "
                "endpoint, or a room file (--room: the server then fuses the arrays itself), the page draws the "
                "room: the arrays at their poses, their bearings, the fused positions with ids and trails. "
                "Nothing to install in the browser; the page fetches nothing from elsewhere.",
                ("arraydaemon web                                       # then open http://127.0.0.1:8570/",
                 "arraydaemon web tcp://10.0.0.5:5570 --http 127.0.0.1:8080",
                 "arraydaemon web tcp://127.0.0.1:5580                  # arraydaemon fuse's endpoint: the room",
                 "arraydaemon web --room room.yaml                      # fuse the room's arrays here"))
    p.add_argument("endpoint", nargs="?", help=f"endpoint to connect to: a daemon's or fuse's (default "
                   f"{wire.DEFAULT_ENDPOINT})")
    p.add_argument("--room", metavar="ROOM.yaml", help="a room file instead of an endpoint: subscribe to every "
                   "array in it and fuse them in this process (loads numpy); the page draws the room (default: none, "
                   "subscribe to ENDPOINT)")
    p.add_argument("--http", default=DEFAULT_HTTP, metavar="HOST:PORT",
                   help=f"address to serve the page on (default {DEFAULT_HTTP}; port 0: a free one; "
                   "beyond loopback anyone who can reach this host can watch)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer requests naming this host (repeatable; default: IP addresses, localhost and "
                   "this machine's names only, against DNS rebinding)")
    p.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                   help="also accept the feed's WebSocket from pages of this origin, e.g. https://dash.example "
                   "(repeatable; default: this server's own page only)")
    p.set_defaults(func=cmd_web)


def cmd_web(args) -> int:
    from arraydaemon.core.errors import UserError
    from arraydaemon.web.server import serve

    if args.room and args.endpoint:
        raise UserError(f"give an endpoint ({args.endpoint}) or --room {args.room}, not both: with a room file the "
                        "web server subscribes to the room's arrays itself")
    return serve(args.endpoint or wire.DEFAULT_ENDPOINT, args.http, allow_hosts=args.allow_host,
                 allow_origins=args.allow_origin, room_path=args.room)

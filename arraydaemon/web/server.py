"""``arraydaemon web``: an aiohttp server with one page (``static/``) and a WebSocket feed (``/ws``).

Routes: ``/`` (the page), ``/app.js``, ``/style.css``, ``/ws`` (the feed, see
:mod:`arraydaemon.web.feed`) and ``/status`` (JSON: the feed's counters and each browser's queue).
The page's files are read from the package once at start; nothing is fetched from anywhere else,
and the page's Content-Security-Policy allows only this server.

On every binding the server answers only requests whose ``Host`` names it (:class:`HostCheck`): an
IP address (a loopback one when bound to loopback), ``localhost``, this machine's own names, the
name it was bound to, and what ``--allow-host`` adds. A page elsewhere cannot reach it through DNS
rebinding, which needs the browser to send the attacker's name. A WebSocket whose ``Origin`` is not
this server (or an ``--allow-origin``) is refused; a malformed header is a 400. Binding beyond
loopback (a name counts as loopback when it resolves only to loopback addresses) prints a warning,
like the daemon's publishing socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import re
import signal
import socket
import sys
from importlib import resources

from aiohttp import WSCloseCode, WSMsgType, web
from yarl import URL

from arraydaemon.core.errors import UserError
from arraydaemon.web.feed import Feed, FusionFeed

DEFAULT_HTTP = "127.0.0.1:8570"
MAX_CLIENTS = 32
STATUS_PERIOD_S = 1.0
STATIC = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_HTTP = re.compile(r"\A(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?))"
                   r":(?P<port>\d{1,5})\Z")
_LOOPBACK_NAMES = ("localhost",)


def parse_http(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[IPv6]:PORT`` too; port 0 picks a free one) as ``(host, port)``."""
    m = _HTTP.match(text or "")
    if m is None:
        raise UserError(f"--http {text!r}: expected HOST:PORT, e.g. {DEFAULT_HTTP} (or [::1]:8570)")
    host, port = m.group("v6") or m.group("host"), int(m.group("port"))
    if m.group("v6"):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UserError(f"--http {text!r}: {host} is not an IPv6 address") from None
    if port > 65535:
        raise UserError(f"--http {text!r}: port {port} is not in 0-65535")
    return host, port


def is_loopback_host(host: str) -> bool:
    """Whether only this machine reaches ``host``: a loopback address, ``localhost``, or a name that
    resolves only to loopback addresses (Debian maps the machine's own name to 127.0.1.1)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def _normal_name(name: str) -> str:
    return name.lower().rstrip(".")


class HostCheck:
    """Which ``Host`` headers this server answers (module doc)."""

    def __init__(self, bound_host: str, allow_hosts=()):
        self.loopback = is_loopback_host(bound_host)
        self.names = {"localhost", _normal_name(socket.gethostname()), _normal_name(socket.getfqdn())}
        self.names.update(_normal_name(h) for h in allow_hosts)
        try:
            ipaddress.ip_address(bound_host)
        except ValueError:
            self.names.add(_normal_name(bound_host))

    def __call__(self, host_header: str) -> bool:
        name = _normal_name(_host_name(host_header))
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return name in self.names
        return address.is_loopback or not self.loopback


def _host_name(host_header: str) -> str:
    """The name in a ``Host`` header (``127.0.0.1:8570``, ``[::1]:8570``, ``localhost``)."""
    if host_header.startswith("["):
        return host_header[1:host_header.find("]")] if "]" in host_header else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def _load_static() -> dict[str, bytes]:
    folder = resources.files("arraydaemon.web").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in STATIC}


def build_app(feed: Feed, hosts: HostCheck, allow_origins=()) -> web.Application:
    """The aiohttp application serving the page and ``feed``: it answers requests whose ``Host``
    ``hosts`` accepts, and WebSockets from this server's own pages or ``allow_origins``."""
    origins = {o.rstrip("/").lower() for o in allow_origins}
    files = _load_static()
    sockets: set[web.WebSocketResponse] = set()

    @web.middleware
    async def guard(request: web.Request, handler):
        try:
            host = request.host
        except ValueError:
            return web.Response(status=400, text="malformed Host header\n")
        if not hosts(host or ""):
            return web.Response(status=421, text="this server does not answer to that host name "
                                "(arraydaemon web --allow-host NAME adds one)\n")
        response = await handler(request)
        response.headers.update(HEADERS)
        return response

    def static(name: str):
        async def handler(request: web.Request) -> web.Response:
            return web.Response(body=files[name], content_type=STATIC[name], charset="utf-8")
        return handler

    async def favicon(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def status(request: web.Request) -> web.Response:
        body = {**feed.status(), "clients": [{"sent": c.sent, "dropped": c.dropped, "queued": len(c.queue)}
                                             for c in feed.clients], "inbox_dropped": feed.inbox_dropped,
                "unencodable": feed.unencodable}
        return web.json_response(body)

    async def socket(request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin.rstrip("/").lower() not in origins:
            try:
                same = URL(origin).raw_authority == request.host
            except (ValueError, TypeError):
                return web.Response(status=400, text="malformed Origin header\n")
            if not same:
                return web.Response(status=403, text="cross-origin WebSocket refused\n")
        if len(feed.clients) >= MAX_CLIENTS:
            return web.Response(status=503, text=f"at most {MAX_CLIENTS} viewers\n")
        ws = web.WebSocketResponse(heartbeat=10.0, compress=False, max_msg_size=4096, writer_limit=16384)
        await ws.prepare(request)
        client = feed.connect()
        client.put(json.dumps(feed.status(client), separators=(",", ":")))
        sockets.add(ws)
        pump = asyncio.create_task(client.pump(ws.send_str))
        try:
            async for msg in ws:  # the page sends nothing; this waits for the close
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            feed.disconnect(client)
            sockets.discard(ws)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        return ws

    async def close_sockets(app: web.Application) -> None:
        for ws in list(sockets):  # "going away": the page reconnects to the next server
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping"), 1.0)

    app = web.Application(middlewares=[guard])
    app.router.add_get("/", static("index.html"))
    for name in STATIC:
        if name != "index.html":
            app.router.add_get(f"/{name}", static(name))
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/status", status)
    app.router.add_get("/ws", socket)
    app.on_shutdown.append(close_sockets)
    return app


async def _status_loop(feed: Feed) -> None:
    while True:
        await asyncio.sleep(STATUS_PERIOD_S)
        for client in list(feed.clients):
            client.put(json.dumps(feed.status(client), separators=(",", ":")))


async def _serve(endpoint: str, host: str, port: int, out, allow_hosts=(), allow_origins=(), room=None) -> int:
    loop = asyncio.get_running_loop()
    feed = Feed(endpoint, loop) if room is None else FusionFeed(room, loop)
    hosts = HostCheck(host, allow_hosts)
    loopback = hosts.loopback
    runner = web.AppRunner(build_app(feed, hosts, allow_origins), access_log=None, handle_signals=False,
                           shutdown_timeout=1.0)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            raise UserError(f"--http {host}:{port}: cannot listen ({exc.strerror or exc})") from None
        bound = runner.addresses[0][1] if runner.addresses else port
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{bound}/"
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        feed.start()
        source = f"subscribed to {endpoint}" if room is None else \
            f"fusing room '{room.name}': " + ", ".join(f"{a.name} at {a.endpoint}" for a in room.arrays)
        print(f"arraydaemon web: serving {url} ({source})", file=out, flush=True)
        if not loopback:
            print(f"arraydaemon web: warning: serving on {url}, beyond loopback: anyone who can reach this host "
                  f"can watch the scene (use --http 127.0.0.1:PORT to keep it local)", file=out, flush=True)
        status = asyncio.create_task(_status_loop(feed))
        await stop.wait()
        status.cancel()
        return 0
    finally:
        await runner.cleanup()
        feed.close()


def serve(endpoint: str, http: str, out=sys.stderr, allow_hosts=(), allow_origins=(), room_path=None) -> int:
    """Subscribe to ``endpoint`` (a daemon's or ``arraydaemon fuse``'s) and serve the live view on
    ``http`` (``HOST:PORT``) until SIGINT or SIGTERM; prints the URL (port 0: the one chosen) on
    ``out`` once serving. ``room_path``: a room file instead: the server fuses its arrays itself."""
    host, port = parse_http(http)
    room = None
    if room_path is not None:
        from arraydaemon.fusion.room import load_room  # numpy: only in this mode

        room = load_room(room_path)
    return asyncio.run(_serve(endpoint, host, port, out, allow_hosts, allow_origins, room))

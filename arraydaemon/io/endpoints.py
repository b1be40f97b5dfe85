"""ZeroMQ endpoints as users type them: parsed, checked, and judged for exposure.

``tcp://HOST:PORT`` (HOST an IPv4 address, ``[IPv6]``, a host or interface name, or ``*`` for every
interface when binding; PORT 1-65535, or ``*``/``0`` for a free port when binding) or
``ipc://PATH``. Light: standard library only.
"""

from __future__ import annotations

import ipaddress
import re

from arraydaemon.core.errors import UserError

_TCP = re.compile(r"\Atcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/\[\]\s]+):(?P<port>\*|\d{1,5})\Z")
_NAME = re.compile(r"\A[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?\Z")


def check_endpoint(endpoint, for_bind: bool = True) -> str:
    """``endpoint`` if ZeroMQ can bind (or, with ``for_bind`` False, connect) it as given; else a
    UserError saying what is wrong, in one line."""
    if not isinstance(endpoint, str) or "://" not in endpoint:
        raise UserError(f"endpoint {endpoint!r}: expected tcp://HOST:PORT or ipc://PATH")
    if endpoint.startswith("ipc://"):
        if len(endpoint) == len("ipc://") or "\0" in endpoint or len(endpoint) > 107:
            raise UserError(f"endpoint {endpoint!r}: expected ipc:// followed by a socket path (at most 100 characters)")
        return endpoint
    m = _TCP.match(endpoint)
    if m is None:
        raise UserError(f"endpoint {endpoint!r}: expected tcp://HOST:PORT or ipc://PATH")
    host, port = m.group("host"), m.group("port")
    if port == "*" or int(port) == 0:
        if not for_bind:
            raise UserError(f"endpoint {endpoint!r}: a subscriber needs the publisher's port number")
    elif not 1 <= int(port) <= 65535:
        raise UserError(f"endpoint {endpoint!r}: port {int(port)} is not in 1-65535")
    if host == "*":
        if not for_bind:
            raise UserError(f"endpoint {endpoint!r}: a subscriber needs the publisher's host, not '*'")
        return endpoint
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise UserError(f"endpoint {endpoint!r}: {host} is not an IPv6 address") from None
    elif not _NAME.match(host):
        raise UserError(f"endpoint {endpoint!r}: {host!r} is not an address, host or interface name")
    return endpoint


def is_loopback(endpoint: str) -> bool:
    """Whether only this machine can reach ``endpoint``: ipc, or tcp on a loopback address or
    ``localhost``. Anything else (``*``, ``0.0.0.0``, an interface, a host name) is exposed."""
    if endpoint.startswith("ipc://"):
        return True
    m = _TCP.match(endpoint)
    if m is None:
        return False
    host = m.group("host").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

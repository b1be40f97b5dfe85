"""The publishing socket's front door: subscribers connect here, never to libzmq's PUB socket itself.

libzmq's PUB socket keeps every subscription a peer sends, distinct ones in a trie with no bound
(a million 16-byte subscriptions cost it ~430 MB and can abort the process), and reads any frame a
peer announces. A :class:`SubscriptionGuard` listens on the public endpoint (TCP or a Unix socket)
and relays each connection, byte for byte, to the PUB socket bound on a private Unix socket; on the
way in it reads the subscriber's side of ZMTP 3 (the 64-byte greeting, then frames) and passes only

- the greeting, with the NULL mechanism (the only one the publisher offers);
- ``READY``, ``PING``, ``PONG`` and ``ERROR`` commands;
- subscriptions and cancellations (ZMTP 3.0 messages ``\\x01topic``/``\\x00topic`` or 3.1
  ``SUBSCRIBE``/``CANCEL`` commands) whose topic is a prefix of a published topic (``""`` is) — any
  other could never match a message, so dropping it changes nothing for the subscriber;

and closes a connection that sends a frame longer than :data:`MAX_FRAME` (subscribers send short
frames only), more than :data:`MAX_SUBSCRIPTIONS` subscription changes, anything after a bad greeting,
or no greeting within :data:`GREETING_S`. At most :data:`MAX_PEERS` connections are relayed at once;
a subscriber that does not read is given at most :data:`MAX_BACKLOG` bytes, then the relay stops
reading the PUB side for it (the PUB socket's high-water mark drops its messages, as for any slow
subscriber). So whatever connects, the guard and the PUB socket hold a bounded amount of memory.

Everything runs in one thread over non-blocking sockets (``selectors``); nothing here blocks the
pipeline, which only ever talks to its PUB socket.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import logging
import os
import re
import selectors
import socket
import stat
import struct
import threading
import time

from arraydaemon.core.errors import UserError

log = logging.getLogger("arraydaemon.guard")

MAX_PEERS = 64
MAX_FRAME = 255  # a short ZMTP frame: subscriptions, READY with its few properties, PING
MAX_SUBSCRIPTIONS = 256  # subscription changes per connection (a subscriber makes a handful)
MAX_BACKLOG = 256 << 10  # bytes queued towards a subscriber before the relay stops reading for it
GREETING = 64
GREETING_S = 5.0
_CHUNK = 64 << 10
_COMMANDS = {b"READY", b"PING", b"PONG", b"ERROR"}
_TCP = re.compile(r"\Atcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/\[\]\s]+):(?P<port>\*|\d{1,5})\Z")


def topic_prefixes(topics) -> frozenset[bytes]:
    """Every prefix of every topic, ``b""`` included: the subscriptions that can match a message."""
    return frozenset(t.encode()[:i] for t in topics for i in range(len(t.encode()) + 1))


class UpstreamFilter:
    """The subscriber's side of one ZMTP 3 connection, parsed as it arrives: :meth:`feed` returns the
    bytes to pass on to the publisher, or raises :class:`ValueError` (one line) when the peer must be
    disconnected. Holds at most one frame (:data:`MAX_FRAME` + 2 bytes) of unparsed input."""

    def __init__(self, allowed: frozenset[bytes]):
        self.allowed = allowed
        self._buffer = b""
        self.greeted = False
        self._passed = 0  # greeting bytes passed on
        self.subscriptions = 0  # subscription changes passed on
        self.dropped = 0  # frames not passed on: subscriptions no message could match, non-subscriptions

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = []
        if not self.greeted:
            # The greeting is relayed as it comes: libzmq sends its first 11 bytes, then waits for
            # the other side's before the rest.
            head = self._buffer[:GREETING]
            if len(head) >= 11 and (head[0] != 0xFF or head[9] != 0x7F or head[10] < 3):
                raise ValueError("not a ZMTP 3 greeting")
            if len(head) >= 32 and head[12:32].rstrip(b"\0") != b"NULL":
                raise ValueError(f"security mechanism {head[12:32].rstrip(bytes(1))!r} (the publisher offers NULL)")
            out.append(head[self._passed:])
            self._passed = len(head)
            if len(head) < GREETING:
                return b"".join(out)
            self._buffer = self._buffer[GREETING:]
            self.greeted = True
        while len(self._buffer) >= 2:
            flags, size = self._buffer[0], self._buffer[1]
            if flags & 0x02:
                raise ValueError("a long frame (a subscriber sends only short ones)")
            if flags & ~0x07:
                raise ValueError(f"frame flags {flags:#04x}")
            if len(self._buffer) < 2 + size:
                break
            frame, body = self._buffer[:2 + size], self._buffer[2:2 + size]
            self._buffer = self._buffer[2 + size:]
            if self._keep(flags, body):
                out.append(frame)
        return b"".join(out)

    def _keep(self, flags: int, body: bytes) -> bool:
        if flags & 0x04:  # a command: name length, name, data
            name = body[1:1 + body[0]] if body else b""
            if name in _COMMANDS:
                return True
            if name in (b"SUBSCRIBE", b"CANCEL"):
                return self._subscription(body[1 + len(name):])
            raise ValueError(f"command {name[:16]!r}")
        if flags & 0x01:
            raise ValueError("a multipart message (a subscriber sends subscriptions only)")
        if not body or body[0] not in (0, 1):
            self.dropped += 1  # a message that is not a subscription: nothing reads it
            return False
        return self._subscription(body[1:])

    def _subscription(self, topic: bytes) -> bool:
        self.subscriptions += 1
        if self.subscriptions > MAX_SUBSCRIPTIONS:
            raise ValueError(f"more than {MAX_SUBSCRIPTIONS} subscription changes")
        if topic in self.allowed:
            return True
        self.dropped += 1
        return False


def _interface_address(name: str) -> str | None:
    """The IPv4 address of network interface ``name`` (``eth0``), as ZeroMQ accepts it, or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))  # SIOCGIFADDR
        return socket.inet_ntoa(packed[20:24])
    except OSError:
        return None


def listen(endpoint: str) -> tuple[socket.socket, str]:
    """A listening socket for a checked ``endpoint`` (see :mod:`arraydaemon.io.endpoints`) and the
    endpoint as bound (a free port filled in); UserError when it cannot be bound."""
    try:
        if endpoint.startswith("ipc://"):
            return _listen_unix(endpoint[len("ipc://"):]), endpoint
        m = _TCP.match(endpoint)
        host, port = m.group("host"), m.group("port")
        port_number = 0 if port == "*" else int(port)
        if host.startswith("["):
            family, address = socket.AF_INET6, host[1:-1]
        elif host == "*":
            family, address = socket.AF_INET, "0.0.0.0"
        else:
            try:
                family, address = socket.AF_INET, str(ipaddress.IPv4Address(host))
            except ValueError:
                address = _interface_address(host)
                if address is None:
                    infos = socket.getaddrinfo(host, port_number, socket.AF_INET, socket.SOCK_STREAM)
                    address = infos[0][4][0]
                family = socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port_number))
            sock.listen(64)
        except OSError:
            sock.close()
            raise
        bound = sock.getsockname()[1]
        shown = f"[{address}]" if family == socket.AF_INET6 else address
        return sock, f"tcp://{shown}:{bound}"
    except (OSError, socket.gaierror) as exc:
        raise UserError(f"cannot bind {endpoint}: {exc.strerror or exc}") from None


def _listen_unix(path: str) -> socket.socket:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None:
        if not stat.S_ISSOCK(info.st_mode):
            raise OSError(errno.EEXIST, f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
            raise OSError(errno.EADDRINUSE, "Address already in use")
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)  # left behind by a process that is gone
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(64)
    except OSError:
        sock.close()
        raise
    return sock


class _Peer:
    __slots__ = ("client", "upstream", "filter", "to_client", "to_upstream", "since", "name", "alive",
                 "upstream_events")

    def __init__(self, client: socket.socket, upstream: socket.socket, allowed: frozenset[bytes], name: str):
        self.client, self.upstream = client, upstream
        self.filter = UpstreamFilter(allowed)
        self.to_client = bytearray()
        self.to_upstream = bytearray()
        self.since = time.monotonic()
        self.name = name
        self.alive = True
        self.upstream_events = selectors.EVENT_READ


class SubscriptionGuard:
    """Relays subscribers from ``listener`` to the PUB socket at the Unix socket ``private_path``,
    filtering what they send (module doc). :meth:`close` stops the thread and every connection."""

    def __init__(self, listener: socket.socket, private_path: str, topics):
        self.private_path = private_path
        self.allowed = topic_prefixes(topics)
        self.peers: dict[int, _Peer] = {}
        self.refused = 0  # connections closed for what they sent, or refused when full
        self._listener = listener
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._stopping = False
        self._finishing = 0.0  # once set: the monotonic time by which the last bytes must be relayed
        self._thread = threading.Thread(target=self._run, name="publisher-guard", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the relay thread

    def _run(self) -> None:
        while not self._stopping:
            if self._finishing and (not self.peers or time.monotonic() > self._finishing):
                break
            for key, events in self._selector.select(timeout=0.05 if self._finishing else 1.0):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    with contextlib.suppress(OSError, KeyError, ValueError):
                        self._wake_r.recv(64)
                else:
                    peer, side = key.data
                    if peer.alive:  # not dropped by an earlier event of this round
                        self._service(peer, side, events)
            now = time.monotonic()
            for peer in list(self.peers.values()):
                if not peer.filter.greeted and now - peer.since > GREETING_S:
                    self._drop(peer, "no ZMTP greeting", refused=True)
        for peer in list(self.peers.values()):
            self._drop(peer, None)
        self._selector.close()

    def _accept(self) -> None:
        for _ in range(16):
            try:
                client, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, say: try again on the next event
                log.warning("cannot accept a subscriber: %s", exc.strerror or exc)
                return
            name = _peer_name(address)
            if len(self.peers) >= MAX_PEERS:
                self.refused += 1
                if self.refused == 1 or self.refused % 100 == 0:
                    log.warning("refusing subscriber %s: %d connections already (%d refused so far)",
                                name, MAX_PEERS, self.refused)
                client.close()
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.private_path)
            except OSError as exc:
                log.warning("cannot relay subscriber %s: %s", name, exc.strerror or exc)
                upstream.close()
                client.close()
                continue
            client.setblocking(False)
            upstream.setblocking(False)
            if client.family in (socket.AF_INET, socket.AF_INET6):
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = _Peer(client, upstream, self.allowed, name)
            self.peers[id(peer)] = peer
            self._selector.register(client, selectors.EVENT_READ, (peer, "client"))
            self._selector.register(upstream, selectors.EVENT_READ, (peer, "upstream"))

    def _service(self, peer: _Peer, side: str, events: int) -> None:
        try:
            if side == "client":
                if events & selectors.EVENT_READ:
                    data = peer.client.recv(4096)
                    if not data:
                        return self._drop(peer, None)
                    try:
                        passed = peer.filter.feed(data)
                    except ValueError as exc:
                        return self._drop(peer, str(exc), refused=True)
                    peer.to_upstream += passed
                self._flush(peer.client, peer.to_client)
            else:
                if events & selectors.EVENT_READ and len(peer.to_client) < MAX_BACKLOG:
                    data = peer.upstream.recv(_CHUNK)
                    if not data:
                        return self._drop(peer, None)
                    peer.to_client += data
                self._flush(peer.client, peer.to_client)
            self._flush(peer.upstream, peer.to_upstream)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return self._drop(peer, None)
        self._rearm(peer)

    def _flush_blocking(self, peer: _Peer) -> None:
        """The last bytes towards a subscriber, waiting up to the close's deadline for it to read."""
        deadline = self._finishing or time.monotonic() + 0.2
        while peer.to_client and time.monotonic() < deadline:
            self._flush(peer.client, peer.to_client)
            if peer.to_client:
                time.sleep(0.005)

    @staticmethod
    def _flush(sock: socket.socket, buffer: bytearray) -> None:
        while buffer:
            try:
                sent = sock.send(buffer[:_CHUNK])
            except (BlockingIOError, InterruptedError):
                return
            del buffer[:sent]

    def _rearm(self, peer: _Peer) -> None:
        client_events = selectors.EVENT_READ | (selectors.EVENT_WRITE if peer.to_client else 0)
        self._selector.modify(peer.client, client_events, (peer, "client"))
        # A subscriber that does not read: its messages are not read from the PUB socket until it does.
        wanted = ((selectors.EVENT_READ if len(peer.to_client) < MAX_BACKLOG else 0)
                  | (selectors.EVENT_WRITE if peer.to_upstream else 0))
        if wanted != peer.upstream_events:
            if not wanted:
                self._selector.unregister(peer.upstream)
            elif not peer.upstream_events:
                self._selector.register(peer.upstream, wanted, (peer, "upstream"))
            else:
                self._selector.modify(peer.upstream, wanted, (peer, "upstream"))
            peer.upstream_events = wanted

    def _drop(self, peer: _Peer, reason: str | None, refused: bool = False) -> None:
        if not peer.alive:
            return
        peer.alive = False
        self.peers.pop(id(peer), None)
        if refused:
            self.refused += 1
            if self.refused == 1 or self.refused % 100 == 0:
                log.warning("disconnected subscriber %s: %s (%d so far)", peer.name, reason, self.refused)
        for sock in (peer.client, peer.upstream):
            with contextlib.suppress(OSError, KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()

    # ------------------------------------------------------------------ owner's side

    def close(self, flush_s: float = 0.0) -> None:
        """Stop relaying. With ``flush_s``, first wait up to that long for every connection to end
        from the publisher's side (its socket closed, what it sent last relayed)."""
        if flush_s > 0:
            self._finishing = time.monotonic() + flush_s
            with contextlib.suppress(OSError, KeyError, ValueError):
                self._wake_w.send(b"x")
            self._thread.join(flush_s + 0.5)
        self._stopping = True
        with contextlib.suppress(OSError, KeyError, ValueError):
            self._wake_w.send(b"x")
        self._thread.join(2.0)
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()


def _peer_name(address) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return "a local process"

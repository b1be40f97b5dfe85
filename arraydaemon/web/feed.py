"""ZeroMQ to browsers: one reader thread, a bounded queue per browser.

The reader thread owns the SUB socket (:class:`arraydaemon.io.subscriber.Subscriber`, so only valid
messages come through), turns each message into one JSON text and appends it to a bounded inbox;
it never waits for the event loop or for a browser. The event loop moves the inbox into every
connected browser's own bounded queue (:class:`Client`); a browser that reads too slowly loses its
oldest messages (counted in ``dropped``), never delaying the others or the reader.

What a browser receives: WebSocket text messages, each a JSON array of one or more messages (all
that were queued for it, so a window's ``doa`` and ``tracks`` usually travel together), each
message the wire payload as published (``arraydaemon/io/wire.py``) plus ``topic`` and ``web_time``
(UNIX time at which this process received it); byte strings become ``null``. Once a second this process adds a ``web`` message
about itself (:meth:`Feed.status`). A browser that connects first gets the latest ``array`` and
``health`` messages (of the last 2 s), so it can draw the array at once; from ``arraydaemon fuse``
(its endpoint) the ``positions`` and ``room`` topics come the same way, the latest ``room`` kept.

Given a room file instead of an endpoint (:class:`FusionFeed`), the reader thread runs the fusion
itself (:class:`arraydaemon.fusion.service.FuseService`, subscribed to every array of the room) and
its ``positions``, ``room`` and ``health`` messages go to the browsers as fuse would publish them.
That mode loads numpy (the fusion's); with an endpoint this module needs neither numpy nor numba.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
import time

from arraydaemon.io import wire
from arraydaemon.io.subscriber import Subscriber

TOPICS = ("doa", "tracks", "health", "array", "positions", "room")
KEEP = ("array", "health", "room")  # the latest of each goes to a browser when it connects...
KEEP_S = 2.0  # ...if it is this recent (the page says "no data" after 2 s without messages)
INBOX = 512  # messages between the reader thread and the event loop (about 20 s of a daemon's)
CLIENT_QUEUE = 64  # messages waiting for one browser (about 3 s); beyond, its oldest are dropped
READ_SLICE_S = 0.2  # the reader checks for a stop this often


def encode(topic: str, payload: dict, received: float) -> str:
    """The JSON text a browser gets for one wire message."""
    return json.dumps({**payload, "topic": topic, "web_time": received}, separators=(",", ":"),
                      allow_nan=False, default=lambda value: None)


class Client:
    """One connected browser: a bounded queue of JSON texts and the task that sends them."""

    def __init__(self, maxlen: int = CLIENT_QUEUE):
        self.queue: collections.deque[str] = collections.deque(maxlen=maxlen)
        self.ready = asyncio.Event()
        self.sent = 0
        self.dropped = 0

    def put(self, text: str) -> None:
        """Queue ``text``; when the queue is full its oldest message is dropped (and counted)."""
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1
        self.queue.append(text)
        self.ready.set()

    async def pump(self, send) -> None:
        """Send what is queued, as one JSON array per ``await send(text)``, until cancelled or the
        connection fails."""
        try:
            while True:
                await self.ready.wait()
                self.ready.clear()
                while self.queue:
                    batch = list(self.queue)
                    self.queue.clear()
                    await send("[" + ",".join(batch) + "]")
                    self.sent += len(batch)
        except (ConnectionError, RuntimeError):  # the browser went away mid-send
            return


class Feed:
    """The SUB socket on ``endpoint`` (opened here: a bad endpoint is a UserError) and the fan-out
    to :attr:`clients`, on the event loop ``loop``. :meth:`start` starts the reader thread."""

    def __init__(self, endpoint: str, loop: asyncio.AbstractEventLoop, client_queue: int = CLIENT_QUEUE,
                 inbox: int = INBOX):
        self.subscriber = Subscriber(endpoint, TOPICS)
        self._setup(endpoint, loop, client_queue, inbox)

    def _setup(self, endpoint: str, loop: asyncio.AbstractEventLoop, client_queue: int, inbox: int) -> None:
        self.endpoint = endpoint
        self.client_queue = client_queue
        self.clients: set[Client] = set()
        self.latest: dict[str, tuple[float, str]] = {}  # topic -> (received, text)
        self.received = 0  # valid messages read
        self.unencodable = 0
        self.inbox_dropped = 0  # the event loop fell behind the reader (should stay 0)
        self.last_message = 0.0  # UNIX time of the last valid message
        self._loop = loop
        self._inbox: collections.deque[tuple[str, str, float]] = collections.deque(maxlen=inbox)
        self._scheduled = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._read, name="zmq-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            messages = self.subscriber.receive(time.monotonic() + READ_SLICE_S)
            if messages and not self._push(messages):
                return

    @property
    def rejected(self) -> int:
        return self.subscriber.rejected

    @property
    def last_error(self) -> str:
        return self.subscriber.last_error

    def _push(self, messages) -> bool:
        """Queue ``messages`` ((topic, payload) pairs) for the event loop; False once it is closed."""
        if messages:
            now = time.time()
            for topic, payload in messages:
                try:
                    text = encode(topic, payload, now)
                except (TypeError, ValueError):
                    self.unencodable += 1
                    continue
                if len(self._inbox) == self._inbox.maxlen:
                    self.inbox_dropped += 1
                self._inbox.append((topic, text, now))
            self.received += len(messages)
            self.last_message = now
            if not self._scheduled:  # one wake-up at a time; _fan_out clears the flag before draining
                self._scheduled = True
                try:
                    self._loop.call_soon_threadsafe(self._fan_out)
                except RuntimeError:  # the loop is closed: we are shutting down
                    return False
        return True

    def _fan_out(self) -> None:
        self._scheduled = False
        while self._inbox:
            topic, text, received = self._inbox.popleft()
            if topic in KEEP:
                self.latest[topic] = (received, text)
            for client in self.clients:
                client.put(text)

    def connect(self) -> Client:
        """A new browser: its queue starts with the latest ``array`` and ``health`` messages (if
        recent)."""
        client = Client(self.client_queue)
        now = time.time()
        for topic in KEEP:
            received, text = self.latest.get(topic, (0.0, ""))
            if now - received < KEEP_S:
                client.put(text)
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        self.clients.discard(client)

    def status(self, client: Client | None = None) -> dict:
        """This process's view of the feed (the ``web`` message; ``dropped`` is ``client``'s)."""
        now = time.time()
        return {"topic": "web", "web_time": now, "endpoint": self.endpoint, "received": self.received,
                "rejected": self.rejected, "last_error": self.last_error[:200],
                "since_last_s": (now - self.last_message) if self.last_message else None,
                "clients": len(self.clients), "dropped": client.dropped if client is not None else None,
                "queued": len(client.queue) if client is not None else None}

    def close(self) -> None:
        """Stop the reader (it notices within READ_SLICE_S) and close the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            if self._thread.is_alive():
                return  # a ZeroMQ socket is not for two threads: leave it to process exit
        self.subscriber.close()


class _LocalPublisher:
    """What :class:`~arraydaemon.fusion.service.FuseService` publishes, handed to the feed (checked
    like a ZeroMQ publisher's messages)."""

    exposed = False
    dropped = 0

    def __init__(self, feed: FusionFeed):
        self.feed = feed

    def send(self, topic: str, payload: dict) -> bool:
        wire.validate(topic, payload)
        return self.feed._push([(topic, payload)])


class FusionFeed(Feed):
    """:class:`Feed` from a room file: the reader thread fuses the room's arrays itself (module doc).
    ``room``: a loaded :class:`arraydaemon.fusion.room.Room`."""

    def __init__(self, room, loop: asyncio.AbstractEventLoop, client_queue: int = CLIENT_QUEUE, inbox: int = INBOX):
        from arraydaemon.fusion.service import FuseService

        self.service = FuseService(room, _LocalPublisher(self), notify=self._note)
        self.notes: collections.deque[str] = collections.deque(maxlen=8)
        self.subscriber = None
        self._setup(f"room {room.name} (fusing " + ", ".join(a.endpoint for a in room.arrays) + ")", loop,
                    client_queue, inbox)

    def _note(self, text: str) -> None:
        self.notes.append(text)

    def _read(self) -> None:
        self.service.run()

    @property
    def rejected(self) -> int:
        return sum(link.sub.rejected for link in self.service.links)

    @property
    def last_error(self) -> str:
        errors = [link.sub.last_error for link in self.service.links if link.sub.last_error]
        return errors[-1] if errors else (self.notes[-1] if self.notes else "")

    def close(self) -> None:
        self.service.stop()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            if self._thread.is_alive():
                return
        self.service.close()

"""``arraydaemon fuse``: subscribes to every array's daemon, fuses, publishes ``positions``.

One :class:`~arraydaemon.io.subscriber.Subscriber` per array of the room file (its ``tracks`` and
``health``). An array is ``up`` while its messages arrive, ``down`` after :data:`DOWN_AFTER_S`
without one (or at once when its daemon says ``stopping``), ``waiting`` before its first; ZeroMQ
reconnects on its own, so an array that comes back is fused again from its next message. Losing
arrays degrades the map (fewer crossings, more bearings-only entries), never stops it: with every
array down, ``positions`` still go out once a second with the array states. An array that lags the
others (in capture time) by more than :data:`LAG_LIMIT_S`, or that has sent nothing for
:data:`WAIT_SILENCE_S` while it is still up, is not waited for: a daemon that is behind but sending
(one of several sharing a busy machine, or catching up after its start) is waited for, since
fusing without it loses its windows for good; one that stopped sending holds nothing back for
long.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Callable

from arraydaemon.fusion.fuser import Fuser, bearing_entries, position_entries
from arraydaemon.fusion.room import Room
from arraydaemon.io import wire
from arraydaemon.io.subscriber import Subscriber
from arraydaemon.service.health import CpuMeter

log = logging.getLogger("arraydaemon.fuse")

DOWN_AFTER_S = 2.0
UNREACHABLE_NOTE_S = 3.0
LAG_LIMIT_S = 1.5  # beyond the room's max_skew_s
WAIT_SILENCE_S = 0.5  # an up array that has sent nothing for this long is not waited for
IDLE_PUBLISH_S = 1.0
HEALTH_PERIOD_S = 1.0


class ArrayLink:
    """One array's subscription and its state."""

    def __init__(self, name: str, endpoint: str):
        self.name, self.endpoint = name, endpoint
        self.sub = Subscriber(endpoint, ["tracks", "health"])
        self.last_seen: float | None = None  # monotonic
        self.stopped = False  # its daemon said "stopping"
        self.noted = False
        self.was_up = False

    def state(self, now: float) -> str:
        if self.last_seen is None:
            return "waiting"
        if self.stopped or now - self.last_seen > DOWN_AFTER_S:
            return "down"
        return "up"


def room_entries(room: Room) -> tuple[list[float], list[dict], list[dict]]:
    """The ``room`` topic's ``size``, ``arrays`` and ``landmarks`` (``wire.ROOM_ARRAY_FIELDS``,
    ``wire.LANDMARK_FIELDS``) of ``room``."""
    size = [] if room.size is None else [float(v) for v in room.size]
    arrays = [{"name": a.name, "profile": a.profile_name, "kind": a.kind, "ambiguity": a.ambiguity,
               "position": [float(v) for v in a.position], "yaw_deg": float(a.yaw_deg),
               "pitch_deg": float(a.pitch_deg), "roll_deg": float(a.roll_deg), "endpoint": a.endpoint}
              for a in room.arrays]
    landmarks = [{"name": m.name, "position": [float(v) for v in m.position]} for m in room.landmarks]
    return size, arrays, landmarks


class FuseService:
    """The loop; ``run(seconds=None)`` until ``stop()`` (or SIGINT/SIGTERM from the command line)."""

    def __init__(self, room: Room, publisher, notify: Callable[[str], None] | None = None):
        self.room, self.publisher = room, publisher
        self.notify = notify or (lambda text: log.warning("%s", text))
        self.fuser = Fuser(room)
        self.room_entries = room_entries(room)
        self.links = [ArrayLink(a.name, a.endpoint) for a in room.arrays]
        self.started = time.monotonic()
        self.wall0 = time.time()
        self.seq = 0
        self.health_seq = 0
        self.cpu = CpuMeter()
        self.fuse_ms: list[float] = []
        self.running = True
        self.published = 0

    def stop(self, *_args) -> None:
        self.running = False

    def _receive(self, now: float) -> None:
        import zmq

        poller = zmq.Poller()
        for link in self.links:
            poller.register(link.sub.socket, zmq.POLLIN)
        ready = dict(poller.poll(50))
        for link in self.links:
            if link.sub.socket not in ready:
                continue
            for topic, payload in link.sub.receive(time.monotonic() + 0.002, limit=200):
                link.last_seen = time.monotonic()
                if topic == "health":
                    link.stopped = payload["state"] == "stopping"
                    continue
                link.stopped = False
                self.fuser.add(link.name, payload)

    def _states(self, now: float) -> None:
        for link in self.links:
            state = link.state(now)
            if state == "up" and not link.was_up:
                self.notify(f"array '{link.name}' ({link.endpoint}) is up")
            elif state == "down" and link.was_up:
                why = "its daemon stopped" if link.stopped else f"nothing for {DOWN_AFTER_S:g} s"
                self.notify(f"array '{link.name}' ({link.endpoint}) is down ({why}); fusing without it")
            link.was_up = state == "up"
            if state == "waiting" and not link.noted and now - self.started > UNREACHABLE_NOTE_S:
                link.noted = True
                self.notify(f"array '{link.name}': nothing received from {link.endpoint} in {UNREACHABLE_NOTE_S:g} s: "
                            f"{link.sub.connection_state()}; fusing without it until it comes")

    def _wait_set(self, now: float) -> list[str]:
        up = [link.name for link in self.links if link.state(now) == "up" and self.fuser.buffers[link.name]
              and now - link.last_seen <= WAIT_SILENCE_S]
        if not up:
            return up
        newest = max(self.fuser.buffers[n][-1]["wall_time"] for n in up)
        limit = self.room.max_skew_s + LAG_LIMIT_S
        return [n for n in up if newest - self.fuser.buffers[n][-1]["wall_time"] <= limit]

    def _publish(self, step, now: float) -> None:
        states = [{"name": link.name, "state": link.state(now), "endpoint": link.endpoint,
                   "silent_s": -1.0 if link.last_seen is None else float(now - link.last_seen)} for link in self.links]
        base = wire.common(self.seq, self.room.name, "room", step.t - self.wall0 if step.t > self.wall0 else 0.0, step.t)
        payload = wire.positions_payload(base, position_entries(step, None if self.room.size is None else float(self.room.size[2])), bearing_entries(step, self.room), states)
        self.seq += 1
        if self.publisher is not None and self.publisher.send("positions", payload):
            self.published += 1
        self.last_payload = payload

    def _health(self, now: float) -> None:
        states = [link.state(now) for link in self.links]
        state = "running" if all(s == "up" for s in states) else "waiting" if "up" not in states else "degraded"
        ms = sorted(self.fuse_ms[-200:]) or [0.0]
        payload = wire.health_payload(
            wire.common(self.health_seq, self.room.name, "room", now - self.started, time.time()),
            state=state, uptime_s=now - self.started, windows=self.fuser.fused, overflows=0,
            dropped_blocks=0 if self.publisher is None else self.publisher.dropped,
            bad_blocks=sum(link.sub.rejected for link in self.links), queue_depth=0,
            stage_ms={"fuse": {"p50": ms[len(ms) // 2], "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))]}},
            cpu_percent=cpu if math.isfinite(cpu := float(self.cpu.percent())) else 0.0,
            exposed=bool(getattr(self.publisher, "exposed", False)))
        if self.publisher is not None:
            self.publisher.send("health", payload)
            # the room's layout, for views and for reason's places (the arrays' poses, the landmarks)
            base = wire.common(self.health_seq, self.room.name, "room", now - self.started, time.time())
            self.publisher.send("room", wire.room_payload(base, *self.room_entries))
        self.health_seq += 1

    def run(self, seconds: float | None = None) -> None:
        end = math.inf if seconds is None else time.monotonic() + seconds
        next_health = next_idle = time.monotonic()
        while self.running and time.monotonic() < end:
            self._receive(time.monotonic())
            now = time.monotonic()
            self._states(now)
            wait = self._wait_set(now)
            steps = []
            if wait:
                t0 = time.perf_counter()
                steps = self.fuser.steps(wait)  # every window all of them reached, oldest first
                if steps:
                    ms = (time.perf_counter() - t0) * 1e3 / len(steps)
                    self.fuse_ms.extend([ms] * len(steps))
                    del self.fuse_ms[:-1000]
            elif now >= next_idle and not any(link.state(now) == "up" for link in self.links):
                steps = [self.fuser.advance(time.time())]  # only with no array up: a late one's windows still come
            for step in steps:
                self._publish(step, now)
                next_idle = now + IDLE_PUBLISH_S
            if now >= next_health:
                self._health(now)
                next_health = now + HEALTH_PERIOD_S

    def close(self) -> None:
        for link in self.links:
            link.sub.close()


def run_fuse(room: Room, publisher, seconds: float | None = None, notify=None) -> FuseService:
    """Runs the service until SIGINT/SIGTERM (or ``seconds``); returns it, closed."""
    service = FuseService(room, publisher, notify)
    previous = {sig: signal.signal(sig, service.stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        service.run(seconds)
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        service.close()
    return service

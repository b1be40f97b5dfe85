"""Publisher stage: Estimate → ZeroMQ PUB messages (``doa``, ``embedding``; ``health`` on demand).

Sends never block: with a slow or absent subscriber, ZeroMQ's high-water mark drops messages and
the drop is counted, so a subscriber can never stall capture.
"""

from __future__ import annotations

import zmq

from . import wire
from .errors import UserError
from .messages import Estimate, Tracks
from .profiles import ArrayProfile


def check_endpoint(endpoint: str) -> str:
    """Reject endpoints ZeroMQ cannot bind, with a one-line reason."""
    if not isinstance(endpoint, str) or "://" not in endpoint:
        raise UserError(f"endpoint {endpoint!r}: expected tcp://HOST:PORT or ipc://PATH")
    return endpoint


class ZmqPublisher:
    """A bound PUB socket. ``send`` drops (and counts) rather than blocks."""

    def __init__(self, endpoint: str, context: zmq.Context | None = None, high_water_mark: int = 1000):
        self.endpoint = check_endpoint(endpoint)
        self._context = context or zmq.Context.instance()
        self.socket = self._context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.SNDHWM, high_water_mark)
        self.socket.setsockopt(zmq.LINGER, 200)
        try:
            self.socket.bind(endpoint)
        except zmq.ZMQError as exc:
            self.socket.close(0)
            raise UserError(f"cannot bind {endpoint}: {exc.strerror}") from None
        self.bound_endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.sent = 0
        self.dropped = 0

    def send(self, topic: str, payload: dict) -> bool:
        frames = wire.encode(topic, payload)
        try:
            self.socket.send_multipart(frames, flags=zmq.NOBLOCK)
        except zmq.Again:
            self.dropped += 1
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        self.socket.close()


def tracks_payload(tracks: Tracks, profile: ArrayProfile) -> dict:
    """The window's ``tracks`` payload, built by the wire module."""
    base = wire.common(tracks.seq, profile.name, profile.frame_id, tracks.t_end, tracks.wall_time)
    entries = [wire.track_entry(t.id, t.azimuth_deg, t.elevation_deg, t.vector, t.activity, t.age_s, t.silent_s,
                                t.angular_speed_dps, t.azimuth_rate_dps, t.level_db) for t in tracks.tracks]
    return wire.tracks_payload(base, profile.geometry.ambiguity, entries)


def estimate_payloads(estimate: Estimate, profile: ArrayProfile, model_name: str | None = None) -> list[tuple[str, dict]]:
    """The (topic, payload) pairs of one window's estimate, built by the wire module."""
    base = wire.common(estimate.seq, profile.name, profile.frame_id, estimate.t_end, estimate.wall_time)
    sources = [wire.source_entry(s.azimuth_deg, s.elevation_deg, s.vector, s.confidence) for s in estimate.sources]
    out = [("doa", wire.doa_payload(base, estimate.estimator, estimate.level_db, profile.geometry.ambiguity, sources))]
    if estimate.embedding is not None:
        emb = estimate.embedding.astype("<f4", copy=False)
        model = model_name or estimate.extras.get("model", estimate.estimator)
        out.append(("embedding", wire.embedding_payload(base, model, "float32",
                                                        emb.shape, emb.tobytes())))
    return out


class PublishStage:
    """Stage: Estimate → published messages; returns the estimate unchanged."""

    name = "publish"

    def __init__(self, publisher: ZmqPublisher | None, profile: ArrayProfile):
        self.publisher = publisher
        self.profile = profile

    def reset(self) -> None:
        pass

    def process(self, estimate: Estimate, tracks: Tracks | None = None) -> list[tuple[str, dict]]:
        """Publishes ``doa`` (and ``embedding``) then, when given, ``tracks``; returns the pairs sent."""
        payloads = estimate_payloads(estimate, self.profile)
        if tracks is not None:
            payloads.append(("tracks", tracks_payload(tracks, self.profile)))
        if self.publisher is not None:
            for topic, payload in payloads:
                self.publisher.send(topic, payload)
        return payloads

"""Publish stage: Estimate (and Tracks) → wire payloads (``doa``, ``embedding``, ``tracks``), sent
on a :class:`arraydaemon.io.publisher.ZmqPublisher` when one is given (replay can run without)."""

from __future__ import annotations

from arraydaemon.core.grids import vector_to_azel
from arraydaemon.core.messages import Estimate, Tracks
from arraydaemon.core.profiles import ArrayProfile
from arraydaemon.io import wire
from arraydaemon.io.publisher import ZmqPublisher


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
    noise = [wire.noise_entry(*(float(a) for a in vector_to_azel(vector)), vector, origin)
             for vector, origin in estimate.extras.get("noise", ())]
    out = [("doa", wire.doa_payload(base, estimate.estimator, estimate.level_db, profile.geometry.ambiguity, sources,
                                    noise))]
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

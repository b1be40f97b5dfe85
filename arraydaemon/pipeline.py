"""The data path, wired in one place: source → features → localizer → (tracker) → publisher.

Stages do no I/O and know nothing of threads; :class:`Pipeline` times each one, and the runners
in ``service/replay.py`` (recordings) and ``service/daemon.py`` (live capture) drive it. Its options
(:class:`~arraydaemon.core.options.PipelineOptions`) are resolved in ``service/settings.py``.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from arraydaemon.core.feasibility import check_runnable
from arraydaemon.core.messages import AudioBlock, Estimate, Tracks
from arraydaemon.core.options import PipelineOptions
from arraydaemon.core.profiles import ArrayProfile
from arraydaemon.io.publisher import ZmqPublisher
from arraydaemon.localizers.base import make_localizer
from arraydaemon.noise.gate import NoiseGate
from arraydaemon.noise.model import load_noise_model
from arraydaemon.noise.whiten import NoiseWhitener
from arraydaemon.stages.features import FrameLayout, GccPhatFeatures
from arraydaemon.stages.publish import PublishStage
from arraydaemon.stages.tracker import Tracker


class StageTimer:
    """Recent per-stage processing times; p50/p99 in milliseconds."""

    def __init__(self, keep: int = 2000):
        self._times: dict[str, deque] = {}
        self._keep = keep

    def add(self, stage: str, seconds: float) -> None:
        self._times.setdefault(stage, deque(maxlen=self._keep)).append(seconds)

    def samples(self, stage: str) -> list[float]:
        """The recent processing times of ``stage`` in seconds, oldest first."""
        return list(self._times.get(stage, ()))

    def stages(self) -> list[str]:
        return list(self._times)

    def summary(self) -> dict[str, dict[str, float]]:
        out = {}
        for stage, values in self._times.items():
            arr = np.fromiter(values, dtype=np.float64) * 1e3
            out[stage] = {"p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99))}
        return out


@dataclass(frozen=True)
class WindowResult:
    estimate: Estimate
    payloads: list  # (topic, payload) pairs as published
    tracks: Tracks | None = None


class Pipeline:
    """Runs one AudioBlock through every stage; returns a WindowResult per completed window."""

    def __init__(self, profile: ArrayProfile, options: PipelineOptions = PipelineOptions(),
                 publisher: ZmqPublisher | None = None):
        check_runnable(profile, options)  # a UserError naming the setting, before anything is allocated
        self.profile = profile
        self.options = options
        layout = FrameLayout.from_config(options.features, profile.sample_rate)
        self.noise_model = load_noise_model(options.noise_model, profile, layout) if options.noise_model else None
        whitener = NoiseWhitener(self.noise_model.covariance, layout.band) if self.noise_model else None
        self.features = GccPhatFeatures(profile, options.features, whitener)
        localizer, tracker = options.localizer, options.tracker
        if whitener is not None:
            localizer = replace(localizer, min_confidence=localizer.noise_model_confidence,
                                min_prominence=localizer.noise_model_prominence)
        online_noise = whitener is None and options.noise_gate == "online"
        if online_noise:
            # A robot's own fan next to the array arrives as coherently as a talker in a dry room: the
            # room is not read from the first source (localizers/room.py), its gates stay the
            # reverberant room's (robot-test, online: reports on no talker after 2 s 16.1 -> 11.9 %)
            localizer = replace(localizer, dry_relative_threshold=localizer.relative_threshold)
            tracker = replace(tracker, dry_birth_hits=tracker.birth_hits)
        self.localizer = make_localizer(options.estimator, profile, self.features.layout, localizer,
                                        options.weights, whitener)
        # the robot's own noise is never a source (noise/gate.py); online, once the noise field finds it
        scan = getattr(self.localizer, "scan", None)
        field = self.features.noise_field if online_noise else None
        model = self.noise_model.covariance if self.noise_model and options.noise_gate != "off" else None
        self.noise_gate = NoiseGate(scan, options.localizer, model, field) \
            if scan is not None and (model is not None or field is not None) else None
        self.tracker = Tracker(profile.geometry, tracker, lead_s=options.features.window_s / 2)
        self.publish = PublishStage(publisher, profile)
        self.timer = StageTimer()
        self.windows = 0

    @property
    def layout(self):
        return self.features.layout

    def reset(self) -> None:
        for stage in (self.features, self.localizer, self.noise_gate, self.tracker, self.publish):
            if stage is not None:
                stage.reset()

    def process(self, block: AudioBlock) -> list[WindowResult]:
        t0 = time.perf_counter()
        windows = self.features.process(block)
        t1 = time.perf_counter()
        self.timer.add(self.features.name, t1 - t0)
        results = []
        for window in windows:
            t1 = time.perf_counter()
            estimate = self.localizer.process(window)
            if self.noise_gate is not None:
                estimate = self.noise_gate.process(estimate)
            t2 = time.perf_counter()
            tracks = self.tracker.process(estimate)
            t3 = time.perf_counter()
            payloads = self.publish.process(estimate, tracks)
            t4 = time.perf_counter()
            self.timer.add("localizer", t2 - t1)
            self.timer.add(self.tracker.name, t3 - t2)
            self.timer.add(self.publish.name, t4 - t3)
            self.windows += 1
            results.append(WindowResult(estimate, payloads, tracks))
        return results

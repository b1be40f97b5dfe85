"""Replaying a recording through the live pipeline, in real time or as fast as possible.

While publishing, a replay sends ``health`` (and ``array``) once a second like the daemon (state
``replay``, then ``stopping`` after the last window), so subscribers and views see the same topics
either way. Under :func:`stop_on_signals`, SIGINT, SIGTERM and SIGHUP end a replay the same way:
the windows done so far are kept, ``stopping`` is sent, and the caller closes (flushes) its outputs.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from arraydaemon.core.options import PipelineOptions
from arraydaemon.core.profiles import ArrayProfile
from arraydaemon.io.files import FileSource
from arraydaemon.io.publisher import ZmqPublisher
from arraydaemon.noise.state import restore_noise_state, save_noise_state
from arraydaemon.pipeline import Pipeline, WindowResult
from arraydaemon.service.health import HEALTH_PERIOD_S, HealthReporter, array_payload

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by a stop signal under :func:`stop_on_signals`: a KeyboardInterrupt,
    so nothing catches it by accident and the command line ends quietly wherever it arrives."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise :class:`Stopped` once (a second signal while stopping is
    ignored, so the outputs are closed whatever arrives); the previous handlers come back after."""
    raised = False

    def handler(signum, frame):
        nonlocal raised
        if not raised:
            raised = True
            raise Stopped(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass(frozen=True)
class ReplayResult:
    pipeline: Pipeline
    source: FileSource
    wall_s: float  # how long the replay took
    stopped_by: int | None = None  # the signal that ended it early, if one did


def replay_file(path: str | Path, profile: ArrayProfile, options: PipelineOptions, publisher: ZmqPublisher | None,
                realtime: bool, on_result: Callable[[WindowResult], None],
                notify: Callable[[str], None] | None = None, wall_start: float | None = None) -> ReplayResult:
    """Replays ``path`` through a new pipeline; ``on_result`` gets every window's result. With
    ``realtime``, blocks are paced like a live device's. ``wall_start``: the UNIX time of the file's
    first sample (default: now); a real-time replay waits for it, so replays of one room's arrays
    started apart stamp the same instant with the same ``wall_time``."""
    source = FileSource(path, profile, notify=notify)  # a bad file fails before the pipeline is built
    pipeline = Pipeline(profile, options, publisher)
    if options.noise_state and restore_noise_state(options.noise_state, pipeline) and notify is not None:
        notify(f"noise state restored from {options.noise_state}")
    source.block_size = pipeline.layout.hop_samples
    health = HealthReporter() if publisher is not None else None
    if wall_start is not None and realtime and wall_start > time.time():
        time.sleep(wall_start - time.time())
    start = next_health = time.monotonic()
    if wall_start is not None and realtime:
        start -= time.time() - wall_start  # pace against the given start, not this moment
    t_end = 0.0

    def send_health(state: str) -> None:
        payload = health.payload(
            profile, state=state, t_end=t_end, wall_time=time.time(), windows=pipeline.windows, overflows=0,
            dropped_blocks=0, bad_blocks=pipeline.features.bad_blocks, queue_depth=0,
            stage_ms=pipeline.timer.summary(), exposed=publisher.exposed)
        publisher.send("health", payload)
        publisher.send("array", array_payload(profile, options.estimator, payload))

    stopped_by = None
    try:
        for block in source.blocks(wall_start):
            t_end = block.t_start + len(block.samples) / block.sample_rate
            if realtime:
                delay = start + t_end - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            for result in pipeline.process(block):
                on_result(result)
            if health is not None and time.monotonic() >= next_health:
                send_health("replay")
                next_health = max(next_health + HEALTH_PERIOD_S, time.monotonic())
    except Stopped as stop:
        stopped_by = stop.signum
    if health is not None:
        send_health("stopping")
    if options.noise_state:
        save_noise_state(options.noise_state, pipeline)
    return ReplayResult(pipeline, source, time.monotonic() - start, stopped_by)

"""The ``health`` topic: one message a second from the daemon (and from a publishing replay), each
followed by an ``array`` message (the geometry, :func:`array_payload`).

:class:`HealthReporter` numbers the messages, measures CPU use between them and builds the payload
through the wire module; the caller says what state it is in and sends it.
"""

from __future__ import annotations

import math
import time

from arraydaemon.core.profiles import ArrayProfile
from arraydaemon.io import wire

HEALTH_PERIOD_S = 1.0


class CpuMeter:
    """CPU use since the last call, in percent of one core: this process plus, optionally, a child
    (anything with ``cpu_seconds()``, such as the capture process)."""

    def __init__(self):
        self._wall = time.monotonic()
        self._cpu = time.process_time()
        self._child = (None, 0.0)

    def percent(self, child=None) -> float:
        wall, cpu = time.monotonic(), time.process_time()
        used = cpu - self._cpu
        if child is not None:
            child_cpu = child.cpu_seconds()
            if self._child[0] is child:
                used += max(0.0, child_cpu - self._child[1])
            self._child = (child, child_cpu)
        elapsed = wall - self._wall
        self._wall, self._cpu = wall, cpu
        return 100.0 * used / elapsed if elapsed > 0 else 0.0


def array_payload(profile: ArrayProfile, estimator: str, health: dict) -> dict:
    """The ``array`` payload sent with the ``health`` payload ``health`` (same common fields): the mic
    positions and what the geometry cannot tell apart, for views that draw the array."""
    base = {k: health[k] for k in wire.COMMON_FIELDS}
    return wire.array_payload(base, profile.mics.tolist(), profile.geometry.kind, profile.geometry.ambiguity,
                              profile.sample_rate, estimator)


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


class HealthReporter:
    """Builds consecutive ``health`` payloads for one stream."""

    def __init__(self):
        self.started = time.monotonic()
        self.seq = 0
        self.cpu = CpuMeter()

    def payload(self, profile: ArrayProfile, *, state: str, t_end: float, wall_time: float, windows: int,
                overflows: int, dropped_blocks: int, bad_blocks: int, queue_depth: int, stage_ms: dict,
                exposed: bool, child=None) -> dict:
        """The next ``health`` payload; ``t_end`` and ``wall_time`` are now on the stream clock and
        in UNIX time, ``stage_ms`` the pipeline timer's summary; ``child``: a process whose CPU use
        counts too."""
        stage_ms = {k: {q: _finite(v) for q, v in d.items()} for k, d in stage_ms.items()}
        payload = wire.health_payload(
            wire.common(self.seq, profile.name, profile.frame_id, t_end, wall_time),
            state=state,
            uptime_s=time.monotonic() - self.started,
            windows=windows,
            overflows=overflows,
            dropped_blocks=dropped_blocks,
            bad_blocks=bad_blocks,
            queue_depth=queue_depth,
            stage_ms=stage_ms,
            cpu_percent=_finite(self.cpu.percent(child)),
            exposed=bool(exposed),
        )
        self.seq += 1
        return payload

"""Stream-clock maths for live capture: PortAudio stream time → wall time, ADC-time de-jittering."""

from __future__ import annotations

import math


class ClockMap:
    """Stream time → wall time for one stream.

    Each callback gives a pair (stream ``currentTime``, wall clock read in the callback); the wall
    reading is late by the callback's scheduling delay, never early, so the offset estimate is the
    minimum of ``wall - stream`` over the last 5-10 s (two buckets: bounded memory, follows drift).
    """

    BUCKET_S = 5.0

    def __init__(self):
        self._prev = math.inf
        self._cur = math.inf
        self._bucket_start = None

    def observe(self, stream_time: float, wall: float) -> None:
        if self._bucket_start is None:
            self._bucket_start = stream_time
        elif stream_time - self._bucket_start >= self.BUCKET_S:
            self._prev, self._cur, self._bucket_start = self._cur, math.inf, stream_time
        self._cur = min(self._cur, wall - stream_time)

    @property
    def offset(self) -> float:
        """wall - stream, seconds (inf before the first observation)."""
        return min(self._prev, self._cur)

    def to_wall(self, stream_time: float) -> float:
        return stream_time + self.offset


class AdcSmoother:
    """Each block's ADC time, de-jittered: sample counting from the previous block, pulled gently
    (``GAIN`` per block) toward PortAudio's reading so that it follows clock drift; a reading more
    than ``SNAP_S`` off (lost samples, a restart) is taken as is.

    PortAudio's JACK timestamps come from ``jack_frame_time``, an estimate that jitters by a sample
    or so; window times should advance by exactly one hop.
    """

    GAIN = 0.02
    SNAP_S = 0.002

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self._next = None

    def __call__(self, adc_time: float, frames: int) -> float:
        if self._next is None or abs(adc_time - self._next) > self.SNAP_S:
            t = adc_time
        else:
            t = self._next + self.GAIN * (adc_time - self._next)
        self._next = t + frames / self.sample_rate
        return t

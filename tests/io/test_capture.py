"""Live capture's parts that need no device (io/capture/): the block queue between the capture
process and the pipeline, the stream-to-wall clock map and the ADC-time smoother. Capture from a
real (JACK) device: tests/integration/test_live.py."""

from __future__ import annotations

import math
import threading
import time

import numpy as np

from arraydaemon.io.capture.clock import AdcSmoother, ClockMap
from arraydaemon.io.capture.parent import BlockQueue, CapturedBlock

RATE = 16000
PERIOD = 256

def _block(frames: int, generation: int = 1) -> CapturedBlock:
    return CapturedBlock(generation, np.zeros((frames, 2), np.float32), 0.0, 0.0, 0.0, False, 0)


def test_block_queue_drops_the_oldest_when_full():
    q = BlockQueue(max_frames=1000)
    blocks = [_block(256) for _ in range(6)]
    for b in blocks:
        q.put(b)
    assert q.dropped == 3 and len(q) == 3  # 3 x 256 fits; the three oldest went
    got = q.get_all(0.0)
    assert [id(b) for b in got] == [id(b) for b in blocks[3:]]
    assert q.get_all(0.01) == [] and len(q) == 0
    q.put(_block(256))
    assert q.dropped == 3 and len(q.get_all(0.0)) == 1


def test_block_queue_keeps_the_newest_without_a_consumer_and_wakes_one():
    q = BlockQueue(max_frames=256 * 4)
    for _ in range(10000):  # nobody consumes
        q.put(_block(256))
    assert q.dropped == 10000 - 4 and len(q) == 4
    # a consumer waiting on an empty queue wakes for the next put
    q.get_all(0.0)
    got = []
    consumer = threading.Thread(target=lambda: got.extend(q.get_all(5.0)))
    consumer.start()
    time.sleep(0.05)
    q.put(_block(10))
    consumer.join(5)
    assert len(got) == 1 and len(got[0].samples) == 10


def test_clock_map_takes_the_earliest_callback_and_follows_drift():
    clock = ClockMap()
    assert math.isinf(clock.offset)
    rng = np.random.default_rng(0)
    offset = 1.7e9
    for k in range(200):  # 256-frame callbacks at 16 kHz, each reading the wall clock 0-3 ms late
        t = k * 0.016
        clock.observe(t, t + offset + rng.uniform(0.0, 0.003))
    assert 0.0 <= clock.offset - offset < 2e-4
    assert abs(clock.to_wall(1.0) - (1.0 + offset)) < 2e-4
    # the stream clock drifts by +1 ms: after two buckets the old minimum is forgotten
    for k in range(200, 1000):
        t = k * 0.016
        clock.observe(t, t + offset - 0.001 + rng.uniform(0.0, 0.003))
    assert abs(clock.offset - (offset - 0.001)) < 2e-4


def test_adc_smoother_removes_timestamp_jitter_but_follows_drift_and_gaps():
    rng = np.random.default_rng(1)
    smooth = AdcSmoother(RATE)
    drift = 50e-6  # the device clock runs 50 ppm fast against PortAudio's clock
    k = np.arange(3000)
    true = 10.0 + k * PERIOD / RATE * (1 + drift)
    jitter = rng.integers(-1, 2, size=k.size) / RATE  # +-1 sample, as JACK's frame-time estimate
    out = np.array([smooth(t, PERIOD) for t in true + jitter])
    late = slice(1000, None)
    assert np.abs(out[late] - true[late]).max() < 1.0 / RATE  # lags the drift by drift * block / GAIN
    assert np.abs(np.diff(out[late]) - np.diff(true[late])).max() < 0.05 / RATE
    # 100 ms of samples lost: the next reading is taken as is
    assert smooth(true[-1] + 0.1 + PERIOD / RATE, PERIOD) == true[-1] + 0.1 + PERIOD / RATE

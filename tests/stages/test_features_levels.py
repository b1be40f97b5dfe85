"""Any finite input gives finite features and output: absurd sample values are clipped, not
propagated as Inf (they were: samples of 1e30 gave ``level_db: Infinity``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from arraydaemon.core.messages import AudioBlock
from arraydaemon.core.options import PipelineOptions
from arraydaemon.core.profiles import load_profile
from arraydaemon.pipeline import Pipeline


@pytest.mark.parametrize("estimator", ["srp-phat", "neural"])
@pytest.mark.parametrize("value", [1e30, -3.4e38, 1e6])
def test_huge_finite_samples_give_finite_messages(estimator, value):
    profile = load_profile("demo")
    pipeline = Pipeline(profile, PipelineOptions(estimator=estimator))
    audio = np.random.default_rng(0).standard_normal((16000, profile.num_mics)).astype(np.float32) * 0.1
    audio[4000:4400] = value
    results = []
    for start in range(0, len(audio), 1600):
        results += pipeline.process(AudioBlock(start // 1600, 16000, start / 16000, 0.0, audio[start:start + 1600]))
    assert results
    for r in results:
        for _, payload in r.payloads:
            stack = [payload]
            while stack:
                v = stack.pop()
                if isinstance(v, dict):
                    stack.extend(v.values())
                elif isinstance(v, list):
                    stack.extend(v)
                elif isinstance(v, float):
                    assert math.isfinite(v)

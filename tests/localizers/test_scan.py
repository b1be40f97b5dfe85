"""The SRP scan (localizers/scan.py): the lag-domain scan against the exact SRP-PHAT kernel."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from arraydaemon.core import kernels
from arraydaemon.core.messages import AudioBlock
from arraydaemon.core.options import PipelineOptions
from arraydaemon.core.profiles import load_profile
from arraydaemon.pipeline import Pipeline
from tests.helpers import CUBE, make_profile, plane_wave, ring


@pytest.mark.parametrize("name, mics", [("respeaker_6mic_hat", None), ("ps3_eye", None), ("cube", CUBE),
                                        ("ring_60cm", ring(8, 0.3))])  # the last one's lag table is by FFT
def test_lag_domain_scan_is_close_to_the_exact_srp(name, mics):
    profile = load_profile(name) if mics is None else make_profile(name, mics)
    pipeline = Pipeline(profile, PipelineOptions(estimator="srp-phat"))
    loc = pipeline.localizer
    assert (loc.scan.lag_steering is None) == (name == "ring_60cm")
    audio = plane_wave(profile.mics, profile.sample_rate, 33.0, 12.0, 0.3, np.random.default_rng(21), snr_db=5.0)
    window = pipeline.features.process(AudioBlock(0, profile.sample_rate, 0.0, 0.0, audio))[0]
    scanned = loc.scan.scan(loc.scan.lags(loc.scan.pair_sum(window.spectra))[1], grid_only=True)
    np.testing.assert_array_equal(scanned, loc.process(window).spectrum)
    gcc = kernels.gcc_phat(loc.scan.pair_sum(window.spectra))
    exact = kernels.srp_phat(gcc, loc.layout.band, loc.layout.bin_hz, loc.scan.pair_delays(loc.grid.vectors), None)
    assert exact.max() > 0.3  # a real peak, not noise
    assert np.max(np.abs(scanned - exact)) <= 0.03


@given(arrays(st.sampled_from([np.float32, np.float64]), st.integers(1, 400),
              elements=st.floats(-2.0, 2.0, allow_nan=False, width=32)))
def test_the_prominence_median_is_numpys_to_the_bit(values):
    from arraydaemon.localizers.scan import _median

    got, want = _median(values), np.median(values)
    assert got == want and type(got) is type(want)

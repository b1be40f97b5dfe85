"""Feature stage: the causal STFT of every mic and the window's in-band level.

AudioBlock → FeatureWindow, once per hop. Frames are Hann-windowed, ``n_fft`` ≈ 32 ms with 50 %
overlap; a window is the last ``window_frames`` frames (≈ 250 ms) and a new one is emitted every
``hop_frames`` frames (≤ 100 ms by default). The localizers form the mic pairs' cross-spectra from
the window's frames (``localizers/scan.py``), summed over the window before PHAT weighting, so
louder frames count more than near-silent ones, and over the bins that carry direct-path evidence
(``FeatureWindow.evidence``, ``evidence.py``): above the stationary noise floor, and not decaying.
A stationary directional noise (a fan, ``noise_field.py``) is learned from the cells at the floor;
where there is one, the tests run on the power it leaves, and the cells it dominates are not evidence.
With a noise model measured at installation (``noise/whiten.py``), all of this runs on the cells
whitened against the model's spatial covariance, so the robot's own noise, however loud, is flat.

All streaming state (unframed samples, the frame ring, the stream clock) lives in this object, so
feeding a signal in any block sizes gives exactly the windows of feeding it whole.
"""

from __future__ import annotations

import math

import numpy as np

from arraydaemon.core import kernels
from arraydaemon.core.messages import AudioBlock, FeatureWindow
from arraydaemon.core.options import FeatureConfig, FrameLayout  # noqa: F401 - FrameLayout: the layout of these frames
from arraydaemon.core.profiles import ArrayProfile
from arraydaemon.stages.evidence import EvidenceBins
from arraydaemon.stages.noise_field import StationaryNoiseField


def hann(n: int) -> np.ndarray:
    """Periodic Hann window ``[shape=(n,)]`` float64 (sums to a constant at 50 % overlap)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


MAX_SAMPLE = 1000.0  # 60 dB above full scale; larger input samples are clipped to it


class GccPhatFeatures:
    """Stage: AudioBlock → list of FeatureWindow (one per completed hop)."""

    name = "features"

    def __init__(self, profile: ArrayProfile, config: FeatureConfig = FeatureConfig(), whitener=None):
        self.profile = profile
        self.config = config
        self.whitener = whitener  # a noise.whiten.NoiseWhitener, or None
        self.layout = FrameLayout.from_config(config, profile.sample_rate)
        self.window = hann(self.layout.n_fft)
        self._power_scale = 2.0 / (self.layout.n_fft * float(np.sum(self.window**2)))
        frame_s = self.layout.frame_hop / profile.sample_rate
        self.evidence = EvidenceBins(self.layout.bins, frame_s, config.floor_s, config.floor_margin_db,
                                     config.rise_ratio)
        # The noise field learns from the first tests' floor; the tests run again on the power it leaves.
        self.noise_field = None
        if config.noise_field_s > 0.0 and config.floor_s > 0.0:
            self.noise_field = StationaryNoiseField(self.layout.bins, profile.num_mics, frame_s, config.noise_field_s,
                                                    config.noise_dominance, self.layout.band)
            self.residual_evidence = EvidenceBins(self.layout.bins, frame_s, config.floor_s, config.floor_margin_db,
                                                  config.rise_ratio)
        self.reset()

    def reset(self) -> None:
        lay, mics = self.layout, self.profile.num_mics
        self._pending = np.zeros((0, mics), dtype=np.float32)
        self._pending_index = 0  # stream sample index of _pending[0]
        self._spectra = np.zeros((lay.window_frames, mics, lay.bins), dtype=np.complex64)
        self._power = np.zeros(lay.window_frames, dtype=np.float64)
        self._evidence = np.ones((lay.window_frames, lay.bins), dtype=bool)
        self.evidence.reset()
        if self.noise_field is not None:
            self.noise_field.reset()
            self.residual_evidence.reset()
        self._bad = np.zeros(lay.window_frames, dtype=bool)
        self._bad_until = -1  # stream sample index (exclusive) up to which input was zeroed
        self._frames_total = 0
        self._clock = (0, 0.0, 0.0)  # (sample index, stream time, wall time) of the latest block
        self._seq = 0
        self.bad_blocks = 0

    def noise_state(self) -> dict[str, np.ndarray]:
        """What the evidence tests and the online noise field learned, as named arrays (what
        ``--noise-state`` keeps across restarts, ``noise/state.py``); empty without a noise field."""
        if self.noise_field is None:
            return {}
        parts = {"floor": self.evidence.state(), "field": self.noise_field.state(),
                 "residual": self.residual_evidence.state()}
        return {f"{part}__{name}": value for part, state in parts.items() for name, value in state.items()}

    def load_noise_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Takes back :meth:`noise_state`; ValueError (naming what) when it does not fit this stage."""
        if self.noise_field is None:
            raise ValueError("this pipeline has no online noise field (noise field time constant 0)")
        parts = {"floor": self.evidence, "field": self.noise_field, "residual": self.residual_evidence}
        for part, target in parts.items():
            state = {k.split("__", 1)[1]: v for k, v in arrays.items() if k.startswith(part + "__")}
            try:
                target.load_state(state)
            except KeyError as exc:
                raise ValueError(f"{part} state lacks {exc.args[0]!r}") from None

    def process(self, block: AudioBlock) -> list[FeatureWindow]:
        lay = self.layout
        samples = block.samples
        if samples.ndim != 2 or samples.shape[1] != self.profile.num_mics:
            raise ValueError(f"audio block: expected {self.profile.num_mics} mic channels, got shape {samples.shape}")
        start_index = self._pending_index + len(self._pending)
        self._clock = (start_index, block.t_start, block.wall_start)
        if not np.isfinite(samples).all():
            # NaN/Inf input is never propagated: the block becomes silence and is counted.
            self.bad_blocks += 1
            samples = np.zeros_like(samples)
            self._bad_until = start_index + len(samples)
        elif np.abs(samples).max(initial=0.0) > MAX_SAMPLE:
            # Finite but absurd (a broken driver, a file of raw floats): clipped, so that spectra,
            # cross-spectra and levels stay finite in float32.
            samples = np.clip(samples, -MAX_SAMPLE, MAX_SAMPLE)
        pending = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        spec = kernels.stft(pending, self.window, lay.frame_hop)
        n_new = spec.shape[0]
        out: list[FeatureWindow] = []
        if n_new:
            k_lo, k_hi = lay.band
            bin_power = np.mean(np.abs(spec) ** 2, axis=1)  # (frames, bins), mic-averaged
            power = np.mean(bin_power[:, k_lo:k_hi], axis=1) * self._power_scale * (k_hi - k_lo)
            for f in range(n_new):
                out.extend(self._push_frame(spec[f], power[f], bin_power[f]))
        consumed = n_new * lay.frame_hop
        self._pending = pending[consumed:]
        self._pending_index += consumed
        return out

    def _cell_evidence(self, spec: np.ndarray, bin_power: np.ndarray) -> np.ndarray:
        """The evidence of one frame ``spec [shape=(mics, bins)]`` (``bin_power`` its mic-averaged
        power): the tests of ``evidence.py``, on the power a stationary directional noise leaves (of
        the whitened cells, with a noise model)."""
        if self.whitener is not None:
            spec = self.whitener.whiten(spec)
            bin_power = np.mean(np.abs(spec) ** 2, axis=0)
        evidence = self.evidence.update(bin_power)
        if self.noise_field is None:
            return evidence
        self.noise_field.update(spec, self.evidence.at_floor)
        left, share = self.noise_field.residual(spec, bin_power)
        return self.residual_evidence.update(left) & (share <= self.config.noise_share)

    def _push_frame(self, spec, power, bin_power) -> list[FeatureWindow]:
        lay = self.layout
        slot = self._frames_total % lay.window_frames
        frame_start = self._frames_total * lay.frame_hop
        self._spectra[slot] = spec
        self._power[slot] = power
        self._bad[slot] = frame_start < self._bad_until
        # zeroed input teaches the evidence tests nothing (its floor would be 0)
        self._evidence[slot] = True if self._bad[slot] else self._cell_evidence(spec, bin_power)
        self._frames_total += 1
        done = self._frames_total - lay.window_frames
        if done < 0 or done % lay.hop_frames:
            return []
        order = (np.arange(lay.window_frames) + self._frames_total) % lay.window_frames
        end_index = (self._frames_total - 1) * lay.frame_hop + lay.n_fft
        clock_index, clock_t, clock_wall = self._clock
        dt = (end_index - clock_index) / lay.sample_rate
        level = float(np.mean(self._power))
        window = FeatureWindow(
            seq=self._seq,
            sample_rate=lay.sample_rate,
            t_end=clock_t + dt,
            wall_time=clock_wall + dt,
            spectra=self._spectra[order],
            evidence=self._evidence[order],
            level_db=10.0 * math.log10(level) if level > 1e-30 else -300.0,
            bad_samples=bool(self._bad.any()),
        )
        self._seq += 1
        return [window]

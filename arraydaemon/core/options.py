"""The settings types of every pipeline stage, with their defaults and bounds, in one light module.

No numpy, numba or torch here: the command line reads its help texts' defaults from these types,
and light commands (``reason``, ``listen``) import the command line. The values are resolved from
defaults, the configuration file and flags in one place, :mod:`arraydaemon.service.settings`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MAX_HOP_S = 0.25  # the analysis window; a hop longer than it would skip audio
INTEGRATION_S = 0.4  # localizer integration time constant, chosen on validation scenes (model card)
MAX_INTEGRATION_S = 5.0
MAX_SOURCES = 8  # sources per window
NOISE_GATES = ("model", "online", "off")
RESOLUTION_DEG = (0.1, 30.0)  # bounds of the direction grid's resolution
PAIR_MODES = ("all", "reference", "auto")  # SRP-PHAT mic pairs; "auto": all up to 8 mics, else the reference pairs


def is_number(value) -> bool:
    """A finite int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def valid_integration(seconds) -> bool:
    """Whether ``seconds`` is a usable integration time constant (0: none)."""
    return is_number(seconds) and 0 <= seconds <= MAX_INTEGRATION_S


@dataclass(frozen=True)
class FeatureConfig:
    window_s: float = 0.25
    hop_s: float = 0.1
    frame_s: float = 0.032
    fmin_hz: float = 200.0
    fmax_hz: float = 7000.0
    # Evidence bins (stages/evidence.py): above the stationary floor over floor_s (0: no floor test)
    # by floor_margin_db, and at least rise_ratio times their recent power (0: no onset test).
    floor_s: float = 1.5
    floor_margin_db: float = 0.0
    rise_ratio: float = 1.5
    # Stationary directional noise (stages/noise_field.py): learned from the cells at the floor with
    # this time constant (0: off); a bin has one when its strongest direction carries noise_dominance
    # times the mean of the others; a cell whose power is more than noise_share along it is not evidence.
    noise_field_s: float = 2.0
    noise_dominance: float = 4.0
    noise_share: float = 0.5

    def validate(self) -> None:
        """Raises ValueError naming the setting that is out of range."""
        if not (is_number(self.floor_s) and 0.0 <= self.floor_s <= 30.0):
            raise ValueError(f"noise floor span must be between 0 (off) and 30 s, got {self.floor_s}")
        if not (is_number(self.floor_margin_db) and 0.0 <= self.floor_margin_db <= 30.0):
            raise ValueError(f"noise floor margin must be between 0 and 30 dB, got {self.floor_margin_db}")
        if not (is_number(self.rise_ratio) and 0.0 <= self.rise_ratio <= 10.0):
            raise ValueError(f"rise ratio must be between 0 (off) and 10, got {self.rise_ratio}")
        if not (is_number(self.noise_field_s) and 0.0 <= self.noise_field_s <= 60.0):
            raise ValueError(f"noise field time constant must be between 0 (off) and 60 s, got {self.noise_field_s}")
        if not (is_number(self.noise_dominance) and 1.0 < self.noise_dominance <= 1000.0):
            raise ValueError(f"noise dominance must be above 1 and at most 1000, got {self.noise_dominance}")
        if not (is_number(self.noise_share) and 0.0 < self.noise_share <= 1.0):
            raise ValueError(f"noise share must be above 0 and at most 1, got {self.noise_share}")
        if not 0.05 <= self.window_s <= 2.0:
            raise ValueError(f"window must be between 0.05 and 2 s, got {self.window_s}")
        if not 0.0 < self.hop_s <= self.window_s:
            raise ValueError(f"hop must be positive and at most the window ({self.window_s} s), got {self.hop_s}")
        if not 0 <= self.fmin_hz < self.fmax_hz:
            raise ValueError(f"frequency band must satisfy 0 <= fmin < fmax, got {self.fmin_hz}..{self.fmax_hz}")


@dataclass(frozen=True)
class FrameLayout:
    """Sample counts derived from a FeatureConfig at one sample rate."""

    sample_rate: int
    n_fft: int
    frame_hop: int
    window_frames: int
    hop_frames: int
    band: tuple[int, int]  # bins lo <= k < hi

    @classmethod
    def from_config(cls, config: FeatureConfig, sample_rate: int) -> "FrameLayout":
        config.validate()
        n_fft = 2 * max(16, int(round(config.frame_s * sample_rate / 2)))
        frame_hop = n_fft // 2
        window_frames = max(1, int(round((config.window_s * sample_rate - n_fft) / frame_hop)) + 1)
        hop_frames = max(1, min(window_frames, int(math.floor(config.hop_s * sample_rate / frame_hop + 1e-9))))
        bin_hz = sample_rate / n_fft
        fmax = min(config.fmax_hz, 0.5 * sample_rate)
        lo = max(1, int(math.ceil(config.fmin_hz / bin_hz)))
        hi = min(n_fft // 2 + 1, int(math.floor(fmax / bin_hz)) + 1)
        if hi - lo < 2:
            raise ValueError(f"frequency band {config.fmin_hz:g}..{config.fmax_hz:g} Hz holds fewer than 2 "
                             f"bins at {sample_rate} Hz (bins are {bin_hz:g} Hz apart, up to {sample_rate / 2:g} Hz)")
        return cls(sample_rate, n_fft, frame_hop, window_frames, hop_frames, (lo, hi))

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def bin_hz(self) -> float:
        return self.sample_rate / self.n_fft

    @property
    def hop_samples(self) -> int:
        return self.hop_frames * self.frame_hop

    @property
    def window_samples(self) -> int:
        return (self.window_frames - 1) * self.frame_hop + self.n_fft


@dataclass(frozen=True)
class LocalizerConfig:
    resolution_deg: float | None = None  # None: 1° rings, and a sphere of sphere_points (3-D)
    sphere_points: int = 2000
    max_sources: int = 4
    min_separation_deg: float = 25.0
    min_confidence: float = 0.12  # absolute SRP gate for any source
    relative_threshold: float = 0.4  # further sources must reach this fraction of the first ...
    # ... and down to this fraction in a dry room: where the first source's SRP (its coherence, high
    # percentile over the last windows) is at least dry_coherence[1]; relative_threshold at most
    # dry_coherence[0], linear between (localizers/room.py)
    dry_relative_threshold: float = 0.2
    dry_coherence: tuple[float, float] = (0.65, 0.8)
    min_level_db: float = -75.0  # windows quieter than this are inactive
    pairs: str = "auto"  # SRP-PHAT mic pairs: "all", "reference" or "auto" (all up to 8 mics)
    mask_agreement: float = 0.5  # STFT bins agreeing this well with a found source are removed
    min_prominence: float = 0.1  # a peak must stand this far above the spectrum's median (diffuse noise: < 0.1)
    # With a noise model (noise/whiten.py) the cross-spectra keep only the bins where a talker stands
    # above the robot's noise, the others are 0, and the SRP of a talker is lower: these gates replace
    # the two above (chosen on the robot-dev scenes, docs/research/robot-noise.md).
    noise_model_confidence: float = 0.04
    noise_model_prominence: float = 0.03
    # Time constant of the exponential integration of the pair cross-spectra (and of the neural
    # spectrum) over past windows; 0 localizes every window on its own (localizers/integration.py).
    integration_s: float = INTEGRATION_S

    def validate(self) -> None:
        lo, hi = RESOLUTION_DEG
        if self.resolution_deg is not None and not (is_number(self.resolution_deg) and lo <= self.resolution_deg <= hi):
            raise ValueError(f"grid resolution: expected degrees in [{lo:g}, {hi:g}], got {self.resolution_deg}")
        if not 1 <= self.max_sources <= MAX_SOURCES:
            raise ValueError(f"sources per window: expected 1..{MAX_SOURCES}, got {self.max_sources}")
        if not valid_integration(self.integration_s):
            raise ValueError(f"integration: expected seconds in [0, {MAX_INTEGRATION_S:g}], got {self.integration_s}")
        if not (is_number(self.dry_relative_threshold) and 0.0 <= self.dry_relative_threshold <= 1.0):
            raise ValueError(f"dry-room relative threshold: expected a fraction in [0, 1], got {self.dry_relative_threshold}")
        lo, hi = self.dry_coherence
        if not (is_number(lo) and is_number(hi) and 0.0 <= lo <= hi <= 1.0):
            raise ValueError(f"dry-room coherence: expected 0 <= low <= high <= 1, got {self.dry_coherence}")
        if self.pairs not in PAIR_MODES:
            raise ValueError(f"localizer pairs: expected 'all', 'reference' or 'auto', got {self.pairs!r}")


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker parameters (angles in degrees, times in seconds); see the module docstring."""

    measurement_std_deg: float = 5.0  # detection noise
    out_of_plane_std_deg: float = 25.0  # planar arrays: detection noise across the array plane
    accel_std_dps2: float = 15.0  # process noise: white angular acceleration, (deg/s²)·√s
    max_speed_dps: float = 120.0  # angular speeds are clipped to this
    coast_decay_s: float = 0.5  # e-folding time of the velocity of a track that was not detected
    initial_speed_std_dps: float = 30.0  # velocity uncertainty of a new track
    gate_sigma: float = 3.0  # association gate, standard deviations of the innovation
    gate_deg: float = 30.0  # association gate, hard cap in degrees
    birth_hits: int = 3  # a tentative track is confirmed after this many detections ...
    birth_windows: int = 5  # ... within this many consecutive windows
    # ... or this many where the room reads dry (the localizer's Estimate.extras["room_dry"] >= 0.5,
    # localizers/room.py): few reflections to confirm by mistake, and a talker found sooner
    dry_birth_hits: int = 2
    keep_hits: int = 2  # a detection refreshes a confirmed track if it has this many in birth_windows ...
    support_hits: int = 8  # ... or this many in its last support_windows windows (a talker after a pause)
    support_windows: int = 30
    max_silence_s: float = 1.5  # stop publishing a track not refreshed for this long ...
    recall_s: float = 2.0  # ... and retire it this much later: found again before, it keeps its id (0: at once)
    merge_deg: float = 10.0  # a younger track this close to an older one ...
    merge_s: float = 0.5  # ... for this long is a duplicate and is retired
    activity_dwell_s: float = 2.0  # activity model: mean time spent active or silent
    detect_prob: float = 0.75  # activity model: P(detected | active) per window
    false_alarm_prob: float = 0.05  # activity model: P(detected | silent) per window
    level_smoothing: float = 0.3  # weight of a new window in the track's level (EMA)

    def validate(self) -> None:
        if not 1 <= self.birth_hits <= self.birth_windows:
            raise ValueError(f"tracker: need 1 <= birth_hits <= birth_windows, got {self.birth_hits} "
                             f"and {self.birth_windows}")
        if not 1 <= self.dry_birth_hits <= self.birth_hits:
            raise ValueError(f"tracker: need 1 <= dry_birth_hits <= birth_hits, got {self.dry_birth_hits}")
        if not 1 <= self.keep_hits <= self.birth_windows:
            raise ValueError(f"tracker: need 1 <= keep_hits <= birth_windows, got {self.keep_hits}")
        if not (math.isfinite(self.recall_s) and self.recall_s >= 0):
            raise ValueError(f"tracker: recall_s must be a number >= 0, got {self.recall_s}")
        if not 1 <= self.support_hits <= self.support_windows:
            raise ValueError(f"tracker: need 1 <= support_hits <= support_windows, got {self.support_hits} "
                             f"and {self.support_windows}")
        for name in ("measurement_std_deg", "out_of_plane_std_deg", "accel_std_dps2", "max_speed_dps",
                     "coast_decay_s", "initial_speed_std_dps", "gate_sigma", "gate_deg", "max_silence_s",
                     "activity_dwell_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"tracker: {name} must be a positive number, got {value}")
        if not 0 < self.false_alarm_prob < self.detect_prob < 1:
            raise ValueError("tracker: need 0 < false_alarm_prob < detect_prob < 1")
        if not 0 < self.level_smoothing <= 1:
            raise ValueError(f"tracker: level_smoothing must be in (0, 1], got {self.level_smoothing}")


@dataclass(frozen=True)
class PipelineOptions:
    """Everything :class:`arraydaemon.pipeline.Pipeline` takes besides the profile."""

    estimator: str = "srp-phat"  # a name of the estimator registry (arraydaemon.localizers.base)
    weights: str | None = None  # neural weights file; None: the shipped model
    noise_model: str | None = None  # a noise model file (`arraydaemon noise learn`); None: none
    noise_state: str | None = None  # where the online noise field's state is kept across restarts; None: not kept
    # which noise directions are never a source (noise/gate.py): "model" (a noise model's), "online" (also
    # the online noise field's: a robot without an installation recording; a stationary source is then
    # taken for the robot's noise), "off"
    noise_gate: str = "model"
    features: FeatureConfig = field(default_factory=FeatureConfig)
    localizer: LocalizerConfig = field(default_factory=LocalizerConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)

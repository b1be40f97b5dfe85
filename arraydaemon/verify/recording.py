"""The recording ``profile verify`` analyses: every device channel, as the device delivered it.

Unlike replay (:class:`arraydaemon.io.files.FileSource`), verification keeps all of the device's
channels, untouched by the profile's ``channel_map`` and ``gain``: the point is to find out whether
that map is right. A file with exactly one channel per mic (fewer than the profile's ``channels``)
is taken as a recording of the mic channels in the profile's order, as replay does.

Live recordings go through the capture child (:class:`arraydaemon.io.capture.parent.CaptureProcess`),
never PortAudio in this process.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arraydaemon.core.errors import SourceError
from arraydaemon.core.profiles import ArrayProfile

MAX_SECONDS = 600.0
OPEN_TIMEOUT_S = 20.0


@dataclass(eq=False)
class Recording:
    """``samples [shape=(samples, channels)]`` float32 at ``sample_rate`` (the profile's, after any
    resampling); ``device_channels [shape=(channels,)]``: the device channel of each column;
    ``file_rate``: the rate the file declared (None for live recordings); ``where`` names it."""

    samples: np.ndarray
    sample_rate: int
    device_channels: np.ndarray
    where: str
    file_rate: int | None = None
    mic_channels_only: bool = False  # the file held one channel per mic, in the profile's order

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / self.sample_rate

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])


def needed_channels(profile: ArrayProfile) -> int:
    return max(profile.channel_map) + 1


def _check_channels(n: int, profile: ArrayProfile, where: str) -> bool:
    """Whether a recording of ``n`` channels is the mic channels only; SourceError when too few."""
    if n == profile.num_mics and n < needed_channels(profile):
        return True
    if n >= needed_channels(profile):
        return False
    raise SourceError(f"{where}: has {n} channel(s); profile '{profile.name}' needs {profile.num_mics} mics on "
                      f"channels {list(profile.channel_map)} (at least {needed_channels(profile)} channels, or "
                      f"exactly {profile.num_mics}, one per mic)")


def read_file(path: str | Path, profile: ArrayProfile, notify=None) -> Recording:
    """Read a recording (any libsndfile format) for verification; resample to the profile's rate.
    One-line :class:`SourceError` for a missing, unreadable, empty or too narrow file."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: file not found")
    try:
        info = sf.info(str(path))
        if info.frames <= 0:
            raise SourceError(f"{path}: empty audio file (no samples)")
        if info.frames / info.samplerate > MAX_SECONDS:
            raise SourceError(f"{path}: {info.frames / info.samplerate:.0f} s long; verify reads at most "
                              f"{MAX_SECONDS:.0f} s (cut a part with a talker walking around the array)")
        mic_only = _check_channels(int(info.channels), profile, str(path))
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        text = str(exc).strip().splitlines()
        raise SourceError(f"{path}: cannot read audio ({text[0] if text else type(exc).__name__})") from None
    if not np.isfinite(data).all():
        bad = ~np.isfinite(data)
        if bad.all():
            raise SourceError(f"{path}: every sample is NaN/Inf")
        data = np.where(bad, 0.0, data).astype(np.float32)
    if rate != profile.sample_rate:
        from scipy.signal import resample_poly

        if notify:
            notify(f"resampling {path.name} from {rate} Hz to {profile.sample_rate} Hz")
        g = math.gcd(profile.sample_rate, int(rate))
        data = resample_poly(data, profile.sample_rate // g, int(rate) // g, axis=0).astype(np.float32)
    channels = np.asarray(profile.channel_map if mic_only else range(data.shape[1]), dtype=np.intp)
    return Recording(np.ascontiguousarray(data), profile.sample_rate, channels, str(path), int(rate), mic_only)


def from_array(samples: np.ndarray, profile: ArrayProfile, where: str = "<recording>",
               file_rate: int | None = None) -> Recording:
    """A :class:`Recording` of ``samples [shape=(samples, channels)]`` already at the profile's rate."""
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if samples.ndim != 2 or samples.shape[0] == 0:
        raise SourceError(f"{where}: expected audio of shape (samples, channels), got {samples.shape}")
    mic_only = _check_channels(samples.shape[1], profile, where)
    channels = np.asarray(profile.channel_map if mic_only else range(samples.shape[1]), dtype=np.intp)
    return Recording(samples, profile.sample_rate, channels, where, file_rate, mic_only)


def record_device(profile: ArrayProfile, device: str | int | None, seconds: float, notify=None,
                  latency: str = "high") -> Recording:
    """Record ``seconds`` of every device channel at the profile's rate through a capture child.
    One-line :class:`SourceError` when the device cannot be opened or is lost while recording."""
    from arraydaemon.io.capture.parent import CaptureProcess

    if not 0 < seconds <= MAX_SECONDS:
        raise SourceError(f"--seconds: expected 0 < seconds <= {MAX_SECONDS:g}, got {seconds:g}")
    need = int(round(seconds * profile.sample_rate))
    blocks: list[np.ndarray] = []
    got = [0]
    done = threading.Event()

    def on_block(block) -> None:
        if done.is_set():
            return
        blocks.append(np.array(block.samples, dtype=np.float32))
        got[0] += len(block.samples)
        if got[0] >= need:
            done.set()

    spec = device if device is not None else profile.device
    cap = CaptureProcess(spec, profile.sample_rate, profile.channels, latency, 1, on_block)
    cap.start()
    try:
        opened = cap.wait_open(OPEN_TIMEOUT_S)
        if opened is None:
            raise SourceError(cap.failure or "the capture process failed")
        if notify:
            notify(f"recording {seconds:g} s from '{opened.device}' ({opened.hostapi}) at {profile.sample_rate} Hz, "
                   f"{profile.channels} channels: talk while walking slowly around the array")
        deadline = time.monotonic() + seconds + 10.0
        while not done.wait(0.1):
            lost = cap.lost
            if lost:
                raise SourceError(f"device lost while recording: {lost}")
            if time.monotonic() > deadline:
                raise SourceError(f"got only {got[0] / profile.sample_rate:.1f} s of audio in {seconds + 10:g} s")
    finally:
        cap.stop()
    data = np.concatenate(blocks)[:need]
    where = f"device '{opened.device}'"
    return Recording(np.ascontiguousarray(data), profile.sample_rate, np.arange(data.shape[1], dtype=np.intp), where)

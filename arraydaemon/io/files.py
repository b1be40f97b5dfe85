"""Audio sources that are not a live device: file replay (any libsndfile format).

A source yields AudioBlocks in mic order (``channel_map`` and per-mic ``gain`` applied), each stamped
with its stream time (seconds from the file's start) and nominal wall time. Live capture lives in
``io/capture/`` and shares :class:`ChannelMapper`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from arraydaemon.core.errors import SourceError
from arraydaemon.core.messages import AudioBlock
from arraydaemon.core.profiles import ArrayProfile


class ChannelMapper:
    """Device/file channels ``[shape=(samples, channels)]`` → mic order ``[shape=(samples, mics)]``."""

    def __init__(self, profile: ArrayProfile, input_channels: int, where: str):
        if input_channels == profile.num_mics and input_channels < profile.channels:
            channel_map = list(range(profile.num_mics))  # a recording of the mic channels only
        elif input_channels > max(profile.channel_map):
            channel_map = list(profile.channel_map)
        else:
            raise SourceError(
                f"{where}: has {input_channels} channel(s); profile '{profile.name}' needs {profile.num_mics} "
                f"mics on channels {list(profile.channel_map)} (at least {max(profile.channel_map) + 1} channels)")
        self.channel_map = np.asarray(channel_map, dtype=np.intp)
        self.gain = np.asarray(profile.gain, dtype=np.float32) if profile.gain else None

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        out = np.ascontiguousarray(raw[:, self.channel_map], dtype=np.float32)
        if self.gain is not None:
            out *= self.gain
        return out


class FileSource:
    """Replays a multichannel recording as AudioBlocks of ``block_size`` samples."""

    def __init__(self, path: str | Path, profile: ArrayProfile, block_size: int = 1024,
                 notify: Callable[[str], None] | None = None):
        import soundfile as sf

        self.path = Path(path)
        self.profile = profile
        self.block_size = int(block_size)
        self._notify = notify or (lambda msg: None)
        if not self.path.exists():
            raise SourceError(f"{self.path}: file not found")
        try:
            info = sf.info(str(self.path))
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise SourceError(f"{self.path}: cannot read audio ({_first_line(exc)})") from None
        if info.frames <= 0:
            raise SourceError(f"{self.path}: empty audio file (no samples)")
        self.file_rate = int(info.samplerate)
        self.frames = int(info.frames)
        self.mapper = ChannelMapper(profile, int(info.channels), str(self.path))
        self.sample_rate = profile.sample_rate
        self.duration_s = self.frames / self.file_rate
        self.bad_blocks = 0
        if not self._any_finite_block():
            raise SourceError(f"{self.path}: every block contains NaN/Inf samples")

    def blocks(self, wall_start: float | None = None) -> Iterator[AudioBlock]:
        """Blocks in order; ``wall_start`` is the wall time of the file's first sample."""
        wall0 = time.time() if wall_start is None else wall_start
        rate = self.sample_rate
        index = 0
        for seq, raw in enumerate(self._read_blocks()):
            mapped = self.mapper(raw)
            if not np.isfinite(mapped).all():
                self.bad_blocks += 1
            yield AudioBlock(seq=seq, sample_rate=rate, t_start=index / rate, wall_start=wall0 + index / rate,
                             samples=mapped)
            index += len(mapped)
        if self.bad_blocks and self.bad_blocks == seq + 1:
            raise SourceError(f"{self.path}: every block contains NaN/Inf samples")

    def _any_finite_block(self) -> bool:
        """Whether some block's mic channels are all finite; fail an all-NaN/Inf file before replay
        rather than after it (usually stops at the first block)."""
        import soundfile as sf

        try:
            for raw in sf.blocks(str(self.path), blocksize=self.block_size, dtype="float32", always_2d=True):
                if np.isfinite(self.mapper(raw)).all():
                    return True
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise SourceError(f"{self.path}: cannot read audio ({_first_line(exc)})") from None
        return False

    def _read_blocks(self) -> Iterator[np.ndarray]:
        import soundfile as sf

        try:
            if self.file_rate == self.sample_rate:
                yield from sf.blocks(str(self.path), blocksize=self.block_size, dtype="float32", always_2d=True)
                return
            from scipy.signal import resample_poly

            self._notify(f"resampling {self.path.name} from {self.file_rate} Hz to {self.sample_rate} Hz")
            data, _ = sf.read(str(self.path), dtype="float32", always_2d=True)
            g = math.gcd(self.sample_rate, self.file_rate)
            data = resample_poly(data, self.sample_rate // g, self.file_rate // g, axis=0).astype(np.float32)
            for start in range(0, len(data), self.block_size):
                yield data[start:start + self.block_size]
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise SourceError(f"{self.path}: cannot read audio ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

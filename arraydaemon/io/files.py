"""Audio sources that are not a live device: file replay (any libsndfile format).

A source yields AudioBlocks in mic order (``channel_map`` and per-mic ``gain`` applied), each stamped
with its stream time (seconds from the file's start) and nominal wall time. Live capture lives in
``io/capture/`` and shares :class:`ChannelMapper`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from arraydaemon.core.errors import SourceError
from arraydaemon.core.messages import AudioBlock
from arraydaemon.core.profiles import ArrayProfile
from arraydaemon.core.validation import shown


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
    """Replays a multichannel recording as AudioBlocks of ``block_size`` samples.

    The file is opened once and read in order, so pipes and FIFOs stream like files (``-`` is
    standard input: ``arecord ... | arraydaemon replay - --profile P``); memory stays bounded
    whatever their length. A recording at another sample rate than the profile's is resampled,
    which needs a regular file (it is read whole).
    """

    def __init__(self, path: str | Path, profile: ArrayProfile, block_size: int = 1024,
                 notify: Callable[[str], None] | None = None):
        import soundfile as sf

        self.name = "standard input" if str(path) == "-" else shown(path)
        self.path = Path("/dev/stdin") if str(path) == "-" else Path(path)
        self.profile = profile
        self.block_size = int(block_size)
        self._notify = notify or (lambda msg: None)
        if not self.path.exists():
            raise SourceError(f"{self.name}: file not found")
        if self.path.is_dir():
            raise SourceError(f"{self.name}: is a directory, not an audio file")
        try:
            self._file = sf.SoundFile(os.fsencode(self.path))  # bytes: any name the file system holds
        except (sf.LibsndfileError, RuntimeError, OSError, TypeError) as exc:
            hint = "" if self.path.is_file() else "; through a pipe libsndfile reads WAV, AU or CAF, not FLAC or OGG"
            raise SourceError(f"{self.name}: cannot read audio ({_first_line(exc)}{hint})") from None
        self.seekable = self._file.seekable()
        self.file_rate = int(self._file.samplerate)
        self.mapper = ChannelMapper(profile, int(self._file.channels), self.name)
        self.sample_rate = profile.sample_rate
        self.frames_read = 0  # at the file's rate
        self.bad_blocks = 0
        if self.file_rate != self.sample_rate and not self.seekable:
            self._file.close()
            raise SourceError(f"{self.name}: {self.file_rate} Hz from a pipe, the profile needs {self.sample_rate} Hz "
                              f"(resample it first, e.g. sox -t wav - -t wav -r {self.sample_rate} -)")
        if self.seekable:
            if self._file.frames <= 0:
                self._file.close()
                raise SourceError(f"{self.name}: empty audio file (no samples)")
            if not self._any_finite_block():
                self._file.close()
                raise SourceError(f"{self.name}: every block contains NaN/Inf samples")

    @property
    def duration_s(self) -> float:
        """The file's length in seconds (a pipe's: what has been read so far)."""
        frames = self._file.frames if self.seekable else self.frames_read
        return frames / self.file_rate

    def blocks(self, wall_start: float | None = None) -> Iterator[AudioBlock]:
        """Blocks in order; ``wall_start`` is the wall time of the file's first sample."""
        wall0 = time.time() if wall_start is None else wall_start
        rate = self.sample_rate
        index, seq = 0, -1
        try:
            for seq, raw in enumerate(self._read_blocks()):
                mapped = self.mapper(raw)
                if not np.isfinite(mapped).all():
                    self.bad_blocks += 1
                yield AudioBlock(seq=seq, sample_rate=rate, t_start=index / rate, wall_start=wall0 + index / rate,
                                 samples=mapped)
                index += len(mapped)
        finally:
            self._file.close()
        if seq < 0:
            raise SourceError(f"{self.name}: empty audio (no samples)")
        if self.bad_blocks and self.bad_blocks == seq + 1:
            raise SourceError(f"{self.name}: every block contains NaN/Inf samples")

    def _any_finite_block(self) -> bool:
        """Whether some block's mic channels are all finite; fail an all-NaN/Inf file before replay
        rather than after it (usually stops at the first block). Regular files only: rewinds."""
        import soundfile as sf

        try:
            for raw in self._file.blocks(blocksize=self.block_size, dtype="float32", always_2d=True):
                if np.isfinite(self.mapper(raw)).all():
                    return True
            return False
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise SourceError(f"{self.name}: cannot read audio ({_first_line(exc)})") from None
        finally:
            self._file.seek(0)

    def _read_blocks(self) -> Iterator[np.ndarray]:
        import soundfile as sf

        try:
            if self.file_rate == self.sample_rate:
                while True:  # read() rather than blocks(): a pipe has no known length
                    raw = self._file.read(self.block_size, dtype="float32", always_2d=True)
                    if not len(raw):
                        return
                    self.frames_read += len(raw)
                    yield raw
            from scipy.signal import resample_poly

            self._notify(f"resampling {self.path.name} from {self.file_rate} Hz to {self.sample_rate} Hz")
            data = self._file.read(dtype="float32", always_2d=True)
            self.frames_read = len(data)
            g = math.gcd(self.sample_rate, self.file_rate)
            data = resample_poly(data, self.sample_rate // g, self.file_rate // g, axis=0).astype(np.float32)
            for start in range(0, len(data), self.block_size):
                yield data[start:start + self.block_size]
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise SourceError(f"{self.name}: cannot read audio ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__

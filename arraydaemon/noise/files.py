"""The noise files: a **noise model** (measured at installation, ``arraydaemon noise learn``) and a
**noise state** (what the online noise field learned, ``--noise-state``), each tied to the array
profile and the STFT it was learned with.

A file is a NumPy ``.npz`` archive (read with ``allow_pickle=False``) holding a JSON header and
named arrays. The header says what the file is (``kind``), its format ``version``, and the
profile it belongs to: ``name``, mic count, sample rate and a hash of the mic positions (rounded
to 0.1 mm), plus the STFT frame length and hop. Loading checks all of them and refuses a file that
does not match with one line naming the first difference. Files are written atomically: to a
temporary file beside the target, flushed, then ``os.replace`` d over it, so a reader (or a daemon
restarting after a crash) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from arraydaemon.core.errors import UserError

FORMAT_VERSION = 1
KINDS = ("noise-model", "noise-state")
MAX_FILE_BYTES = 256 << 20


def geometry_hash(mics: np.ndarray) -> str:
    """12 hex digits of SHA-256 over the mic positions ``[shape=(mics, 3)]`` in metres, rounded to 0.1 mm."""
    text = ";".join(",".join(f"{v:.4f}" for v in row) for row in np.asarray(mics, dtype=np.float64))
    return hashlib.sha256(text.replace("-0.0000", "0.0000").encode()).hexdigest()[:12]


def profile_identity(profile) -> dict:
    """What ties a file to ``profile``: its name, mic count, sample rate and geometry hash."""
    return {"profile": profile.name, "mics": profile.num_mics, "sample_rate": int(profile.sample_rate),
            "geometry": geometry_hash(profile.mics)}


def layout_identity(layout) -> dict:
    """What ties a file to the STFT: frame length and hop in samples."""
    return {"n_fft": int(layout.n_fft), "frame_hop": int(layout.frame_hop)}


def save(path: str | os.PathLike, kind: str, profile, layout, arrays: dict[str, np.ndarray],
         extra: dict | None = None) -> Path:
    """Writes ``arrays`` (plain numeric arrays) with the header of ``kind`` for ``profile`` and
    ``layout`` to ``path``, atomically. Returns the path."""
    if kind not in KINDS:
        raise ValueError(f"noise file kind: expected one of {KINDS}, got {kind!r}")
    path = Path(path)
    header = {"kind": kind, "version": FORMAT_VERSION, **profile_identity(profile), **layout_identity(layout),
              "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **(extra or {})}
    buffer = io.BytesIO()
    np.savez(buffer, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
             **{name: np.asarray(a) for name, a in arrays.items()})
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UserError(f"{path}: cannot write the {kind} ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"{path}: cannot write the {kind} ({exc.strerror})") from None
    return path


def load(path: str | os.PathLike, kind: str, profile, layout) -> tuple[dict, dict[str, np.ndarray]]:
    """The header and arrays of the ``kind`` file at ``path``, checked against ``profile`` and
    ``layout``; :class:`UserError` (one line) when it is missing, unreadable, another kind or
    version, or made for another profile or STFT."""
    path = Path(path)
    what = kind.replace("-", " ")
    try:
        size = path.stat().st_size
    except OSError:
        raise UserError(f"{path}: {what} not found") from None
    if size > MAX_FILE_BYTES:
        raise UserError(f"{path}: {size} bytes, too large for a {what} (at most {MAX_FILE_BYTES >> 20} MiB)")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z["header"].astype(np.uint8)).decode())
            arrays = {name: z[name] for name in z.files if name != "header"}
    except Exception as exc:  # noqa: BLE001 - untrusted bytes: numpy's header parser alone raises
        # ValueError, SyntaxError, tokenize.TokenError, zipfile.BadZipFile, EOFError... on a damaged file
        raise UserError(f"{path}: not a {what} file ({type(exc).__name__})") from None
    if not isinstance(header, dict) or header.get("kind") not in KINDS:
        raise UserError(f"{path}: not a {what} file")
    if header["kind"] != kind:
        raise UserError(f"{path}: a {header['kind'].replace('-', ' ')}, not a {what}")
    if header.get("version") != FORMAT_VERSION:
        raise UserError(f"{path}: {what} format version {header.get('version')!r}, this arraydaemon reads "
                        f"version {FORMAT_VERSION}; learn it again")
    want = {**profile_identity(profile), **layout_identity(layout)}
    labels = {"profile": "profile", "mics": "mic count", "sample_rate": "sample rate",
              "geometry": "mic geometry (hash)", "n_fft": "STFT frame length", "frame_hop": "STFT hop"}
    for key, label in labels.items():
        if header.get(key) != want[key]:
            raise UserError(f"{path}: {what} is for {label} {header.get(key)!r}, this array has {want[key]!r} "
                            f"(profile {profile.name}); learn one for this profile")
    return header, arrays

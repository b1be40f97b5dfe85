"""Array profiles: YAML files describing a microphone array's geometry and device.

Schema (DESIGN.md):

required  ``name`` (str), ``sample_rate`` (int, Hz), ``mics`` (list of ``[x, y, z]`` metres, array frame)
optional  ``channels`` (device channel count), ``channel_map`` (0-based device channel of each mic),
          ``device`` (substring of the PortAudio device name), ``reference_mic`` (index into mics),
          ``frame_id`` (tf frame), ``description``, ``gain`` (per-mic linear gain),
          ``speed_of_sound`` (m/s)

Frame is REP-103: x forward, y left, z up. ``load_profile`` takes a bundled or installed profile
name, or a path to a YAML file, and returns a frozen, validated :class:`ArrayProfile`; every error
names the file, the key and what was expected.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arraydaemon.core.errors import ProfileError
from arraydaemon.core.paths import BUNDLED_PROFILES_DIR as BUNDLED_DIR
from arraydaemon.core.validation import check_keys, is_number, key_error, read_yaml_file, shown

REQUIRED_KEYS = ("name", "sample_rate", "mics")
OPTIONAL_KEYS = (
    "channels",
    "channel_map",
    "device",
    "reference_mic",
    "frame_id",
    "description",
    "gain",
    "speed_of_sound",
)
MIN_MIC_SPACING_M = 0.002  # closer than this, two mics are the same point for localization
MAX_APERTURE_M = 5.0
_NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")  # the whole name (no trailing newline)
MAX_MICS = 64
MAX_CHANNELS = 1024  # device channels
MAX_COORDINATE_M = 10.0  # a mic's distance from the array frame's origin, per axis
GAIN_RANGE = (1e-6, 1e6)  # per-mic linear gain (a float32 sample times it stays finite)
_FRAME_ID_RE = re.compile(r"\A[A-Za-z_/][A-Za-z0-9_/.-]{0,127}\Z")  # a tf frame id, short enough to publish
MAX_TEXT = 1024  # characters of 'description' and 'device'


@dataclass(frozen=True)
class GeometryInfo:
    """Derived facts about an array's geometry, as printed by ``profile check``."""

    kind: str  # "linear" | "planar" | "3d"
    aperture_m: float
    max_tdoa_s: float
    min_spacing_m: float
    nearest_neighbour_spacing_m: float
    aliasing_hz: float
    axis: tuple[float, float, float] | None  # linear arrays: unit vector along the line
    normal: tuple[float, float, float] | None  # planar arrays: unit normal of the plane
    ambiguity: str  # "none" | "up-down" | "front-back"

    def describe_ambiguity(self) -> str:
        if self.kind == "linear":
            return ("linear array: front/back (and up/down) cannot be told apart; directions are "
                    "reported in the front half-plane")
        if self.kind == "planar":
            return ("planar array: up/down cannot be told apart; elevation is reported on the "
                    "upper side of the array plane")
        return "3-D array: no geometric ambiguity"


@dataclass(frozen=True, eq=False)
class ArrayProfile:
    """A validated microphone-array profile. ``mics`` is read-only, ``[shape=(mics, 3)]`` metres."""

    name: str
    sample_rate: int
    mics: np.ndarray
    channels: int
    channel_map: tuple[int, ...]
    reference_mic: int = 0
    device: str | None = None
    frame_id: str = "array"
    description: str = ""
    gain: tuple[float, ...] = ()
    speed_of_sound: float = 343.0
    path: Path | None = None
    geometry: GeometryInfo = field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "geometry", analyse_geometry(self.mics, self.speed_of_sound))

    @property
    def num_mics(self) -> int:
        return int(self.mics.shape[0])

    @property
    def relative_mics(self) -> np.ndarray:
        """Mic positions relative to the reference mic, ``[shape=(mics, 3)]`` metres."""
        return self.mics - self.mics[self.reference_mic]

    def to_dict(self) -> dict:
        """The profile as YAML-ready plain data (round-trips through :func:`parse_profile`)."""
        out = {
            "name": self.name,
            "description": self.description,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "channel_map": list(self.channel_map),
            "mics": [[float(v) for v in row] for row in self.mics],
            "reference_mic": self.reference_mic,
            "frame_id": self.frame_id,
            "speed_of_sound": self.speed_of_sound,
        }
        if self.device:
            out["device"] = self.device
        if self.gain:
            out["gain"] = list(self.gain)
        return out


def analyse_geometry(mics: np.ndarray, speed_of_sound: float) -> GeometryInfo:
    """Aperture, max TDOA, aliasing frequency and dimensionality of ``mics [shape=(mics, 3)]``."""
    diffs = mics[:, None, :] - mics[None, :, :]
    dist = np.linalg.norm(diffs, axis=-1)
    aperture = float(dist.max())
    off_diag = dist + np.eye(len(mics)) * 1e9
    nearest = off_diag.min(axis=1)
    centred = mics - mics.mean(axis=0)
    _, sing, vt = np.linalg.svd(centred, full_matrices=True)
    tol = max(1e-3, 1e-2 * aperture)
    rank = int(np.sum(sing > tol))
    axis = normal = None
    if rank <= 1:
        kind, ambiguity = "linear", "front-back"
        axis = tuple(float(v) for v in vt[0])
    elif rank == 2:
        kind, ambiguity = "planar", "up-down"
        n = vt[2]
        # Report the upper side for horizontal arrays, the front side for vertical ones.
        if abs(n[2]) > 1e-6:
            n = n * np.sign(n[2])
        elif abs(n[0]) > 1e-6:
            n = n * np.sign(n[0])
        else:
            n = n * np.sign(n[1])
        normal = tuple(float(v) for v in n)
    else:
        kind, ambiguity = "3d", "none"
    nn_spacing = float(nearest.max())
    return GeometryInfo(
        kind=kind,
        aperture_m=aperture,
        max_tdoa_s=aperture / speed_of_sound,
        min_spacing_m=float(nearest.min()),
        nearest_neighbour_spacing_m=nn_spacing,
        aliasing_hz=speed_of_sound / (2.0 * nn_spacing),
        axis=axis,
        normal=normal,
        ambiguity=ambiguity,
    )


# ----------------------------------------------------------------------------------------------
# Parsing and validation


def _fail(source: str, key: str, expected: str, got=None) -> ProfileError:
    return key_error(ProfileError, source, key, expected, *(() if got is None else (got,)))


def _as_int(data: dict, key: str, source: str, lo: int, hi: int, what: str) -> int:
    v = data[key]
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _fail(source, key, f"{what} (an integer in {lo}..{hi})", v)
    return v


def parse_profile(data, source: str = "<profile>", path: Path | None = None) -> ArrayProfile:
    """Validate plain YAML data and build an :class:`ArrayProfile`.

    ``source`` names the file in error messages.
    """
    if not isinstance(data, dict):
        raise ProfileError(f"{source}: expected a YAML mapping with keys {', '.join(REQUIRED_KEYS)}, "
                           f"got {type(data).__name__}")
    check_keys(data, REQUIRED_KEYS + OPTIONAL_KEYS, source, ProfileError)
    for key in REQUIRED_KEYS:
        if key not in data:
            raise ProfileError(f"{source}: missing required key '{key}'")

    name = data["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _fail(source, "name", "a name of at most 64 letters, digits, '_', '.', '-'", name)
    sample_rate = _as_int(data, "sample_rate", source, 4000, 384000, "a sample rate in Hz")

    raw_mics = data["mics"]
    if not isinstance(raw_mics, list) or len(raw_mics) < 2:
        raise _fail(source, "mics", "a list of at least 2 positions [x, y, z] in metres", raw_mics)
    if len(raw_mics) > MAX_MICS:
        raise ProfileError(f"{source}: key 'mics': at most {MAX_MICS} mics are supported, got {len(raw_mics)}")
    rows = []
    for i, row in enumerate(raw_mics):
        if not isinstance(row, list) or len(row) != 3 or not all(is_number(v) for v in row):
            raise _fail(source, f"mics[{i}]", "a list of 3 numbers [x, y, z] in metres", row)
        rows.append([float(v) for v in row])
    mics = np.array(rows, dtype=np.float64)
    n_mics = len(rows)
    for i in range(n_mics):
        for j in range(i):
            d = float(np.linalg.norm(mics[i] - mics[j]))
            if d < MIN_MIC_SPACING_M:
                raise _fail(source, f"mics[{i}]", f"a position distinct from mics[{j}] "
                            f"(they are {d * 1000:.1f} mm apart; minimum {MIN_MIC_SPACING_M * 1000:.0f} mm)",
                            rows[i])
    aperture = float(np.max(np.linalg.norm(mics[:, None] - mics[None], axis=-1)))
    if aperture > MAX_APERTURE_M:
        raise _fail(source, "mics", f"an aperture under {MAX_APERTURE_M} m (positions are in metres, "
                    f"not millimetres)", f"aperture {aperture:.2f} m")
    for i, row in enumerate(rows):  # bounded, so every derived quantity (the centroid, say) is finite
        if any(abs(v) > MAX_COORDINATE_M for v in row):
            raise _fail(source, f"mics[{i}]", f"coordinates within ±{MAX_COORDINATE_M:g} m of the array frame's "
                        "origin (metres)", row)

    channel_map = data.get("channel_map")
    if channel_map is not None:
        if (not isinstance(channel_map, list) or len(channel_map) != n_mics
                or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < MAX_CHANNELS
                           for c in channel_map)):
            raise _fail(source, "channel_map", f"a list of {n_mics} non-negative integers below {MAX_CHANNELS} "
                        "(0-based device channel of each mic)", channel_map)
        if len(set(channel_map)) != n_mics:
            raise _fail(source, "channel_map", "distinct channels (one per mic)", channel_map)
    if "channels" in data:
        channels = _as_int(data, "channels", source, 1, MAX_CHANNELS, "the device channel count")
    else:
        channels = max(channel_map) + 1 if channel_map is not None else n_mics
    if channel_map is None:
        if channels < n_mics:
            raise _fail(source, "channels", f"at least {n_mics} (one per mic)", channels)
        channel_map = list(range(n_mics))
    if max(channel_map) >= channels:
        raise _fail(source, "channel_map", f"channels below 'channels' ({channels})", channel_map)

    reference_mic = 0
    if "reference_mic" in data:
        reference_mic = _as_int(data, "reference_mic", source, 0, n_mics - 1, "a mic index")

    speed = data.get("speed_of_sound", 343.0)
    if not is_number(speed) or not 250.0 <= speed <= 400.0:
        raise _fail(source, "speed_of_sound", "a speed in m/s between 250 and 400", speed)

    gain = data.get("gain")
    if gain is not None:
        if (not isinstance(gain, list) or len(gain) != n_mics
                or not all(is_number(g) and GAIN_RANGE[0] <= g <= GAIN_RANGE[1] for g in gain)):
            lo, hi = GAIN_RANGE
            raise _fail(source, "gain", f"a list of {n_mics} positive numbers in [{lo:g}, {hi:g}] "
                        "(linear gain per mic)",
                        gain)
    gain = tuple(float(g) for g in gain) if gain is not None else ()

    frame_id = data.get("frame_id", f"{name}_array")
    if not isinstance(frame_id, str) or not _FRAME_ID_RE.match(frame_id):
        raise _fail(source, "frame_id", "a non-empty string: a tf frame id of at most 128 letters, digits, "
                    "'_', '/', '.', '-'", frame_id)
    device = data.get("device")
    if device is not None and (not isinstance(device, str) or not 0 < len(device) <= MAX_TEXT):
        raise _fail(source, "device", f"a substring of the PortAudio device name (1 to {MAX_TEXT} characters)", device)
    description = data.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_TEXT:
        raise _fail(source, "description", f"a string of at most {MAX_TEXT} characters", description)

    mics.setflags(write=False)
    return ArrayProfile(
        name=name,
        sample_rate=sample_rate,
        mics=mics,
        channels=channels,
        channel_map=tuple(channel_map),
        reference_mic=reference_mic,
        device=device,
        frame_id=frame_id,
        description=description,
        gain=gain,
        speed_of_sound=float(speed),
        path=path,
    )


def load_profile_file(path: str | os.PathLike) -> ArrayProfile:
    """Load and validate one YAML profile file."""
    path = Path(path)
    return parse_profile(read_yaml_file(path, ProfileError, "profile"), str(path), path)


# ----------------------------------------------------------------------------------------------
# Lookup by name


def xdg_profile_dir() -> Path:
    """The per-user profile directory: $XDG_CONFIG_HOME (or ~/.config)/arraydaemon/profiles."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "arraydaemon" / "profiles"


def user_profile_dir(user: bool = False) -> Path:
    """Where ``profile add`` installs: /etc as root (unless ``user``), else :func:`xdg_profile_dir`."""
    if not user and hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/etc/arraydaemon/profiles")
    return xdg_profile_dir()


def search_dirs() -> list[Path]:
    """Profile directories, highest precedence first: user, system, bundled."""
    dirs = [xdg_profile_dir(), Path("/etc/arraydaemon/profiles"), BUNDLED_DIR]
    seen, out = set(), []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def available_profiles() -> dict[str, Path]:
    """Profile name → file, the first directory in :func:`search_dirs` winning."""
    found: dict[str, Path] = {}
    for d in search_dirs():
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.y*ml")):
            found.setdefault(f.stem, f)
    return found


MAX_REF = 4096  # characters of a profile name or path (PATH_MAX)


def looks_like_path(ref: str) -> bool:
    if ref.endswith((".yaml", ".yml")) or os.sep in ref:
        return True
    try:
        return Path(ref).is_file()
    except (OSError, ValueError):  # a name too long for the file system, or with a NUL
        return False


def load_profile(ref: str | os.PathLike) -> ArrayProfile:
    """Load a profile by name (user, system, then bundled) or by path to a YAML file."""
    ref_str = os.fspath(ref)
    if len(ref_str) > MAX_REF:
        raise ProfileError(f"profile {shown(ref_str, 60)!s}: a name or path of {len(ref_str)} characters "
                           f"(at most {MAX_REF})")
    if looks_like_path(ref_str):
        return load_profile_file(ref_str)
    profiles = available_profiles()
    if ref_str not in profiles:
        close = difflib.get_close_matches(ref_str, list(profiles), n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ProfileError(f"profile '{shown(ref_str)}' not found{hint} (known: {', '.join(sorted(profiles))}; "
                           "or give a path to a YAML file)")
    profile = load_profile_file(profiles[ref_str])
    if profile.name != ref_str:
        raise ProfileError(f"{profiles[ref_str]}: key 'name': expected '{ref_str}' to match the file "
                           f"name, got {profile.name!r}")
    return profile


def install_profile(path: str | os.PathLike, dest_dir: Path | None = None, force: bool = False) -> Path:
    """Validate a profile file and copy it to the user (or system) profile directory. A profile named
    like a bundled one would shadow it everywhere: that needs ``force``."""
    profile = load_profile_file(path)
    bundled = BUNDLED_DIR / f"{profile.name}.yaml"
    if bundled.is_file() and not force:
        raise ProfileError(f"{path}: profile name '{profile.name}' is a bundled profile's; installing it would "
                           "shadow the bundled one everywhere (rename it, or use --force)")
    dest_dir = dest_dir or user_profile_dir()
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        dest = dest_dir / f"{profile.name}.yaml"
        dest.write_text(Path(path).read_text(encoding="utf-8"), encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"cannot install profile into {dest_dir}: {exc.strerror or exc}") from None
    return dest

"""PortAudio input devices: listing, matching a profile's ``device`` spec, the ``arraydaemon devices`` table.

Stdlib only at import (the capture child uses it); sounddevice is imported on demand.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from arraydaemon.core.errors import SourceError


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    hostapi: str
    channels: int  # max input channels
    default_rate: float

    def describe(self) -> str:
        return f"[{self.index}] '{self.name}' ({self.hostapi}, {self.channels} in, {self.default_rate:g} Hz)"


def import_sounddevice(quiet: bool = False):
    """sounddevice, or a one-line SourceError when the PortAudio library is missing.

    ``quiet`` silences what the host APIs print to stderr while PortAudio initializes (libjack's
    "Cannot connect to server socket" when no JACK server runs, ALSA's configuration chatter).
    """
    saved = None
    if quiet and "sounddevice" not in sys.modules:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    try:
        import sounddevice as sd
    except OSError as exc:
        raise SourceError(f"cannot load PortAudio ({exc}); install libportaudio2") from None
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
    return sd


def list_input_devices(sd=None) -> list[InputDevice]:
    """Every PortAudio device with at least one input channel."""
    sd = sd or import_sounddevice()
    hostapis = sd.query_hostapis()
    out = []
    for dev in sd.query_devices():
        if dev["max_input_channels"] > 0:
            out.append(InputDevice(int(dev["index"]), dev["name"], hostapis[dev["hostapi"]]["name"],
                                   int(dev["max_input_channels"]), float(dev["default_samplerate"])))
    return out


def device_list_text(devices: list[InputDevice]) -> str:
    if not devices:
        return "no input devices found (is the array plugged in, and may this user use audio devices?)"
    return "available input devices: " + ", ".join(d.describe() for d in devices)


def match_device(devices: list[InputDevice], spec: str | int | None, channels: int,
                 default_index: int | None = None) -> InputDevice:
    """The input device ``spec`` names (index, or case-insensitive name substring) with at least
    ``channels`` inputs; ``None`` means PortAudio's default input. Raises SourceError listing the
    available devices."""
    if isinstance(spec, str) and spec.strip().isdigit():
        spec = int(spec)
    if isinstance(spec, int):
        found = [d for d in devices if d.index == spec]
        what = f"input device index {spec}"
    elif spec:
        found = [d for d in devices if spec.lower() in d.name.lower()]
        found.sort(key=lambda d: d.name.lower() != spec.lower())  # an exact name first
        what = f"input device matching '{spec}'"
    else:
        found = [d for d in devices if d.index == default_index]
        what = "default input device"
    if not found:
        raise SourceError(f"no {what}; {device_list_text(devices)}")
    enough = [d for d in found if d.channels >= channels]
    if not enough:
        d = found[0]
        raise SourceError(f"{what}: {d.describe()} has {d.channels} input channel(s), the profile needs "
                          f"{channels}; {device_list_text(devices)}")
    return enough[0]


def profile_matches(profile, device: InputDevice) -> bool:
    """A profile claims a device when its ``device`` substring matches and the channels suffice."""
    return bool(profile.device) and profile.device.lower() in device.name.lower() and \
        device.channels >= profile.channels


def device_table_rows(devices: list[InputDevice], profiles) -> list[tuple[str, ...]]:
    """The ``arraydaemon devices`` table: a header row, then one row per device with the names of
    the ``profiles`` that match it ("-" when none)."""
    rows = [("index", "host API", "in", "rate", "name", "profiles")]
    for d in devices:
        matching = [p.name for p in profiles if profile_matches(p, d)]
        rows.append((str(d.index), d.hostapi, str(d.channels), f"{d.default_rate:g}", d.name,
                     ", ".join(matching) or "-"))
    return rows


def format_device_table(rows: list[tuple[str, ...]]) -> str:
    """Rows as aligned text columns; the last column (profiles) is not padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5] for r in rows)


def devices_report() -> str:
    """What ``arraydaemon devices`` prints: the input devices and the installed profiles matching
    each one, or a one-line note when there are no input devices."""
    from arraydaemon.core.errors import UserError
    from arraydaemon.core.profiles import available_profiles, load_profile_file

    devices = list_input_devices(import_sounddevice(quiet=True))
    profiles = []
    for name, path in sorted(available_profiles().items()):
        try:
            profiles.append(load_profile_file(path))
        except UserError:
            continue  # `profile list` reports invalid profiles
    if not devices:
        return device_list_text(devices)
    return format_device_table(device_table_rows(devices, profiles))

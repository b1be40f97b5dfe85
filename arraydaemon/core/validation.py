"""Checking YAML documents a user wrote (array profiles, the daemon's configuration file).

One style of error everywhere: one line naming the file, the key and what was expected, with a
did-you-mean for a misspelt key. Light: yaml is imported only when a file is read.
"""

from __future__ import annotations

import difflib
import math
import os
import stat
from pathlib import Path

_UNSET = object()
MAX_YAML_BYTES = 256 << 10  # a profile or configuration is a few hundred bytes


def is_number(value) -> bool:
    """A finite int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def key_error(error: type[Exception], source: str, key: str, expected: str, got=_UNSET) -> Exception:
    """``error("SOURCE: key 'KEY': expected EXPECTED, got GOT")`` (without ", got" when not given)."""
    got_text = "" if got is _UNSET else f", got {short_repr(got)}"
    return error(f"{source}: key '{key}': expected {expected}{got_text}")


def shown(text, limit: int = 160) -> str:
    """A file name or other user text as an error message shows it: undecodable bytes as
    backslash escapes, and the middle of a long one cut out, so the message stays one short line."""
    text = os.fsdecode(text) if isinstance(text, bytes) else str(text)
    try:
        raw = text.encode("utf-8", "surrogateescape")  # back to the file system's bytes
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")
    text = raw.decode("utf-8", "backslashreplace")
    if len(text) > limit:
        keep = (limit - 1) // 2
        text = f"{text[:keep]}…{text[-keep:]}"
    return text


def short_repr(value, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters: an error message stays one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def check_keys(data: dict, known: tuple[str, ...], source: str, error: type[Exception]) -> None:
    """Raise ``error`` for the first key of ``data`` not in ``known``, suggesting the closest one."""
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
            raise error(f"{source}: unknown key {short_repr(key)}{hint}")


def _no_alias_loader():
    """A safe YAML loader that refuses aliases (``*name``): a profile never needs them, and nested
    aliases expand exponentially (a "billion laughs" document is a few hundred bytes)."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)

    return NoAliasLoader


def read_yaml_file(path: Path, error: type[Exception], what: str):
    """Parsed YAML of ``path``; raises ``error`` with a one-line message naming the file for a file
    that is missing, not a regular file (a FIFO, a device: refused before reading), larger than
    :data:`MAX_YAML_BYTES`, not UTF-8, or not valid YAML (with the line and column), and for aliases."""
    import yaml

    name = shown(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{name}: not a regular file (a {what} is a YAML file)")
        if info.st_size > MAX_YAML_BYTES:
            raise error(f"{name}: {info.st_size} bytes; a {what} file may be at most {MAX_YAML_BYTES >> 10} kB")
        with open(path, "rb") as f:
            data = f.read(MAX_YAML_BYTES + 1)  # the file may have grown since stat
        if len(data) > MAX_YAML_BYTES:
            raise error(f"{name}: a {what} file may be at most {MAX_YAML_BYTES >> 10} kB")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise error(f"{name}: {what} file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise error(f"{name}: cannot read {what}: {reason}") from None
    try:
        return yaml.load(text, Loader=_no_alias_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{name}: invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise error(f"{name}: invalid {what}: nested too deeply") from None
    except ValueError as exc:  # an integer of thousands of digits, say
        raise error(f"{name}: invalid {what}: {str(exc).splitlines()[0][:120]}") from None

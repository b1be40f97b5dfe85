"""Checking YAML documents a user wrote (array profiles, the daemon's configuration file).

One style of error everywhere: one line naming the file, the key and what was expected, with a
did-you-mean for a misspelt key. Light: yaml is imported only when a file is read.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path

_UNSET = object()


def is_number(value) -> bool:
    """A finite int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def key_error(error: type[Exception], source: str, key: str, expected: str, got=_UNSET) -> Exception:
    """``error("SOURCE: key 'KEY': expected EXPECTED, got GOT")`` (without ", got" when not given)."""
    got_text = "" if got is _UNSET else f", got {got!r}"
    return error(f"{source}: key '{key}': expected {expected}{got_text}")


def check_keys(data: dict, known: tuple[str, ...], source: str, error: type[Exception]) -> None:
    """Raise ``error`` for the first key of ``data`` not in ``known``, suggesting the closest one."""
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
            raise error(f"{source}: unknown key '{key}'{hint}")


def read_yaml_file(path: Path, error: type[Exception], what: str):
    """Parsed YAML of ``path``; unreadable files and YAML syntax errors raise ``error`` with a
    one-line message naming the file (and the line and column of a syntax error)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{path}: invalid YAML{where}: {problem}") from None

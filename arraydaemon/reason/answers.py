"""The built-in answerer: deterministic answers to the common spatial questions about a
:class:`~arraydaemon.reason.memory.SceneMemory` — where is the speaker, how many sources, left or
right, front or behind, above or below, did it move, which source is nearest a direction (a word
like "front-left" or a number of degrees), which is loudest.

Angles in degrees (REP-103: 0° ahead, +90° left), times in stream seconds.
"""

from __future__ import annotations

import re
import time

from arraydaemon.core.angles import angle_between, azimuth_difference, unit_vector, wrap_azimuth
from arraydaemon.reason.memory import MOVE_THRESHOLD_DEG, SceneMemory, SourceRecord, fmt_az, side_name

_WORD_DIRECTIONS = [  # longest phrases first
    (r"front[- ]?left|left[- ]?front|ahead (?:and|to the) left", 45.0),
    (r"front[- ]?right|right[- ]?front|ahead (?:and|to the) right", -45.0),
    (r"(?:back|rear|behind)[- ]?left|left[- ]?(?:back|rear)", 135.0),
    (r"(?:back|rear|behind)[- ]?right|right[- ]?(?:back|rear)", -135.0),
    (r"\bleft\b", 90.0),
    (r"\bright\b", -90.0),
    (r"\b(?:front|ahead|forward)\b", 0.0),
    (r"\b(?:behind|back|rear)\b", 180.0),
]
_NUMBER_DIRECTION = re.compile(  # "30°", "-30 deg", "120 degrees"
    r"([-+]?\d+(?:\.\d+)?)\s*(?:°|deg\b|degrees?\b)")


def parse_direction(text: str) -> tuple[float, str] | None:
    """Azimuth (degrees, in [-180, 180) for numbers) and a label from a phrase such as ``front-left``
    or ``-30 degrees``; None if the text names no direction."""
    m = _NUMBER_DIRECTION.search(text)
    if m:
        az = float(m.group(1))
        return wrap_azimuth(az), f"azimuth {fmt_az(az)}"
    for pattern, az in _WORD_DIRECTIONS:
        m = re.search(pattern, text)
        if m:
            return az, m.group(0)
    return None


def _source_ref(text: str, memory: SceneMemory) -> SourceRecord | None:
    """The source a question names (``#3``, ``source 3``, ``track 3``, ``id 3``), if it is remembered."""
    m = re.search(r"(?:#|\bsource\s*#?|\btrack\s*#?|\bid\s*)(\d+)", text)
    if m:
        return memory.sources.get(int(m.group(1)))
    return None


def _where(r: SourceRecord, now: float) -> str:
    """Where ``r`` is, for how long (``now`` in stream seconds), and whether it is active and moving."""
    state = "active" if r.activity >= 0.5 else f"silent for {r.silent_s:.1f} s"
    return (f"source #{r.id} is at azimuth {fmt_az(r.azimuth_deg)} ({side_name(r.azimuth_deg)}), elevation "
            f"{r.elevation_deg:.0f}°, heard for {now - r.first_t:.1f} s, {state}, {r.motion_text()}")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def answer(question: str, memory: SceneMemory) -> str:
    """A deterministic answer to a spatial question about ``memory``'s scene."""
    q = " " + question.lower().strip() + " "
    with memory._lock:  # one consistent snapshot while a listener thread keeps updating the memory
        if memory.now_t is None:
            return "I have not heard from the array yet."
        now = memory.now_t
        present = memory.present()
        target = _source_ref(q, memory)
        if target is None and re.search(r"(?:#|\bsource\s*#?|\btrack\s*#?)\d+", q):
            return "I do not know that source id. " + memory.describe()
        if target is not None and target.gone_t is not None:
            return (f"Source #{target.id} is gone: it was last at {fmt_az(target.azimuth_deg)} "
                    f"({side_name(target.azimuth_deg)}), {now - target.gone_t:.1f} s ago.")
        subjects = [target] if target else present
        amb = memory.ambiguity
        if not memory.have_tracks:
            return "No tracks are being published, only raw detections: " + memory.describe()

        if re.search(r"how many|number of|count", q):
            if not present:
                return "No sources now." + _gone_note(memory)
            listing = ", ".join(f"#{r.id} at {fmt_az(r.azimuth_deg)} ({side_name(r.azimuth_deg)})" for r in present)
            return f"{len(present)} source{'s' if len(present) != 1 else ''} now: {listing}."

        if not subjects:
            gone = memory.gone()
            if gone and re.search(r"mov|where|left|right|front|behind|back", q):
                r = gone[0]
                return (f"No sources now. The last one, #{r.id}, was at {fmt_az(r.azimuth_deg)} "
                        f"({side_name(r.azimuth_deg)}) until {now - r.gone_t:.1f} s ago.")
            return "No sources now." + _gone_note(memory)

        if re.search(r"nearest|closest|which (?:source|speaker|one|sound) is (?:at|on|to|in)", q):
            direction = parse_direction(q.split("nearest")[-1].split("closest")[-1])
            if direction is None:
                return "Nearest to which direction? Say e.g. 'front-left' or '30 degrees'."
            az, label = direction
            best = min(subjects, key=lambda r: angle_between(r.vector, unit_vector(az, 0.0)))
            off = azimuth_difference(best.azimuth_deg, az)
            return (f"Source #{best.id}, at {fmt_az(best.azimuth_deg)} ({side_name(best.azimuth_deg)}), is nearest "
                    f"to {label} ({off:.0f}° away).")

        if re.search(r"\bmov|\bmoved\b|\bstill\b|stationary|walk", q):
            parts = []
            for r in subjects:
                moved = r.moved_deg()
                if r.is_moving():
                    parts.append(f"#{r.id} is moving ({abs(r.azimuth_rate_dps):.0f}°/s "
                                 f"{'counter-clockwise' if r.azimuth_rate_dps > 0 else 'clockwise'}), now at "
                                 f"{fmt_az(r.azimuth_deg)}, {moved:.0f}° from where it was first heard "
                                 f"({fmt_az(r.history[0][1])})")
                elif moved >= MOVE_THRESHOLD_DEG:
                    parts.append(f"#{r.id} moved from {fmt_az(r.history[0][1])} to {fmt_az(r.azimuth_deg)} "
                                 f"({moved:.0f}°) and is still now")
                else:
                    parts.append(f"#{r.id} has not moved (stays at {fmt_az(r.azimuth_deg)})")
            any_moved = any(r.is_moving() or r.moved_deg() >= MOVE_THRESHOLD_DEG for r in subjects)
            return ("Yes: " if any_moved else "No: ") + "; ".join(parts) + "."

        if re.search(r"\b(?:above|below|under|overhead|up|down|height|elevation)\b", q):
            if amb == "up-down":
                return ("This planar array cannot tell above from below its plane; "
                        + "; ".join(f"#{r.id} is {abs(r.elevation_deg):.0f}° out of the plane" for r in subjects)
                        + ".")
            return _cap("; ".join(f"#{r.id} is {_height(r.elevation_deg)} the array (elevation "
                                  f"{r.elevation_deg:+.0f}°)" for r in subjects)) + "."

        if re.search(r"\bleft\b|\bright\b", q):
            parts = []
            for r in subjects:
                a = r.azimuth_deg
                if abs(a) <= 10 or abs(a) >= 170:
                    where = "neither: it is " + ("straight ahead" if abs(a) <= 10 else "straight behind")
                else:
                    where = "on the left" if a > 0 else "on the right"
                parts.append(f"#{r.id} is {where} ({fmt_az(a)})")
            return _cap("; ".join(parts)) + "."

        if re.search(r"\bfront\b|\bbehind\b|\bback\b|\bahead\b|\brear\b", q):
            if amb == "front-back":
                return ("This linear array cannot tell front from behind; "
                        + "; ".join(f"#{r.id} is at {fmt_az(r.azimuth_deg)} or its mirror image behind"
                                    for r in subjects) + ".")
            parts = []
            for r in subjects:
                a = abs(r.azimuth_deg)
                where = "in front" if a < 80 else "behind" if a > 100 else "to the side"
                parts.append(f"#{r.id} is {where} ({fmt_az(r.azimuth_deg)})")
            return _cap("; ".join(parts)) + "."

        if re.search(r"loud|quiet|strong", q):
            loud = max(subjects, key=lambda r: r.level_db)
            others = ", ".join(f"#{r.id} {r.level_db:.0f} dBFS" for r in subjects if r is not loud)
            return (f"Source #{loud.id} at {fmt_az(loud.azimuth_deg)} ({side_name(loud.azimuth_deg)}) is the loudest, "
                    f"{loud.level_db:.0f} dBFS" + (f"; {others}" if others else "") + ".")

        if re.search(r"since when|how long|when did", q):
            return "; ".join(f"#{r.id} has been heard for {now - r.first_t:.1f} s (since t={r.first_t:.1f} s, "
                             f"{time.strftime('%H:%M:%S', time.localtime(r.first_wall))})" for r in subjects) + "."

        if re.search(r"where|direction|which way|angle|azimuth|locat|position|speaker|source|talk|who", q):
            return _cap("; ".join(_where(r, now) for r in subjects)) + "."

        return "I can answer: where, how many, left/right, front/behind, did it move, nearest to a direction. " \
               + memory.describe()


def _height(elevation_deg: float) -> str:
    """``above``, ``below`` or, within ±5° of the horizontal, ``level with`` (the array)."""
    return "above" if elevation_deg > 5 else "below" if elevation_deg < -5 else "level with"


def _gone_note(memory: SceneMemory) -> str:
    """`` The last one, #N, was at ...`` for the most recently retired source, or empty."""
    gone = memory.gone()
    if not gone:
        return ""
    r = gone[0]
    return f" The last one, #{r.id}, was at {fmt_az(r.azimuth_deg)} until {memory.now_t - r.gone_t:.1f} s ago."

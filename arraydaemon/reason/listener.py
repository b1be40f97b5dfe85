"""The reasoning subscriber: a short scene memory built from the daemon's topics, and answers to
spatial questions about it (``arraydaemon reason``).

A separate process that imports only the wire module, the standard library, ``zmq`` and
``msgpack`` (no numpy, numba or torch), so it starts in a fraction of a second next to an LLM server.

- :class:`SceneMemory` keeps, from the ``tracks``, ``doa`` and ``embedding`` topics, which sources
  are present, where they are and were, since when, whether they move, and how loud they are;
  sources that were retired are remembered for ``memory_s`` seconds.
- :func:`answer` is a deterministic answerer for the common questions: where is the speaker, how
  many sources, left or right, front or behind, above or below, did it move, which source is
  nearest a direction (a word like "front-left" or a number of degrees), which is loudest.
- :func:`ask_llm` sends the question and the scene, as structured text, to any OpenAI-compatible
  ``/chat/completions`` endpoint (llama.cpp server, vLLM, Ollama) with ``urllib``; any failure is
  an :class:`LlmError` with a one-line reason, and the caller falls back to :func:`answer`.

Directions follow REP-103 (x forward, y left, z up): azimuth 0° is straight ahead, +90° left,
-90° right, ±180° behind.
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field

from arraydaemon.io import wire
from arraydaemon.core.errors import UserError

SUBSCRIBED = ("tracks", "doa", "embedding")
MOVE_THRESHOLD_DEG = 15.0  # a source "moved" when it went this far from where it was first heard
MOVING_WINDOW_S = 2.0  # ... and "is moving" when it went MOVING_MIN_DEG within the last seconds
MOVING_MIN_DEG = 8.0

SYSTEM_PROMPT = """You answer questions about the sound sources around a robot, using only the \
scene below, measured by a microphone array. Conventions (REP-103): x forward, y left, z up; \
azimuth in degrees counter-clockwise from straight ahead (0 = front, +90 = left, -90 = right, \
180 = behind); elevation in degrees up from the horizontal. Times are seconds of the audio stream. \
A source's id stays the same while it is tracked. Answer in one or two short sentences; if the \
scene cannot answer the question, say so."""


# ----------------------------------------------------------------------------------------------
# Directions


def unit_vector(azimuth_deg: float, elevation_deg: float = 0.0) -> tuple[float, float, float]:
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))


def angle_between(a, b) -> float:
    """Great-circle angle in degrees between unit vectors ``a`` and ``b``."""
    dot = sum(x * y for x, y in zip(a, b))
    return math.degrees(math.acos(max(-1.0, min(1.0, dot))))


def azimuth_difference(a: float, b: float) -> float:
    """Absolute azimuth difference in degrees, in [0, 180]."""
    return abs((a - b + 180.0) % 360.0 - 180.0)


_SECTORS = ("in front", "front-left", "to the left", "back-left", "behind", "back-right", "to the right",
            "front-right")


def side_name(azimuth_deg: float) -> str:
    """One of eight 45° sectors, e.g. ``front-left``."""
    return _SECTORS[int(((azimuth_deg + 22.5) % 360.0) // 45.0)]


def fmt_az(azimuth_deg: float) -> str:
    return f"{azimuth_deg:+.0f}°"


# ----------------------------------------------------------------------------------------------
# Scene memory


@dataclass
class SourceRecord:
    """What is remembered of one track."""

    id: int
    first_t: float  # stream time of the first detection
    first_wall: float
    last_t: float  # stream time of the latest message that listed it
    history: deque = field(default_factory=deque)  # (t, azimuth, elevation, (x, y, z))
    activity: float = 0.0
    level_db: float = -300.0
    peak_level_db: float = -300.0
    silent_s: float = 0.0
    angular_speed_dps: float = 0.0
    azimuth_rate_dps: float = 0.0
    gone_t: float | None = None  # stream time it was retired
    in_plane: bool = False  # planar array: motion is measured in azimuth (its elevation is too noisy)

    def _distance(self, a, b) -> float:
        return azimuth_difference(a[1], b[1]) if self.in_plane else angle_between(a[3], b[3])

    @property
    def azimuth_deg(self) -> float:
        return self.history[-1][1]

    @property
    def elevation_deg(self) -> float:
        return self.history[-1][2]

    @property
    def vector(self) -> tuple[float, float, float]:
        return self.history[-1][3]

    def moved_deg(self) -> float:
        """Largest angle between where it was first heard and anywhere since."""
        first = self.history[0]
        return max(self._distance(first, h) for h in self.history)

    def recent_motion_deg(self, window_s: float = MOVING_WINDOW_S) -> float:
        """Angle travelled between ``window_s`` ago (or its first position) and now."""
        now = self.history[-1][0]
        start = next((h for h in self.history if h[0] >= now - window_s), self.history[0])
        return self._distance(start, self.history[-1])

    def is_moving(self) -> bool:
        return self.recent_motion_deg() >= MOVING_MIN_DEG

    def motion_text(self) -> str:
        if self.is_moving():
            way = "counter-clockwise" if self.azimuth_rate_dps > 0 else "clockwise"
            return f"moving ({abs(self.azimuth_rate_dps):.0f}°/s {way})"
        moved = self.moved_deg()
        if moved >= MOVE_THRESHOLD_DEG:
            return f"still now (moved {moved:.0f}° since first heard at {fmt_az(self.history[0][1])})"
        return "still"


class SceneMemory:
    """Scene state from decoded wire payloads; thread-safe, no I/O."""

    def __init__(self, memory_s: float = 60.0):
        self.memory_s = float(memory_s)
        self._lock = threading.RLock()
        self.sources: dict[int, SourceRecord] = {}
        self.now_t: float | None = None  # stream time of the latest message
        self.now_wall: float | None = None
        self.received_at: float | None = None  # local monotonic time of the latest message
        self.messages = 0
        self.array = ""
        self.frame_id = ""
        self.ambiguity = "none"
        self.have_tracks = False
        self.doa: dict | None = None  # the latest doa payload
        self.embedding: dict | None = None  # model, shape, t_end of the latest embedding

    def update(self, topic: str, payload: dict) -> None:
        """Fold one decoded message into the memory (unknown topics are ignored)."""
        if topic not in SUBSCRIBED:
            return
        wire.validate(topic, payload)
        with self._lock:
            t = float(payload["t_end"])
            if self.now_t is not None and t < self.now_t - 1.0:
                self._forget_all()  # the stream restarted (a new replay, a restarted daemon)
            self.now_t = t if self.now_t is None else max(self.now_t, t)
            self.now_wall = float(payload["wall_time"])
            self.received_at = time.monotonic()
            self.messages += 1
            self.array, self.frame_id = payload["array"], payload["frame_id"]
            if topic == "tracks":
                self._update_tracks(t, payload)
            elif topic == "doa":
                self.ambiguity = payload["ambiguity"]
                self.doa = payload
            else:
                self.embedding = {"model": payload["model"], "shape": list(payload["shape"]), "t_end": t}
            self._expire()

    def _forget_all(self) -> None:
        self.sources.clear()
        self.doa = None
        self.embedding = None

    def _update_tracks(self, t: float, payload: dict) -> None:
        self.have_tracks = True
        self.ambiguity = payload["ambiguity"]
        listed = set()
        for trk in payload["tracks"]:
            tid = int(trk["id"])
            listed.add(tid)
            rec = self.sources.get(tid)
            if rec is None or rec.gone_t is not None:
                rec = SourceRecord(tid, t - float(trk["age_s"]), float(payload["wall_time"]) - float(trk["age_s"]), t,
                                   in_plane=payload["ambiguity"] == "up-down")
                self.sources[tid] = rec
            rec.last_t = t
            rec.history.append((t, float(trk["azimuth_deg"]), float(trk["elevation_deg"]),
                                (float(trk["x"]), float(trk["y"]), float(trk["z"]))))
            rec.activity = float(trk["activity"])
            rec.level_db = float(trk["level_db"])
            rec.peak_level_db = max(rec.peak_level_db, rec.level_db)
            rec.silent_s = float(trk["silent_s"])
            rec.angular_speed_dps = float(trk["angular_speed_dps"])
            rec.azimuth_rate_dps = float(trk["azimuth_rate_dps"])
        for rec in self.sources.values():
            if rec.id not in listed and rec.gone_t is None:
                rec.gone_t = t

    def _expire(self) -> None:
        horizon = self.now_t - self.memory_s
        for tid in [tid for tid, rec in self.sources.items() if rec.gone_t is not None and rec.gone_t < horizon]:
            del self.sources[tid]
        for rec in self.sources.values():
            while len(rec.history) > 1 and rec.history[0][0] < horizon:
                rec.history.popleft()

    # -- views ----------------------------------------------------------------------------

    def present(self) -> list[SourceRecord]:
        """Sources tracked now, most active (then loudest) first."""
        with self._lock:
            out = [r for r in self.sources.values() if r.gone_t is None]
        return sorted(out, key=lambda r: (-round(r.activity, 2), -r.level_db, r.id))

    def gone(self) -> list[SourceRecord]:
        """Sources retired within ``memory_s``, most recent first."""
        with self._lock:
            out = [r for r in self.sources.values() if r.gone_t is not None]
        return sorted(out, key=lambda r: -r.gone_t)

    def doa_sources(self) -> list[dict]:
        """The latest window's raw detections (used when no tracks topic is heard)."""
        with self._lock:
            return list(self.doa["sources"]) if self.doa else []

    def describe(self) -> str:
        """One line: the sources now, where, since when, moving or not, how loud."""
        with self._lock:
            if self.now_t is None:
                return "no messages yet"
            head = f"t={self.now_t:.1f}s"
            present = self.present()
            if not self.have_tracks:
                dets = self.doa_sources()
                if not dets:
                    return f"{head}: nothing detected (no tracks topic heard)"
                return f"{head}: {len(dets)} detection(s) (no tracks topic heard): " + ", ".join(
                    f"{fmt_az(d['azimuth_deg'])} {side_name(d['azimuth_deg'])}" for d in dets)
            if not present:
                text = f"{head}: no sources"
            else:
                parts = [f"#{r.id} {fmt_az(r.azimuth_deg)} {side_name(r.azimuth_deg)}, "
                         f"{'active' if r.activity >= 0.5 else f'silent {r.silent_s:.1f}s'}, {r.motion_text()}, "
                         f"{r.level_db:.0f} dB, for {self.now_t - r.first_t:.1f}s" for r in present]
                text = f"{head}: {len(present)} source{'s' if len(present) != 1 else ''}: " + "; ".join(parts)
            gone = self.gone()
            if gone:
                text += " | gone: " + ", ".join(
                    f"#{r.id} (last {fmt_az(r.azimuth_deg)}, {self.now_t - r.gone_t:.1f}s ago)" for r in gone[:3])
            return text

    def scene_text(self) -> str:
        """The scene as structured text for a language model."""
        with self._lock:
            if self.now_t is None:
                return "SCENE: no messages received from the array yet."
            wall = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.now_wall)) if self.now_wall else "?"
            amb = {"up-down": "planar array: cannot tell above from below the array plane (elevations are "
                              "reported as >= 0)",
                   "front-back": "linear array: cannot tell front from behind (directions are reported on "
                                 "the front side)"}.get(self.ambiguity, "none")
            lines = [f"SCENE at stream time {self.now_t:.2f} s ({wall} local time)",
                     f"array: {self.array} (tf frame {self.frame_id}); ambiguity: {amb}"]
            present = self.present()
            lines.append(f"sources present now: {len(present)}")
            for r in present:
                x, y, z = r.vector
                lines.append(
                    f"- source #{r.id}: azimuth {r.azimuth_deg:+.1f} deg ({side_name(r.azimuth_deg)}), elevation "
                    f"{r.elevation_deg:.1f} deg, unit vector ({x:.2f}, {y:.2f}, {z:.2f}); "
                    f"activity {r.activity:.2f} ({'active' if r.activity >= 0.5 else 'silent'}, last heard "
                    f"{r.silent_s:.1f} s ago); level {r.level_db:.1f} dBFS (peak {r.peak_level_db:.1f}); "
                    f"first heard at t={r.first_t:.2f} s ({self.now_t - r.first_t:.1f} s ago) at azimuth "
                    f"{r.history[0][1]:+.1f} deg; {r.motion_text()}; moved {r.moved_deg():.0f} deg in total; "
                    f"angular speed {r.angular_speed_dps:.1f} deg/s")
            gone = self.gone()
            lines.append(f"sources gone in the last {self.memory_s:.0f} s: {len(gone)}")
            for r in gone:
                lines.append(f"- source #{r.id}: last at azimuth {r.azimuth_deg:+.1f} deg "
                             f"({side_name(r.azimuth_deg)}), heard from t={r.first_t:.2f} s to "
                             f"t={r.gone_t:.2f} s ({self.now_t - r.gone_t:.1f} s ago)")
            if self.doa is not None:
                dets = ", ".join(f"{d['azimuth_deg']:+.1f} deg (confidence {d['confidence']:.2f})"
                                 for d in self.doa["sources"]) or "none"
                lines.append(f"latest window: level {self.doa['level_db']:.1f} dBFS, estimator "
                             f"{self.doa['estimator']}, raw detections: {dets}")
            if self.embedding is not None:
                lines.append(f"spatial embedding: model {self.embedding['model']}, shape {self.embedding['shape']}")
            return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# The built-in answerer

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
_NUMBER_DIRECTION = re.compile(r"([-+]?\d+(?:\.\d+)?)\s*(?:°|deg\b|degrees?\b)")


def parse_direction(text: str) -> tuple[float, str] | None:
    """Azimuth (degrees) and a label from a phrase such as ``front-left`` or ``-30 degrees``."""
    m = _NUMBER_DIRECTION.search(text)
    if m:
        az = float(m.group(1))
        return (az + 180.0) % 360.0 - 180.0, f"azimuth {fmt_az(az)}"
    for pattern, az in _WORD_DIRECTIONS:
        m = re.search(pattern, text)
        if m:
            return az, m.group(0)
    return None


def _source_ref(text: str, memory: SceneMemory) -> SourceRecord | None:
    m = re.search(r"(?:#|\bsource\s*#?|\btrack\s*#?|\bid\s*)(\d+)", text)
    if m:
        return memory.sources.get(int(m.group(1)))
    return None


def _where(r: SourceRecord, now: float) -> str:
    state = "active" if r.activity >= 0.5 else f"silent for {r.silent_s:.1f} s"
    return (f"source #{r.id} is at azimuth {fmt_az(r.azimuth_deg)} ({side_name(r.azimuth_deg)}), elevation "
            f"{r.elevation_deg:.0f}°, heard for {now - r.first_t:.1f} s, {state}, {r.motion_text()}")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def answer(question: str, memory: SceneMemory) -> str:
    """A deterministic answer to a spatial question about ``memory``'s scene."""
    q = " " + question.lower().strip() + " "
    with memory._lock:
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
    return "above" if elevation_deg > 5 else "below" if elevation_deg < -5 else "level with"


def _gone_note(memory: SceneMemory) -> str:
    gone = memory.gone()
    if not gone:
        return ""
    r = gone[0]
    return f" The last one, #{r.id}, was at {fmt_az(r.azimuth_deg)} until {memory.now_t - r.gone_t:.1f} s ago."


# ----------------------------------------------------------------------------------------------
# The LLM path


class LlmError(Exception):
    """The chat-completions endpoint could not answer; the message is one line."""


def chat_completions_url(base: str) -> str:
    base = base.rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


def build_messages(question: str, memory: SceneMemory) -> list[dict]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT + "\n\n" + memory.scene_text()},
        {"role": "user", "content": f"{question.strip()}\n\n(A rule-based reading of the scene, which may not "
                                    f"fit the question: {answer(question, memory)})"},
    ]


def ask_llm(question: str, memory: SceneMemory, url: str, model: str, timeout_s: float = 30.0,
            api_key: str | None = None) -> str:
    """The model's answer from an OpenAI-compatible endpoint; raises LlmError (one line)."""
    endpoint = chat_completions_url(url)
    body = json.dumps({"model": model, "messages": build_messages(question, memory), "temperature": 0.0,
                       "max_tokens": 300, "stream": False}).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = _first_line(exc.read().decode("utf-8", "replace")) if exc.fp else ""
        raise LlmError(f"{endpoint}: HTTP {exc.code} {exc.reason}" + (f" ({detail[:120]})" if detail else "")) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            raise LlmError(f"{endpoint}: no answer within {timeout_s:g} s") from None
        raise LlmError(f"{endpoint}: cannot connect ({getattr(reason, 'strerror', None) or reason})") from None
    except TimeoutError:
        raise LlmError(f"{endpoint}: no answer within {timeout_s:g} s") from None
    except (OSError, ValueError) as exc:
        raise LlmError(f"{endpoint}: {_first_line(str(exc)) or type(exc).__name__}") from None
    try:
        data = json.loads(raw)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        start = _first_line(raw[:80].decode("utf-8", "replace"))
        raise LlmError(f"{endpoint}: not a chat-completions response ({start!r})") from None
    if not isinstance(content, str) or not content.strip():
        raise LlmError(f"{endpoint}: empty answer")
    return " ".join(content.split())


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""


# ----------------------------------------------------------------------------------------------
# Subscribing


class SceneListener:
    """A SUB socket feeding a SceneMemory; ``pump`` for a while, or ``start`` a background thread."""

    def __init__(self, endpoint: str, memory: SceneMemory):
        import zmq

        self.endpoint = endpoint
        self.memory = memory
        self._zmq = zmq
        self._ctx = zmq.Context.instance()
        self.socket = self._ctx.socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVHWM, 10000)
        try:
            self.socket.connect(endpoint)
        except zmq.ZMQError as exc:
            self.socket.close()
            raise UserError(f"cannot connect to {endpoint}: {exc.strerror}") from None
        for topic in SUBSCRIBED:
            self.socket.setsockopt(self._zmq.SUBSCRIBE, topic.encode())
        self.malformed = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def pump(self, seconds: float) -> int:
        """Receive for ``seconds`` (or until stopped); returns the number of messages."""
        deadline = time.monotonic() + seconds
        count = 0
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not self.socket.poll(int(min(left, 0.2) * 1000) + 1):
                continue
            while True:  # drain what is queued
                try:
                    frames = self.socket.recv_multipart(self._zmq.NOBLOCK)
                except self._zmq.Again:
                    break
                try:
                    self.memory.update(*wire.decode(frames))
                    count += 1
                except wire.WireError as exc:
                    self.malformed += 1
                    self.last_error = str(exc)
        return count

    def wait_first(self, seconds: float) -> bool:
        """Receive until the first message or ``seconds``; True if something arrived."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.memory.messages == 0:
            self.pump(min(0.2, max(0.0, deadline - time.monotonic())))
        return self.memory.messages > 0

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: self.pump(float("inf")), daemon=True, name="scene-listener")
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.socket.close()


# ----------------------------------------------------------------------------------------------
# The command


@dataclass
class LlmSettings:
    url: str
    model: str
    timeout_s: float
    api_key: str | None = None


def respond(question: str, memory: SceneMemory, llm: LlmSettings | None, err=sys.stderr) -> tuple[str, str]:
    """(answer, origin) with origin ``llm`` or ``built-in``; an LLM failure is one line on ``err``."""
    if llm is not None:
        try:
            return ask_llm(question, memory, llm.url, llm.model, llm.timeout_s, llm.api_key), "llm"
        except LlmError as exc:
            print(f"arraydaemon: llm error: {exc}; answering with the built-in answerer", file=err, flush=True)
    return answer(question, memory), "built-in"


def check_llm_url(url: str) -> str:
    if not re.match(r"^https?://[^/\s]+", url or ""):
        raise UserError(f"--llm-url {url!r}: expected http://HOST:PORT/v1 (an OpenAI-compatible server)")
    return url


def run(endpoint: str, *, asks: list[str], describe: bool, listen_s: float, wait_s: float, duration_s: float | None,
        llm: LlmSettings | None, memory_s: float, as_json: bool, out=sys.stdout) -> int:
    """``arraydaemon reason``: see the module docstring and ``--help``."""
    memory = SceneMemory(memory_s)
    listener = SceneListener(endpoint, memory)

    def emit(question: str, text: str, origin: str) -> None:
        if as_json:
            print(json.dumps({"question": question, "answer": text, "origin": origin, "t": memory.now_t,
                              "sources": len(memory.present())}), file=out, flush=True)
        else:
            print(text, file=out, flush=True)

    try:
        if asks:
            if not listener.wait_first(wait_s):
                if listener.malformed:
                    raise UserError(f"{endpoint}: {listener.malformed} unreadable message(s) in {wait_s:g} s, e.g. "
                                    f"{listener.last_error}")
                raise UserError(f"no messages from {endpoint} within {wait_s:g} s; is the daemon publishing there "
                                "(arraydaemon run/replay --endpoint ...)?")
            listener.pump(listen_s)
            for question in asks:
                text, origin = respond(question, memory, llm)
                emit(question, text, origin)
            return 0
        if describe:
            start = time.monotonic()
            while duration_s is None or time.monotonic() - start < duration_s:
                listener.pump(1.0)
                stale = "" if memory.received_at is None or time.monotonic() - memory.received_at < 2.0 else \
                    f" (no message for {time.monotonic() - memory.received_at:.0f} s)"
                line = memory.describe() if memory.messages else f"waiting for messages from {endpoint}"
                print(line + stale, file=out, flush=True)
            return 0
        return _interactive(listener, memory, llm, emit, endpoint)
    finally:
        listener.close()


def _interactive(listener: SceneListener, memory: SceneMemory, llm, emit, endpoint: str) -> int:
    listener.start()
    print(f"listening on {endpoint}; ask about the scene ('quit' to leave, empty line for a description)",
          file=sys.stderr, flush=True)
    while True:
        try:
            question = input("question> ")
        except EOFError:
            return 0
        question = question.strip()
        if question.lower() in ("quit", "exit", "q"):
            return 0
        if not question:
            print(memory.describe(), flush=True)
            continue
        text, origin = respond(question, memory, llm)
        emit(question, text, origin)


def cli_main(args) -> int:
    """Entry point of ``arraydaemon reason`` (arguments defined in ``cli.build_parser``)."""
    import os

    endpoint = args.endpoint_opt or args.endpoint or wire.DEFAULT_ENDPOINT
    if "://" not in endpoint:
        raise UserError(f"endpoint {endpoint!r}: expected tcp://HOST:PORT or ipc://PATH")
    url = args.llm_url or os.environ.get("ARRAYDAEMON_LLM_URL") or None
    llm = None
    if url:
        model = args.llm_model or os.environ.get("ARRAYDAEMON_LLM_MODEL")
        if not model:
            raise UserError("--llm-url needs --llm-model (or $ARRAYDAEMON_LLM_MODEL): the model name the server "
                            "serves, e.g. `ollama list`, or any name for llama.cpp's server")
        llm = LlmSettings(check_llm_url(url), model, args.llm_timeout, os.environ.get("ARRAYDAEMON_LLM_API_KEY"))
    return run(endpoint, asks=args.ask or [], describe=args.describe, listen_s=args.listen_seconds,
               wait_s=args.wait_seconds, duration_s=args.duration, llm=llm, memory_s=args.memory_seconds,
               as_json=args.json)

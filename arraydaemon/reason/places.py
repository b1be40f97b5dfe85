"""Answers with places: the built-in answerer when ``reason`` listens to ``arraydaemon fuse``.

Fuse's ``positions`` give each talker two or more arrays agree on a point in the room frame (x, y
on the floor, z up, metres; for at most 1.5 s after the last such fix a position may be held on one
array's bearing, ``bearing_only``, and the answers say so) and its ``room`` topic the room's named
landmarks (the room file's ``landmarks``: a door, a table). So these answers speak in metres and landmarks:

- a question naming a landmark ("Who is near the door?", "Where is the talker near the table?",
  "Is anyone near the window?") gets the talker nearest to it first, with its position and its
  floor distance from the landmark; a yes/no one "Yes" when someone is within :data:`NEAR_M`;
- "How far apart are they?" (in metres, on the floor) for two placed talkers, every pair for more;
- counts, where, moving (a floor speed of :data:`MOVING_MPS` or more), started and stopped, from
  the position tracks;
- sides, front or behind, above or below, nearest a direction: these ask for directions from one
  array, which positions in a room do not give: "I can't tell", with the places.

A talker only one array hears has no place (fuse publishes a bearing, never a point): the answers
say how many such bearings there are rather than guess. Pure Python, like the rest of
``arraydaemon.reason``.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace

from arraydaemon.reason.memory import PlaceRecord, SceneMemory
from arraydaemon.reason.questions import Question

NEAR_M = 1.5  # "near" a landmark: within this floor distance
MOVING_MPS = 0.25  # a floor speed from this up is walking
MOVED_M = 0.5  # ... or this far in the last 2 s
CANT_TELL = "I can't tell"
_IDS = re.compile(r"(?:#|\bsource\s*#?|\bposition\s*#?|\bspeaker\s*#|\btalker\s*#|\bid\s*)(\d+)")


def landmark_named(text: str, landmarks: list[dict]) -> dict | None:
    """The landmark whose name the question mentions (the longest name first), or None."""
    q = " ".join(text.lower().replace("?", " ").split())
    for mark in sorted(landmarks, key=lambda m: -len(m["name"])):
        if re.search(rf"(?<!\w){re.escape(mark['name'].lower())}(?!\w)", q):
            return mark
    return None


_PLACE_PHRASE = re.compile(r"\b(?:near|nearest|closest|next|by|beside|at)\s+(?:to\s+)?the\s+([a-z][\w-]*)")
_NOT_PLACES = {"left", "right", "front", "back", "rear", "array", "robot", "middle", "centre", "center", "same"}


def unknown_place(text: str) -> str | None:
    """A place the question names ("near the window") that is not a direction word, or None."""
    m = _PLACE_PHRASE.search(" ".join(text.lower().replace("?", " ").split()))
    return m.group(1) if m and m.group(1) not in _NOT_PLACES else None


def floor_distance(a, b) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _held(r: PlaceRecord) -> str:
    """What a position held on one array's bearing (fuse's ``bearing_only``) is: not a two-array fix."""
    return f" (held on {r.arrays[0]}'s bearing, range not measured)" if r.bearing_only and r.arrays else ""


def _at(r: PlaceRecord) -> str:
    return f"#{r.id} at ({r.xy[0]:.1f}, {r.xy[1]:.1f}) m{_held(r)}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _nearest_landmark(r: PlaceRecord, memory: SceneMemory) -> str:
    marks = memory.landmarks()
    if not marks:
        return ""
    mark = min(marks, key=lambda m: floor_distance(r.xy, m["position"]))
    return f", {floor_distance(r.xy, mark['position']):.1f} m from the {mark['name']}"


def _single_note(memory: SceneMemory) -> str:
    n = len(memory.bearings)
    if not n:
        return ""
    arrays = sorted({b["array"] for b in memory.bearings})
    return (f" {n} more direction{'s' if n != 1 else ''} heard by one array only ({', '.join(arrays)}): "
            "a bearing, no place.")


def _is_moving(r: PlaceRecord) -> bool:
    return r.speed_mps >= MOVING_MPS or r.moved_m() >= MOVED_M


_YES_NO = re.compile(r"^\s*(?:is|are|was|were|does|do|did|has|have|can|could|will|any\b|anyone|anybody|someone|"
                     r"somebody)\b")


def answer_places(q: Question, memory: SceneMemory) -> str:
    """The answer to ``q`` from ``memory``'s places (module doc); call with ``memory._lock`` held."""
    now = memory.now_t
    if q.kind in ("where", "nearest", "unknown") and not q.yes_no and _YES_NO.match(q.text.lower()):
        q = replace(q, yes_no=True)  # "Is there a talker near the door?": a yes or a no
    places = memory.present_places()
    mark = landmark_named(q.text, memory.landmarks())
    if q.kind == "count":
        if not places:
            return "0: nobody is placed in the room now." + _single_note(memory)
        return f"{len(places)}: " + _and([_at(r) + _nearest_landmark(r, memory) for r in places]) + "." + \
            _single_note(memory)
    if q.kind in ("started", "stopped"):
        return _started_stopped(q, memory)
    if not places:
        no = "No: " if q.yes_no else ""
        gone = memory.gone_places()
        last = f" The last one, #{gone[0].id}, was at ({gone[0].xy[0]:.1f}, {gone[0].xy[1]:.1f}) m " \
               f"{now - gone[0].gone_t:.1f} s ago." if gone else ""
        return no + "nobody is placed in the room now." + last + _single_note(memory)
    if mark is not None:
        return _near(q, memory, places, mark)
    other = unknown_place(q.text)
    if other is not None:
        names = ", ".join(m["name"] for m in memory.landmarks())
        return (f"{CANT_TELL}: I do not know where the {other} is (" +
                (f"the room file names {names}" if names else "the room file names no landmarks") +
                "); " + _and([_at(r) + _nearest_landmark(r, memory) for r in places]) + ".")
    if q.kind == "angle":
        return _apart(q, places)
    if q.kind in ("moving", "moved"):
        moving = [r for r in places if _is_moving(r)]
        parts = [f"#{r.id} is walking ({r.speed_mps:.1f} m/s), now at ({r.xy[0]:.1f}, {r.xy[1]:.1f}) m" for r in moving]
        parts += [f"#{r.id} is standing at ({r.xy[0]:.1f}, {r.xy[1]:.1f}) m" for r in places if r not in moving]
        if not q.yes_no:
            return "; ".join(parts)[:1].upper() + "; ".join(parts)[1:] + "."
        still = " still" in f" {q.text.lower()}" or "standing" in q.text.lower() or "stationary" in q.text.lower()
        ok = (len(moving) < len(places)) if still else bool(moving)
        return ("Yes: " if ok else "No: ") + "; ".join(parts) + "."
    if q.kind in ("sides", "front-back", "above-below", "nearest", "loudest"):
        return (f"{CANT_TELL}: these are places in the room (from arraydaemon fuse), not directions from one "
                "array; " + _and([_at(r) + _nearest_landmark(r, memory) for r in places]) + "." +
                (" Name a landmark (" + ", ".join(m["name"] for m in memory.landmarks()) + ") to ask who is nearest it."
                 if memory.landmarks() else ""))
    return "; ".join(f"#{r.id} is at ({r.xy[0]:.2f}, {r.xy[1]:.2f}) m (±{r.sigma_m:.2f} m){_held(r)}{_nearest_landmark(r, memory)}"
                     f", {'walking' if _is_moving(r) else 'standing'}, placed for {now - r.first_t:.1f} s"
                     for r in places) + "." + _single_note(memory)


def _near(q: Question, memory: SceneMemory, places: list[PlaceRecord], mark: dict) -> str:
    name = mark["name"]
    ranked = sorted(places, key=lambda r: floor_distance(r.xy, mark["position"]))
    dist = [floor_distance(r.xy, mark["position"]) for r in ranked]
    near = [r for r, d in zip(ranked, dist) if d <= NEAR_M]
    if q.yes_no:
        if near:
            return "Yes: " + _and([f"{_at(r)} is {d:.1f} m from the {name}" for r, d in zip(ranked, dist) if r in near]) + "."
        return f"No: nobody is within {NEAR_M:g} m of the {name}; the nearest, {_at(ranked[0])}, is {dist[0]:.1f} m from it."
    best = ranked[0]
    text = f"#{best.id}, at ({best.xy[0]:.2f}, {best.xy[1]:.2f}) m, is nearest to the {name} ({dist[0]:.1f} m from it)"
    if len(ranked) > 1:
        text += "; then " + _and([f"#{r.id} ({d:.1f} m)" for r, d in zip(ranked[1:], dist[1:])])
    if not near:
        text += f"; nobody is within {NEAR_M:g} m of it"
    return text + "."


def _apart(q: Question, places: list[PlaceRecord]) -> str:
    asked = [int(m.group(1)) for m in _IDS.finditer(q.text.lower())]
    chosen = [r for r in places if r.id in asked]
    subjects = chosen if len(chosen) >= 2 else places
    if len(subjects) < 2:
        return f"Only one talker is placed now ({_at(subjects[0])}): there is no distance between two."
    if len(subjects) == 2:
        a, b = subjects
        return f"About {floor_distance(a.xy, b.xy):.1f} m apart on the floor: {_at(a)} and {_at(b)}."
    pairs = [(floor_distance(a.xy, b.xy), a, b) for i, a in enumerate(subjects) for b in subjects[i + 1:]]
    return (f"{len(subjects)} talkers are placed; on the floor: " +
            "; ".join(f"#{a.id} and #{b.id} {d:.1f} m apart" for d, a, b in pairs) + ".")


def _started_stopped(q: Question, memory: SceneMemory) -> str:
    now = memory.now_t
    if q.kind == "stopped":
        gone = memory.gone_places()
        if not gone:
            places = memory.present_places()
            return ("No: " if q.yes_no else "Nobody has stopped: ") + (
                "every placed talker is still placed (" + _and([_at(r) for r in places]) + ")." if places
                else "nobody has been placed.")
        return ("Yes: " if q.yes_no else "") + "; ".join(
            f"#{r.id} was last placed {now - r.gone_t:.1f} s ago, at ({r.xy[0]:.1f}, {r.xy[1]:.1f}) m"
            f"{_nearest_landmark(r, memory)}" for r in gone) + "."
    heard = sorted(list(memory.places.values()), key=lambda r: r.first_t)
    if not heard:
        return ("No: " if q.yes_no else "") + "nobody has been placed."
    start = heard[0].first_t
    late = [r for r in heard if r.first_t - start >= 1.0]
    if not late:
        return ("No: " if q.yes_no else "Nobody started later than the others: ") + \
            _and([_at(r) for r in heard]) + f" {'have' if len(heard) > 1 else 'has'} been placed from the start."
    if q.yes_no:
        return "Yes: " + _and([f"{_at(r)} was first placed {now - r.first_t:.1f} s ago" for r in late]) + "."
    last = heard[-1]
    return f"#{last.id} was placed last, {now - last.first_t:.1f} s ago; it is at ({last.xy[0]:.1f}, {last.xy[1]:.1f}) m."


"""Questions from the truth of a scene, what their answers should be, whether the tracks allowed
that answer, and whether an answer (any text, the built-in answerer's or a model's) gives it.

A question is asked only where its truth is clear: a talker within a few degrees of a side's border,
a walk too short to call, a silence too short to call "stopped" leave that question out. The truth
respects the array: where the array cannot tell (reason/geometry.py: a planar array across its plane,
a linear array around its axis), the right answer is "I can't tell".

"The tracks were right" for a question means the scene snapshot the answer was given from (``reason
--json``'s ``scene``: the tracks as the subscriber saw them) leads, read with the built-in answerer's
own rules, to the true answer; so "answer right given tracks right" is the answerer's own accuracy.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from arraydaemon.core.angles import angle_between, azimuth_difference, unit_vector
from arraydaemon.reason import geometry
from arraydaemon.reason.geometry import ArrayView
from arraydaemon.reason.memory import BRIEF_S
from arraydaemon.research.tracking.scenes import ACTIVITY_FRAME_S, TrackingScene

PRESENT_S = 1.5  # spoke within this long: present (the tracker's max_silence_s)
GONE_S = 2.5  # silent this long: its track is retired
SIDE_MARGIN_DEG = 8.0  # the truth of a side question is clear this far either side of its 10° border
DIRECTION_TOL_DEG = 20.0
ANGLE_TOL_DEG = 15.0

PHRASINGS = {
    "count": ["How many people are talking?", "How many sources are there?", "How many talkers can you hear?",
              "Count the speakers."],
    "sides": ["Is anyone on your {side}?", "Is there someone to your {side}?", "Is anybody on the {side} side?",
              "Anyone to the {side}?"],
    "front": ["Is someone in front of you?", "Is anybody ahead of you?", "Is there a person in front of the robot?"],
    "behind": ["Is anyone behind you?", "Is somebody behind the robot?", "Is there anyone at your back?"],
    "above": ["Is anyone above you?", "Is someone above the array?", "Is there a source overhead?"],
    "below": ["Is anyone below you?", "Is someone below the array?", "Is there a source underneath?"],
    "moving": ["Is anyone walking?", "Is anybody moving?", "Is someone walking around?", "Is anyone moving right now?"],
    "moved": ["Did anyone move?", "Has anybody moved?", "Did anyone change position?"],
    "nearest": ["Who is nearest to the {dir}?", "Which speaker is closest to the {dir}?", "Which source is nearest {dir}?"],
    "started-yn": ["Did anyone start talking after the others?", "Did someone new start talking?",
                   "Has anybody joined in later?"],
    "started": ["Who started talking last?", "Which speaker began talking most recently?", "Who joined last?"],
    "stopped-yn": ["Did anyone stop talking?", "Has anybody gone quiet?", "Did someone stop speaking?"],
    "stopped": ["Who stopped talking?", "Which speaker went quiet?", "Where was the talker who stopped?"],
    "angle": ["What is the angle between the two talkers?", "How far apart are the two speakers?",
              "How many degrees apart are the two voices?"],
}
DIRECTIONS = [("front", 0.0), ("left", 90.0), ("right", -90.0), ("front-left", 45.0), ("front-right", -45.0),
              ("back-left", 135.0), ("back-right", -135.0), ("30 degrees", 30.0), ("-120 degrees", -120.0)]
# reported as
GROUPS = {"count": "counting", "sides": "sides", "front": "front / behind", "behind": "front / behind",
          "above": "above / below", "below": "above / below", "moving": "moving", "moved": "moving",
          "nearest": "nearest a direction", "started-yn": "started talking", "started": "started talking",
          "stopped-yn": "stopped talking", "stopped": "stopped talking", "angle": "angle between two",
          # places (research/reasoning/places.py: daemons -> fuse -> reason)
          "room-count": "places: counting", "near-yn": "places: anyone near a landmark",
          "near-who": "places: who is nearest a landmark", "apart-m": "places: how far apart (m)"}
YES_NO_GROUPS = ("sides", "front / behind", "above / below")


@dataclass
class Item:
    """One question: ``key`` its kind (a key of :data:`PHRASINGS`), ``expect`` the true answer
    (``yes``/``no``/``cant`` for yes/no questions, an int for counts, a unit vector for "who",
    degrees for angles; a tuple ``(degrees, ambiguous)`` for a linear array's angle)."""

    scene: str
    key: str
    text: str
    expect: object
    params: dict = field(default_factory=dict)

    @property
    def group(self) -> str:
        return GROUPS[self.key]

    @property
    def yes_no(self) -> bool:
        return self.key in ("sides", "front", "behind", "above", "below", "moving", "moved", "started-yn", "stopped-yn",
                            "near-yn")


class Truth:
    """The true state of ``scene`` at stream time ``t`` as the array ``view`` can know it."""

    def __init__(self, scene: TrackingScene, view: ArrayView, t: float):
        self.scene, self.view, self.t = scene, view, t
        frames = scene.speaking
        self.onset = [float(np.flatnonzero(f)[0] * ACTIVITY_FRAME_S) if f.any() else math.inf for f in frames]
        hi = int(t / ACTIVITY_FRAME_S)
        self.last = [float((np.flatnonzero(f[:hi])[-1] + 1) * ACTIVITY_FRAME_S) if f[:hi].any() else -math.inf
                     for f in frames]
        self.heard = [k for k in range(scene.talkers) if self.onset[k] <= t - 0.5]
        self.present = [k for k in self.heard if self.last[k] >= t - PRESENT_S]
        self.gone = [k for k in self.heard if self.last[k] < t - GONE_S]
        self.unclear = [k for k in self.heard if k not in self.present and k not in self.gone]

    def vec(self, k: int, t: float | None = None) -> tuple:
        return tuple(float(v) for v in self.scene.directions_at(self.t if t is None else t)[k])

    def motion(self, a, b) -> float:
        """Degrees the array can see between directions ``a`` and ``b``."""
        if self.view.kind == "planar":
            return abs(azimuth_difference(_az(a), _az(b)))
        if self.view.kind == "linear":
            return self.view.distance_deg(a, b)
        return angle_between(a, b)


def _az(v) -> float:
    return math.degrees(math.atan2(v[1], v[0]))


def talker_side(view: ArrayView, v, side: str) -> str | None:
    """``yes``/``no``/``cant`` for one direction, None when too near the border to call."""
    k, _ = geometry.SIDES[side]
    if view.kind == "planar" and view.normal is not None and abs(view.normal[k]) > 0.9:
        return "cant"
    lo, hi = math.sin(math.radians(10 - SIDE_MARGIN_DEG)), math.sin(math.radians(10 + SIDE_MARGIN_DEG))
    sure = [geometry.on_side(c, side, hi) for c in view.candidates(v)]
    maybe = [geometry.on_side(c, side, lo) for c in view.candidates(v)]
    if all(sure):
        return "yes"
    if not any(maybe):
        return "no"
    if any(sure) and not all(maybe):
        return "cant"
    return None


def combine_any(verdicts: list[str | None]) -> str | None:
    if "yes" in verdicts:
        return "yes"
    if None in verdicts:
        return None
    return "cant" if "cant" in verdicts else "no"


def make_questions(scene: TrackingScene, view: ArrayView, t: float, rng: np.random.Generator) -> list[Item]:
    """The questions whose truth is clear in ``scene`` at ``t`` (one phrasing of each, drawn by ``rng``)."""
    tr = Truth(scene, view, t)
    out: list[Item] = []

    def add(key: str, expect, **params) -> None:
        text = str(rng.choice(PHRASINGS[key])).format(**params)
        out.append(Item(scene.name, key, text, expect, params))

    if not tr.unclear:
        add("count", len(tr.present))
    if not tr.present:
        return out
    for side in ("left", "right"):
        verdict = combine_any([talker_side(view, tr.vec(k), side) for k in tr.present])
        if verdict is not None:
            add("sides", verdict, side=side)
    for side in ("front", "behind", "above", "below"):
        verdict = combine_any([talker_side(view, tr.vec(k), side) for k in tr.present])
        if verdict is not None:
            add(side, verdict)
    recent = [tr.motion(tr.vec(k, t - 2.0), tr.vec(k)) for k in tr.present]
    if max(recent) >= 20.0 or max(recent) < 3.0:
        add("moving", "yes" if max(recent) >= 20.0 else "no")
    total = [max(tr.motion(tr.vec(k, tr.onset[k]), tr.vec(k, s)) for s in np.arange(tr.onset[k], t + 1e-6, 0.1))
             for k in tr.present]
    if max(total) >= 30.0 or max(total) < 5.0:
        add("moved", "yes" if max(total) >= 30.0 else "no")
    if len(tr.present) >= 2:
        for idx in rng.choice(len(DIRECTIONS), size=2, replace=False):
            label, az = DIRECTIONS[int(idx)]
            target = unit_vector(az, 0.0)
            true = sorted(tr.present, key=lambda k: angle_between(tr.vec(k), target))
            seen = sorted(tr.present, key=lambda k: view.distance_deg(tr.vec(k), target))
            gap_true = angle_between(tr.vec(true[1]), target) - angle_between(tr.vec(true[0]), target)
            gap_seen = view.distance_deg(tr.vec(seen[1]), target) - view.distance_deg(tr.vec(seen[0]), target)
            if true[0] == seen[0] and gap_true >= 20.0 and gap_seen >= 20.0:
                add("nearest", tr.vec(true[0]), dir=label)
    first = min(tr.onset[k] for k in tr.heard)
    late = [k for k in tr.heard if tr.onset[k] - first >= 1.5 and k in tr.present]
    early = all(tr.onset[k] - first <= 0.4 for k in tr.heard)
    if late or early:
        add("started-yn", "yes" if late else "no")
    if len(late) == 1 and all(tr.onset[k] <= tr.onset[late[0]] - 1.0 for k in tr.heard if k != late[0]):
        add("started", tr.vec(late[0]))
    stopped = [k for k in tr.gone]
    if stopped or all(tr.last[k] >= t - 0.8 for k in tr.heard):
        add("stopped-yn", "yes" if stopped else "no")
    if len(stopped) == 1:
        add("stopped", tr.vec(stopped[0], tr.last[stopped[0]]))
    if len(tr.present) == 2 and not tr.gone:
        a, b = (tr.vec(k) for k in tr.present)
        if view.kind == "3d":
            add("angle", (angle_between(a, b), False))
        elif view.kind == "planar":
            add("angle", (abs(azimuth_difference(_az(a), _az(b))), False))
        else:
            same = abs(azimuth_difference(_az(a), _az(b)))
            mirrored = _linear_mirror(view, b)
            crossed = abs(azimuth_difference(_az(a), mirrored)) if mirrored is not None else same
            add("angle", (same, abs(crossed - same) > 10.0))
    return out


def _linear_mirror(view: ArrayView, v) -> float | None:
    if view.axis is None or math.hypot(view.axis[0], view.axis[1]) < 0.5:
        return None
    return 2 * math.degrees(math.atan2(view.axis[1], view.axis[0])) - _az(v)


# -- what an answer says -----------------------------------------------------------------------

_CANT = re.compile(r"\b(?:i )?(?:can ?not|can't|cannot|could not|couldn't|unable to) (?:tell|say|determine|know)\b|"
                   r"\bnot (?:possible|sure)\b|\bunknown\b|\bambiguous\b")
_NUMBER_WORDS = {"no one": 0, "nobody": 0, "none": 0, "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
                 "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "a single": 1, "only one": 1}
_DEG = re.compile(r"([-+]?\d+(?:\.\d+)?)\s*(?:°|deg\b|degrees?\b)")


def said_verdict(text: str) -> str | None:
    """``yes``, ``no`` or ``cant`` as the answer's first word says (else its first such word), or None."""
    t = text.lower().strip()
    if re.match(r"^(?:i can't tell|i cannot tell|i can not tell|can't tell|cannot tell)", t):
        return "cant"
    m = re.match(r"^\W*(yes|no)\b", t)
    if m:
        return m.group(1)
    hits = [(m.start(), "cant") for m in _CANT.finditer(t)] + \
        [(m.start(), m.group(1)) for m in re.finditer(r"\b(yes|no)\b", t)]
    return min(hits)[1] if hits else None


def said_count(text: str) -> int | None:
    t = text.lower()
    hits = [(m.start(), int(m.group(0))) for m in re.finditer(r"\b\d+\b(?!\s*(?:°|deg|s\b|\.\d))", t)]
    hits += [(m.start(), v) for w, v in _NUMBER_WORDS.items() for m in re.finditer(rf"\b{w}\b", t)]
    return min(hits)[1] if hits else None


def said_direction(text: str, snapshot: dict) -> tuple | None:
    """The direction an answer points at: the first source id it names (its direction in the
    snapshot), else its first angle in degrees (as an azimuth)."""
    sources = {s["id"]: s for s in snapshot.get("present", []) + snapshot.get("gone", [])}
    for m in re.finditer(r"(?:#|\bsource\s*#?|\bspeaker\s*#?|\btrack\s*#?)(\d+)", text.lower()):
        if int(m.group(1)) in sources:
            return tuple(sources[int(m.group(1))]["vector"])
    m = _DEG.search(text)
    return unit_vector(float(m.group(1)), 0.0) if m else None


def said_angles(text: str) -> list[float]:
    return [abs(float(m.group(1))) for m in _DEG.finditer(text)]


def answer_right(item: Item, text: str, snapshot: dict, view: ArrayView) -> bool:
    """Whether ``text`` gives ``item``'s true answer."""
    if item.yes_no:
        return said_verdict(text) == item.expect
    if item.key == "count":
        return said_count(text) == item.expect
    if item.key in ("nearest", "started", "stopped"):
        got = said_direction(text, snapshot)
        return got is not None and view.distance_deg(got, item.expect) <= DIRECTION_TOL_DEG
    if item.key == "angle":
        degrees, ambiguous = item.expect
        near = any(abs(a - degrees) <= ANGLE_TOL_DEG for a in said_angles(text))
        return near and (not ambiguous or said_verdict(text) == "cant" or bool(_CANT.search(text.lower())))
    raise ValueError(item.key)


# -- did the tracks allow it -------------------------------------------------------------------


def tracks_right(item: Item, snapshot: dict, view: ArrayView) -> bool:
    """Whether the tracks in ``snapshot``, read with the built-in answerer's rules, give ``item``'s answer."""
    present, gone = snapshot.get("present", []), snapshot.get("gone", [])
    if item.key == "count":
        return len(present) == item.expect
    side = item.params.get("side", item.key)
    if item.key in ("sides", "front", "behind", "above", "below"):
        if not present:
            return item.expect == "no"
        verdicts = [geometry.side_verdict(view, s["vector"], side) for s in present]
        got = "yes" if any(v is True for v in verdicts) else "cant" if None in verdicts else "no"
        return got == item.expect
    if item.key == "moving":
        return any(s["moving"] for s in present) == (item.expect == "yes")
    if item.key == "moved":
        return any(s["moving"] or s["moved_deg"] >= 15.0 for s in present) == (item.expect == "yes")
    if item.key == "nearest":
        if not present:
            return False
        target = unit_vector(DIRECTIONS[[d for d, _ in DIRECTIONS].index(item.params["dir"])][1], 0.0)
        best = min(present, key=lambda s: view.distance_deg(s["vector"], target))
        return view.distance_deg(best["vector"], item.expect) <= DIRECTION_TOL_DEG
    # the answerer's rules: a retired track another took over is that talker (not a stop, not a start),
    # and tracks heard only for a moment are left out
    def start(s: dict) -> float:
        return s.get("talker_t", s["first_t"])
    heard = [s for s in present + gone if s.get("continued_by") is None
             and (s["gone_t"] if s["gone_t"] is not None else snapshot["t"]) - start(s) >= BRIEF_S]
    if item.key in ("started-yn", "started"):
        if not heard:
            return False
        first = min(start(s) for s in heard)
        late = [s for s in heard if start(s) - first >= 1.0]
        if item.key == "started-yn":
            return bool(late) == (item.expect == "yes")
        last = max(heard, key=start)
        return bool(late) and view.distance_deg(last["vector"], item.expect) <= DIRECTION_TOL_DEG
    if item.key in ("stopped-yn", "stopped"):
        stopped = [s for s in gone + present if s in heard and (s["gone_t"] is not None or s["silent_s"] >= 1.0)]
        if item.key == "stopped-yn":
            return bool(stopped) == (item.expect == "yes")
        return any(view.distance_deg(s["vector"], item.expect) <= DIRECTION_TOL_DEG for s in stopped)
    if item.key == "angle":
        if len(present) != 2:
            return False
        a, b = present[0]["vector"], present[1]["vector"]
        got = angle_between(a, b) if view.kind == "3d" else abs(azimuth_difference(_az(a), _az(b)))
        return abs(got - item.expect[0]) <= ANGLE_TOL_DEG
    raise ValueError(item.key)

"""What a spatial question asks: a small parser of the phrasings people use (no LLM).

:func:`parse` returns a :class:`Question`: its ``kind`` (one of :data:`KINDS`, or ``unknown``),
whether it wants a yes or a no, whom it is about (a source id, anyone, everyone, or the sources in
general), the side it names and the direction it names. The built-in answerer answers every kind
but ``unknown``; with an LLM configured, ``unknown`` questions go to the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from arraydaemon.core.angles import wrap_azimuth

KINDS = ("count", "started", "stopped", "angle", "nearest", "moving", "moved", "sides", "front-back", "above-below",
         "loudest", "since", "where")

_YES_NO = re.compile(r"^\s*(?:is|are|was|were|does|do|did|has|have|can|could|will|any\b|anyone|anybody|someone|"
                     r"somebody)\b")
_ANY = re.compile(r"\b(?:any|anyone|anybody|someone|somebody|something|anything|a (?:person|speaker|talker|source|"
                  r"voice|sound))\b")
_ALL = re.compile(r"\b(?:everyone|everybody|all|every (?:one|source|speaker|talker))\b")
_REF = re.compile(r"(?:#|\bsource\s*#?|\btrack\s*#?|\bspeaker\s*#|\btalker\s*#|\bid\s*)(\d+)")

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
_NUMBER_DIRECTION = re.compile(r"([-+]?\d+(?:\.\d+)?)\s*(?:°|deg\b|degrees?\b)")  # "30°", "-30 deg"

_SIDE_WORDS = {
    "left": r"\bleft\b", "right": r"\bright\b",
    "front": r"\bin front\b|\bahead\b|\bfront\b|\bbefore you\b", "behind": r"\bbehind\b|\bback\b|\brear\b",
    "above": r"\babove\b|\boverhead\b|\bup\b|\bhigher\b", "below": r"\bbelow\b|\bunder(?:neath)?\b|\bdown\b|\blower\b",
}
_PAIRS = {"sides": ("left", "right"), "front-back": ("front", "behind"), "above-below": ("above", "below")}


@dataclass(frozen=True)
class Question:
    """``kind``: see :data:`KINDS` (or ``unknown``); ``yes_no``: it wants a yes or a no; ``who``:
    ``id`` (``source_id`` set), ``any``, ``all`` or ``each`` (the sources in general); ``side``: the
    side a yes/no question names (``left``, ``front``, ``above``, ...; None for "left or right?");
    ``direction``: (azimuth degrees, label) for ``nearest``."""

    text: str
    kind: str
    yes_no: bool = False
    who: str = "each"
    source_id: int | None = None
    side: str | None = None
    direction: tuple[float, str] | None = None


def parse_direction(text: str) -> tuple[float, str] | None:
    """Azimuth (degrees, in [-180, 180) for numbers) and a label from a phrase such as ``front-left``
    or ``-30 degrees``; None if the text names no direction."""
    m = _NUMBER_DIRECTION.search(text)
    if m:
        az = float(m.group(1))
        return wrap_azimuth(az), f"azimuth {az:+.0f}°"
    for pattern, az in _WORD_DIRECTIONS:
        m = re.search(pattern, text)
        if m:
            return az, m.group(0)
    return None


def _kind(q: str) -> str:
    if re.search(r"\bdegrees? apart\b|\bhow many degrees\b", q):
        return "angle"
    if re.search(r"\bhow many\b|\bnumber of\b|\bcount\b", q):
        return "count"
    if re.search(r"\b(?:start|started|starts|begin|began|begun|begins)\b|\bjoin(?:ed|s)?\b|\bnew (?:voice|speaker|talker|"
                 r"source|person)\b|\b(?:most recent|latest|last) to (?:speak|talk|join)\b", q):
        return "started"
    if re.search(r"\b(?:stop|stopped|stops|quit|quiet|silent|finished|no longer|went away|gone|left the)\b", q):
        return "stopped"
    if re.search(r"\bangle between\b|\bhow far apart\b|\bapart\b|\bseparat|\bangle (?:from|to) .* to\b|\bbetween the two\b|"
                 r"\bdistance between\b",
                 q):
        return "angle"
    if re.search(r"\bnearest\b|\bclosest\b|\bwhich (?:source|speaker|one|sound|talker|person) is (?:at|on|to|in)\b", q):
        return "nearest"
    if re.search(r"\bdid\b.*\bmove\b|\bhas\b.*\bmoved\b|\bhave\b.*\bmoved\b|\bmoved\b|\bchanged? (?:place|position)", q):
        return "moved"
    if re.search(r"\bmov(?:e|es|ing)\b|\bwalk|\bstill\b|\bstationary\b|\bstanding\b|\bpacing\b", q):
        return "moving"
    for kind, (a, b) in _PAIRS.items():
        if re.search(_SIDE_WORDS[a], q) or re.search(_SIDE_WORDS[b], q):
            if kind == "above-below" and not re.search(r"\b(?:above|below|under|underneath|overhead|higher|lower)\b|"
                                                       r"\b(?:up|down) (?:there|here|high|low)\b|\bup or down\b", q):
                continue  # "up"/"down" alone are too common to mean height
            return kind
    if re.search(r"\b(?:height|elevation)\b", q):
        return "above-below"
    if re.search(r"\bloud|\bquiet|\bstrong", q):
        return "loudest"
    if re.search(r"\bsince when\b|\bhow long\b|\bwhen did\b", q):
        return "since"
    if re.search(r"\bwhere\b|\bdirection\b|\bwhich way\b|\bangle\b|\bazimuth\b|\blocat|\bposition|\bspeaker\b|"
                 r"\bsource\b|\btalk|\bwho\b", q):
        return "where"
    return "unknown"


def parse(text: str) -> Question:
    """The :class:`Question` ``text`` asks (see the module doc)."""
    q = " " + " ".join(text.lower().replace("?", " ").replace(",", " ").split()) + " "
    kind = _kind(q)
    m = _REF.search(q)
    source_id = int(m.group(1)) if m else None
    who = "id" if source_id is not None else "all" if _ALL.search(q) else "any" if _ANY.search(q) else "each"
    yes_no = bool(_YES_NO.match(q.strip())) or q.strip().startswith(("anyone", "anybody", "someone", "somebody"))
    side = direction = None
    if kind in _PAIRS:
        a, b = _PAIRS[kind]
        both = bool(re.search(_SIDE_WORDS[a], q)) and bool(re.search(_SIDE_WORDS[b], q))
        if both or re.search(r"\bor\b", q) and kind != "sides":
            yes_no = False  # "left or right?": a choice, not a yes/no
            if not both:
                side = a if re.search(_SIDE_WORDS[a], q) else b
        else:
            side = a if re.search(_SIDE_WORDS[a], q) else b
        if side == "front" and kind == "front-back" and re.search(r"\bfront[- ]?(?:left|right)\b", q):
            side = None
    elif kind == "nearest":
        tail = re.split(r"\bnearest\b|\bclosest\b", q)[-1]
        direction = parse_direction(tail) or parse_direction(q)
    if kind in ("count", "angle", "nearest", "loudest", "since", "where"):
        yes_no = False
    if kind in ("started", "stopped") and not yes_no and not re.search(r"\bwho\b|\bwhich\b|\bwhere\b|\bwhat\b", q):
        yes_no = bool(_YES_NO.match(q.strip()))
    return Question(text, kind, yes_no, who, source_id, side, direction)

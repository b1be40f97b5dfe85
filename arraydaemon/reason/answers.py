"""The built-in answerer: deterministic answers to spatial questions about a
:class:`~arraydaemon.reason.memory.SceneMemory`, in the form asked.

- a yes/no question ("Is anyone on your left?") gets ``Yes``, ``No`` or ``I can't tell`` first, then
  the evidence; "I can't tell" whenever the array cannot (reason/geometry.py: a planar array asked
  above or below, a linear one asked a side its cone of directions straddles);
- a count is a number first ("2: #1 at +40° (front-left) and ...");
- a direction is in words and degrees ("#3 at -95°, to the right").

Question kinds (reason/questions.py): how many, who started or stopped talking, the angle between
two talkers, which is nearest a direction, is anyone moving / did anyone move, left or right, in front
or behind, above or below, which is loudest, since when, where. Answers read sources through
:class:`~arraydaemon.reason.memory.SourceRecord` views (a direction and its history). Listening to
``arraydaemon fuse`` (positions, no tracks), the answers are in places: reason/places.py.

Angles in degrees (REP-103: 0° ahead, +90° left), times in stream seconds.
"""

from __future__ import annotations

import math
import time

from arraydaemon.core.angles import angle_between, azimuth_difference, unit_vector, wrap_azimuth
from arraydaemon.reason import geometry, places
from arraydaemon.reason.memory import BRIEF_S, MOVE_THRESHOLD_DEG, SceneMemory, SourceRecord, fmt_az, side_name
from arraydaemon.reason.questions import Question, parse, parse_direction

__all__ = ["answer", "answer_parsed", "parse_direction"]

_SIDE_PHRASE = {"left": "on the left", "right": "on the right", "front": "in front", "behind": "behind",
                "above": "above the array", "below": "below the array"}
CANT_TELL = "I can't tell"


def _at(r: SourceRecord) -> str:
    return f"#{r.id} at {fmt_az(r.azimuth_deg)} ({side_name(r.azimuth_deg)})"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _mirror_az(memory: SceneMemory, r: SourceRecord) -> float | None:
    """The azimuth of ``r``'s mirror image the array cannot tell from it in the horizontal plane
    (a linear array: reflected across its axis), or None."""
    view = memory.view
    if view.kind != "linear" or view.axis is None or math.hypot(view.axis[0], view.axis[1]) < 0.5:
        return None
    axis_az = math.degrees(math.atan2(view.axis[1], view.axis[0]))
    mirror = wrap_azimuth(2 * axis_az - r.azimuth_deg)
    return None if abs(azimuth_difference(mirror, r.azimuth_deg)) < 5 else mirror


def _ambiguous_at(memory: SceneMemory, r: SourceRecord) -> str:
    """``#1 at +60° or its mirror image +120°`` (linear), ``#1 ±20° out of the plane`` (planar)."""
    mirror = _mirror_az(memory, r)
    if mirror is not None:
        return f"#{r.id} at {fmt_az(r.azimuth_deg)} or its mirror image {fmt_az(mirror)}"
    if memory.view.kind == "planar":
        return f"#{r.id} at {fmt_az(r.azimuth_deg)}, {abs(r.elevation_deg):.0f}° out of the array's plane"
    return _at(r)


def _where(r: SourceRecord, now: float) -> str:
    state = "active" if r.activity >= 0.5 else f"silent for {r.silent_s:.1f} s"
    return (f"source #{r.id} is at azimuth {fmt_az(r.azimuth_deg)} ({side_name(r.azimuth_deg)}), elevation "
            f"{r.elevation_deg:.0f}°, heard for {now - r.first_t:.1f} s, {state}, {r.motion_text()}")


def answer(question: str, memory: SceneMemory) -> str:
    """A deterministic answer to ``question`` about ``memory``'s scene."""
    return answer_parsed(parse(question), memory)


def answer_parsed(q: Question, memory: SceneMemory) -> str:
    """The answer to the parsed question ``q`` (see the module doc)."""
    with memory._lock:  # one consistent snapshot while a listener thread keeps updating the memory
        if memory.now_t is None:
            return "I have not heard from the array yet."
        if memory.have_places and not memory.have_tracks:  # listening to arraydaemon fuse: places
            return places.answer_places(q, memory)
        if not memory.have_tracks:
            return "No tracks are being published, only raw detections: " + memory.describe()
        now = memory.now_t
        present = memory.present()
        target = memory.sources.get(q.source_id) if q.source_id is not None else None
        if q.source_id is not None and target is None:
            return "I do not know that source id. " + memory.describe()
        if q.kind == "stopped":
            return _stopped(q, memory, target)
        if target is not None and target.gone_t is not None:
            return (f"Source #{target.id} is gone: it was last at {fmt_az(target.azimuth_deg)} "
                    f"({side_name(target.azimuth_deg)}), {now - target.gone_t:.1f} s ago.")
        subjects = [target] if target else present
        if q.kind == "count":
            if not present:
                return "0: nobody is heard now." + _gone_note(memory)
            return f"{len(present)}: " + _and([_at(r) for r in present]) + "."
        if q.kind == "started":
            return _started(q, memory, subjects)
        if not subjects:
            no = "No: " if q.yes_no else ""
            return no + "nobody is heard now." + _gone_note(memory)
        handler = {"angle": _angle, "nearest": _nearest, "moving": _moving, "moved": _moved, "sides": _sides,
                   "front-back": _sides, "above-below": _sides, "loudest": _loudest, "since": _since}.get(q.kind)
        if handler is not None:
            return handler(q, memory, subjects)
        if q.kind == "where":
            return _cap("; ".join(_where(r, now) for r in subjects)) + "."
        return ("I can answer: how many, where, left or right, in front or behind, above or below, is anyone "
                "moving, did anyone move, who started or stopped talking, the angle between two talkers, which "
                "is nearest a direction. " + memory.describe())


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _sides(q: Question, memory: SceneMemory, subjects: list[SourceRecord]) -> str:
    view = memory.view

    def at(r: SourceRecord) -> str:
        return _at(r) + (f", elevation {r.elevation_deg:+.0f}°" if q.kind == "above-below" else "")
    pair = {"sides": ("left", "right"), "front-back": ("front", "behind"), "above-below": ("above", "below")}[q.kind]
    if q.side is None:  # "left or right?": say for each where it is, or that the array cannot tell
        if all(None in (geometry.side_verdict(view, r.vector, pair[0]), geometry.side_verdict(view, r.vector, pair[1]))
               for r in subjects):
            return f"{CANT_TELL}: {view.mirror_text()}; " + _and([_ambiguous_at(memory, r) for r in subjects]) + "."
        parts = []
        for r in subjects:
            verdicts = {s: geometry.side_verdict(view, r.vector, s) for s in pair}
            if verdicts[pair[0]] is None or verdicts[pair[1]] is None:
                parts.append(f"{CANT_TELL} for #{r.id} ({view.mirror_text()}): {_ambiguous_at(memory, r)}")
            elif verdicts[pair[0]]:
                parts.append(f"#{r.id} is {_SIDE_PHRASE[pair[0]]} ({_deg(r, q.kind)})")
            elif verdicts[pair[1]]:
                parts.append(f"#{r.id} is {_SIDE_PHRASE[pair[1]]} ({_deg(r, q.kind)})")
            else:
                parts.append(f"#{r.id} is neither: {_neither(r, q.kind)} ({_deg(r, q.kind)})")
        return _cap("; ".join(parts)) + "."
    side = q.side
    verdicts = [(r, geometry.side_verdict(view, r.vector, side)) for r in subjects]
    yes = [r for r, v in verdicts if v]
    unknown = [r for r, v in verdicts if v is None]
    phrase = _SIDE_PHRASE[side]
    if not q.yes_no:  # "who is on the left?"
        if yes:
            return _cap(_and([f"{at(r)} is {phrase}" for r in yes])) + "."
        if unknown:
            return f"{CANT_TELL}: {view.mirror_text()}; " + _and([_ambiguous_at(memory, r) for r in unknown]) + "."
        return f"Nobody is {phrase}: " + _and([at(r) for r in subjects]) + "."
    everyone = q.who == "all"
    if everyone:
        if unknown and not any(v is False for _, v in verdicts):
            return f"{CANT_TELL}: {view.mirror_text()}; " + _and([_ambiguous_at(memory, r) for r in unknown]) + "."
        if len(yes) == len(subjects):
            return "Yes: " + _and([f"{at(r)}" for r in yes]) + f" {'are' if len(yes) > 1 else 'is'} {phrase}."
        no = [r for r, v in verdicts if v is False]
        return "No: " + _and([at(r) for r in no]) + f" {'are' if len(no) > 1 else 'is'} not {phrase}."
    if yes:
        return "Yes: " + _and([f"{at(r)}" for r in yes]) + f" {'are' if len(yes) > 1 else 'is'} {phrase}" + \
            ("" if len(yes) == len(subjects) else "; " + _others(memory, [r for r in subjects if r not in yes])) + "."
    if unknown:
        return f"{CANT_TELL}: {view.mirror_text()}; " + _and([_ambiguous_at(memory, r) for r in unknown]) + \
            ("" if len(unknown) == len(subjects) else
             f"; {_and([at(r) for r in subjects if r not in unknown])} not {phrase}") + "."
    who = f"#{subjects[0].id} is" if q.who == "id" else "nobody is"
    return f"No: {who} {phrase} (" + _and([at(r) for r in subjects]) + ")."


def _deg(r: SourceRecord, kind: str) -> str:
    return f"elevation {r.elevation_deg:+.0f}°" if kind == "above-below" else fmt_az(r.azimuth_deg)


def _neither(r: SourceRecord, kind: str) -> str:
    if kind == "sides":
        return "it is straight ahead" if abs(r.azimuth_deg) <= 90 else "it is straight behind"
    if kind == "front-back":
        return "it is to the left" if r.azimuth_deg > 0 else "it is to the right"
    return "it is level with the array"


def _others(memory: SceneMemory, rest: list[SourceRecord]) -> str:
    return _and([_at(r) for r in rest]) + (" are not" if len(rest) > 1 else " is not")


def _moving(q: Question, memory: SceneMemory, subjects: list[SourceRecord]) -> str:
    asks_still = " still" in f" {q.text.lower()}" or "stationary" in q.text.lower() or "standing" in q.text.lower()
    moving = [r for r in subjects if r.is_moving()]
    parts = [f"#{r.id} is moving ({abs(r.recent_rate_dps()):.0f}°/s "
             f"{'counter-clockwise' if r.recent_rate_dps() > 0 else 'clockwise'}), now at {fmt_az(r.azimuth_deg)} "
             f"({side_name(r.azimuth_deg)})" for r in moving]
    parts += [f"#{r.id} is still at {fmt_az(r.azimuth_deg)} ({side_name(r.azimuth_deg)})" for r in subjects
              if r not in moving]
    if not q.yes_no:
        return _cap("; ".join(parts)) + "."
    if asks_still:  # "Is anyone standing still?" / "Is #2 still?"
        still = [r for r in subjects if r not in moving]
        ok = (len(still) == len(subjects)) if q.who in ("all", "id") else bool(still)
        return ("Yes: " if ok else "No: ") + "; ".join(parts) + "."
    ok = (len(moving) == len(subjects)) if q.who == "all" else bool(moving)
    return ("Yes: " if ok else "No: ") + "; ".join(parts) + "."


def _moved(q: Question, memory: SceneMemory, subjects: list[SourceRecord]) -> str:
    parts, moved = [], []
    for r in subjects:
        d = r.moved_deg()
        if r.is_moving():
            moved.append(r)
            parts.append(f"#{r.id} is moving, now at {fmt_az(r.azimuth_deg)}, {d:.0f}° from where it was first "
                         f"heard ({fmt_az(r.history[0][1])})")
        elif d >= MOVE_THRESHOLD_DEG:
            moved.append(r)
            parts.append(f"#{r.id} moved from {fmt_az(r.history[0][1])} to {fmt_az(r.azimuth_deg)} ({d:.0f}°) and is "
                         "still now")
        else:
            parts.append(f"#{r.id} has not moved (stays at {fmt_az(r.azimuth_deg)})")
    ok = (len(moved) == len(subjects)) if q.who == "all" else bool(moved)
    return ("Yes: " if ok else "No: ") + "; ".join(parts) + "."


def _started(q: Question, memory: SceneMemory, subjects: list[SourceRecord]) -> str:
    now = memory.now_t
    # a track that took over a retired one's direction is the same talker: it started when that one did
    start, continued = memory.talker_starts(), memory.successors()
    heard = sorted([r for r in memory.sources.values() if r.id not in continued
                    and ((r.gone_t if r.gone_t is not None else now) - start[r.id] >= BRIEF_S or r.id == q.source_id)],
                   key=lambda r: start[r.id])
    if not heard:
        return ("No: " if q.yes_no else "") + "nobody has been heard."
    stream_start = min(start[r.id] for r in heard)
    late = [r for r in heard if start[r.id] - stream_start >= 1.0]  # joined after the others
    if q.source_id is not None:
        r = memory.sources[q.source_id]
        return f"#{r.id} started talking {now - start[r.id]:.1f} s ago (t={start[r.id]:.1f} s) at {fmt_az(r.history[0][1])}" \
               f"; it is now at {fmt_az(r.azimuth_deg)} ({side_name(r.azimuth_deg)})."
    if q.yes_no:
        if not late:
            return "No: " + _and([_at(r) for r in heard]) + (" have" if len(heard) > 1 else " has") + \
                " been heard from the start" + \
                (f" (t={stream_start:.1f} s)" if stream_start > 0.5 else "") + "."
        return "Yes: " + _and([f"{_at(r)} started {now - start[r.id]:.1f} s ago" for r in late]) + "."
    last = heard[-1]
    if not late:
        return (f"Nobody started later than the others: {_and([_at(r) for r in heard])} "
                f"{'have' if len(heard) > 1 else 'has'} been heard from the start (t={stream_start:.1f} s).")
    state = "" if last.gone_t is None else f", and stopped {now - last.gone_t:.1f} s ago"
    return (f"#{last.id} started talking last, {now - start[last.id]:.1f} s ago, at {fmt_az(last.history[0][1])} "
            f"({side_name(last.history[0][1])}); it is now at {fmt_az(last.azimuth_deg)}{state}.")


def _stopped(q: Question, memory: SceneMemory, target: SourceRecord | None) -> str:
    now = memory.now_t
    # someone who talked, not a track confirmed for a moment (BRIEF_S); the most recent first
    start, continued = memory.talker_starts(), memory.successors()
    gone = [target] if target is not None and target.gone_t is not None else [] if target else \
        [r for r in memory.gone() if r.heard_s(now) >= BRIEF_S and r.id not in continued]
    silent = [r for r in ([target] if target else memory.present()) if r.gone_t is None and r.silent_s >= 1.0
              and (target is not None or now - start[r.id] >= BRIEF_S)]
    if target is not None and not gone:
        if silent:
            return f"Yes: #{target.id} has been silent for {target.silent_s:.1f} s; it was at {fmt_az(target.azimuth_deg)}."
        return ("No: " if q.yes_no else "") + f"#{target.id} is still talking, at {fmt_az(target.azimuth_deg)} " \
               f"({side_name(target.azimuth_deg)})."
    parts = [f"#{r.id} stopped talking {now - r.gone_t:.1f} s ago; it was at {fmt_az(r.azimuth_deg)} "
             f"({side_name(r.azimuth_deg)})" for r in gone]
    parts += [f"#{r.id} has been silent for {r.silent_s:.1f} s, at {fmt_az(r.azimuth_deg)} ({side_name(r.azimuth_deg)})"
              for r in silent]
    if not parts:
        return ("No: " if q.yes_no else "Nobody has stopped talking: ") + \
            ("everyone heard is still talking (" + _and([_at(r) for r in memory.present()]) + ")."
             if memory.present() else "nobody has been heard.")
    return ("Yes: " if q.yes_no else "") + _cap("; ".join(parts)) + "."


def _angle(q: Question, memory: SceneMemory, subjects: list[SourceRecord]) -> str:
    if len(subjects) < 2:
        return f"Only one source is heard now ({_at(subjects[0])}): there is no angle between two talkers."
    a, b = subjects[:2]  # the most active two
    extra = "" if len(subjects) == 2 else f" (the two most active of {len(subjects)})"
    view = memory.view
    if view.kind == "linear":
        ma, mb = _mirror_az(memory, a), _mirror_az(memory, b)
        same = abs(azimuth_difference(a.azimuth_deg, b.azimuth_deg))
        if ma is not None and mb is not None:
            crossed = abs(azimuth_difference(a.azimuth_deg, mb))
            if abs(crossed - same) > 10:
                lo, hi = sorted((same, crossed))
                return (f"{CANT_TELL} exactly: {lo:.0f}° or {hi:.0f}° apart{extra} ({view.mirror_text()}: "
                        f"{_ambiguous_at(memory, a)}; {_ambiguous_at(memory, b)}).")
        return f"About {same:.0f}° apart in azimuth{extra}: {_at(a)} and {_at(b)}."
    if view.kind == "planar":
        d = abs(azimuth_difference(a.azimuth_deg, b.azimuth_deg))
        return f"About {d:.0f}° apart in azimuth{extra}: {_at(a)} and {_at(b)}."
    d = angle_between(a.vector, b.vector)
    return (f"About {d:.0f}° apart{extra} ({abs(azimuth_difference(a.azimuth_deg, b.azimuth_deg)):.0f}° in azimuth): "
            f"{_at(a)}, elevation {a.elevation_deg:+.0f}°, and {_at(b)}, elevation {b.elevation_deg:+.0f}°.")


def _nearest(q: Question, memory: SceneMemory, subjects: list[SourceRecord]) -> str:
    if q.direction is None:
        return "Nearest to which direction? Say e.g. 'front-left' or '30 degrees'."
    az, label = q.direction
    target = unit_vector(az, 0.0)
    view = memory.view
    ranked = sorted(subjects, key=lambda r: view.distance_deg(r.vector, target))
    best = ranked[0]
    off = view.distance_deg(best.vector, target)
    if view.kind != "3d" and len(ranked) > 1 and view.distance_deg(ranked[1].vector, target) - off < 5 and \
            angle_between(ranked[1].vector, target) < angle_between(best.vector, target):
        # two the array cannot rank: say so rather than pick one
        return (f"{CANT_TELL} which is nearer to {label}: {view.mirror_text()}; {_ambiguous_at(memory, best)}; "
                f"{_ambiguous_at(memory, ranked[1])}.")
    return f"Source #{best.id}, at {fmt_az(best.azimuth_deg)} ({side_name(best.azimuth_deg)}), is nearest to {label} " \
           f"({off:.0f}° away)."


def _loudest(q: Question, memory: SceneMemory, subjects: list[SourceRecord]) -> str:
    loud = max(subjects, key=lambda r: r.level_db)
    others = ", ".join(f"#{r.id} {r.level_db:.0f} dBFS" for r in subjects if r is not loud)
    return (f"Source #{loud.id} at {fmt_az(loud.azimuth_deg)} ({side_name(loud.azimuth_deg)}) is the loudest, "
            f"{loud.level_db:.0f} dBFS" + (f"; {others}" if others else "") + ".")


def _since(q: Question, memory: SceneMemory, subjects: list[SourceRecord]) -> str:
    now = memory.now_t
    return "; ".join(f"#{r.id} has been heard for {now - r.first_t:.1f} s (since t={r.first_t:.1f} s, "
                     f"{time.strftime('%H:%M:%S', time.localtime(r.first_wall))})" for r in subjects) + "."


def _gone_note(memory: SceneMemory) -> str:
    """`` The last one, #N, was at ...`` for the most recently retired source, or empty."""
    gone = memory.gone()
    if not gone:
        return ""
    r = gone[0]
    return f" The last one, #{r.id}, was at {fmt_az(r.azimuth_deg)} until {memory.now_t - r.gone_t:.1f} s ago."

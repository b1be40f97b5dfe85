"""What an array can tell about a direction: the set of directions it cannot tell apart from the
one it reports (pure Python, no numpy).

- A 3-D array: the direction itself.
- A planar array: the direction and its mirror image across the array's plane (a horizontal array:
  above and below; a vertical one on a wall: in front and behind).
- A linear array: the whole cone of directions at the same angle to its axis (a line along y, left to
  right: front and behind, above and below; a line along x: left and right).

The geometry comes from the ``array`` topic's mic positions (so a line at any yaw is handled), or,
before one has arrived, from the ``ambiguity`` string alone, read as the wire format documents it
(``up-down``: a horizontal planar array; ``front-back``: a line from left to right).

A question about a side is then answered "yes" only when every direction the array cannot tell
apart is on that side, "no" when none is, and "I can't tell" otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Vec = tuple[float, float, float]

CONE_STEPS = 72  # directions sampled on a linear array's cone (every 5°)


def _sub(a, b) -> Vec:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


def _dot(a, b) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _cross(a, b) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _unit(a) -> Vec:
    n = math.sqrt(_dot(a, a))
    return (a[0] / n, a[1] / n, a[2] / n) if n > 0 else (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class ArrayView:
    """``kind``: ``3d``, ``planar`` or ``linear``; ``axis`` (linear) or ``normal`` (planar): unit vectors."""

    kind: str = "3d"
    axis: Vec | None = None
    normal: Vec | None = None

    @classmethod
    def from_ambiguity(cls, ambiguity: str) -> ArrayView:
        """The geometry the wire format's ``ambiguity`` string implies (no mic positions known)."""
        if ambiguity == "up-down":
            return cls("planar", normal=(0.0, 0.0, 1.0))
        if ambiguity == "front-back":
            return cls("linear", axis=(0.0, 1.0, 0.0))
        return cls("3d")

    @classmethod
    def from_mics(cls, mics, ambiguity: str) -> ArrayView:
        """The geometry of mic positions ``mics`` (a list of ``[x, y, z]`` metres) whose ambiguity is
        ``ambiguity``; the ambiguity string alone when the positions cannot give an axis or plane."""
        pts = [tuple(float(v) for v in m) for m in mics]
        if ambiguity not in ("up-down", "front-back") or len(pts) < 2:
            return cls.from_ambiguity(ambiguity)
        # the two mics farthest apart span the line (or one direction of the plane)
        a, b = max(((p, q) for i, p in enumerate(pts) for q in pts[i + 1:]), key=lambda pq: _dot(_sub(*pq), _sub(*pq)))
        axis = _unit(_sub(b, a))
        if axis == (0.0, 0.0, 0.0):
            return cls.from_ambiguity(ambiguity)
        if ambiguity == "front-back":
            return cls("linear", axis=axis)
        # the plane: the axis and the mic farthest from the line through a and b
        far = max(pts, key=lambda p: _dot(_cross(axis, _sub(p, a)), _cross(axis, _sub(p, a))))
        normal = _unit(_cross(axis, _sub(far, a)))
        if normal == (0.0, 0.0, 0.0):
            return cls.from_ambiguity(ambiguity)
        # the side the daemon reports (profiles.analyse_geometry): up for horizontal arrays, else front
        for k in (2, 0, 1):
            if abs(normal[k]) > 1e-6:
                if normal[k] < 0:
                    normal = (-normal[0], -normal[1], -normal[2])
                break
        return cls("planar", normal=normal)

    def candidates(self, vector) -> list[Vec]:
        """The directions this array cannot tell apart from unit ``vector`` (``vector`` first)."""
        u = _unit(vector)
        if self.kind == "planar" and self.normal is not None:
            d = _dot(u, self.normal)
            return [u, _unit(_sub(u, tuple(2 * d * n for n in self.normal)))]
        if self.kind == "linear" and self.axis is not None:
            a = self.axis
            c = max(-1.0, min(1.0, _dot(u, a)))
            s = math.sqrt(max(0.0, 1.0 - c * c))
            helper = (1.0, 0.0, 0.0) if abs(a[0]) < 0.9 else (0.0, 1.0, 0.0)
            e1 = _unit(_cross(a, helper))
            e2 = _cross(a, e1)
            cone = [tuple(c * a[k] + s * (math.cos(p) * e1[k] + math.sin(p) * e2[k]) for k in range(3))
                    for p in (2 * math.pi * i / CONE_STEPS for i in range(CONE_STEPS))]
            return [u] + cone
        return [u]

    def distance_deg(self, vector, target) -> float:
        """Degrees from ``target`` to the nearest direction this array cannot tell from ``vector``."""
        t = _unit(target)
        if self.kind == "linear" and self.axis is not None:  # exact: the difference of the angles to the axis
            return abs(math.degrees(math.acos(max(-1.0, min(1.0, _dot(_unit(vector), self.axis)))))
                       - math.degrees(math.acos(max(-1.0, min(1.0, _dot(t, self.axis))))))
        return min(math.degrees(math.acos(max(-1.0, min(1.0, _dot(c, t))))) for c in self.candidates(vector))

    def mirror_text(self) -> str:
        """What this array cannot tell, for an answer (empty for a 3-D array)."""
        if self.kind == "planar":
            horizontal = self.normal is not None and abs(self.normal[2]) > 0.9
            return ("this planar array cannot tell above from below its plane" if horizontal else
                    "this planar array cannot tell one side of its plane from the other")
        if self.kind == "linear":
            return "this linear array hears only the angle to its axis (a cone of directions)"
        return ""


# Sides as conditions on a unit vector (x forward, y left, z up): more than 10° off the dividing plane.
SIDE_SLACK = math.sin(math.radians(10.0))
SIDES = {
    "left": (1, 1.0), "right": (1, -1.0), "front": (0, 1.0), "behind": (0, -1.0), "above": (2, 1.0), "below": (2, -1.0),
}


def on_side(vector, side: str, slack: float = SIDE_SLACK) -> bool:
    """Whether unit ``vector`` is on ``side`` (a key of :data:`SIDES`) by more than ``slack`` (a sine)."""
    k, sign = SIDES[side]
    return sign * vector[k] > slack


def side_verdict(view: ArrayView, vector, side: str, slack: float = SIDE_SLACK) -> bool | None:
    """True: every direction ``view`` cannot tell from ``vector`` is on ``side``; False: none is;
    None: the array cannot tell."""
    k = SIDES[side][0]
    if view.kind == "planar" and view.normal is not None and abs(view.normal[k]) > 0.9:
        return None  # across its own plane a planar array hears neither the side nor, near the plane, the angle
    hits = [on_side(c, side, slack) for c in view.candidates(vector)]
    return True if all(hits) else False if not any(hits) else None

"""Which bearings of different arrays are the same talker.

Candidates are built from pairs: every two bearings (any hypothesis) of two arrays that meet in front
of both, inside the room, with a usable crossing angle; each pair is grown by the closest bearing of
every further array whose floor-plane miss is within the gate (``gate_sigmas`` bearing sigmas), and
re-triangulated. A candidate costs its residual (chi-square of the angular and height misses), less
a reward per array beyond the first (three bearings agreeing are worth more than two, so a ghost
crossing of two bearings loses to the talker three arrays see), less a reward when its array tracks
are the ones a fused track was built from (association is sticky: a pair of arrays alone cannot tell
a talker's crossing from a ghost's, but the pairing made when the talkers appeared one after the
other stays), plus a little per mirrored hypothesis, plus much for a measured height outside the room (with arrays
all at one height, the up and the down hypotheses agree equally: the room decides). The cheapest candidates are taken greedily,
each array track in at most one; the rest are bearings seen by one array only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from arraydaemon.fusion.geometry import Bearing, Fix, angular_miss_deg, triangulate

Key = tuple[str, int]  # (array name, that array's track id)


@dataclass(frozen=True)
class AssociationConfig:
    sigma_deg: float = 5.0
    gate_sigmas: float = 3.0  # a bearing joins a candidate when it misses the point by at most this many sigmas
    array_reward: float = 6.0  # cost taken off per array beyond the first
    sticky_reward: float = 8.0  # cost taken off when the tracks are those a fused track is built from
    mirror_cost: float = 0.5  # per hypothesis other than the daemon's
    max_sigma_xy_m: float = 1.5  # a crossing this uncertain is no place (too shallow an angle)
    outside_cost: float = 20.0  # for a measured height outside the room
    margin_m: float = 0.1  # how far outside the room's floor a point may be (bearing noise at the walls)


@dataclass(frozen=True)
class Association:
    fixes: list[Fix]
    singles: list[list[Bearing]]  # per array track seen by no other array: its hypotheses


def _key(b: Bearing) -> Key:
    return (b.array, b.track_id)


def _inside(point: np.ndarray, low: np.ndarray, high: np.ndarray, margin: float) -> bool:
    """Whether ``point`` is on the room's floor (x, y; its height is too uncertain to judge by)."""
    return bool(np.all(point[:2] >= low[:2] - margin) and np.all(point[:2] <= high[:2] + margin))


def associate(observations: dict[Key, list[Bearing]], config: AssociationConfig, low: np.ndarray,
              high: np.ndarray, links: list[frozenset[Key]] = (), default_z: float | None = None) -> Association:
    """Groups ``observations`` (per array track, its bearing hypotheses) into triangulated fixes and
    single-array bearings. ``low``/``high``: corners of the room box (2 or 3 values each);
    ``links``: the array tracks each existing fused track was built from."""
    by_array: dict[str, list[Key]] = {}
    for key in observations:
        by_array.setdefault(key[0], []).append(key)
    names = sorted(by_array)
    gate = config.gate_sigmas * config.sigma_deg
    candidates: dict[frozenset, tuple[float, Fix]] = {}

    def consider(fix: Fix | None) -> None:
        if fix is None or fix.worst_deg > gate or fix.sigma_xy > config.max_sigma_xy_m:
            return
        if not _inside(fix.point, low, high, config.margin_m):
            return
        keys = frozenset(_key(b) for b in fix.bearings)
        cost = fix.residual - config.array_reward * (len(keys) - 1)
        cost += config.mirror_cost * sum(b.hypothesis for b in fix.bearings)
        if len(high) > 2 and math.isfinite(fix.sigma_z) and not -config.margin_m <= fix.point[2] <= high[2] + config.margin_m:
            cost += config.outside_cost  # a measured height above the ceiling or under the floor: the other mirror
        if any(len(keys & link) >= 2 for link in links):
            cost -= config.sticky_reward
        ident = frozenset((b.array, b.track_id, b.hypothesis) for b in fix.bearings)
        if ident not in candidates or cost < candidates[ident][0]:
            candidates[ident] = (cost, fix)

    for a, b in combinations(names, 2):
        for ka in by_array[a]:
            for kb in by_array[b]:
                for ha in observations[ka]:
                    for hb in observations[kb]:
                        pair = triangulate((ha, hb), config.sigma_deg, default_z)
                        if pair is None:
                            continue
                        consider(pair)
                        grown = [ha, hb]
                        for c in names:
                            if c in (a, b):
                                continue
                            best = min(((angular_miss_deg(h, pair.point), h) for k in by_array[c]
                                        for h in observations[k]), key=lambda t: t[0], default=None)
                            if best is not None and best[0] <= gate:
                                grown.append(best[1])
                        if len(grown) > 2:
                            consider(triangulate(grown, config.sigma_deg, default_z))
    used: set[Key] = set()
    fixes = []
    for cost, fix in sorted(candidates.values(), key=lambda t: t[0]):
        keys = {_key(b) for b in fix.bearings}
        if keys & used:
            continue
        used |= keys
        fixes.append(fix)
    singles = [hyps for key, hyps in observations.items() if key not in used]
    return Association(fixes, singles)

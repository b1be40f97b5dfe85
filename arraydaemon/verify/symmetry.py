"""The permutations of an array's mics that its geometry cannot tell apart.

A permutation ``sigma`` of the mics is a symmetry when some rotation or reflection ``Q`` of space
maps every mic onto another: ``Q (p_i - c) = p_sigma(i) - c`` (``c``: the centroid). Sound cannot
distinguish a channel map from the same map composed with a symmetry: the recording is then that
of the array turned by ``Q``, with every direction turned the same way. A ring of ``n`` mics has
``2n`` (``n`` rotations and ``n`` reflections); an irregular array only the identity.

Point sets in space are congruent exactly when their distance matrices are equal, so the search
is a backtracking over partial permutations that keep every pairwise distance (within ``tol``).
"""

from __future__ import annotations

import numpy as np

DEFAULT_TOL_M = 0.002


def distance_matrix(mics: np.ndarray) -> np.ndarray:
    """``[shape=(mics, mics)]`` metres from ``mics [shape=(mics, 3)]``."""
    mics = np.asarray(mics, dtype=np.float64)
    return np.linalg.norm(mics[:, None, :] - mics[None, :, :], axis=-1)


def symmetries(mics: np.ndarray, tol: float = DEFAULT_TOL_M, limit: int = 1000) -> np.ndarray:
    """Every symmetry of ``mics [shape=(mics, 3)]`` as a permutation ``[shape=(S, mics)]`` int
    (``out[s, i]``: the mic that mic ``i`` maps onto), the identity first; at most ``limit``."""
    d = distance_matrix(mics)
    n = len(d)
    # distance "fingerprints" prune the first choices: a mic can only map onto one with the same
    # sorted distances to the others
    prints = np.sort(d, axis=1)
    compatible = np.max(np.abs(prints[:, None, :] - prints[None, :, :]), axis=2) <= tol
    out: list[list[int]] = []
    perm = [-1] * n
    used = [False] * n

    def extend(i: int) -> None:
        if len(out) >= limit:
            return
        if i == n:
            out.append(perm.copy())
            return
        for k in range(n):
            if used[k] or not compatible[i, k]:
                continue
            if all(abs(d[k, perm[j]] - d[i, j]) <= tol for j in range(i)):
                perm[i], used[k] = k, True
                extend(i + 1)
                used[k] = False
        perm[i] = -1

    extend(0)
    arr = np.array(out, dtype=np.intp).reshape(-1, n)
    ident = np.arange(n)
    first = np.flatnonzero((arr == ident).all(axis=1))
    order = list(first) + [s for s in range(len(arr)) if s not in set(first)]
    return arr[order]


def orbit(channel_map, syms: np.ndarray) -> np.ndarray:
    """The channel maps ``[shape=(S, mics)]`` that ``channel_map [shape=(mics,)]`` cannot be told
    apart from: ``channel_map[sigma]`` for every symmetry ``sigma`` (duplicates removed, order kept)."""
    cm = np.asarray(channel_map)
    maps = cm[np.asarray(syms)]
    _, first = np.unique(maps, axis=0, return_index=True)
    return maps[np.sort(first)]


def same_up_to_symmetry(map_a, map_b, syms: np.ndarray) -> bool:
    """Whether channel maps ``map_a`` and ``map_b`` differ by a symmetry of the geometry."""
    b = np.asarray(map_b)
    return bool(np.any((orbit(map_a, syms) == b[None, :]).all(axis=1)))


def transform(mics: np.ndarray, perm) -> np.ndarray:
    """The orthogonal ``Q [shape=(3, 3)]`` best mapping ``mics`` (centred) onto ``mics[perm]``
    (Procrustes), so that a direction ``u`` seen with one map is ``Q.T @ u`` with the other."""
    x = np.asarray(mics, dtype=np.float64)
    x = x - x.mean(axis=0)
    y = x[np.asarray(perm)]
    u, _, vt = np.linalg.svd(x.T @ y)
    return (u @ vt).T

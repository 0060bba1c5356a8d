"""Column decomposition of a cmvm before CSE: ``y_j = r_j + sign * 2^shift * y_parent``.

Two output columns of a trained (or low-bit) kernel are often close: ``W[:, j] - ±2^s W[:, p]``
has far fewer signed digits than ``W[:, j]``. Then ``y_j`` is better computed from ``y_p`` plus
a residual product ``r_j = x @ D[:, j]`` (one more adder), and the residuals of all columns go
through CSE together (``D`` replaces ``W``). Which column derives from which is a spanning tree
over the columns plus a virtual zero column (the root: a column hanging from it is computed from
scratch), built with Prim's algorithm on edge weights = signed-digit count of the residual
(+1 for the extra adder), under a tree-depth limit (each tree level adds one adder level on the
path of the derived columns). da4ml's first stage follows the same idea (a minimum spanning
tree over columns); this is our own implementation, with digit counts from the NAF identity
``weight(m) = popcount((3m XOR m) >> 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_SHIFT = 3  # relative shifts tried between two columns: -MAX_SHIFT .. MAX_SHIFT
_FAR = 1 << 40
BLOCK = 1 << 15  # ``_edges``: elements per array operation (cache-sized)


@dataclass(frozen=True)
class Decomposition:
    residual: np.ndarray  # D (n_in, n_out): the columns CSE computes
    parent: tuple[int, ...]  # parent column of each column, -1 = computed from scratch
    shift: tuple[int, ...]  # y_j = r_j + sign_j * 2^shift_j * y_parent
    sign: tuple[int, ...]
    order: tuple[int, ...]  # columns, parents before children
    depth: int  # tree depth (extra adder levels on the deepest derived path)


def _naf_weight(m: np.ndarray) -> np.ndarray:
    """Nonzero signed digits of each integer in ``m``, summed over the last axis."""
    a = np.abs(m).astype(np.uint64)
    return np.bitwise_count(((a * np.uint64(3)) ^ a) >> np.uint64(1)).astype(np.int64).sum(-1)


def _integer_columns(w: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Columns of ``w * 2^scale`` as int64 rows, and ``scale`` (None if they would not fit)."""
    f = 0
    while f < 40 and not np.array_equal(np.ldexp(w, f), np.round(np.ldexp(w, f))):
        f += 1
    m = np.ldexp(w, f + MAX_SHIFT)
    if f >= 40 or (m.size and np.abs(m).max() * 2 ** (MAX_SHIFT + 2) >= 2**62):
        return None
    return np.round(m).astype(np.int64).T, f + MAX_SHIFT


def _edges(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every ordered column pair (j, p): min residual weight, its shift and sign.

    Only pairs whose columns share a nonzero row are tried: a residual against a column with
    disjoint support has the digits of both, never fewer than the column alone (a diagonal cmvm,
    e.g. a batch norm, has no such pair, and its n^3 comparisons were most of its compile time).
    Ties go to the first (shift, sign) in the order shift -MAX_SHIFT .. MAX_SHIFT, sign +1 then -1.
    """
    n, n_in = c.shape
    best = np.full((n, n), _FAR, dtype=np.int64)
    shift = np.zeros((n, n), dtype=np.int64)
    sign = np.ones((n, n), dtype=np.int64)
    nz = (c != 0).astype(np.float32)
    share = (nz @ nz.T) > 0
    np.fill_diagonal(share, False)
    # the variants (shift, sign) in tie order; every column at every shift, and whether it is exact
    shift_range = np.arange(-MAX_SHIFT, MAX_SHIFT + 1)
    scaled = np.stack([(c << s) if s >= 0 else (c >> -s) for s in shift_range])  # (shifts, n, n_in)
    exact = np.stack([np.ones(n, dtype=bool) if s >= 0 else np.all(c % (1 << -s) == 0, axis=1) for s in shift_range])
    at = np.repeat(np.arange(len(shift_range)), 2)  # variant -> its shift's index
    shifts, signs = shift_range[at], np.tile([1, -1], len(shift_range))
    # blocks of columns j and of variants small enough to stay in cache (~BLOCK elements per array):
    # a small cmvm takes a few array operations in all, a large one a loop over cache-sized pieces
    per_variant = n * n_in
    group = max(1, min(len(shifts), BLOCK // per_variant))
    rows = max(1, BLOCK // (group * per_variant))
    for j0 in range(0, n, rows):
        js, ps = np.nonzero(share[j0 : j0 + rows])
        if not len(js):
            continue
        js += j0
        pairs = np.arange(len(js))
        for v0 in range(0, len(shifts), group):  # variants in order; a later one must be strictly better
            vs = at[v0 : v0 + group, None]
            diff = c[js][None, :, :] - signs[v0 : v0 + group, None, None] * scaled[vs, ps[None, :]]
            wgt = np.where(exact[vs, ps[None, :]], _naf_weight(diff), _FAR)
            v = np.argmin(wgt, axis=0)  # the first of the smallest in this group
            w = wgt[v, pairs]
            better = w < best[js, ps]
            jb, pb = js[better], ps[better]
            best[jb, pb] = w[better]
            shift[jb, pb] = shifts[v0 + v[better]]
            sign[jb, pb] = signs[v0 + v[better]]
    return best, shift, sign


def decompose(weights: np.ndarray, max_tree_depth: int) -> Decomposition | None:
    """The spanning-tree decomposition (None when no column is worth deriving)."""
    w = np.asarray(weights, dtype=np.float64)
    n_out = w.shape[1]
    ints = _integer_columns(w)
    if ints is None or n_out < 2 or max_tree_depth < 1:
        return None
    c, scale = ints
    best, shift, sign = _edges(c)
    cost = _naf_weight(c).astype(np.int64)  # from scratch: its own digits
    via = np.full(n_out, -1)
    done = np.zeros(n_out, dtype=bool)
    level = np.zeros(n_out, dtype=np.int64)
    order = []
    for _ in range(n_out):
        j = int(np.flatnonzero(~done)[np.argmin(cost[~done])])  # cheapest, lowest index on ties
        done[j] = True
        order.append(j)
        level[j] = 0 if via[j] < 0 else level[via[j]] + 1
        if level[j] < max_tree_depth:
            cand = best[:, j] + 1  # +1: the adder that adds the parent back
            better = ~done & (cand < cost)
            cost[better] = cand[better]
            via[better] = j
    if not np.any(via >= 0):
        return None
    d = w.copy()
    for j in range(n_out):
        p = int(via[j])
        if p >= 0:  # in integers (exact), then back to float64, which must hold it exactly
            s = int(shift[j, p])
            r = c[j] - sign[j, p] * (c[p] << s if s >= 0 else c[p] >> -s)
            if not np.array_equal(r.astype(np.float64).astype(np.int64), r):
                return None  # a residual of more than 53 significant bits
            d[:, j] = np.ldexp(r.astype(np.float64), -scale)
    return Decomposition(
        residual=d,
        parent=tuple(int(p) for p in via),
        shift=tuple(int(shift[j, via[j]]) if via[j] >= 0 else 0 for j in range(n_out)),
        sign=tuple(int(sign[j, via[j]]) if via[j] >= 0 else 1 for j in range(n_out)),
        order=tuple(order),
        depth=int(level.max()),
    )

"""``cse``: greedy common-subexpression elimination of constant matrix-vector multiplies.

Every cmvm ``y = x @ W + b`` becomes an *adder program*: a list of two-operand shift-adds
over the input vector that computes every output exactly, with as few (and as narrow)
adders as the greedy search finds, under an adder-depth limit.

Algorithm (da4ml-style)
-----------------------
Each output column is a set of *terms* ``sign * operand * 2^shift`` (initially the CSD digits
of the column's weights, operand = an input). A *pattern* is a pair of terms in one column,
normalised to ``x_a ± (x_b << s)`` (``a <= b``, relative shift ``s``), so the same pattern is
found in any column at any absolute shift. Repeatedly the pattern with the largest saving
``(occurrences - 1) * adder_width`` is turned into a new operand (a "virtual input") and
substituted in every column where it occurs (non-overlapping occurrences), until no pattern
occurs twice. The adder width is the result width minus the low bits that pass through
unchanged (from the cmvm's input types), so wide adders are shared first. Finally each
column's remaining terms are summed by an adder tree that pairs terms of equal depth and similar
magnitude, which reaches the optimal depth ``ceil(log2(sum_k 2^depth_k))`` for the column; its
bias (a constant operand) joins that tree as late as the program's depth allows
(``_Solver.bias_level``: a constant add costs no LUT, but every adder above it carries its bits).

Candidates and selection: ``solve`` builds (1) the plain CSD adder trees, (2) the greedy CSE above,
(3) ``restarts`` more greedy runs (``options.extra['cse.restarts']``; default ``RESTARTS_BITS`` for
objective ``'bits'``, ``RESTARTS`` for ``'adders'``, half as many above ``RESTART_DIGITS_BITS`` /
``RESTART_DIGITS`` digits) whose pattern costs get a seeded perturbation (``_jitter``: a tie-break,
or ~6 % noise), and (4) column decompositions up to tree depth
``options.extra['cse.decompose_depth']`` (default ``DECOMPOSE_DEPTH`` = 2; with ``'bits'`` only the
deepest one that fits; above ``LARGE_DIGITS`` (50000) signed digits neither (3) nor (4) by default,
for time; ``hgqc.passes.decompose``: ``y_j = r_j ± 2^s y_p`` along a spanning tree of the columns,
the residuals ``r`` solved by the greedy CSE under the limit minus the tree depth). With
``options.extra['cse.objective'] = 'adders'`` it keeps the fewest adders, then adder bits
(``program_cost``), then depth. With ``'bits'`` (default; adder bits are the LUT proxy) it keeps the
plain greedy (or the plain trees if they have fewer bits) unless an alternative has more than
``ADDER_GUARD`` (1 %) fewer adders; then, among the alternatives within ``ADDER_GUARD`` of the
fewest adders, the fewest bits, where each level deeper than the plain greedy costs
``DEPTH_PENALTY`` (2 %) of bits and a deeper one must still beat the greedy's bits (depth budget
spent lengthens the network's path end to end; decomposition chain adders are full width).
Opt-in ``options.extra['cse.lookahead'] = N`` adds (5) a pilot search over the first N greedy
decisions of the plain greedy and of each decomposition (``hgqc.passes.cse_lookahead``, through
the ``forced`` / ``skip`` / ``taken`` hooks of ``run_cse``; slow, a small gain: docs/design.md).
Restarts and decompositions are a safety net: the greedy alone is up to 6 % off on some
matrices (16x16 4-bit), and ``_pick_bits`` leaves it alone where it is fine, so the LUT results
of the greedy's bit-width ranking stand. Deterministic, since every run is.

Machinery (speed, memory): the initial pair count is made in blocks (``_PairCounter``: a dense
``bincount`` table over all possible patterns when small, else merged ``np.unique`` tables), so it
never holds every digit pair at once; each substitution updates the counts for all its
occurrences in one vectorised step over fixed-width term rows (``t_op``/``t_sh``/``t_sg``, one row
per column, mirrored by the column dicts the occurrence search uses); patterns are found by a
vectorised hash map (``hgqc.passes.keyindex``). The priority queue is the array of stored savings
plus a *frontier*: the largest few (``FRONT_SHARE``-th part) picked and sorted by numpy at once,
and a small heap for what is pushed above the frontier's last entry before it is used up; so the
order (largest stored saving, then smallest pattern) is that of a lazy heap over all pushes,
without one Python int per push.

Depth limit: a substitution is only made in a column when that column can still be summed
within ``limit`` levels (the optimum above, which can only grow as patterns are taken, so a
blocked pattern stays blocked). ``limit = options.max_adder_depth`` or, when ``None``, the
minimal depth ``ceil(log2(max terms per column))`` plus 2; a limit below the minimal depth is
raised to it. Depth counts adder levels from the cmvm's inputs.

Program format (JSON-serializable, stored as the cmvm attr ``program``)
----------------------------------------------------------------------
``program = {'variants': [P, ...], 'select': [v_0, v_1, ...]}``: one variant per distinct
input-type signature of the cmvm's positions (leading axes); ``select[p]`` is the variant
used by flat position ``p``. Each variant ``P`` is::

    {'n_in': n, 'consts': [c_0, ...], 'ops': [[a, b, shift, sub], ...],
     'outputs': [[idx, shift, neg], ...], 'depth': d}

Operand indices run over ``[x_0 .. x_{n-1}, c_0 .. c_{m-1}, op_0, op_1, ...]``: the inputs,
then the constants (the distinct nonzero biases, float64 dyadic), then the ops in order (an op
only uses earlier operands). Op ``k`` is ``v[a] + (-1)^sub * v[b] * 2^shift`` (``shift`` may
be negative, ``sub`` is 0/1); ``a == -1`` stands for the constant 0, so ``[-1, b, 0, 1]`` is a
negation (the solver emits one only for a column whose terms are all negative, on its
shallowest leaf, or after a decomposed column whose sum came out negated, so its outputs never
need a final negation). Output ``j`` is
``(-1)^neg * v[idx] * 2^shift``, or 0 when ``idx == -1``; the bias is already included (a constant
operand of the column's tree).
``depth`` is the largest adder depth of any output. ``program_matches`` re-evaluates a program
symbolically (exact integers) against the weight matrix and bias.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from ..ir.graph import Graph, Node
from ..ir.ops import Op, weight_digits
from ..ir.types import ZERO, QInterval, TensorType, dyadic
from ..options import CompileOptions
from .csd import csd_matrix, csd_value
from .cse_lookahead import pilot
from .decompose import Decomposition, decompose
from .keyindex import KeyIndex
from .manager import register_pass

Interval = tuple[int, int, int]  # (lo, hi, f): exact values {k * 2^-f : lo <= k <= hi}
Term = tuple[int, int, int]  # (operand, shift, sign)
Key = tuple[int, int, int, int]  # pattern (a, b, shift, sub)

DEFAULT_TYPE = QInterval(-128, 127, 0)  # cost model when the input types are unknown
DEPTH_SLACK = 2  # default limit = minimal depth + DEPTH_SLACK
MAX_VARIANTS = 8  # more distinct position signatures than this share one program
# column decomposition trees up to this depth are tried (0: never). With 'bits' a decomposition is
# only picked when the plain greedy is > ADDER_GUARD off in adders and it pays for any extra depth
# (``_pick_bits``): its full-width chain adders cost yosys LUTs end to end (JSC: +1.5-5 % when forced).
DECOMPOSE_DEPTH = 2
# perturbed greedy runs besides the plain one (``_jitter``) on cmvms up to RESTART_DIGITS signed
# digits, half as many above: RESTARTS with objective 'adders', RESTARTS_BITS with 'bits' (where
# they only replace the plain greedy when it is > ADDER_GUARD off, see ``_pick_bits``)
RESTARTS = 2
RESTARTS_BITS = 3
RESTART_DIGITS = 4000
# above this many signed digits the defaults (restarts -1, decompose_depth -1) run the plain greedy
# only: each alternative costs a full greedy run (dense 8-bit 256x256: 183k digits); the largest
# case of the benchmark suite (dense 8-bit 128x128) has 45940
LARGE_DIGITS = 50000
# 'bits': above this many digits one restart only (on the suite the larger cmvms' restarts are within
# 1.6 % of the plain greedy, and each costs a full greedy run: 32x32 dense went from 1x to 4-6x da4ml)
RESTART_DIGITS_BITS = 1000
PAIR_CHUNK = 1 << 20  # initial pair count: pairs generated and counted per block (bounds its memory)
DENSE_PATTERNS = 1 << 22  # ... into a dense table when there are at most this many possible patterns
ADDER_GUARD = 0.01  # 'bits': tolerance in adders around the fewest found (``_pick_bits``)
DEPTH_PENALTY = 0.02  # 'bits': share of adder bits one level deeper than the plain greedy must save
COMPACT_MIN = 1 << 14  # new operands' patterns are renumbered when more than this many and half are no candidates
FRONT_MIN = 1 << 10  # the greedy's frontier (``_Solver._refill``): at least this many candidates ...
FRONT_SHARE = 16  # ... or this share of them
OBJECTIVES = ('bits', 'adders')  # what ``solve`` minimises first among its candidates

# --------------------------------------------------------------------------- interval helpers


def _width(lo: int, hi: int) -> int:
    if lo == 0 and hi == 0:
        return 0
    mag = max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0)
    return mag + (lo < 0)


def shift_add_interval(a: Interval, b: Interval, shift: int, sub: bool) -> Interval:
    """Exact interval of ``a ± b * 2^shift`` (the scalar ``shift_add`` typing rule)."""
    fb = b[2] - shift
    f = max(a[2], fb)
    alo, ahi = a[0] << (f - a[2]), a[1] << (f - a[2])
    blo, bhi = b[0] << (f - fb), b[1] << (f - fb)
    if sub:
        return alo - bhi, ahi - blo, f
    return alo + blo, ahi + bhi, f


def scalar_shift_add_type(a: QInterval, b: QInterval, shift: int, sub: bool) -> TensorType:
    """The ``shift_add`` typing rule for one scalar, without the tensor machinery (hot in
    ``lower`` and ``range``; ``hgqc.ir.verify`` cross-checks it against ``OPS``)."""
    lo, hi, f = shift_add_interval((a.lo, a.hi, a.f), (b.lo, b.hi, b.f), shift, sub)
    return TensorType((), (ZERO if lo == 0 and hi == 0 else QInterval(lo, hi, f),))


def adder_cost(a: Interval, b: Interval, shift: int, sub: bool) -> int:
    """Bits of the adder computing ``a ± b << shift``: result width minus pass-through low bits."""
    lo, hi, _ = shift_add_interval(a, b, shift, sub)
    return max(1, _width(lo, hi) - abs(a[2] - (b[2] - shift)))


def _msb(v: Interval, shift: int) -> int:
    """Position of the top bit of ``v * 2^shift`` (orders terms by magnitude)."""
    return _width(v[0], v[1]) - v[2] + shift


def _ceil_log2(x: int) -> int:
    return max(0, (x - 1).bit_length())


# --------------------------------------------------------------------------- the solver


class _Solver:
    """State of one CSE run: operands (inputs, constants, ops) and the terms of every column."""

    def __init__(
        self,
        n_in: int,
        digits: np.ndarray,
        n_out: int,
        bias: Sequence[float] | None,
        types: Sequence[QInterval],
        salt: int = 0,
    ):
        self.n_in = n_in
        self.salt = salt  # 0: plain costs; else a seeded perturbation breaks ties differently (restarts)
        self.vals: list[Interval] = [(t.lo, t.hi, t.f) for t in types]
        self.dep: list[int] = [0] * n_in
        self.ops: list[Key] = []
        self.memo: dict[Key, int] = {}
        # counted patterns (``_find``): the initial ones at indices 0 .. len(keys0)-1 (``keys0`` sorted,
        # looked up in the dense table ``lut`` when there is one), then the ones of each new operand as
        # it is made; ``index`` maps the encoded patterns ``lut`` does not cover to their indices. Per
        # index: pattern (``kk``), pair count, cost, and stored saving (``best``, -1: no candidate)
        self.keys0 = np.zeros(0, dtype=np.int64)
        self.index = KeyIndex()
        self.kk = np.zeros(0, dtype=np.int64)
        self.cnt = np.zeros(0, dtype=np.int32)  # (int32: 24 bytes per pattern with kk and best)
        self.cst = np.zeros(0, dtype=np.int32)
        self.best = np.zeros(0, dtype=np.int64)
        self.n_pat = 0  # used length of kk / cnt / cst / best
        self.lut: np.ndarray | None = None  # dense pattern table -> initial pattern index (``_PairCounter.index``)
        self.counter: _PairCounter | None = None
        # the priority queue (``run_cse``): the frontier (the best stored savings when it was filled,
        # as ``_entry`` ints, in order), the pushes since then that rank above
        # its last entry (``theta``: saving, pattern) in the small heap ``hq``
        self.front: list[int] = []
        self.hq: list[int] = []
        self.theta = (_NEVER, 0)
        # lookahead hooks (``cse_lookahead``): patterns substituted first, in this order; patterns the
        # first free decision may not take (they stay candidates afterwards); every pattern taken
        self.forced: Sequence[int] = ()
        self.skip: frozenset[int] = frozenset()
        self.taken: list[int] = []
        self.cols: list[dict[int, dict[int, int]]] = [defaultdict(dict) for _ in range(n_out)]
        self.where: dict[int, set[int]] = defaultdict(set)  # operand -> columns using it
        # the same terms as fixed-width rows (operand -1: empty slot) for vectorised pair updates; a
        # column's term count never grows (a substitution turns two terms into one), so the rows
        # never need more slots than the column had digits, and ``slot`` maps (operand, shift) to one
        width = int(np.bincount(digits[:, 1], minlength=n_out).max(initial=0)) if len(digits) else 0
        self.t_op = np.full((n_out, max(width, 1)), -1, dtype=np.int64)
        self.t_sh = np.zeros((n_out, max(width, 1)), dtype=np.int64)
        self.t_sg = np.zeros((n_out, max(width, 1)), dtype=np.int64)
        self.slot: list[dict[tuple[int, int], int]] = [{} for _ in range(n_out)]
        for i, j, e, s in digits.tolist():
            self.cols[j][i][e] = s
            self.where[i].add(j)
            k = len(self.slot[j])
            self.slot[j][i, e] = k
            self.t_op[j, k], self.t_sh[j, k], self.t_sg[j, k] = i, e, s
        self.n_vals = 0  # how many of ``vals`` the numpy copies below hold (``batch_costs``)
        self.v_lo = self.v_hi = self.v_f = np.zeros(0, dtype=np.int64)
        self.leaf = self._bias_leaves(list(bias) if bias is not None else [0.0] * n_out)
        self.n_base = n_in + len(self.consts)
        # Kraft sum (sum of 2^depth over a column's terms; the column needs ceil(log2(.)) levels)
        # and its number of positive terms (with none, one leaf must be negated: +2^min depth)
        col, pos = digits[:, 1], digits[:, 3] > 0
        has_leaf = [t is not None for t in self.leaf]
        self.dsum = (np.bincount(col, minlength=n_out) + has_leaf).tolist()
        self.npos = (np.bincount(col[pos], minlength=n_out) + has_leaf).tolist()

    def _bias_leaves(self, bias: list[float]) -> list[Term | None]:
        """One constant operand per distinct nonzero bias; each column's bias is a leaf term."""
        index: dict[float, int] = {}
        for b in bias:
            if b != 0:
                index.setdefault(float(b), self.n_in + len(index))
        self.consts = list(index)
        for c in self.consts:
            self.vals.append(_const_interval(c))
            self.dep.append(0)
        return [(index[float(b)], 0, 1) if b != 0 else None for b in bias]

    def min_depth(self) -> int:
        return max((_ceil_log2(w + (self.npos[j] == 0)) for j, w in enumerate(self.dsum) if w), default=0)

    # ------------------------------------------------------------------ operands
    def new_op(self, a: int, b: int, shift: int, sub: int) -> int:
        """Operand ``v[a] ± v[b] << shift`` (``a == -1``: the constant 0), reusing an identical op."""
        key = (a, b, shift, sub)
        idx = self.memo.get(key)
        if idx is None:
            idx = self.n_base + len(self.ops)
            if idx >= 1 << 20:
                raise ValueError('cmvm too large for the CSE pattern encoding (2^20 operands)')
            self.ops.append(key)
            self.memo[key] = idx
            va, da = (self.vals[a], self.dep[a]) if a >= 0 else ((0, 0, 0), 0)
            self.vals.append(shift_add_interval(va, self.vals[b], shift, bool(sub)))
            self.dep.append(max(da, self.dep[b]) + 1)
        return idx

    # ------------------------------------------------------------------ pattern search
    # Patterns are int-encoded (``_enc``). The solver keeps the number of pairs forming each pattern
    # that occurs at least twice (decremented as terms are consumed; a pattern of existing operands
    # never gains pairs, only new operands form new patterns) in numpy arrays indexed by pattern, so
    # a substitution's updates are vectorised. A count below 2 means "not a candidate" (like an
    # absent one). ``best[i]`` is the stored saving of pattern ``i`` (an upper bound, re-checked when
    # the greedy looks at the pattern); the greedy always looks at the largest stored saving, then
    # the smallest pattern (``_entry`` order), as a lazy heap of pushed entries would, so it takes
    # the pattern saving most under the depth limit (then the smallest) at every step.

    def _find(self, keys: np.ndarray) -> np.ndarray:
        """Pattern index of each key (-1: not counted)."""
        if self.lut is None:
            return self.index.get(keys, self.kk)
        out = np.full(len(keys), -1, dtype=np.int64)
        initial = ((keys >> 33) < self.n_base) & (((keys >> 13) & 0xFFFFF) < self.n_base)
        w = np.flatnonzero(initial)
        d, ok = self.counter.index(keys[w])  # initial patterns: direct look-up in the dense table
        out[w[ok]] = self.lut[d[ok]]
        rest = np.flatnonzero(~initial)
        if len(rest):
            out[rest] = self.index.get(keys[rest], self.kk)
        return out

    def _index(self, k: int) -> int:
        return int(self._find(np.array([k], dtype=np.int64))[0])

    def count_of(self, k: int) -> int:
        i = self._index(k)
        return int(self.cnt[i]) if i >= 0 else 0

    def kill(self, k: int) -> None:
        i = self._index(k)
        if i >= 0:
            self.cnt[i] = 0

    def uncount(self, gone: np.ndarray) -> None:
        """One pair fewer for each pattern in ``gone``."""
        idx = self._find(gone)
        np.subtract.at(self.cnt, idx[idx >= 0], self.cnt.dtype.type(1))  # (a Python 1 takes a slow path)

    def _add_patterns(self, keys: np.ndarray, counts: np.ndarray, costs: np.ndarray, index: bool = True) -> np.ndarray:
        """Append new patterns (not counted yet) to the arrays (``index``: and to ``index``); returns their indices."""
        n, m = self.n_pat, len(keys)
        if n + m > len(self.cnt):
            cap = max(len(self.cnt) * 3 // 2, n + m, 1024)
            for name in _PATTERN_ARRAYS:  # one at a time: the peak is the old arrays plus one new one
                setattr(self, name, _grown(getattr(self, name)[:n], cap))
        self.kk[n : n + m], self.cnt[n : n + m], self.cst[n : n + m], self.best[n : n + m] = keys, counts, costs, -1
        self.n_pat = n + m
        idx = np.arange(n, n + m, dtype=np.int64)
        if index:
            self.index.add(self.kk, idx)
        return idx

    def costs_of(self, keys: np.ndarray) -> np.ndarray:
        """``adder_cost`` of many patterns (jittered on restarts), vectorised when int64 is safe."""
        if self.n_vals < len(self.vals):  # numpy copies of the operand intervals, extended lazily
            new = self.vals[self.n_vals :]
            self.v_lo = np.concatenate([self.v_lo, _i64([v[0] for v in new])])
            self.v_hi = np.concatenate([self.v_hi, _i64([v[1] for v in new])])
            self.v_f = np.concatenate([self.v_f, _i64([v[2] for v in new])])
            self.n_vals = len(self.vals)
        if self.v_lo.dtype == np.int64 and self.v_hi.dtype == np.int64 and self.v_f.dtype == np.int64:
            got = _costs_arrays(self.v_lo, self.v_hi, self.v_f, keys)
        else:
            got = np.full(len(keys), -1, dtype=np.int64)
        slow = np.flatnonzero(got < 0)  # (wide operands, or steps far apart: exact Python ints)
        if len(slow):
            vals = self.vals
            got[slow] = [adder_cost(vals[a], vals[b], sh, bool(sub)) for a, b, sh, sub in map(_dec, keys[slow].tolist())]
        return _jitter(keys, got, self.salt) if self.salt else got

    def cost(self, key: int) -> int:
        return int(self.costs_of(np.array([key], dtype=np.int64))[0])

    def saving(self, count: int, key: int) -> int:
        """Priority of a pattern with ``count`` pairs: the adder bits its extraction saves."""
        return (count - 1) * self.cost(key)

    def push(self, i: int, key: int, saving: int) -> None:
        """Store pattern ``i``'s saving; one that ranks above the frontier's last entry joins ``hq``."""
        self.best[i] = saving
        ts, tk = self.theta
        if saving > ts or (saving == ts and key < tk):
            heapq.heappush(self.hq, _entry(saving, key, i))

    def push_many(self, idx: np.ndarray, keys: np.ndarray, savings: np.ndarray) -> None:
        self.best[idx] = savings
        ts, tk = self.theta
        up = (savings > ts) | ((savings == ts) & (keys < tk))
        if up.any():
            for e in _entries(savings[up], keys[up], idx[up]):
                heapq.heappush(self.hq, e)

    def _refill(self) -> bool:
        """Make the frontier: the ``FRONT_SHARE``-th part (at least ``FRONT_MIN``) of the candidates
        with the largest stored savings, in ``_entry`` order (False: no candidate left). Everything
        outside ranks below its last entry; what is pushed above that until the next refill goes to
        ``hq``. Candidates whose count fell below 2 are dropped here (as a heap pop would), and when
        most new-operand patterns are no candidates any more the arrays are renumbered."""
        n, n0 = self.n_pat, len(self.keys0)
        best, cnt = self.best[:n], self.cnt[:n]
        best[(best >= 0) & (cnt < 2)] = -1
        # what the look at the top would store anyway: the saving of the pairs left (the greedy's
        # pick is the largest (saving under the depth limit, then smallest pattern) either way)
        cst = self.cst[:n]
        for i in range(0, n, PAIR_CHUNK):  # (in blocks: its int64 temporaries)
            b, c = best[i : i + PAIR_CHUNK], cnt[i : i + PAIR_CHUNK]
            np.minimum(b, (c.astype(np.int64) - 1) * cst[i : i + PAIR_CHUNK], out=b, where=b >= 0)
        self.front, self.hq, self.theta = [], [], (_NEVER, 0)
        if n - n0 > COMPACT_MIN:
            keep = best[n0:] >= 0  # (a pattern of count >= 2 is a candidate)
            if 2 * int(np.count_nonzero(keep)) < n - n0:
                self._renumber(keep)
        n, best = self.n_pat, self.best[: self.n_pat]
        n_live = int(np.count_nonzero(best >= 0))
        if not n_live:
            return False
        k = max(FRONT_MIN, n_live // FRONT_SHARE)
        if n_live > k:  # (no index array of all candidates: the peak memory of a 256x256 is here)
            cut = np.partition(best, n - k)[n - k]  # the k-th largest stored saving
            above, tied = np.flatnonzero(best > cut), np.flatnonzero(best == cut)
            r = k - len(above)
            if len(tied) > r:  # the tied ones with the smallest patterns
                tied = tied[np.argpartition(self.kk[tied], r - 1)[:r]]
            live = np.concatenate([above, tied])
        else:
            live = np.flatnonzero(best >= 0)
        sav = best[live]
        keys = self.kk[live]
        order = np.lexsort((keys, -sav))
        live, sav, keys = live[order], sav[order], keys[order]
        self.front = _entries(sav, keys, live)
        self.theta = (int(sav[-1]), int(keys[-1]))
        return True

    def _renumber(self, keep_new: np.ndarray) -> None:
        """Drop the new operands' patterns outside ``keep_new`` (no candidates: never looked at
        again, a count below 2 is "not counted") and renumber; the initial ones keep their indices."""
        n0, n = len(self.keys0), self.n_pat
        keep = np.ones(n, dtype=bool)
        keep[n0:] = keep_new
        m = int(np.count_nonzero(keep))
        cap = max(m * 3 // 2, 1024)
        for name in _PATTERN_ARRAYS:
            setattr(self, name, _grown(getattr(self, name)[:n][keep], cap))
        self.n_pat = m
        start = n0 if self.lut is not None else 0
        self.index = KeyIndex(self.kk, np.arange(start, m, dtype=np.int64))

    def initial_counts(self) -> None:
        """Count every pair of terms in every column (vectorised) and store the initial savings.

        The pairs are generated and counted in blocks of about ``PAIR_CHUNK`` (a column's pairs
        row block by row block): into a dense table over all possible patterns when that is small
        (``DENSE_PATTERNS``), else into ``np.unique`` tables merged as they grow. Memory is that
        of the distinct patterns plus one block, not of all pairs at once."""
        keys, counts, counter = self._pair_counts()
        if counter is None:
            return
        self.keys0 = keys
        if counter.table is not None:
            self.counter, self.lut = counter, np.full(len(counter.table), -1, dtype=np.int32 if len(keys) < 2**31 else np.int64)
            counter.table = None  # only its shape is needed from now on
            d, _ = counter.index(keys)
            self.lut[d] = np.arange(len(keys))
        costs = self.costs_of(keys)
        idx = self._add_patterns(keys, counts, costs, index=self.lut is None)
        self.best[idx] = (counts - 1) * costs

    def _pair_counts(self) -> tuple[np.ndarray, np.ndarray, _PairCounter | None]:
        """The patterns of two terms of one column that occur at least twice (sorted), their counts,
        and the ``_PairCounter`` that made them (None: no column has two terms)."""
        cols = []
        for col in self.cols:
            terms = sorted((o, e, s) for o, sh in col.items() for e, s in sh.items())
            if len(terms) > 1:
                cols.append(np.array(terms, dtype=np.int64))
        empty = np.zeros(0, dtype=np.int64)
        if not cols:
            return empty, empty, None
        counter = _PairCounter(self.n_base, min(int(t[:, 1].min()) for t in cols), max(int(t[:, 1].max()) for t in cols))
        for t in cols:
            for i, k in _pair_blocks(len(t), PAIR_CHUNK):  # sorted terms: i is the smaller (operand, shift)
                counter.add(t[i, 0], t[k, 0], t[k, 1] - t[i, 1], t[i, 2] != t[k, 2])
        keys, counts = counter.result()
        return keys[counts > 1], counts[counts > 1], counter

    def occurrences(self, key: Key, limit: int) -> list[tuple[int, int, int]]:
        """Non-overlapping occurrences (column, shift of a, sign of a) allowed by the depth limit."""
        a, b, s, sub = key
        da, db = self.dep[a], self.dep[b]
        dp = max(da, db) + 1
        grow = (1 << dp) - (1 << da) - (1 << db)
        cap = 1 << limit
        cols = self.where[a] & self.where[b] if a != b else self.where[a]
        out = []
        for j in sorted(cols):
            ta, tb = self.cols[j][a], self.cols[j][b]
            used: set[int] = set()
            w, npos = self.dsum[j], self.npos[j]
            for e1 in sorted(ta):
                e2 = e1 + s
                if e1 in used or e2 in used or e2 not in tb or (ta[e1] != tb[e2]) != bool(sub):
                    continue
                npos -= tb[e2] > 0  # the new term takes a's sign
                # all-negative column: reserve a negation of (at worst) the new term; need only grows
                if w + grow + ((1 << dp) if npos == 0 else 0) > cap:
                    break
                w += grow
                out.append((j, e1, ta[e1]))
                if a == b:
                    used.update((e1, e2))
        return out

    def _merge_terms(self, j: int, a: int, e1: int, b: int, e2: int, p: int, sign: int, grow: int) -> None:
        """In column ``j``'s dicts, the terms ``(a, e1)`` and ``(b, e2)`` become ``(p, e1)`` with ``sign``."""
        col = self.cols[j]
        self.npos[j] -= col[b][e2] > 0  # a's and b's terms become one term with a's sign
        self.dsum[j] += grow
        for o, e in ((a, e1), (b, e2)):
            del col[o][e]
            if not col[o]:
                del col[o]
                self.where[o].discard(j)
        col[p][e1] = sign
        self.where[p].add(j)

    def substitute(self, key: Key, occ: list[tuple[int, int, int]], own: int = -1) -> None:
        """Replace the occurrences by a new operand, keeping the pair counts exact.

        The hot loop of the solver, vectorised over all occurrences at once. Occurrence ``i`` (in
        ``occ`` order) sees its column as it is after the earlier occurrences in that column were
        replaced: its two consumed terms lose their pairs with the terms consumed later and the
        column's other terms, and with the new operand's earlier terms; the new term's pairs are
        counted against the same set (including terms a later occurrence consumes).
        """
        a, b, s, sub = key
        n_ops = len(self.ops)
        p = self.new_op(a, b, s, sub)
        made = len(self.ops) > n_ops  # a new operand (not one ``new_op`` reused): none of its patterns counted yet
        grow = (1 << self.dep[p]) - (1 << self.dep[a]) - (1 << self.dep[b])
        n = len(occ)
        rows: list[tuple[int, int, int, int, int, int, int]] = []  # per occurrence: j, e1, sign, sb, slots, rank
        prev, r = -1, 0
        for j, e1, sign in occ:
            col, slots = self.cols[j], self.slot[j]
            e2 = e1 + s
            sb = col[b][e2]
            self._merge_terms(j, a, e1, b, e2, p, sign, grow)
            sa_, sb_ = slots.pop((a, e1)), slots.pop((b, e2))
            slots[p, e1] = sa_
            r = r + 1 if j == prev else 0
            prev = j
            rows.append((j, e1, sign, sb, sa_, sb_, r))
        J, E1, SG, SB, SA, SBs, R = np.array(rows, dtype=np.int64).T.copy()  # (small ints: no overflow check needed)
        E2 = E1 + s
        # partners of occurrence i: its column's terms (before this substitution) not consumed by
        # occurrence i or an earlier one in the column
        first = np.flatnonzero(R == 0)
        mask = self.t_op[J] >= 0
        if len(first) == n:  # one occurrence per column (the common case): all but its two terms
            rows = np.arange(n)
            mask[rows, SA] = False
            mask[rows, SBs] = False
        else:
            cons = np.full((n, self.t_op.shape[1]), n, dtype=np.int64)  # rank of the occurrence consuming the slot
            row_of = np.repeat(first, np.diff(np.append(first, n)))  # the row (first occurrence) of each column
            cons[row_of, SA] = R
            cons[row_of, SBs] = R
            mask &= cons[row_of] > R[:, None]
        ii, ss = np.nonzero(mask)
        jj = J[ii]
        po, pe, pg = self.t_op[jj, ss], self.t_sh[jj, ss], self.t_sg[jj, ss]
        m = len(ii)
        # pairs lost: a-b of each occurrence, a and b with each partner; the new term's pairs: with each partner
        x_o = [np.full(n, a), np.full(m, a), np.full(m, b)]
        x_e, x_s = [E1, E1[ii], E2[ii]], [SG, SG[ii], SB[ii]]
        y_o, y_e, y_s = [np.full(n, b), po, po], [E2, pe, pe], [SB, pg, pg]
        f_e, f_s = [E1[ii]], [SG[ii]]
        f_o, f_pe, f_ps = [po], [pe], [pg]
        if len(first) < n:  # several occurrences in one column: the new terms of the earlier ones
            later = np.flatnonzero(R > 0)
            ri = np.repeat(later, R[later])
            li = row_of[ri] + (np.arange(len(ri)) - np.repeat(np.cumsum(R[later]) - R[later], R[later]))
            x_o += [np.full(len(ri), a), np.full(len(ri), b)]
            x_e += [E1[ri], E2[ri]]
            x_s += [SG[ri], SB[ri]]
            y_o += [np.full(len(ri), p)] * 2
            y_e += [E1[li]] * 2
            y_s += [SG[li]] * 2
            f_e.append(E1[ri]), f_s.append(SG[ri])
            f_o.append(np.full(len(ri), p)), f_pe.append(E1[li]), f_ps.append(SG[li])
        cat = np.concatenate
        self.uncount(_pairs_vec(cat(x_o), cat(x_e), cat(x_s), cat(y_o), cat(y_e), cat(y_s)))
        f_e, f_s = cat(f_e), cat(f_s)
        fresh = _pairs_vec(np.full(len(f_e), p), f_e, f_s, cat(f_o), cat(f_pe), cat(f_ps))
        self.t_op[J, SA], self.t_sh[J, SA], self.t_sg[J, SA] = p, E1, SG
        self.t_op[J, SBs] = -1
        keys, counts = np.unique(fresh, return_counts=True)
        keys, counts = keys[counts > 1], counts[counts > 1]
        if len(keys):
            idx = np.full(len(keys), -1, dtype=np.int64) if made else self._find(keys)
            old = idx >= 0
            self.cnt[idx[old]] = counts[old]  # a re-made operand: its counted patterns are recounted
            new = ~old
            if new.any():
                idx[new] = self._add_patterns(keys[new], counts[new], self.costs_of(keys[new]))
            self.push_many(idx, keys, (counts - 1) * self.cst[idx])
        i = self._index(_enc(*key)) if own < 0 else own
        if i >= 0 and self.cnt[i] > 1:  # occurrences the depth limit or an overlap kept back stay candidates
            self.push(i, _enc(*key), int((self.cnt[i] - 1) * self.cst[i]))

    def _only(self, entries: list[int]) -> bool:
        """Whether the patterns of ``entries`` are the only candidates left."""
        n = self.n_pat
        live = (self.best[:n] >= 0) & (self.cnt[:n] >= 2)
        live[[e & _IDX_MASK for e in entries]] = False
        return not live.any()

    def run_cse(self, limit: int) -> None:
        """The greedy: take the pattern with the largest stored saving (then the smallest pattern);
        when its pairs or its occurrences under the depth limit save less than stored, store that
        and look again (lazy), else substitute it."""
        self.initial_counts()
        for k in self.forced:  # a lookahead prefix: the same substitutions the greedy made when it chose them
            key = _dec(k)
            occ = self.occurrences(key, limit)
            if len(occ) < 2:
                raise ValueError(f'forced CSE pattern {key} does not occur twice')
            self.substitute(key, occ)
            self.taken.append(k)
        push, pop = heapq.heappush, heapq.heappop
        while self._refill():
            held: list[int] = []  # ``skip`` patterns' entries passed over until the first free decision
            front, hq, (ts, tk) = self.front, self.hq, self.theta
            best, cnt, cst = self.best, self.cnt, self.cst
            fp, nf = 0, len(front)
            while fp < nf:
                entry = front[fp]
                if hq and hq[0] < entry:  # a push since the refill ranks first
                    entry = pop(hq)
                else:
                    fp += 1
                i = entry & _IDX_MASK
                neg = entry >> _SAV_SHIFT
                if best[i] != -neg:
                    continue  # superseded entry
                c = int(cnt[i])
                if c < 2:
                    best[i] = -1
                    continue
                k = (entry >> _IDX_BITS) & _KEY_MASK
                bound = -(c - 1) * int(cst[i])
                if bound > neg:  # pairs were consumed since the push: look again with the smaller saving
                    best[i] = -bound
                    if -bound > ts or (-bound == ts and k < tk):
                        push(hq, ((bound << _KEY_BITS | k) << _IDX_BITS) | i)
                    continue
                key = _dec(k)
                occ = self.occurrences(key, limit)
                if len(occ) < 2:
                    best[i] = -1
                    cnt[i] = 0  # depth slack only shrinks: blocked for good
                    continue
                true = -(len(occ) - 1) * int(cst[i])
                if true > neg:
                    best[i] = -true
                    if -true > ts or (-true == ts and k < tk):
                        push(hq, ((true << _KEY_BITS | k) << _IDX_BITS) | i)
                    continue
                if self.skip and k in self.skip:
                    held.append(entry)  # still stored (``best[i]`` unchanged): back into ``hq`` below
                    continue
                best[i] = -1
                self.substitute(key, occ, i)
                self.taken.append(k)
                best, cnt, cst = self.best, self.cnt, self.cst
                if self.skip:  # the first free decision is made: the passed-over patterns compete again
                    self.skip = frozenset()
                    for e in held:
                        push(hq, e)
                    held = []
            if held and self._only(held):
                break  # nothing but ``skip`` patterns left: no free decision to make

    # ------------------------------------------------------------------ output trees
    def combine(self, t1: Term, t2: Term) -> Term:
        """One adder summing two terms; the result is again a term (operand, shift, sign)."""
        (o1, e1, s1), (o2, e2, s2) = t1, t2
        if s1 == s2:
            (o1, e1), (o2, e2) = sorted(((o1, e1), (o2, e2)), key=lambda t: (t[1], t[0]))
            return self.new_op(o1, o2, e2 - e1, 0), e1, s1
        if s1 < 0:
            (o1, e1), (o2, e2) = (o2, e2), (o1, e1)
        return self.new_op(o1, o2, e2 - e1, 1), e1, 1

    def kraft(self, j: int) -> int:
        """``sum 2^depth`` over the column's terms (bias excluded): it needs ``ceil(log2(.))`` levels."""
        return sum(len(sh) << self.dep[o] for o, sh in self.cols[j].items())

    def column_depth(self, j: int) -> int:
        """Levels of column ``j``'s tree with its bias as a leaf (an all-negative sum negates one leaf)."""
        k = self.kraft(j) + (self.leaf[j] is not None)
        if self.leaf[j] is None and self.cols[j] and all(s < 0 for sh in self.cols[j].values() for s in sh.values()):
            k += 1 << min(self.dep[o] for o in self.cols[j])
        return _ceil_log2(k)

    def bias_level(self, j: int, depth: int) -> int:
        """The highest level at which column ``j``'s bias can join its tree within ``depth`` levels.

        A constant add costs no LUT (only a carry chain), while every adder above the level where
        the bias joins carries its bits (often finer than the terms'), so the bias joins as late as
        the depth allows: at the root when the terms fit ``depth - 1`` levels (Kraft:
        ``sum 2^level <= 2^depth``).
        """
        room = (1 << depth) - self.kraft(j)
        return max(0, min(depth - 1, room.bit_length() - 1))

    def column_tree(self, j: int, depth: int | None = None) -> Term | None:
        """Sum the column's terms level by level, pairing terms of similar magnitude; the bias
        joins at ``bias_level`` (``depth``: the levels allowed, default the column's own)."""
        levels: dict[int, list[Term]] = defaultdict(list)
        for o, sh in sorted(self.cols[j].items()):
            for e, s in sorted(sh.items()):
                levels[self.dep[o]].append((o, e, s))
        if self.leaf[j] is not None:
            levels[self.bias_level(j, self.column_depth(j) if depth is None else depth) if levels else 0].append(self.leaf[j])
        if not levels:
            return None
        if all(t[2] < 0 for ts in levels.values() for t in ts):
            # an all-negative sum needs one negation; on the shallowest, narrowest leaf it costs
            # the least depth and the tree result is then positive (no negation at the end)
            d0 = min(levels)
            o, e, _ = min(levels[d0], key=lambda t: (_msb(self.vals[t[0]], t[1]), t))
            levels[d0].remove((o, e, -1))
            if not levels[d0]:
                del levels[d0]
            levels[d0 + 1].append((self.new_op(-1, o, 0, 1), e, 1))
        d = min(levels)
        while True:
            terms = sorted(levels.pop(d, []), key=lambda t: (_msb(self.vals[t[0]], t[1]), t))
            if not levels and len(terms) == 1:
                return terms[0]
            nxt = levels[d + 1]
            for k in range(0, len(terms) - 1, 2):
                nxt.append(self.combine(terms[k], terms[k + 1]))
            if len(terms) % 2:
                nxt.append(terms[-1])  # waits one level for a partner
            d += 1

    def program(self) -> dict[str, Any]:
        # every column may use the depth of the deepest one (the cmvm's depth does not change)
        depth = max((self.column_depth(j) for j in range(len(self.cols))), default=0)
        outs = [self.column_tree(j, depth) for j in range(len(self.cols))]
        return _compact(self.n_in, self.consts, self.ops, outs, self.dep)

    def program_decomposed(self, dec: Decomposition) -> dict[str, Any]:
        """The program when the columns solved are residuals: ``y_j = r_j + sign * 2^shift * y_parent``."""
        res = [self.column_tree(j) for j in range(len(self.cols))]
        outs: list[Term | None] = [None] * len(res)
        for j in dec.order:  # parents first
            p, r = dec.parent[j], res[j]
            if p < 0 or outs[p] is None:
                outs[j] = r
                continue
            o, e, sg = outs[p]  # type: ignore[misc]
            up = (o, e + dec.shift[j], sg * dec.sign[j])
            outs[j] = up if r is None else self.combine(r, up)
        final: list[Term | None] = []
        for t in outs:  # an output is never negated for free (lower would add a negation): do it here
            final.append(t if t is None or t[2] > 0 else (self.new_op(-1, t[0], 0, 1), t[1], 1))
        return _compact(self.n_in, self.consts, self.ops, final, self.dep)


_SHIFT_BIAS = 1 << 11  # relative shifts must lie in [-2048, 2048)
_KEY_BITS = 53  # a (20 bits) | b (20 bits) | shift (12 bits) | sub (1 bit)
_KEY_MASK = (1 << _KEY_BITS) - 1
_IDX_BITS = 40  # heap entries: -saving | pattern (_KEY_BITS) | pattern index (_IDX_BITS)
_IDX_MASK = (1 << _IDX_BITS) - 1
_SAV_SHIFT = _KEY_BITS + _IDX_BITS
_NEVER = 1 << 62  # a saving above any real one


def _entry(saving: int, key: int, index: int) -> int:
    """Heap entry (one int: compares faster than a tuple): larger saving first, then smaller pattern."""
    return (((-saving) << _KEY_BITS | key) << _IDX_BITS) | index


def _entries(savings: np.ndarray, keys: np.ndarray, idx: np.ndarray) -> list[int]:
    """``_entry`` of many patterns (elementwise on Python ints: they need more than 64 bits)."""
    e = ((-savings).astype(object) << _KEY_BITS) | keys.astype(object)
    return ((e << _IDX_BITS) | idx.astype(object)).tolist()


def _enc(a: int, b: int, shift: int, sub: int) -> int:
    if not -_SHIFT_BIAS <= shift < _SHIFT_BIAS:
        raise ValueError(f'cmvm weights span more than {_SHIFT_BIAS} binary orders of magnitude')
    return (a << 33) | (b << 13) | ((shift + _SHIFT_BIAS) << 1) | sub


def _enc_np(a: np.ndarray, b: np.ndarray, shift: np.ndarray, sub: np.ndarray) -> np.ndarray:
    if shift.size and (shift.min() < -_SHIFT_BIAS or shift.max() >= _SHIFT_BIAS):
        raise ValueError(f'cmvm weights span more than {_SHIFT_BIAS} binary orders of magnitude')
    return (a << 33) | (b << 13) | ((shift + _SHIFT_BIAS) << 1) | sub.astype(np.int64)


def _dec(k: int) -> Key:
    return k >> 33, (k >> 13) & 0xFFFFF, ((k >> 1) & 0xFFF) - _SHIFT_BIAS, k & 1


def _bit_length_np(x: np.ndarray) -> np.ndarray:
    """Exact ``int.bit_length`` of non-negative int64 values."""
    if not x.size or x.max() < 1 << 53:  # exact in float64: the binary exponent (frexp(0) = 0)
        return np.frexp(x.astype(np.float64))[1].astype(np.int64)
    n = np.zeros(x.shape, dtype=np.int64)
    for k in (32, 16, 8, 4, 2, 1):
        big = x >= (1 << k)
        x = np.where(big, x >> k, x)
        n += np.where(big, k, 0)
    return n + (x > 0)


def _costs_arrays(lo: np.ndarray, hi: np.ndarray, fv: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``adder_cost`` of many patterns from int64 operand bounds (each below 2^40 in magnitude);
    -1 where the operands' steps are more than 20 bits apart (int64 could overflow: ask Python)."""
    a, b = keys >> 33, (keys >> 13) & 0xFFFFF
    s, sub = ((keys >> 1) & 0xFFF) - _SHIFT_BIAS, (keys & 1).astype(bool)
    fa, fb = fv[a], fv[b] - s
    f = np.maximum(fa, fb)
    far = f - np.minimum(fa, fb) > 20
    if far.any():
        fa, fb, f = np.where(far, 0, fa), np.where(far, 0, fb), np.where(far, 0, f)
    alo, ahi = lo[a] << (f - fa), hi[a] << (f - fa)
    blo, bhi = lo[b] << (f - fb), hi[b] << (f - fb)
    rlo = np.where(sub, alo - bhi, alo + blo)
    rhi = np.where(sub, ahi - blo, ahi + bhi)
    neg = rlo < 0
    mag = np.maximum(_bit_length_np(np.maximum(rhi, 0)), _bit_length_np(np.where(neg, -rlo - 1, 0)))
    width = np.where((rlo == 0) & (rhi == 0), 0, mag + neg)
    return np.where(far, -1, np.maximum(1, width - np.abs(fa - fb)))


JITTER = 16  # restarts: costs scaled by JITTER, plus a pseudo-random perturbation (``_jitter``)


def _jitter(keys: np.ndarray, costs: np.ndarray | int, salt: int) -> np.ndarray:
    """Deterministic per-(pattern, salt) perturbation of pattern costs (randomized restarts).

    Odd salts only break ties (``+ 0..JITTER-1``: less than one adder bit); even salts scale the
    cost by up to ``+(JITTER-1)/JITTER^2`` (~6 %), which also reorders near-ties of different
    widths. Every salt gives its own perturbation (splitmix64 of key and salt)."""
    m = np.uint64(2**64 - 1)
    x = keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64((salt * 0xD1B54A32D192ED03) & int(m))
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    r = (x % np.uint64(JITTER)).astype(np.int64)
    c = np.asarray(costs, dtype=np.int64)
    return c * JITTER + (r if salt % 2 else r * c // JITTER)


def _jitter1(key: int, cost: int, salt: int) -> int:
    """``_jitter`` of one pattern in plain Python ints (the per-pattern path; numpy is slow on scalars)."""
    m = (1 << 64) - 1
    x = (key * 0x9E3779B97F4A7C15 + ((salt * 0xD1B54A32D192ED03) & m)) & m
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & m
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & m
    x ^= x >> 31
    r = x % JITTER
    return cost * JITTER + (r if salt % 2 else r * cost // JITTER)


def _pairs_vec(x: np.ndarray, ex: np.ndarray, sx: np.ndarray, o: np.ndarray, e: np.ndarray, sg: np.ndarray) -> np.ndarray:
    """Encoded patterns of the term pairs ``(x, ex, sx)[i]``, ``(o, e, sg)[i]`` (vectorised ``_pair``)."""
    first = (x < o) | ((x == o) & (ex < e))
    lo_op, hi_op = np.where(first, x, o), np.where(first, o, x)
    shift = np.where(first, e - ex, ex - e)
    if shift.size and (shift.min() < -_SHIFT_BIAS or shift.max() >= _SHIFT_BIAS):
        raise ValueError(f'cmvm weights span more than {_SHIFT_BIAS} binary orders of magnitude')
    return (lo_op << 33) | (hi_op << 13) | ((shift + _SHIFT_BIAS) << 1) | (sg != sx)


def _pair_blocks(n: int, chunk: int):
    """Index pairs ``(i, k)``, ``i < k < n``, in row blocks of about ``chunk`` pairs (``np.triu_indices`` order)."""
    r0 = 0
    while r0 < n - 1:
        r1, total = r0, 0
        while r1 < n - 1 and (total == 0 or total + n - 1 - r1 <= chunk):
            total += n - 1 - r1
            r1 += 1
        rows = np.arange(r0, r1)
        i = np.repeat(rows, n - 1 - rows)
        start = np.cumsum(n - 1 - rows) - (n - 1 - rows)  # offset of each row's first pair
        k = np.arange(total) - np.repeat(start, n - 1 - rows) + i + 1
        yield i, k
        r0 = r1


class _PairCounter:
    """Counts of encoded patterns over operands ``< n_base`` and shifts within ``[lo, hi]``, added
    block by block: a dense ``np.bincount`` table when the pattern space is small, else sorted
    ``np.unique`` tables, merged when the pending ones outgrow the merged one."""

    def __init__(self, n_base: int, lo: int, hi: int):
        self.n, self.span = n_base, hi - lo
        size = n_base * n_base * (2 * self.span + 1) * 2
        self.table = np.zeros(size, dtype=np.int64) if size <= DENSE_PATTERNS else None
        self.keys = self.counts = np.zeros(0, dtype=np.int64)
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.n_pending = 0

    def index(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dense-table index of encoded patterns over operands ``< n_base``, and which are in range."""
        a, b = keys >> 33, (keys >> 13) & 0xFFFFF
        shift, sub = ((keys >> 1) & 0xFFF) - _SHIFT_BIAS, keys & 1
        ok = np.abs(shift) <= self.span
        return np.where(ok, ((a * self.n + b) * (2 * self.span + 1) + shift + self.span) * 2 + sub, 0), ok

    def add(self, a: np.ndarray, b: np.ndarray, shift: np.ndarray, sub: np.ndarray) -> None:
        if self.table is not None:  # indices buffered up to a block, then one bincount
            idx = ((a * self.n + b) * (2 * self.span + 1) + shift + self.span) * 2 + sub
            self.pending.append((idx, idx))
            self.n_pending += len(idx)
            if self.n_pending >= PAIR_CHUNK:
                self._flush()
            return
        k, c = np.unique(_enc_np(a, b, shift, sub), return_counts=True)
        self.pending.append((k, c))
        self.n_pending += len(k)
        if self.n_pending >= max(len(self.keys), PAIR_CHUNK):
            self._merge()

    def _flush(self) -> None:
        if self.pending:
            self.table += np.bincount(np.concatenate([i for i, _ in self.pending]), minlength=len(self.table))
        self.pending, self.n_pending = [], 0

    def _merge(self) -> None:
        if not self.pending:
            return
        ks = np.concatenate([self.keys, *(k for k, _ in self.pending)])
        cs = np.concatenate([self.counts, *(c for _, c in self.pending)])
        self.keys, inv = np.unique(ks, return_inverse=True)
        self.counts = np.bincount(inv, weights=cs, minlength=len(self.keys)).astype(np.int64)
        self.pending, self.n_pending = [], 0

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted distinct encoded patterns and their counts."""
        if self.table is None:
            self._merge()
            return self.keys, self.counts
        self._flush()
        idx = np.flatnonzero(self.table)  # lexicographic in (a, b, shift, sub), like the encoding
        sub, rest = idx & 1, idx >> 1
        shift, ab = rest % (2 * self.span + 1) - self.span, rest // (2 * self.span + 1)
        return _enc_np(ab // self.n, ab % self.n, shift, sub), self.table[idx]


_PATTERN_ARRAYS = ('kk', 'cnt', 'cst', 'best')  # the per-pattern arrays of ``_Solver``


def _grown(a: np.ndarray, cap: int) -> np.ndarray:
    """``a`` at the start of a new array of ``cap`` elements (the rest uninitialised)."""
    out = np.empty(cap, dtype=a.dtype)
    out[: len(a)] = a
    return out


def _i64(values: list[int]) -> np.ndarray:
    """int64 array of Python ints, or an object array when some do not fit comfortably (> 2^40)."""
    try:
        out = np.array(values, dtype=np.int64)
    except OverflowError:
        return np.array(values, dtype=object)
    if out.size and max(int(out.max()), -int(out.min())) >= 1 << 40:
        return np.array(values, dtype=object)
    return out


def _const_interval(c: float) -> Interval:
    q = QInterval.const(c)
    return q.lo, q.hi, q.f


def _compact(n_in: int, consts: list[float], ops: list, outs: list[Term | None], dep: list[int]) -> dict[str, Any]:
    """Drop ops no output reaches and renumber, so the program is minimal and canonical."""
    base = n_in + len(consts)
    live = [False] * len(ops)
    stack = [t[0] for t in outs if t is not None]
    while stack:
        o = stack.pop()
        if o >= base and not live[o - base]:
            live[o - base] = True
            stack.extend(ops[o - base][:2])
    remap = list(range(base))
    new_ops = []
    for k, (a, b, s, sub) in enumerate(ops):
        remap.append(base + len(new_ops) if live[k] else -1)
        if live[k]:
            new_ops.append([remap[a] if a >= 0 else -1, remap[b], int(s), int(sub)])
    outputs = [[-1, 0, 0] if t is None else [remap[t[0]], int(t[1]), int(t[2] < 0)] for t in outs]
    depth = max((dep[t[0]] for t in outs if t is not None), default=0)
    return {'n_in': n_in, 'consts': [float(c) for c in consts], 'ops': new_ops, 'outputs': outputs, 'depth': depth}


def _digits_of(node_attrs: dict[str, Any]) -> np.ndarray:
    """The node's ``csd`` attr, or fresh digits when it is missing or stale."""
    w = np.asarray(node_attrs['weights'], dtype=np.float64)
    d = node_attrs.get('csd')
    if d is not None:
        d = np.asarray(d, dtype=np.int64).reshape(-1, 4)
        if np.array_equal(csd_value(d, w.shape), w):
            return d
    return csd_matrix(w)


def solve(
    weights: np.ndarray,
    bias: Sequence[float] | None = None,
    types: Sequence[QInterval] | None = None,
    max_depth: int | None = None,
    share: bool = True,
    digits: np.ndarray | None = None,
    restarts: int = -1,
    decompose_depth: int = -1,
    objective: str = 'bits',
    lookahead: int = 0,
) -> dict[str, Any]:
    """One program variant for ``x @ weights + bias`` (see the module docstring).

    ``types`` are the input element types (cost model and operand magnitudes); ``share=False``
    skips CSE and only builds the balanced adder trees (a plain CSD expansion). ``restarts``
    extra greedy runs with seeded cost perturbations (``_jitter``) are made (``-1``:
    ``RESTARTS_BITS`` for ``'bits'``, ``RESTARTS`` for ``'adders'``, half as many above
    ``RESTART_DIGITS_BITS`` / ``RESTART_DIGITS`` digits, none above ``LARGE_DIGITS``), and column
    decompositions (``hgqc.passes.decompose``, every tree depth up to ``decompose_depth`` that fits
    the depth limit, with ``'bits'`` the deepest such one only; ``-1``: ``DECOMPOSE_DEPTH``, 0 above
    ``LARGE_DIGITS`` digits). Deterministic pick: ``objective='adders'`` keeps the fewest adders,
    then bits, then depth; ``'bits'`` keeps the plain greedy unless it is more than ``ADDER_GUARD`` off the fewest adders found
    (``_pick_bits``). ``lookahead > 0`` adds a pilot search over the first ``lookahead`` greedy
    decisions of the plain greedy and of each decomposition (``hgqc.passes.cse_lookahead``: opt-in,
    ``1 + 3 * lookahead`` greedy runs per strategy).
    """
    return _solve(weights, bias, types, max_depth, share, digits, restarts, decompose_depth, objective, lookahead)[0]


# which candidate won: ('trees', 0), ('greedy', salt), ('tree', decomposition depth) or ('pilot', decomposition
# depth, 0: none)
Tag = tuple[str, int]
Search = Callable[[Callable[[], '_Solver'], Callable[['_Solver'], dict[str, Any]], int], dict[str, Any]]


def _new_solver(
    n_in: int, digits: np.ndarray, n_out: int, bias: Sequence[float] | None, types: Sequence[QInterval], salt: int = 0
) -> _Solver:
    """A solver for one greedy run: the plain-Python one on small cmvms (``hgqc.passes.cse_small``:
    same decisions, less overhead per substitution), else the vectorised one."""
    from .cse_small import SmallSolver, fits

    cls = SmallSolver if fits(digits, n_out) else _Solver
    return cls(n_in, digits, n_out, bias, types, salt)


def _greedy(make: Callable[[], _Solver], finish: Callable[[_Solver], dict[str, Any]], limit: int) -> dict[str, Any]:
    """One greedy run: the program of a fresh solver after ``run_cse``."""
    s = make()
    s.run_cse(limit)
    return finish(s)


def _pilot(types: Sequence[QInterval], steps: int) -> Search:
    """A pilot search (``cse_lookahead``) over the first ``steps`` decisions, ranked by adders, bits, depth."""

    def score(prog: dict[str, Any]) -> tuple[int, int, int]:
        return (*program_cost(prog, types), prog['depth'])

    return lambda make, finish, limit: pilot(make, finish, limit, score, steps)


def _solve(
    weights: np.ndarray,
    bias: Sequence[float] | None,
    types: Sequence[QInterval] | None,
    max_depth: int | None,
    share: bool,
    digits: np.ndarray | None,
    restarts: int,
    decompose_depth: int,
    objective: str,
    lookahead: int = 0,
    only: Tag | None = None,
) -> tuple[dict[str, Any], Tag]:
    """``solve``, also returning the winner's tag; ``only`` builds just the plain greedy and that
    candidate (the other variants of a cmvm reuse the strategy that won on its main variant)."""
    if objective not in OBJECTIVES:
        raise ValueError(f'cse objective must be one of {OBJECTIVES}, got {objective!r}')
    if lookahead < 0:
        raise ValueError(f'cse lookahead must be >= 0, got {lookahead}')
    w, b, types = _checked(weights, bias, types)
    n_in, n_out = w.shape
    if digits is None:
        digits = csd_matrix(w)
    plain = _Solver(n_in, digits, n_out, b, types)
    limit = plain.min_depth() + DEPTH_SLACK if max_depth is None else max(max_depth, plain.min_depth())
    trees: dict[str, Any] = plain.program()
    del plain  # (its term dicts and rows: ~100 MB on a 256x256, not needed by the runs below)
    if not share:
        return trees, ('trees', 0)
    restarts, decompose_depth = _effort(len(digits), objective, restarts, decompose_depth)
    if only is None:
        salts, depths = list(range(restarts + 1)), list(range(decompose_depth, 0, -1))
        pilots = [0, *depths] if lookahead else []
    else:  # the plain greedy and the one strategy
        salts = [0] + ([only[1]] if only[0] == 'greedy' and only[1] else [])
        depths = [only[1]] if only[0] == 'tree' else []
        pilots = [only[1]] if only[0] == 'pilot' else []
    cands: list[dict[str, Any]] = []
    tags: list[Tag] = []
    for salt in salts:
        s = _new_solver(n_in, digits, n_out, b, types, salt)
        s.run_cse(limit)
        cands.append(s.program())
        tags.append(('greedy', salt))
    seen: set[tuple] = set()  # a shallower limit often gives the same tree: solve it once
    for k in depths:  # every tree depth that fits ('bits': the deepest one only, see ``DECOMPOSE_DEPTH``)
        cand = _solve_decomposed(w, b, types, limit, k, len(digits), seen)
        if cand is not None and cand['depth'] <= limit:
            cands.append(cand)
            tags.append(('tree', k))
            if objective == 'bits':
                break
    search, seen_p = _pilot(types, lookahead), set()
    for k in pilots:  # after every plain candidate: on equal scores those stay the pick
        if k == 0:
            cand = search(lambda: _new_solver(n_in, digits, n_out, b, types), _Solver.program, limit)
        else:
            cand = _solve_decomposed(w, b, types, limit, k, len(digits), seen_p, search)
        if cand is not None and cand['depth'] <= limit:
            cands.append(cand)
            tags.append(('pilot', k))
    i = _pick_bits(trees, cands, types) if objective == 'bits' else _pick_adders(trees, cands, types)
    return (trees, ('trees', 0)) if i < 0 else (cands[i], tags[i])


def _checked(
    weights: np.ndarray, bias: Sequence[float] | None, types: Sequence[QInterval] | None
) -> tuple[np.ndarray, list[float] | None, Sequence[QInterval]]:
    """The weights as a 2-D float64 matrix, the bias as a list and the input types, checked against its shape."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f'cmvm weights must be a 2-D (inputs, outputs) matrix, got shape {w.shape}')
    n_in, n_out = w.shape
    if types is None:
        types = [DEFAULT_TYPE] * n_in
    if len(types) != n_in:
        raise ValueError(f'{len(types)} input types for a cmvm of {n_in} inputs')
    b = None if bias is None else [float(v) for v in np.ravel(bias)]
    if b is not None and len(b) != n_out:
        raise ValueError(f'{len(b)} biases for a cmvm of {n_out} outputs')
    return w, b, types


def _effort(n_digits: int, objective: str, restarts: int, decompose_depth: int) -> tuple[int, int]:
    """Restarts and decomposition depth, the defaults (-1) resolved by size: ``RESTARTS_BITS`` /
    ``RESTARTS`` by objective, half as many above ``RESTART_DIGITS_BITS`` / ``RESTART_DIGITS``
    digits, neither above ``LARGE_DIGITS``."""
    large = n_digits > LARGE_DIGITS
    if restarts < 0:
        big = n_digits > (RESTART_DIGITS_BITS if objective == 'bits' else RESTART_DIGITS)
        restarts = 0 if large else (RESTARTS_BITS if objective == 'bits' else RESTARTS) // (2 if big else 1)
    if decompose_depth < 0:
        decompose_depth = 0 if large else DECOMPOSE_DEPTH
    return restarts, decompose_depth


def _pick_adders(trees: dict[str, Any], cands: list[dict[str, Any]], types: Sequence[QInterval]) -> int:
    """Objective 'adders': the index of the candidate with the fewest adders, then bits, then
    depth (the first on ties; -1 for the plain CSD ``trees`` when they beat the plain greedy)."""

    def rank(prog: dict[str, Any]) -> tuple[int, int, int]:
        adders, bits = program_cost(prog, types)
        return adders, bits, prog['depth']

    score, pick = rank(trees), -1
    for i, cand in enumerate(cands):
        c = rank(cand)
        if c <= score if i == 0 else c < score:
            score, pick = c, i  # ties go to the shared program (greedy sharing can lose on tiny matrices)
    return pick


def _pick_bits(trees: dict[str, Any], cands: list[dict[str, Any]], types: Sequence[QInterval]) -> int:
    """Objective 'bits': the index of the plain greedy (``cands[0]``; -1 for the plain CSD
    ``trees`` when they are better), unless an acceptable alternative has more than
    ``ADDER_GUARD`` fewer adders; then the fewest bits among the acceptable ones within
    ``ADDER_GUARD`` of the fewest adders.

    Acceptable: no deeper than the plain greedy, or deeper but with bits times ``1 + DEPTH_PENALTY``
    per extra level still below the greedy's (depth budget spent end to end must buy real bits)."""
    cost = [(*program_cost(c, types), c['depth']) for c in cands]
    a0, b0, d0 = cost[0]

    def score(c: tuple[int, int, int]) -> float:
        return c[1] * (1 + DEPTH_PENALTY * max(0, c[2] - d0))

    ok = [i for i, c in enumerate(cost) if c[2] <= d0 or score(c) < b0]
    fewest = min(cost[i][0] for i in ok)
    if fewest >= (1 - ADDER_GUARD) * a0:  # the greedy is within the guard: keep it (or the trees)
        t = (*program_cost(trees, types)[::-1], trees['depth'])
        return -1 if t < (b0, a0, d0) else 0  # greedy sharing can lose to the plain trees on tiny matrices
    near = [i for i in ok if cost[i][0] <= (1 + ADDER_GUARD) * fewest]
    return min(near, key=lambda i: (score(cost[i]), cost[i][0], cost[i][2], i))


def _solve_decomposed(
    w: np.ndarray,
    bias: list[float] | None,
    types: Sequence[QInterval],
    limit: int,
    tree_depth: int,
    n_digits: int,
    seen: set[tuple] | None = None,
    search: Search = _greedy,
) -> dict[str, Any] | None:
    """CSE over the residual columns of a depth-``tree_depth`` decomposition (None: does not fit
    the depth limit, fewer digits to sum is not expected, or the tree is in ``seen``)."""
    dec = decompose(w, tree_depth)
    if dec is None:
        return None
    if seen is not None:
        tree = (dec.parent, dec.shift, dec.sign)
        if tree in seen:
            return None
        seen.add(tree)
    digits = csd_matrix(dec.residual)
    if len(digits) + sum(p >= 0 for p in dec.parent) >= n_digits:
        return None
    b = None
    if bias is not None:  # y_parent carries its bias: a derived column adds only the difference
        b = _float64_exactly(
            Fraction(bias[j]) - (dec.sign[j] * Fraction(bias[p]) * Fraction(2) ** dec.shift[j] if p >= 0 else 0)
            for j, p in enumerate(dec.parent)
        )
        if b is None:
            return None  # a difference float64 cannot hold (biases more than 53 bits apart)
    n_in, n_out = w.shape
    if _Solver(n_in, digits, n_out, b, types).min_depth() + dec.depth > limit:
        return None
    return search(lambda: _new_solver(n_in, digits, n_out, b, types), lambda s: s.program_decomposed(dec), limit - dec.depth)


def _float64_exactly(values: Iterable[Fraction]) -> list[float] | None:
    """The values as float64, or None if one of them is not a float64."""
    exact = list(values)
    try:
        out = [float(v) for v in exact]
    except OverflowError:
        return None
    return out if all(Fraction(f) == v for f, v in zip(out, exact)) else None


def program_cost(program: dict[str, Any], types: Sequence[QInterval]) -> tuple[int, int]:
    """(adders, summed ``adder_cost`` bits) of one program variant on inputs of ``types``."""
    vals: list[Interval] = [(t.lo, t.hi, t.f) for t in types] + [_const_interval(c) for c in program['consts']]
    bits = 0
    for a, b, sh, sub in program['ops']:
        va = vals[a] if a >= 0 else (0, 0, 0)
        bits += adder_cost(va, vals[b], sh, bool(sub))
        vals.append(shift_add_interval(va, vals[b], sh, bool(sub)))
    return len(program['ops']), bits


# --------------------------------------------------------------------------- checking


def _vec(n: int, i: int | None, m: int, e: int) -> tuple[np.ndarray, int]:
    v = np.zeros(n + 1, dtype=object)
    v[n if i is None else i] = m
    return v, e


def _add(x: tuple[np.ndarray, int], y: tuple[np.ndarray, int], sign: int) -> tuple[np.ndarray, int]:
    (vx, ex), (vy, ey) = x, y
    e = min(ex, ey)
    return (vx << (ex - e)) + sign * (vy << (ey - e)), e


def _same(x: tuple[np.ndarray, int], y: tuple[np.ndarray, int]) -> bool:
    d = _add(x, y, -1)[0]
    return not any(d)


def variant_matches(weights: np.ndarray, variant: dict[str, Any], bias: Sequence[float] | None = None) -> bool:
    """Symbolic exact check: each output of the program equals ``W[:, j] . x + b[j]``."""
    w = np.asarray(weights, dtype=np.float64)
    n_in, n_out = w.shape
    try:
        if variant['n_in'] != n_in or len(variant['outputs']) != n_out:
            return False
        vals = [_vec(n_in, i, 1, 0) for i in range(n_in)]
        vals += [_vec(n_in, None, *dyadic(c)) for c in variant['consts']]
        zero = _vec(n_in, None, 0, 0)
        for a, b, s, sub in variant['ops']:
            if not (-1 <= a < len(vals) and 0 <= b < len(vals)):
                return False
            vb, eb = vals[b]
            vals.append(_add(vals[a] if a >= 0 else zero, (vb, eb + s), -1 if sub else 1))
        mw, fw = weight_digits(w)  # w == mw * 2^-fw exactly (0 where w is)
        mb, fb = weight_digits(np.zeros(n_out) if bias is None else np.asarray(bias, dtype=np.float64))
        for j, (idx, s, neg) in enumerate(variant['outputs']):
            m = np.append(mw[:, j], mb[j])
            f = np.append(fw[:, j], fb[j])
            f0 = int(f.max())
            target = (m * (np.ones(n_in + 1, dtype=object) << (f0 - f).astype(object)), -f0)
            if idx == -1:
                got = _vec(n_in, None, 0, 0)
            elif 0 <= idx < len(vals):
                v, e = vals[idx]
                got = ((-v if neg else v), e + s)
            else:
                return False
            if not _same(got, target):
                return False
    except (KeyError, TypeError, ValueError, IndexError):
        return False
    return True


def program_matches(weights: np.ndarray, program: dict[str, Any], bias: Sequence[float] | None = None) -> bool:
    """Whether a program (one variant, or the cmvm attr with all variants) computes ``x @ W + b``."""
    bias = None if bias is None else np.ravel(bias)  # (as ``solve`` reads it)
    if 'variants' not in program:
        return variant_matches(weights, program, bias)
    return all(variant_matches(weights, v, bias) for v in program['variants'])


# --------------------------------------------------------------------------- the pass


def position_types(node: Node) -> list[tuple[QInterval, ...]]:
    """Input element types of each position (leading index) of a cmvm."""
    t = node.inputs[0].type
    n_in = t.shape[-1]
    return [t.elems[p * n_in : (p + 1) * n_in] for p in range(t.size // n_in if n_in else 1)]


def _hull(types: list[tuple[QInterval, ...]]) -> tuple[QInterval, ...]:
    """Per-row union of several positions' types (one shared cost model)."""
    out = []
    for col in zip(*types):
        f = max(t.f for t in col)
        lo = min(t.lo << (f - t.f) for t in col)
        hi = max(t.hi << (f - t.f) for t in col)
        out.append(QInterval(lo, hi, f))
    return tuple(out)


def _signature(types: tuple[QInterval, ...]) -> tuple[tuple[int, int, bool], ...]:
    return tuple((t.width, t.f, t.signed) for t in types)


def cmvm_program(
    node: Node,
    max_depth: int | None,
    share: bool = True,
    max_variants: int = MAX_VARIANTS,
    restarts: int = -1,
    objective: str = 'bits',
    decompose_depth: int = -1,
    lookahead: int = 0,
) -> dict[str, Any]:
    """The ``program`` attr of a cmvm node: one solve per distinct position type signature."""
    w = np.asarray(node.attrs['weights'], dtype=np.float64)
    bias = node.attrs.get('bias')
    digits = _digits_of(node.attrs)
    pos = position_types(node)
    sigs: dict[Any, int] = {}
    select = [sigs.setdefault(_signature(t), len(sigs)) for t in pos]
    if len(sigs) > max_variants:
        reps = [_hull(pos)]
        select = [0] * len(pos)
    else:
        first = {v: p for p, v in reversed(list(enumerate(select)))}
        reps = [pos[first[v]] for v in range(len(sigs))]
    # the variant most positions use gets every candidate; the others only the plain greedy and
    # the strategy that won there (same matrix, other input types: a conv costs a few solves)
    main = int(np.argmax(np.bincount(select, minlength=len(reps))))
    opts = (max_depth, share, digits, restarts, decompose_depth, objective, lookahead)
    prog, tag = _solve(w, bias, reps[main], *opts)
    variants = [prog if v == main else _solve(w, bias, r, *opts, only=tag)[0] for v, r in enumerate(reps)]
    return {'variants': variants, 'select': select}


@register_pass('cse')
def cse_pass(graph: Graph, options: CompileOptions) -> Graph:
    max_variants = int(options.extra.get('cse.max_variants', MAX_VARIANTS))
    restarts = int(options.extra.get('cse.restarts', -1))
    objective = str(options.extra.get('cse.objective', 'bits'))
    decompose_depth = int(options.extra.get('cse.decompose_depth', -1))
    lookahead = int(options.extra.get('cse.lookahead', 0))
    for n in graph.nodes.values():
        if n.op is Op.CMVM:
            prog = cmvm_program(n, options.max_adder_depth, True, max_variants, restarts, objective, decompose_depth, lookahead)
            n.attrs['program'] = prog
    return graph


def program_depth(program: dict[str, Any]) -> int:
    return max((v['depth'] for v in program['variants']), default=0)


def minimal_depth(weights: np.ndarray, bias: Sequence[float] | None = None) -> int:
    """``ceil(log2(max terms per column))``, counting a nonzero bias as one term and the negation
    an all-negative column needs as one more leaf."""
    w = np.asarray(weights, dtype=np.float64)
    b = None if bias is None else [float(v) for v in np.ravel(bias)]
    return _Solver(w.shape[0], csd_matrix(w), w.shape[1], b, [DEFAULT_TYPE] * w.shape[0]).min_depth()


__all__ = [
    'adder_cost',
    'cmvm_program',
    'minimal_depth',
    'program_cost',
    'program_depth',
    'program_matches',
    'shift_add_interval',
    'solve',
    'variant_matches',
]

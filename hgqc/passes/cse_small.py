"""The greedy CSE of ``hgqc.passes.cse`` for small cmvms, in plain Python.

``_Solver`` keeps its pattern counts in numpy arrays and updates them in one vectorised step per
substitution; that costs ~70 numpy calls (~0.3 ms) per substitution whatever the size, which is
most of the time on a cmvm of a few hundred digits (where da4ml's C++ needs milliseconds). Here
the same greedy keeps its counts in dicts and its candidates in one lazy heap, and walks the
affected columns' terms one pair at a time.

It makes the same decisions in the same order, so it builds the same program: the same patterns
and costs (``adder_cost``, ``_jitter1``), the same stored savings (an upper bound re-checked at the
top of the heap: pair count, then the occurrences under the depth limit), the same order (largest
stored saving, then smallest encoded pattern), and the same count updates, including the pairs a
new term is credited with against terms a later occurrence in its column consumes (only a bound,
as in ``_Solver.substitute``). ``tests/passes/test_cse_small.py`` checks both solvers build the
same program on random matrices, restarts and lookahead hooks included.
"""

from __future__ import annotations

import heapq
from collections import defaultdict

import numpy as np

from .cse import _KEY_BITS, _KEY_MASK, _SHIFT_BIAS, Key, _dec, _enc, _jitter1, _Solver, adder_cost

__all__ = ['SMALL_COLUMN', 'SMALL_DIGITS', 'SmallSolver', 'fits']

# the plain-Python solver is faster up to about this many signed digits per output column (its work
# per substitution grows with the columns' terms, the numpy solver's is ~0.3 ms of fixed overhead;
# ``python -m benchmarks.cmvm_small`` measures both) ...
SMALL_COLUMN = 40
SMALL_DIGITS = 3000  # ... and this many in all


def fits(digits: np.ndarray, n_out: int) -> bool:
    """Whether ``SmallSolver`` takes this cmvm: few digits, every relative shift encodable."""
    if not len(digits):
        return True
    if len(digits) > min(SMALL_DIGITS, SMALL_COLUMN * n_out):
        return False
    return int(digits[:, 2].max()) - int(digits[:, 2].min()) < _SHIFT_BIAS


def _pair(o1: int, e1: int, s1: int, o2: int, e2: int, s2: int) -> int:
    """Encoded pattern of two terms (``_pairs_vec`` for one pair)."""
    if o1 < o2 or (o1 == o2 and e1 < e2):
        return (o1 << 33) | (o2 << 13) | ((e2 - e1 + _SHIFT_BIAS) << 1) | (s1 != s2)
    return (o2 << 33) | (o1 << 13) | ((e1 - e2 + _SHIFT_BIAS) << 1) | (s1 != s2)


class SmallSolver(_Solver):
    """``_Solver`` with dict pattern counts and a lazy heap (same decisions, see the module doc)."""

    # set by ``initial_counts`` (``run_cse`` starts with it)
    counts: dict[int, int]  # tracked pattern -> pairs forming it
    costs: dict[int, int]
    stored: dict[int, int]  # pattern -> stored saving (absent or -1: no candidate)
    heap: list[int]  # ``(-saving << _KEY_BITS) | pattern``; stale when ``stored`` differs

    def _cost(self, k: int) -> int:
        a, b, sh, sub = _dec(k)
        c = adder_cost(self.vals[a], self.vals[b], sh, bool(sub))
        return _jitter1(k, c, self.salt) if self.salt else c

    def _push(self, k: int, saving: int) -> None:
        self.stored[k] = saving
        heapq.heappush(self.heap, (-saving << _KEY_BITS) | k)

    def initial_counts(self) -> None:
        keys, counts, _ = self._pair_counts()  # (vectorised: the same counts either way)
        costs = self.costs_of(keys)
        self.counts = dict(zip(keys.tolist(), counts.tolist()))
        self.costs = dict(zip(keys.tolist(), costs.tolist()))
        self.stored = dict(zip(keys.tolist(), ((counts - 1) * costs).tolist()))
        self.heap = [(-s << _KEY_BITS) | k for k, s in self.stored.items()]
        heapq.heapify(self.heap)

    def substitute(self, key: Key, occ: list[tuple[int, int, int]], own: int = -1) -> None:
        a, b, s, sub = key
        n_ops = len(self.ops)
        p = self.new_op(a, b, s, sub)
        made = len(self.ops) > n_ops
        grow = (1 << self.dep[p]) - (1 << self.dep[a]) - (1 << self.dep[b])
        counts = self.counts
        fresh: defaultdict[int, int] = defaultdict(int)
        prev = -1
        for j, e1, sign in occ:
            col = self.cols[j]
            e2 = e1 + s
            sb = col[b][e2]
            if j != prev:  # the column before this substitution; occurrences in it are consecutive
                terms = [(o, e, g) for o, sh in col.items() for e, g in sh.items()]
                consumed: set[tuple[int, int]] = set()
                made_here: list[tuple[int, int, int]] = []
                prev = j
            consumed.update(((a, e1), (b, e2)))
            partners = [t for t in terms if (t[0], t[1]) not in consumed] + made_here
            k = _pair(a, e1, sign, b, e2, sb)
            if k in counts:
                counts[k] -= 1
            # the pairs of a's and b's terms and of the new term with each partner (``_pair`` inlined:
            # the hot loop); every partner's operand is below p except the new terms made before
            for o, e, g in partners:
                if a < o or (a == o and e1 < e):
                    k = (a << 33) | (o << 13) | ((e - e1 + _SHIFT_BIAS) << 1) | (sign != g)
                else:
                    k = (o << 33) | (a << 13) | ((e1 - e + _SHIFT_BIAS) << 1) | (sign != g)
                if k in counts:
                    counts[k] -= 1
                if b < o or (b == o and e2 < e):
                    k = (b << 33) | (o << 13) | ((e - e2 + _SHIFT_BIAS) << 1) | (sb != g)
                else:
                    k = (o << 33) | (b << 13) | ((e2 - e + _SHIFT_BIAS) << 1) | (sb != g)
                if k in counts:
                    counts[k] -= 1
                if o < p or e < e1:
                    fresh[(o << 33) | (p << 13) | ((e1 - e + _SHIFT_BIAS) << 1) | (sign != g)] += 1
                else:
                    fresh[(p << 33) | (o << 13) | ((e - e1 + _SHIFT_BIAS) << 1) | (sign != g)] += 1
            made_here.append((p, e1, sign))
            self._merge_terms(j, a, e1, b, e2, p, sign, grow)
        for k in sorted(fresh):
            c = fresh[k]
            if c < 2:
                continue
            if made or k not in counts:
                self.costs[k] = self._cost(k)
            counts[k] = c  # a re-made operand: its counted patterns are recounted
            self._push(k, (c - 1) * self.costs[k])
        k = _enc(*key) if own < 0 else own
        if counts.get(k, 0) > 1:  # occurrences the depth limit or an overlap kept back stay candidates
            self._push(k, (counts[k] - 1) * self.costs[k])

    def run_cse(self, limit: int) -> None:
        self.initial_counts()
        for k in self.forced:  # a lookahead prefix, as in ``_Solver.run_cse``
            key = _dec(k)
            occ = self.occurrences(key, limit)
            if len(occ) < 2:
                raise ValueError(f'forced CSE pattern {key} does not occur twice')
            self.substitute(key, occ)
            self.taken.append(k)
        heap, stored, counts, costs = self.heap, self.stored, self.counts, self.costs
        push, pop = heapq.heappush, heapq.heappop
        held: list[int] = []  # ``skip`` patterns' entries passed over until the first free decision
        while heap:
            entry = pop(heap)
            k = entry & _KEY_MASK
            saving = -(entry >> _KEY_BITS)
            if stored.get(k, -1) != saving:
                continue  # superseded entry
            c = counts[k]
            if c < 2:
                stored[k] = -1
                continue
            bound = (c - 1) * costs[k]
            if bound < saving:  # pairs were consumed since the push: look again with the smaller saving
                stored[k] = bound
                push(heap, (-bound << _KEY_BITS) | k)
                continue
            key = _dec(k)
            occ = self.occurrences(key, limit)
            if len(occ) < 2:
                stored[k] = -1
                counts[k] = 0  # depth slack only shrinks: blocked for good
                continue
            true = (len(occ) - 1) * costs[k]
            if true < saving:
                stored[k] = true
                push(heap, (-true << _KEY_BITS) | k)
                continue
            if self.skip and k in self.skip:
                held.append(entry)
                continue
            stored[k] = -1
            self.substitute(key, occ, k)
            self.taken.append(k)
            if self.skip:  # the first free decision is made: the passed-over patterns compete again
                self.skip = frozenset()
                for e in held:
                    push(heap, e)
                held = []

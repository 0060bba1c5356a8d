"""``KeyIndex``: a vectorised hash map from non-negative int64 keys to int64 values.

The CSE solver (``hgqc.passes.cse``) looks up the pattern index of thousands of encoded patterns
per substitution. A sorted array needs a sort of the queries and ~log2(n) cache misses per
query (millions of patterns on a 256x256 matrix); open addressing with linear probing needs one
or two, and every probe round is one numpy step over the queries still unresolved. Keys are only
added (the solver rebuilds the map when it renumbers its patterns), so there are no tombstones.
"""

from __future__ import annotations

import numpy as np

_MULT = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top bits of key * golden ratio
_MIN_BITS = 10

__all__ = ['KeyIndex']


class KeyIndex:
    """Open-addressing (linear probing) map ``key -> value``, kept at most half full."""

    def __init__(self, keys: np.ndarray | None = None, values: np.ndarray | None = None):
        n = 0 if keys is None else len(keys)
        self._alloc(max(_MIN_BITS, (4 * n).bit_length()))
        if n:
            self.add(np.asarray(keys, dtype=np.int64), np.asarray(values, dtype=np.int64))

    def _alloc(self, bits: int) -> None:
        self.bits = bits
        self.keys = np.full(1 << bits, -1, dtype=np.int64)  # -1: empty slot
        self.vals = np.zeros(1 << bits, dtype=np.int64)
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def _slot(self, keys: np.ndarray) -> np.ndarray:
        return ((keys.astype(np.uint64) * _MULT) >> np.uint64(64 - self.bits)).astype(np.int64)

    def get(self, keys: np.ndarray) -> np.ndarray:
        """The value of each key (-1: absent)."""
        out = np.full(len(keys), -1, dtype=np.int64)
        if not self.n or not len(keys):
            return out
        mask = len(self.keys) - 1
        todo, q = np.arange(len(keys)), keys
        h = self._slot(q)
        while len(todo):
            k = self.keys[h]
            hit = k == q
            out[todo[hit]] = self.vals[h[hit]]
            go = ~hit & (k >= 0)  # an occupied slot of another key: probe the next one
            todo, q, h = todo[go], q[go], (h[go] + 1) & mask
        return out

    def add(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Insert distinct keys that are not in the map yet."""
        if 2 * (self.n + len(keys)) > len(self.keys):
            live = self.keys >= 0
            old_k, old_v = self.keys[live], self.vals[live]
            self._alloc(max(self.bits + 1, (4 * (self.n + len(keys))).bit_length()))
            self._insert(old_k, old_v)
        self._insert(np.asarray(keys, dtype=np.int64), np.asarray(values, dtype=np.int64))

    def _insert(self, q: np.ndarray, v: np.ndarray) -> None:
        self.n += len(q)
        mask = len(self.keys) - 1
        h = self._slot(q)
        while len(q):
            free = np.flatnonzero(self.keys[h] < 0)
            slots, first = np.unique(h[free], return_index=True)  # one winner per free slot
            win = free[first]
            self.keys[slots], self.vals[slots] = q[win], v[win]
            rest = np.ones(len(q), dtype=bool)
            rest[win] = False
            q, v, h = q[rest], v[rest], (h[rest] + 1) & mask

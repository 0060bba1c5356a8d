"""``KeyIndex``: a vectorised hash index over an array of distinct non-negative int64 keys.

The CSE solver (``hgqc.passes.cse``) looks up the pattern index of thousands of encoded patterns
per substitution. A sorted array needs a sort of the queries and ~log2(n) cache misses per
query (millions of patterns on a 256x256 matrix); open addressing with linear probing needs one
or two, and every probe round is one numpy step over the queries still unresolved. The index
stores only positions into the caller's key array (int32 slots: 8-16 bytes per key at its load
of 1/4 to 1/2), and keys are only added (the solver rebuilds it when it renumbers its patterns),
so there are no tombstones.
"""

from __future__ import annotations

import numpy as np

_MULT = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top bits of key * golden ratio
_MIN_BITS = 10
_WINDOW = 8  # slots looked at per probe round after the home slot

__all__ = ['KeyIndex']


class KeyIndex:
    """Open-addressing (linear probing) index ``key -> position`` into a key array, at most half full."""

    def __init__(self, table: np.ndarray | None = None, positions: np.ndarray | None = None):
        n = 0 if positions is None else len(positions)
        self._alloc(max(_MIN_BITS, (4 * n).bit_length()))
        if n:
            self.add(table, positions)

    def _alloc(self, bits: int) -> None:
        self.bits = bits
        self.slots = np.full(1 << bits, -1, dtype=np.int32)  # position in the key array, -1: empty
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def _hash(self, keys: np.ndarray) -> np.ndarray:
        return ((keys.astype(np.uint64) * _MULT) >> np.uint64(64 - self.bits)).astype(np.int64)

    def get(self, keys: np.ndarray, table: np.ndarray) -> np.ndarray:
        """The position ``p`` with ``table[p] == key`` of each key (-1: absent)."""
        out = np.full(len(keys), -1, dtype=np.int64)
        if not self.n or not len(keys):
            return out
        h = self._hash(keys)
        p = self.slots[h]
        full = p >= 0
        hit = full & (table[np.where(full, p, 0)] == keys)
        out[hit] = p[hit]
        go = np.flatnonzero(full & ~hit)  # home slot taken by another key: probe on, a window at a time
        if len(go):
            out[go] = self._probe(keys[go], h[go] + 1, table)
        return out

    def _probe(self, q: np.ndarray, h: np.ndarray, table: np.ndarray) -> np.ndarray:
        out = np.full(len(q), -1, dtype=np.int64)
        mask = len(self.slots) - 1
        todo, step = np.arange(len(q)), np.arange(_WINDOW)
        while len(todo):
            p = self.slots[(h[:, None] + step) & mask]
            full = p >= 0
            match = full & (table[np.where(full, p, 0)] == q[:, None])  # never after an empty slot
            found = np.flatnonzero(match.any(axis=1))
            out[todo[found]] = p[found, match[found].argmax(axis=1)]
            go = ~match.any(axis=1) & full.all(axis=1)
            todo, q, h = todo[go], q[go], h[go] + _WINDOW
        return out

    def add(self, table: np.ndarray, positions: np.ndarray) -> None:
        """Index ``positions`` (their keys ``table[positions]`` distinct and not indexed yet)."""
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size and positions.max() >= 2**31:
            raise ValueError('KeyIndex holds positions below 2^31')
        if 2 * (self.n + len(positions)) > len(self.slots):
            old = self.slots[self.slots >= 0].astype(np.int64)
            self._alloc(max(self.bits + 1, (2 * (self.n + len(positions))).bit_length()))
            self._insert(table, old)
        self._insert(table, positions)

    def _insert(self, table: np.ndarray, pos: np.ndarray) -> None:
        self.n += len(pos)
        mask = len(self.slots) - 1
        h = self._hash(table[pos])
        while len(pos):
            free = self.slots[h] < 0
            self.slots[h[free]] = pos[free]  # several claims of one free slot: one of them wins
            rest = self.slots[h] != pos
            pos, h = pos[rest], (h[rest] + 1) & mask

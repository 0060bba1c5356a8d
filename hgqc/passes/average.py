"""Keras' float32 average, rounded by a quantizer, as a fixed-point circuit.

Keras (through XLA) computes an average as ``fl32(sum) * fl32(1/d)``
(``hgqc.ir.fixed.float32_average_round``). For most ``d`` that rounds like the exact quotient;
for some (7, 13, 14, 15, 30, ...) the product lands just off some of the quantizer's rounding
boundaries and rounds the other way. Nudging the sum by a fraction of its step at exactly those
sums reproduces Keras: ``g(X) = e(X + c(X) * 2^-m)``, with ``e`` the exactly rounded quotient (a
constant multiply, ``division_by_multiply``), ``c`` in {-1, 0, 1}, and ``2^-m`` small enough
that a nudge only moves a quotient that sits exactly on a boundary. ``c`` has to be right only
at boundary sums, so it is a lookup table of the sum's top bits with long runs (few LUTs).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..errors import HgqcError
from ..ir.fixed import Round, divide_round, float32_average_round

CHECK_LIMIT = 1 << 23  # sum values enumerated to compare Keras' average with the exact one
CHUNK = 1 << 20
TABLE_LIMIT = 1 << 17  # keys of a correction table (few runs: the HDL is a small select tree, see backends.common.rom_tree)


@dataclass(frozen=True)
class Correction:
    """Nudge ``c(X) * 2^-m`` (in units of the sum's step), ``c(X) = values[(X >> shift) - key_lo]``."""

    shift: int
    key_lo: int
    values: tuple[int, ...]
    m: int = 0

    @property
    def needed(self) -> bool:
        return any(self.values)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if not self.needed:
            return np.zeros_like(x)
        return np.asarray(self.values, dtype=np.int64)[(x >> self.shift) - self.key_lo]


class AverageError(HgqcError, ValueError):
    """Keras' float32 average cannot be built exactly over this range."""


@functools.lru_cache(maxsize=4096)
def average_correction(lo: int, hi: int, fx: int, d: int, f: int, mode: Round) -> Correction:
    """The correction making the exact quotient of ``X * 2^-fx / d`` (``lo <= X <= hi``), rounded
    at 2^-f with ``mode``, equal Keras' float32 average on every X; the smallest table wins."""
    none = Correction(0, 0, (0,))
    if d & (d - 1) == 0:
        return none  # 1/d and the product are exact in float32
    if hi - lo + 1 > CHECK_LIMIT:
        raise AverageError(f'the sum takes {hi - lo + 1} values, more than the {CHECK_LIMIT} hgqc can check')
    # A nudge of 2^-m input steps moves the quotient by less than the distance 2^(f-fx-m)/d from any
    # off-boundary quotient to the next boundary (which is at least 1/d output steps when f >= fx).
    m = max(0, f - fx + 1)
    chunks = [_allowed(start, min(hi, start + CHUNK - 1), fx, d, f, mode, m) for start in range(lo, hi + 1, CHUNK)]
    allowed = np.concatenate(chunks, axis=1)  # (c = -1, 0, +1) x every sum
    if allowed[1].all():
        return none
    if not allowed.any(axis=0).all():
        raise AverageError(
            'its float32 rounding error also moves averages that are not on a rounding boundary (the sum is too wide for float32)'
        )
    x = np.arange(lo, hi + 1, dtype=np.int64)
    # the table of a consistent shift is the smallest; consistency only gets easier as the shift drops
    top, s = max(hi - lo, 1).bit_length(), max(0, (hi - lo).bit_length() - TABLE_LIMIT.bit_length() + 2)
    best = _consistent_table(x >> s, allowed)
    if best is None or len(best) > TABLE_LIMIT:
        raise AverageError(f'its correction table needs more than {TABLE_LIMIT} entries')
    while s < top:  # bisect for the largest consistent shift
        mid = (s + top + 1) // 2
        table = _consistent_table(x >> mid, allowed)
        if table is None:
            top = mid - 1
        else:
            s, best = mid, table
    return Correction(s, int(lo >> s), best, m)


def _allowed(lo: int, hi: int, fx: int, d: int, f: int, mode: Round, m: int) -> np.ndarray:
    """For each sum ``lo..hi``: which nudges c = -1, 0, +1 (of 2^-m steps) give Keras' average."""
    x = np.arange(lo, hi + 1, dtype=np.int64)
    want = float32_average_round(x, np.int64(fx), np.int64(d), np.int64(f), mode)
    args = (np.int64(fx + m), np.int64(d), np.int64(f), mode)
    return np.stack([divide_round((x << m) + c, *args) == want for c in (-1, 0, 1)])


def _consistent_table(keys: np.ndarray, allowed: np.ndarray) -> tuple[int, ...] | None:
    """One c per key allowed at every X with that key (runs kept long), or None."""
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ok = np.logical_and.reduceat(allowed, starts, axis=1)  # (3, buckets)
    if not ok.any(axis=0).all():
        return None
    table, prev = [], 0
    for col in ok.T.tolist():
        prev = prev if col[prev + 1] else (0 if col[1] else (-1 if col[0] else 1))
        table.append(prev)
    return tuple(table)

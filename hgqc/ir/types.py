"""Fixed-point types.

A scalar type is an exact interval ``[lo, hi]`` on the grid ``2^-f`` (``QInterval``); the
ap_fixed view ``(signed, int_bits, frac_bits)`` is derived from it. Keeping the interval
rather than only (s, i, f) lets range analysis stay tight through sums (a value in [-3, 5]
needs 4 bits, not the 5 that its ap_fixed parents' union would give).

A tensor type is a shape plus one scalar type per element (HGQ quantizes per element).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True, slots=True)
class QInterval:
    """Values ``{k * 2^-f : lo <= k <= hi}``; ``lo``/``hi`` are integers in units of the step."""

    lo: int
    hi: int
    f: int

    def __post_init__(self) -> None:
        if not (isinstance(self.lo, int) and isinstance(self.hi, int) and isinstance(self.f, int)):
            raise TypeError(f'QInterval fields must be int, got {self.lo!r}, {self.hi!r}, {self.f!r}')
        if self.lo > self.hi:
            raise ValueError(f'empty interval [{self.lo}, {self.hi}]')

    # -- ap_fixed view -----------------------------------------------------------------
    @property
    def signed(self) -> bool:
        return self.lo < 0

    @property
    def width(self) -> int:
        """Bits needed to hold every value (two's complement if signed); 0 means constant 0."""
        if self.lo == 0 and self.hi == 0:
            return 0
        mag = max(self.hi.bit_length(), (-self.lo - 1).bit_length() if self.lo < 0 else 0)
        return mag + (1 if self.lo < 0 else 0)

    @property
    def int_bits(self) -> int:
        """Integer bits excluding the sign bit (ap_fixed's I minus the sign)."""
        return self.width - int(self.signed) - self.f

    @property
    def is_zero(self) -> bool:
        return self.lo == 0 and self.hi == 0

    @property
    def is_const(self) -> bool:
        return self.lo == self.hi

    @property
    def min(self) -> float:
        return math.ldexp(self.lo, -self.f)

    @property
    def max(self) -> float:
        return math.ldexp(self.hi, -self.f)

    @staticmethod
    def from_kif(k: int, i: int, f: int) -> QInterval:
        """The full range of ap_fixed with sign bit k, i integer bits (excl. sign), f frac bits."""
        if k + i + f <= 0:
            return ZERO
        n = i + f
        return QInterval(-(1 << n) if k else 0, (1 << n) - 1, f)

    @staticmethod
    def const(value: float | int) -> QInterval:
        m, e = dyadic(value)
        return QInterval(m, m, -e) if m != 0 else ZERO

    def with_frac(self, f: int) -> QInterval:
        """Same set of values on a finer (f >= self.f) grid."""
        if f < self.f:
            raise ValueError('with_frac can only refine the grid')
        return QInterval(self.lo << (f - self.f), self.hi << (f - self.f), f)

    def __str__(self) -> str:
        return f'[{self.lo},{self.hi}]>>{self.f}'


ZERO = QInterval(0, 0, 0)


def dyadic(value: float | int) -> tuple[int, int]:
    """Exact (mantissa, exponent) with value == mantissa * 2**exponent and mantissa odd (or 0)."""
    if isinstance(value, (int, np.integer)):
        m, e = int(value), 0
    else:
        fv = float(value)
        if not math.isfinite(fv):
            raise ValueError(f'non-finite constant {value!r}')
        num, den = fv.as_integer_ratio()
        e = -(den.bit_length() - 1)
        m = num
    if m == 0:
        return 0, 0
    while m % 2 == 0:
        m //= 2
        e += 1
    return m, e


@dataclass(frozen=True)
class TensorType:
    """Shape plus one ``QInterval`` per element (row-major)."""

    shape: tuple[int, ...]
    elems: tuple[QInterval, ...]

    def __post_init__(self) -> None:
        if math.prod(self.shape) != len(self.elems):
            raise ValueError(f'shape {self.shape} does not match {len(self.elems)} element types')

    @property
    def size(self) -> int:
        return len(self.elems)

    @staticmethod
    def uniform(shape: tuple[int, ...], t: QInterval) -> TensorType:
        return TensorType(tuple(shape), (t,) * math.prod(shape))

    @staticmethod
    def from_arrays(shape: tuple[int, ...], lo, hi, f) -> TensorType:
        if shape == ():  # (the emitters infer one scalar adder at a time: skip the array round trip)
            return TensorType((), (_norm(int(lo), int(hi), int(f)),))
        lo, hi, f = (np.broadcast_to(np.asarray(a, dtype=object), shape).ravel() for a in (lo, hi, f))
        return TensorType(tuple(shape), tuple(_norm(int(a), int(b), int(c)) for a, b, c in zip(lo, hi, f)))

    @staticmethod
    def from_kif(shape: tuple[int, ...], k, i, f) -> TensorType:
        k, i, f = (np.broadcast_to(np.asarray(a), shape).ravel() for a in (k, i, f))
        return TensorType(tuple(shape), tuple(QInterval.from_kif(int(a), int(b), int(c)) for a, b, c in zip(k, i, f)))

    @cached_property
    def extent(self) -> tuple[int, int] | None:
        """(top, f) over the live elements: the highest ``width - f`` (bit positions above the
        binary point, sign included) and the finest step 2^-f; None when every element is 0."""
        live = [e for e in self.elems if e.lo or e.hi]
        if not live:
            return None
        return max(e.width - e.f for e in live), max(e.f for e in live)

    # Arrays for vectorised rules; object dtype keeps Python ints exact at any width.
    @cached_property
    def lo(self) -> np.ndarray:
        return np.array([e.lo for e in self.elems], dtype=object).reshape(self.shape)

    @cached_property
    def hi(self) -> np.ndarray:
        return np.array([e.hi for e in self.elems], dtype=object).reshape(self.shape)

    @cached_property
    def f(self) -> np.ndarray:
        return np.array([e.f for e in self.elems], dtype=np.int64).reshape(self.shape)

    @cached_property
    def width(self) -> np.ndarray:
        return np.array([e.width for e in self.elems], dtype=np.int64).reshape(self.shape)

    @cached_property
    def signed(self) -> np.ndarray:
        return np.array([e.signed for e in self.elems], dtype=bool).reshape(self.shape)

    @property
    def max_width(self) -> int:
        return max((e.width for e in self.elems), default=0)

    def reshape(self, shape: tuple[int, ...]) -> TensorType:
        return TensorType(tuple(shape), self.elems)

    def __getitem__(self, flat_index: int) -> QInterval:
        return self.elems[flat_index]


def _norm(lo: int, hi: int, f: int) -> QInterval:
    return ZERO if lo == 0 and hi == 0 else QInterval(lo, hi, f)


def tensor_type(shape, lo, hi, f) -> TensorType:
    return TensorType.from_arrays(tuple(shape), lo, hi, f)

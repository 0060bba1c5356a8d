"""Shared random generators for IR tests (seeded numpy, no global state)."""

from __future__ import annotations

import numpy as np

from hgqc.ir.types import QInterval, TensorType


def random_type(rng: np.random.Generator, shape: tuple[int, ...], max_bits: int = 10) -> TensorType:
    elems = []
    for _ in range(int(np.prod(shape, dtype=np.int64))):
        k = int(rng.integers(0, 2))
        f = int(rng.integers(-3, 6))
        i = int(rng.integers(-f, max_bits - f))
        elems.append(QInterval.from_kif(k, i, f))
    return TensorType(tuple(shape), tuple(elems))


def random_ints(rng: np.random.Generator, t: TensorType, n: int) -> np.ndarray:
    """Uniform integers inside each element's interval, with the corners in the first rows."""
    lo = t.lo.astype(np.int64).ravel()
    hi = t.hi.astype(np.int64).ravel()
    x = rng.integers(lo, hi + 1, size=(n, t.size)) if t.size else np.zeros((n, 0), np.int64)
    if n >= 2:
        x[0], x[1] = lo, hi
    return x.reshape((n,) + t.shape)


def to_float(x: np.ndarray, t: TensorType) -> np.ndarray:
    return np.ldexp(x.astype(np.float64), -t.f)

"""Integer kernels of fixed-point rounding and overflow.

One implementation serves three callers: the interpreter (int64 arrays), constant folding,
and range analysis (object arrays of Python ints, so interval bounds never overflow).
Arrays hold integers in units of their own step ``2^-f``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum

import numpy as np


class Round(str, Enum):
    """Rounding when dropping fractional bits (names follow ap_fixed / hgq2)."""

    TRN = 'TRN'  # floor
    RND = 'RND'  # nearest, ties toward +inf
    RND_CONV = 'RND_CONV'  # nearest, ties to even
    TRN_ZERO = 'TRN_ZERO'  # toward zero
    RND_ZERO = 'RND_ZERO'  # nearest, ties toward zero
    RND_MIN_INF = 'RND_MIN_INF'  # nearest, ties toward -inf
    RND_INF = 'RND_INF'  # nearest, ties away from zero
    CEIL = 'CEIL'  # toward +inf
    TRN_INF = 'TRN_INF'  # away from zero (magnitude ceiling; QONNX 'UP')


class Overflow(str, Enum):
    WRAP = 'WRAP'  # two's complement wrap-around
    SAT = 'SAT'  # clamp to [min, max]
    SAT_SYM = 'SAT_SYM'  # clamp to [-max, max] (signed) / [0, max]


def _where(c, a, b):
    return np.where(c, a, b)


def _on_vectors(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Run ``fn`` on a 1-element vector when its first argument is 0-d (a scalar-shaped type):
    numpy's arithmetic on a 0-d object array returns a Python int, which the next ufunc would
    convert to int64 (an OverflowError past 2^63); a vector keeps its dtype throughout."""

    @functools.wraps(fn)
    def run(x, *args, **kwargs):
        if np.ndim(x) != 0:
            return fn(x, *args, **kwargs)
        y = fn(np.asarray(x).reshape(1), *args, **kwargs)
        return y.reshape(()) if np.shape(y) == (1,) else y

    return run


@_on_vectors
def shift_round(x: np.ndarray, s: np.ndarray, mode: Round) -> np.ndarray:
    """``round(x / 2**s)`` for s >= 0 elementwise (s == 0 is the identity)."""
    x = np.asarray(x)  # 0-d inputs (scalar-shaped types) arrive as Python ints after a shift
    s = np.asarray(s)
    pos = s > 0
    s1 = np.where(pos, s, 1)  # keep shifts valid where s == 0; those lanes are masked out
    if s.dtype != object and x.dtype != object:
        s1 = s1.astype(x.dtype)
        one = np.ones_like(x)
    else:
        s1 = s1.astype(object)
        one = np.ones(np.shape(x), dtype=object)
    half = one << (s1 - 1)
    floor = x >> s1
    if mode is Round.TRN:
        r = floor
    elif mode is Round.RND:
        r = (x + half) >> s1
    elif mode is Round.RND_MIN_INF:
        r = -((-x + half) >> s1)
    elif mode is Round.CEIL:
        r = -((-x) >> s1)
    elif mode is Round.RND_CONV:
        rem = x - (floor << s1)
        up = (rem > half) | ((rem == half) & ((floor & one) == one))
        r = floor + _where(up, one, one * 0)
    else:
        a = np.abs(x)
        neg = x < 0
        if mode is Round.TRN_ZERO:
            m = a >> s1
        elif mode is Round.RND_ZERO:
            m = (a + half - one) >> s1
        elif mode is Round.RND_INF:
            m = (a + half) >> s1
        elif mode is Round.TRN_INF:
            m = -((-a) >> s1)
        else:  # pragma: no cover - enum is closed
            raise ValueError(mode)
        r = _where(neg, -m, m)
    return _where(pos, r, x)


@_on_vectors
def requantize(x: np.ndarray, fx: np.ndarray, f: np.ndarray, mode: Round) -> np.ndarray:
    """Move integers from step 2^-fx to step 2^-f (exact when f >= fx, rounded otherwise)."""
    fx = np.asarray(fx)
    f = np.asarray(f)
    d = f - fx
    up = np.where(d > 0, d, 0)
    if x.dtype == object:
        up = up.astype(object)
    else:
        up = up.astype(x.dtype)
    x = x << up
    return shift_round(x, np.where(d < 0, -d, 0), mode)


@_on_vectors
def divide_round(x: np.ndarray, fx: np.ndarray, div: np.ndarray, f: np.ndarray, mode: Round) -> np.ndarray:
    """Integers at step 2^-f nearest (per ``mode``) to ``x * 2^-fx / div`` (``div`` >= 1 integers), exactly.

    The exact rational rounded once: what the lowered circuit computes (``division_by_multiply``), which
    ``hgqc.passes.average`` corrects to Keras' float32 average (``float32_average_round``).
    """
    fx, f = np.asarray(fx), np.asarray(f)
    obj = x.dtype == object
    up = np.maximum(f - fx, 0)
    down = np.maximum(fx - f, 0)
    if obj:
        up, down, div = up.astype(object), down.astype(object), np.asarray(div).astype(object)
    else:
        up, down, div = up.astype(x.dtype), down.astype(x.dtype), np.asarray(div).astype(x.dtype)
    n = x << up
    d = div << down  # value = n / d in units of 2^-f, d > 0
    q = n // d
    r2 = 2 * (n - q * d)  # twice the remainder: compare with d for the half-way point
    if mode is Round.TRN:
        inc = np.zeros(np.shape(q), dtype=bool)
    elif mode is Round.CEIL:
        inc = r2 > 0
    elif mode is Round.TRN_ZERO:
        inc = (r2 > 0) & (n < 0)
    elif mode is Round.TRN_INF:
        inc = (r2 > 0) & (n > 0)
    elif mode is Round.RND:
        inc = r2 >= d
    elif mode is Round.RND_MIN_INF:
        inc = r2 > d
    elif mode is Round.RND_CONV:
        inc = (r2 > d) | ((r2 == d) & (q % 2 == 1))
    elif mode is Round.RND_ZERO:
        inc = (r2 > d) | ((r2 == d) & (n < 0))
    elif mode is Round.RND_INF:
        inc = (r2 > d) | ((r2 == d) & (n > 0))
    else:  # pragma: no cover - every Round member is handled above
        raise ValueError(f'unknown round mode {mode}')
    return q + inc.astype(q.dtype if not obj else object)


def float32_average_round(x: np.ndarray, fx: np.ndarray, div: np.ndarray, f: np.ndarray, mode: Round) -> np.ndarray:
    """Integers at step 2^-f: Keras' float32 average ``x * 2^-fx / div``, rounded per ``mode``.

    Keras divides a window sum by its element count, and XLA turns a division by a constant
    into a product with the float32 reciprocal: the value rounded is
    ``fl32(fl32(x * 2^-fx) * fl32(1 / div))``, not the exact quotient. The two differ only
    by float32 rounding, which matters exactly at the quantizer's rounding boundaries (e.g.
    seven equal inputs of -25: the product is -25.000002, so TRN gives the grid point below).
    The product is a dyadic number, so it is rounded here exactly, with integers.
    """
    fx, f = np.asarray(fx, dtype=np.int64), np.asarray(f, dtype=np.int64)
    recip = np.float32(1) / np.asarray(div).astype(np.float32)
    _, e = np.frexp(recip.astype(np.float64))  # recip = R * 2^(e - 24), R a 24-bit integer
    s = np.ldexp(np.asarray(x).astype(np.float64), -fx).astype(np.float32)  # exact below 2^53
    prod = np.multiply(s, recip, dtype=np.float32)  # IEEE float32, round to nearest even
    scale = fx + 24 - e  # the product's exact step: the float32 rounding only clears low bits
    big = np.asarray(x).dtype == object or np.any(np.abs(np.asarray(x, dtype=np.float64)) >= 2.0**28)
    units = np.ldexp(prod.astype(np.float64), scale)
    units = np.vectorize(int, otypes=[object])(units) if big else units.astype(np.int64)
    return requantize(units, scale, f, mode)


def bounds(k: np.ndarray, i: np.ndarray, f: np.ndarray, overflow: Overflow, like: np.ndarray):
    """Integer bounds (lo, hi) at step 2^-f of ap_fixed<k, i, f>; width<=0 gives (0, 0)."""
    shape = np.broadcast_shapes(np.shape(k), np.shape(i), np.shape(f))
    n = np.atleast_1d(i + f)  # (a vector: see ``_on_vectors``)
    live = (k + n) > 0
    n = np.where(live, n, 0)
    if like.dtype == object or n.max(initial=0) > 60:  # 2^(n+1) must fit: Python ints beyond int64
        one = np.ones(np.shape(n), dtype=object)
        n = n.astype(object)
    else:
        one = np.ones(np.shape(n), dtype=like.dtype)
        n = n.astype(like.dtype)
    top = one << n
    hi = np.where(live, top - 1, 0 * one)
    if overflow is Overflow.SAT_SYM:
        lo = np.where(live & (k != 0), -(top - 1), 0 * one)
    else:
        lo = np.where(live & (k != 0), -top, 0 * one)
    return lo.reshape(shape), hi.reshape(shape)


@_on_vectors
def overflow(x: np.ndarray, k: np.ndarray, i: np.ndarray, f: np.ndarray, mode: Overflow) -> np.ndarray:
    """Bring integers (already at step 2^-f) into ap_fixed<k, i, f> by wrapping or clamping."""
    lo, hi = bounds(k, i, f, mode, x)
    if mode is Overflow.WRAP:
        span = hi - lo + 1  # 2**(k+i+f), or 1 for a zero-width type
        return (x - lo) % span + lo
    return np.minimum(np.maximum(x, lo), hi)

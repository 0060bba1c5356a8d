"""A WRAP input quantizer as Keras computes it, in float32.

hgq2 rounds ``x * 2^f`` with float32 ops, scales back, then wraps with
``((x + bias) mod 2^(i+k)) - bias`` (``bias = k * 2^(i+k-1)``), all in float32. That is exact
while ``|x| * 2^f + 2^(W-1) < 2^24`` (W = k+i+f); beyond it the ``+ 0.5`` of the rounding modes
and the ``+ bias`` round to float32, and Keras returns another in-range value than the exact wrap.
The conversion of a float input to the port's fixed-point value happens before the hardware, so
the interpreter reproduces Keras' value there (docs/hgq_semantics.md, "Pitfalls").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..ir.fixed import Round

__all__ = ['KERAS_WRAP_ROUNDS', 'keras_wrap']

_F32 = np.float32
_HALF = _F32(0.5)

# hgq2's rounding functions (``quantizers.fixed_point``), op for op in float32
_ROUND: dict[Round, Callable[[np.ndarray], np.ndarray]] = {
    Round.TRN: np.floor,
    Round.RND: lambda v: np.floor(v + _HALF),
    Round.RND_CONV: np.round,  # ties to even, as jnp.round
    Round.TRN_ZERO: lambda v: np.floor(np.abs(v)) * np.sign(v),
    Round.RND_ZERO: lambda v: -np.floor(-np.abs(v) + _HALF) * np.sign(v),
    Round.RND_MIN_INF: lambda v: -np.floor(-v + _HALF),
    Round.RND_INF: lambda v: np.floor(np.abs(v) + _HALF) * np.sign(v),
}

KERAS_WRAP_ROUNDS = frozenset(_ROUND)


def keras_wrap(x: np.ndarray, k: np.ndarray, i: np.ndarray, f: np.ndarray, rnd: Round) -> np.ndarray:
    """Keras' float32 result of a WRAP quantizer on float32 values ``x`` (subnormals already
    flushed), as float64; NaN where Keras' value lies outside the quantizer's range (possible at
    W > 24 only), which no port value equals."""
    x = np.asarray(x, dtype=_F32)
    k, i, f = (np.broadcast_to(np.asarray(a, dtype=np.int64), x.shape) for a in (k, i, f))
    scale = np.ldexp(_F32(1), f).astype(_F32)  # powers of two: exact
    with np.errstate(over='ignore', invalid='ignore'):
        xs = _ROUND[rnd](x * scale) / scale
        bk = i + k
        bias = (k * np.ldexp(_F32(1), bk - 1)).astype(_F32)
        m = np.ldexp(_F32(1), bk).astype(_F32)
        r = np.fmod(xs + bias, m)  # jnp.remainder: fmod, then + m where the signs differ
        r = np.where((r != 0) & ((r < 0) != (m < 0)), r + m, r)
        out = (r - bias).astype(np.float64)
    hi = np.ldexp(1.0, i) - np.ldexp(1.0, -f)
    lo = -np.ldexp(1.0, i) * k
    return np.where((out >= lo) & (out <= hi), out, np.nan)

"""Exact compilation of elementwise reference functions for the QONNX frontend.

A function of one tensor with constant parameters that fixed-point ops cannot express exactly
(a non-power-of-two scale, thresholds, a float32 batch norm...) is compiled from the reference
function itself: evaluated on every value its input can take (a ``table``), or, for wide inputs
and monotone functions, bisected into a comparator bank. See ``docs/qonnx.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..ir.fixed import Round
from ..ir.graph import Node
from ..ir.ops import Op, make_table, table_attrs
from ..ir.types import dyadic
from .float32_check import F32_EXACT_BITS, Float32ExactnessWarning

if TYPE_CHECKING:
    from .qonnx import _Ctx

TABLE_LIMIT = 1 << 12  # largest exact lookup table (entries) the frontend builds for one element
STAIRCASE_LIMIT = 1 << 10  # most comparators per element for a monotone function of a wider input


class QonnxExactnessWarning(Float32ExactnessWarning):
    """The float32 reference may round where the compiled (exact) model does not."""


class QonnxCostWarning(UserWarning):
    """Exact, but expensive: a node became a large comparator bank."""


RefFn = Callable[[np.ndarray, tuple[Any, ...]], np.ndarray]


def _table(ctx: _Ctx, x: Node, fn: RefFn, params: list[np.ndarray]) -> Node:
    """``y = fn(x)`` elementwise, exactly as the float32 reference ``fn`` computes it.

    ``fn(xs, p)`` maps a float32 vector of input values to output values for one parameter set
    ``p`` (one entry per array of ``params``, each broadcast to x's shape). Elements sharing a
    parameter set share one domain: the union of their input types. A domain of at most
    ``TABLE_LIMIT`` values becomes a lookup table (``table`` op) evaluated on every value; a wider
    one becomes a comparator staircase (``_staircase``), which needs ``fn`` monotone. Either way
    the result equals the reference for every input the reference itself sees exactly.
    """
    t = x.type
    shape = t.shape
    ps = [np.broadcast_to(np.asarray(p), shape) for p in params]
    groups: dict[tuple, list[int]] = {}
    for e in range(t.size):
        groups.setdefault(tuple(p.flat[e].item() for p in ps), []).append(e)
    domains = {}
    for key, elems in groups.items():
        F = max(int(t.elems[e].f) for e in elems)
        lo = min(t.elems[e].lo << (F - t.elems[e].f) for e in elems)
        hi = max(t.elems[e].hi << (F - t.elems[e].f) for e in elems)
        if max(abs(lo), abs(hi)) >= 1 << F32_EXACT_BITS:
            ctx.warn('its input is not always exactly representable in float32, the reference rounds it')
        domains[key] = (lo, hi, F)
    if any(hi - lo + 1 > TABLE_LIMIT for lo, hi, _ in domains.values()):
        return _staircase(ctx, x, fn, groups, domains)
    per: list[dict[str, Any] | None] = [None] * t.size
    for key, elems in groups.items():
        lo, hi, F = domains[key]
        ys = _eval_ref(ctx, fn, np.arange(lo, hi + 1, dtype=np.float64), F, key)
        fo, vals = _dyadic_ints(ys)
        tab = make_table(lo, F, fo, vals)
        for e in elems:
            per[e] = tab
    return ctx.emit(Op.TABLE, [x], table_attrs(shape, per))


def _eval_ref(ctx: _Ctx, fn: RefFn, keys: np.ndarray, F: int, p: tuple[Any, ...]) -> np.ndarray:
    xs = np.ldexp(np.asarray(keys, dtype=np.float64), -F).astype(np.float32)
    ys = np.asarray(fn(xs, p), dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(ys)):
        raise ctx.error('the reference function gives NaN or infinity on some input value')
    return ys


def _steps(ctx: _Ctx, fn: RefFn, lo: int, hi: int, F: int, p: tuple[Any, ...]) -> tuple[float, list[tuple[int, float]]]:
    """(fn(lo), [(key, jump)]): the keys where a monotone ``fn`` changes value on [lo, hi], by bisection."""
    ev = lambda k: float(_eval_ref(ctx, fn, np.array([k], dtype=np.float64), F, p)[0])  # noqa: E731
    v0, vend = ev(lo), ev(hi)
    sample = np.unique(_eval_ref(ctx, fn, np.linspace(float(lo), float(hi), 4096).round(), F, p))  # (ints beyond int64)
    if len(sample) > STAIRCASE_LIMIT:  # fail fast: bisection would find at least this many levels
        raise ctx.error(
            f'the input takes {hi - lo + 1} values and the output more than {STAIRCASE_LIMIT} levels: too wide '
            'for an exact table or comparator bank; quantize the input more coarsely before this node'
        )
    steps: list[tuple[int, float]] = []
    cur, val = lo, v0
    while val != vend:
        if len(steps) >= STAIRCASE_LIMIT:
            raise ctx.error(
                f'the input takes {hi - lo + 1} values and the output more than {STAIRCASE_LIMIT} levels: too wide '
                'for an exact table or comparator bank; quantize the input more coarsely before this node'
            )
        a, b = cur, hi  # fn(a) == val, fn(b) != val: find the first key that differs
        while b - a > 1:
            mid = (a + b) // 2
            if ev(mid) == val:
                a = mid
            else:
                b = mid
        nxt = ev(b)
        steps.append((b, nxt - val))
        cur, val = b, nxt
    return v0, steps


def _sample(rng: np.random.Generator, lo: int, hi: int, n: int) -> list[int]:
    """``n`` keys uniform in [lo, hi] as Python ints (the bounds may lie beyond int64)."""
    span = hi - lo + 1
    if lo >= -(2**62) and hi < 2**62:
        return [int(k) for k in rng.integers(lo, hi + 1, n)]
    words = span.bit_length() // 62 + 2
    out = []
    for _ in range(n):
        r = 0
        for _ in range(words):
            r = (r << 62) | int(rng.integers(0, 2**62))
        out.append(lo + r % span)
    return out


def _staircase(ctx: _Ctx, x: Node, fn: RefFn, groups: dict[tuple, list[int]], domains: dict) -> Node:
    """``y = v0 + sum_j jump_j * [x >= key_j]``: a bank of comparators for a monotone reference ``fn``.

    Each comparison is ``ceil(x - (key_j - 1) 2^-F)`` saturated to {0, 1} (an adder and a sign
    test); the weighted sum is one cmvm per element group (block-diagonal over the groups). The
    staircase is checked against ``fn`` on a sample of each domain (a non-monotone ``fn`` fails).
    """
    t = x.type
    shape = t.shape
    plans = {key: _steps(ctx, fn, *domains[key], key) for key in groups}
    rng = np.random.default_rng(0)
    for key, (v0, steps) in plans.items():  # monotonicity check on a sample (bisection assumes it)
        lo, hi, F = domains[key]
        ks = np.unique(np.array([*_sample(rng, lo, hi, 512), *(k for k, _ in steps), *(k - 1 for k, _ in steps)], dtype=object))
        ks = ks[(ks >= lo) & (ks <= hi)]
        want = _eval_ref(ctx, fn, ks, F, key)
        got = v0 + np.array([sum(j for k, j in steps if k <= kk) for kk in ks.tolist()])
        if not np.array_equal(want, got):
            raise ctx.error('the reference function is not monotone over the input range; it cannot be compiled exactly')
    m = max(1, max(len(st) for _, st in plans.values()))
    ctx.warn(f'compiled as a bank of up to {m} comparators per element (input too wide for a lookup table)', QonnxCostWarning)
    # a threshold of more than 53 significant bits is the sum of two float64 constants
    thr, thr_lo = np.zeros((t.size, m)), np.zeros((t.size, m))
    w = np.zeros((t.size, m))
    v0s = np.zeros(t.size)
    for key, elems in groups.items():
        v0, steps = plans[key]
        lo, hi, F = domains[key]
        row_t = np.full(m, math.ldexp(hi, -F))  # padding: never passed, weight 0
        row_lo, row_w = np.zeros(m), np.zeros(m)
        for j, (k, jump) in enumerate(steps):
            top = float(k - 1)  # nearest float64; the rest is exact in another (|rest| < 2^53 below 2^106)
            row_t[j], row_lo[j] = math.ldexp(top, -F), math.ldexp(float(k - 1 - int(top)), -F)
            row_w[j] = jump
        thr[elems], thr_lo[elems], w[elems], v0s[elems] = row_t, row_lo, row_w, v0
    rep = np.repeat(np.arange(t.size, dtype=np.int64).reshape(*shape, 1), m, axis=-1)
    xr = ctx.wire(x, rep)
    d = ctx.emit(Op.ADD, [xr, ctx.const(-thr.reshape(*shape, m))])
    if thr_lo.any():
        d = ctx.emit(Op.ADD, [d, ctx.const(-thr_lo.reshape(*shape, m))])
    ones = np.ones((*shape, m), dtype=np.int64)
    b = ctx.emit(Op.QUANTIZE, [d], {'k': 0 * ones, 'i': ones, 'f': 0 * ones, 'round': Round.CEIL.value, 'overflow': 'SAT'})
    y = _channel_cmvm(ctx, b, w.reshape(*shape, m), v0s.reshape(shape))
    ctx.internal.update(n for n in ctx.graph.nodes.values() if n.id > x.id)
    return y


def _channel_cmvm(ctx: _Ctx, xm: Node, w: np.ndarray, bias: np.ndarray | None) -> Node:
    """``y[e] = sum_j xm[e, j] w[e, j] + bias[e]`` for xm of shape S + (m,): one cmvm whose matrix is
    block-diagonal over the axes of S along which ``w``/``bias`` vary (diagonal when m == 1)."""
    shape = xm.shape[:-1]
    m = xm.shape[-1]
    b = np.zeros(shape) if bias is None else np.asarray(bias, dtype=np.float64)
    if not shape:
        y = ctx.emit(
            Op.CMVM,
            [ctx.wire(xm, np.arange(m).reshape(1, m))],
            {'weights': w.reshape(m, 1), 'bias': b.reshape(1) if b.any() else None},
        )
        return ctx.wire(y, np.array(0, dtype=np.int64))

    def varies(a: np.ndarray, ax: int) -> bool:
        return not np.all(a == np.take(a, [0], axis=ax))

    vary = [a for a in range(len(shape)) if varies(w, a) or varies(b, a)]
    keep = [a for a in range(len(shape)) if a not in vary]
    perm = keep + vary
    pdims, cdims = [shape[a] for a in keep], [shape[a] for a in vary]
    C = math.prod(cdims)
    idx = np.arange(xm.type.size, dtype=np.int64).reshape(*shape, m).transpose(*perm, len(shape)).reshape(*pdims, C * m)
    xg = ctx.wire(xm, np.ascontiguousarray(idx))
    wc = np.ascontiguousarray(w.transpose(*perm, len(shape))).reshape(-1, C, m)[0]  # (C, m), same at every position
    bc = np.ascontiguousarray(b.transpose(perm)).reshape(-1, C)[0]
    W = np.zeros((C, m, C))
    W[np.arange(C), :, np.arange(C)] = wc
    y = ctx.emit(Op.CMVM, [xg], {'weights': W.reshape(C * m, C), 'bias': bc if bc.any() else None})
    back = np.arange(y.type.size, dtype=np.int64).reshape(*pdims, *cdims).transpose(np.argsort(perm))
    return ctx.wire(y, np.ascontiguousarray(back))


def _dyadic_ints(ys: np.ndarray) -> tuple[int, list[int]]:
    """The coarsest f and integers v with ys == v * 2^-f exactly."""
    digits = [dyadic(float(y)) for y in ys]
    f = max((-e for m, e in digits if m), default=0)
    return f, [m << (e + f) if m else 0 for m, e in digits]

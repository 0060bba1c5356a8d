"""The op set: one enum, one definition per op (typing rule + integer semantics).

The interpreter, constant folding and range analysis all call these definitions, so an op's
meaning lives in exactly one place. Each rule works on batched integer arrays whose last
axes are the op's tensor shape; integers are in units of each element's own step 2^-f.

``infer`` returns the exact result type (tightest interval) from the input types.
``evaluate`` returns integers at the *natural* fraction of ``infer``'s result; the
interpreter re-expresses them at the node's stored type (which range passes may coarsen).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from .fixed import Overflow, Round, bounds, float32_average_round, overflow, requantize
from .types import TensorType, dyadic


class Op(str, Enum):
    INPUT = 'input'
    CONST = 'const'
    QUANTIZE = 'quantize'
    CMVM = 'cmvm'
    ADD = 'add'
    SUB = 'sub'
    MUL = 'mul'
    NEG = 'neg'
    RELU = 'relu'
    MAX = 'max'
    MIN = 'min'
    SHIFT_ADD = 'shift_add'  # a + (-1)^sub * (b << shift), the adder-level workhorse
    GATHER = 'gather'  # pure wiring: reshape, transpose, slice, concat, pad, element extraction
    REG = 'reg'  # pipeline register (identity in value)
    TABLE = 'table'  # elementwise exact lookup table (any unary function on a finite domain)


Attrs = dict[str, Any]
InferFn = Callable[[Attrs, list[TensorType]], TensorType]
EvalFn = Callable[[Attrs, list[TensorType], list[np.ndarray]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class OpDef:
    op: Op
    arity: int | None  # None: variadic (>= 1)
    infer: InferFn
    evaluate: EvalFn
    wiring: bool = False  # costs nothing in hardware


OPS: dict[Op, OpDef] = {}


def _define(op: Op, arity: int | None, wiring: bool = False):
    def deco(cls):
        OPS[op] = OpDef(op, arity, cls.infer, cls.evaluate, wiring)
        return cls

    return deco


# --------------------------------------------------------------------------- helpers


def _obj(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=object)


# Type inference works on object arrays of Python ints (any width). numpy returns a Python int,
# not a 0-d array, from arithmetic on a 0-d object array, and a ufunc given Python ints converts
# them to int64 (an OverflowError past 2^63): so every bound is re-wrapped before a ufunc.
def _min(*xs: np.ndarray) -> np.ndarray:
    r = _obj(xs[0])
    for x in xs[1:]:
        r = _obj(np.minimum(r, _obj(x)))
    return r


def _max(*xs: np.ndarray) -> np.ndarray:
    r = _obj(xs[0])
    for x in xs[1:]:
        r = _obj(np.maximum(r, _obj(x)))
    return r


def _align(x: np.ndarray, fx: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Exact move of integers from step 2^-fx to the finer step 2^-f (f >= fx)."""
    d = np.asarray(f - fx)
    if not d.any():
        return x
    return x << (d.astype(object) if x.dtype == object else d.astype(x.dtype))


def _result(shape, lo, hi, f) -> TensorType:
    return TensorType.from_arrays(tuple(shape), lo, hi, f)


def _same_shape(name: str, types: list[TensorType]) -> tuple[int, ...]:
    shape = types[0].shape
    for t in types[1:]:
        if t.shape != shape:
            raise ValueError(f'{name}: operand shapes differ: {shape} vs {t.shape}')
    return shape


# --------------------------------------------------------------------------- sources


@_define(Op.INPUT, 0)
class _Input:
    @staticmethod
    def infer(attrs, ts):
        return attrs['type']

    @staticmethod
    def evaluate(attrs, ts, xs):  # the interpreter feeds inputs directly
        raise RuntimeError('input nodes are fed, not evaluated')


def const_type(value: np.ndarray) -> TensorType:
    value = np.asarray(value, dtype=np.float64)
    lo, f = [], []
    for v in value.ravel():
        m, e = dyadic(float(v))
        lo.append(m)
        f.append(-e if m else 0)
    return _result(value.shape, _obj(lo).reshape(value.shape), _obj(lo).reshape(value.shape), np.reshape(f, value.shape))


@_define(Op.CONST, 0)
class _Const:
    @staticmethod
    def infer(attrs, ts):
        return const_type(attrs['value'])

    @staticmethod
    def evaluate(attrs, ts, xs):
        t = const_type(attrs['value'])
        return t.lo.astype(np.int64)[None], t.f


# --------------------------------------------------------------------------- quantize


@_define(Op.QUANTIZE, 1)
class _Quantize:
    """Round to 2^-f then wrap/saturate into ap_fixed<k, i, f>, per element.

    attrs: k, i, f (int arrays of the tensor shape; k+i+f <= 0 means constant 0),
    round (Round), overflow (Overflow), optional div (int array >= 1 of the tensor shape):
    quantize the average ``x / div`` instead, computed as Keras computes it on float32
    (``float32_average_round``: the float32 product with ``fl32(1/div)``, rounded once).
    Only tensor level: ``lower`` expands it.
    """

    @staticmethod
    def _round(attrs, x, fx, f, rnd):
        div = attrs.get('div')
        if div is None:
            return requantize(x, fx, f, rnd)
        return float32_average_round(x, fx, np.asarray(div), f, rnd)

    @staticmethod
    def infer(attrs, ts):
        (t,) = ts
        k, i, f = attrs['k'], attrs['i'], attrs['f']
        rnd, ovf = Round(attrs['round']), Overflow(attrs['overflow'])
        # every rounding is monotone (object arrays: see ``_min``)
        lo = _obj(_Quantize._round(attrs, t.lo, t.f, f, rnd))
        hi = _obj(_Quantize._round(attrs, t.hi, t.f, f, rnd))
        qlo, qhi = (_obj(v) for v in bounds(k, i, f, ovf, lo))
        fits = (lo >= qlo) & (hi <= qhi)
        if ovf is Overflow.WRAP:
            lo2, hi2 = np.where(fits, lo, qlo), np.where(fits, hi, qhi)
        else:
            lo2, hi2 = _min(_max(lo, qlo), qhi), _min(_max(hi, qlo), qhi)
        return _result(t.shape, lo2, hi2, f)

    @staticmethod
    def evaluate(attrs, ts, xs):
        (t,), (x,) = ts, xs
        k, i, f = attrs['k'], attrs['i'], attrs['f']
        y = _Quantize._round(attrs, x, t.f, f, Round(attrs['round']))
        return overflow(y, k, i, f, Overflow(attrs['overflow'])), np.asarray(f)


# --------------------------------------------------------------------------- elementwise


def _binary_infer(combine):
    def infer(attrs, ts):
        a, b = ts
        shape = _same_shape('binary op', ts)
        f = np.maximum(a.f, b.f)
        alo, ahi = _obj(_align(a.lo, a.f, f)), _obj(_align(a.hi, a.f, f))
        blo, bhi = _obj(_align(b.lo, b.f, f)), _obj(_align(b.hi, b.f, f))
        lo, hi = combine(alo, ahi, blo, bhi)
        return _result(shape, lo, hi, f)

    return infer


def _binary_eval(fn):
    def evaluate(attrs, ts, xs):
        a, b = ts
        f = np.maximum(a.f, b.f)
        return fn(_align(xs[0], a.f, f), _align(xs[1], b.f, f)), f

    return evaluate


@_define(Op.ADD, 2)
class _Add:
    infer = staticmethod(_binary_infer(lambda al, ah, bl, bh: (al + bl, ah + bh)))
    evaluate = staticmethod(_binary_eval(lambda a, b: a + b))


@_define(Op.SUB, 2)
class _Sub:
    infer = staticmethod(_binary_infer(lambda al, ah, bl, bh: (al - bh, ah - bl)))
    evaluate = staticmethod(_binary_eval(lambda a, b: a - b))


@_define(Op.MAX, 2)
class _Max:
    infer = staticmethod(_binary_infer(lambda al, ah, bl, bh: (_max(al, bl), _max(ah, bh))))
    evaluate = staticmethod(_binary_eval(np.maximum))


@_define(Op.MIN, 2)
class _Min:
    infer = staticmethod(_binary_infer(lambda al, ah, bl, bh: (_min(al, bl), _min(ah, bh))))
    evaluate = staticmethod(_binary_eval(np.minimum))


@_define(Op.MUL, 2)
class _Mul:
    @staticmethod
    def infer(attrs, ts):
        a, b = ts
        shape = _same_shape('mul', ts)
        cands = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
        lo, hi = _min(*cands), _max(*cands)
        return _result(shape, lo, hi, a.f + b.f)

    @staticmethod
    def evaluate(attrs, ts, xs):
        return xs[0] * xs[1], ts[0].f + ts[1].f


@_define(Op.NEG, 1)
class _Neg:
    @staticmethod
    def infer(attrs, ts):
        (t,) = ts
        return _result(t.shape, -t.hi, -t.lo, t.f)

    @staticmethod
    def evaluate(attrs, ts, xs):
        return -xs[0], ts[0].f


@_define(Op.RELU, 1)
class _Relu:
    @staticmethod
    def infer(attrs, ts):
        (t,) = ts
        return _result(t.shape, _max(t.lo, 0), _max(t.hi, 0), t.f)

    @staticmethod
    def evaluate(attrs, ts, xs):
        return np.maximum(xs[0], 0), ts[0].f


@_define(Op.SHIFT_ADD, 2)
class _ShiftAdd:
    """a + (-1)^sub * b * 2^shift (shift may be negative); attrs: shift (int), sub (bool)."""

    @staticmethod
    def _fracs(attrs, a, b):
        fb = b.f - int(attrs['shift'])
        return fb, np.maximum(a.f, fb)

    @staticmethod
    def infer(attrs, ts):
        a, b = ts
        shape = _same_shape('shift_add', ts)
        if not shape:  # one scalar adder (lowered graphs are millions of these): plain ints, no arrays
            (qa,), (qb,) = a.elems, b.elems
            fb = qb.f - int(attrs['shift'])
            f = max(qa.f, fb)
            alo, ahi, blo, bhi = qa.lo << (f - qa.f), qa.hi << (f - qa.f), qb.lo << (f - fb), qb.hi << (f - fb)
            return _result((), alo - bhi, ahi - blo, f) if attrs['sub'] else _result((), alo + blo, ahi + bhi, f)
        fb, f = _ShiftAdd._fracs(attrs, a, b)
        alo, ahi = _align(a.lo, a.f, f), _align(a.hi, a.f, f)
        blo, bhi = _align(b.lo, fb, f), _align(b.hi, fb, f)
        if attrs['sub']:
            return _result(shape, alo - bhi, ahi - blo, f)
        return _result(shape, alo + blo, ahi + bhi, f)

    @staticmethod
    def evaluate(attrs, ts, xs):
        a, b = ts
        fb, f = _ShiftAdd._fracs(attrs, a, b)
        xa, xb = _align(xs[0], a.f, f), _align(xs[1], fb, f)
        return (xa - xb if attrs['sub'] else xa + xb), f


@_define(Op.REG, 1)
class _Reg:
    @staticmethod
    def infer(attrs, ts):
        return ts[0]

    @staticmethod
    def evaluate(attrs, ts, xs):
        return xs[0], ts[0].f


# --------------------------------------------------------------------------- cmvm


def weight_digits(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact integer mantissas and frac bits of dyadic weights: w == m * 2^-fw (m odd or 0)."""
    m = np.zeros(w.shape, dtype=object)  # Python int 0s; only the nonzeros need a look (sparse kernels)
    fw = np.zeros(w.shape, dtype=np.int64)
    for idx in zip(*np.nonzero(w)):
        m[idx], e = dyadic(float(w[idx]))
        fw[idx] = -e
    return m, fw


def _cmvm_common(attrs, t: TensorType):
    """Integer weight matrix at one common frac, and the common input frac."""
    w = np.asarray(attrs['weights'], dtype=np.float64)
    m, fw = weight_digits(w)
    Fw = int(fw.max()) if fw.size else 0
    wint = m * (np.ones(w.shape, dtype=object) << (Fw - fw).astype(object))
    Fx = int(t.f.max()) if t.size else 0
    bias = attrs.get('bias')
    return w, m, fw, wint, Fw, Fx, bias


def _cmvm_scale(Fx: int, Fw: int, bias) -> tuple[int, int]:
    """Common frac F of the sum and the left shift from the products' frac Fx + Fw to F.

    A bias may be finer than every product (e.g. bias f=8, x f=2, w f=3): F covers it too.
    """
    F0 = Fx + Fw
    if bias is None:
        return F0, 0
    bm, bf = weight_digits(np.asarray(bias, dtype=np.float64))
    Fb = int(bf[bm != 0].max()) if (bm != 0).any() else F0
    F = max(F0, Fb)
    return F, F - F0


@_define(Op.CMVM, 1)
class _Cmvm:
    """y[..., j] = sum_i x[..., i] * W[i, j] + bias[j]; attrs: weights (n_in, n_out), bias (n_out) or None.

    Weights and bias are exact dyadic float64 constants.
    """

    @staticmethod
    def infer(attrs, ts):
        (t,) = ts
        w, m, fw, wint, Fw, Fx, bias = _cmvm_common(attrs, t)
        n_in, n_out = w.shape
        if t.shape[-1] != n_in:
            raise ValueError(f'cmvm: input last axis {t.shape[-1]} != weight rows {n_in}')
        lead = t.shape[:-1]
        F, up = _cmvm_scale(Fx, Fw, bias)
        xlo = _align(t.lo, t.f, Fx).reshape(-1, n_in)
        xhi = _align(t.hi, t.f, Fx).reshape(-1, n_in)
        pos = wint > 0
        lo = np.zeros((xlo.shape[0], n_out), dtype=object)
        hi = np.zeros((xlo.shape[0], n_out), dtype=object)
        for j in range(n_out):
            wj = wint[:, j]
            lo[:, j] = (np.where(pos[:, j], xlo * wj, xhi * wj)).sum(axis=1)
            hi[:, j] = (np.where(pos[:, j], xhi * wj, xlo * wj)).sum(axis=1)
        lo, hi = lo << up, hi << up  # products are at frac Fx + Fw; the sum is at F
        # natural frac per output: finest term frac (input frac + weight frac), or the bias frac
        nz = m != 0
        fterm = np.where(nz[None, :, :], t.f.reshape(-1, n_in)[:, :, None] + fw[None, :, :], np.iinfo(np.int64).min)
        fout = fterm.max(axis=1)
        if bias is not None:
            bm, bf = weight_digits(np.asarray(bias, dtype=np.float64))
            lo = lo + (bm << np.maximum(F - bf, 0).astype(object))[None, :]
            hi = hi + (bm << np.maximum(F - bf, 0).astype(object))[None, :]
            fout = np.maximum(fout, np.where(bm != 0, bf, np.iinfo(np.int64).min)[None, :])
        fout = np.where(fout == np.iinfo(np.int64).min, 0, fout)
        fout = np.minimum(fout, F)
        shift = (F - fout).astype(object)
        # every term is a multiple of 2^-fout, so this division is exact
        lo, hi = lo >> shift, hi >> shift
        return _result(lead + (n_out,), lo.reshape(lead + (n_out,)), hi.reshape(lead + (n_out,)), fout.reshape(lead + (n_out,)))

    @staticmethod
    def evaluate(attrs, ts, xs):
        (t,), (x,) = ts, xs
        w, m, fw, wint, Fw, Fx, bias = _cmvm_common(attrs, t)
        n_in, n_out = w.shape
        out = _Cmvm.infer(attrs, ts)
        F, up = _cmvm_scale(Fx, Fw, bias)
        xa = _align(x, t.f, Fx)
        # exact in int64 iff every partial sum fits: bound by sum |x| |w|
        xmax = np.maximum(np.abs(_align(t.lo, t.f, Fx)), np.abs(_align(t.hi, t.f, Fx))).reshape(-1, n_in)
        bmax = max(int(v) for v in (xmax @ np.abs(wint)).ravel()) << up if xmax.size and n_out else 0
        if bias is not None:
            bm, bf = weight_digits(np.asarray(bias, dtype=np.float64))
            bint = bm << np.maximum(F - bf, 0).astype(object)
            bmax += max((abs(int(v)) for v in bint), default=0)
        dtype = np.int64 if bmax < 2**62 else object
        y = np.matmul(xa.astype(dtype), wint.astype(dtype))
        if up:
            y = y << up
        if bias is not None:
            y = y + bint.astype(dtype)
        y = y >> (F - out.f).astype(dtype)
        return y, out.f


# --------------------------------------------------------------------------- table


def table_entry(attrs: Attrs, e: int) -> dict[str, Any]:
    """The table of flat element ``e`` (``select`` may be 0-d: one table for every element)."""
    sel = np.asarray(attrs['select'])
    return attrs['tables'][int(sel if sel.ndim == 0 else sel.flat[e])]


def table_keys(tab: dict[str, Any], q) -> range:
    """Table keys (integers at step 2^-f_in) of every value of scalar type ``q``, checked to be in the table."""
    fi, lo = int(tab['f_in']), int(tab['lo'])
    n = len(tab['values'])
    if q.is_zero:
        k0 = k1 = 0
        step = 1
    elif q.f <= fi:
        step = 1 << (fi - q.f)
        k0, k1 = q.lo * step, q.hi * step
    elif q.is_const and q.lo % (1 << (q.f - fi)) == 0:
        k0 = k1 = q.lo >> (q.f - fi)
        step = 1
    else:
        raise ValueError(f'table: input step 2^-{q.f} is finer than the table step 2^-{fi}')
    if k0 < lo or k1 >= lo + n:
        raise ValueError(f'table: input keys [{k0}, {k1}] (step 2^-{fi}) exceed the table domain [{lo}, {lo + n - 1}]')
    return range(k0, k1 + 1, step)


def make_table(lo: int, f_in: int, f: int, values) -> dict[str, Any]:
    """One table: input ``(lo + j) * 2^-f_in`` -> ``values[j] * 2^-f`` (int64, or object when wider)."""
    vals = [int(v) for v in np.asarray(values).ravel()]
    dtype = np.int64 if all(-(2**62) <= v < 2**62 for v in vals) else object
    return {'lo': int(lo), 'f_in': int(f_in), 'f': int(f), 'values': np.array(vals, dtype=dtype)}


def table_attrs(shape: tuple[int, ...], tables: list[dict[str, Any]]) -> Attrs:
    """Attrs of a ``table`` node from one table per flat element, storing each distinct table once."""
    distinct: dict[tuple, int] = {}
    out: list[dict[str, Any]] = []
    select = []
    for tab in tables:
        key = (int(tab['lo']), int(tab['f_in']), int(tab['f']), tuple(int(v) for v in np.asarray(tab['values'])))
        if key not in distinct:
            distinct[key] = len(out)
            out.append(tab)
        select.append(distinct[key])
    sel = np.array(select, dtype=np.int64).reshape(shape)
    if len(out) == 1:
        sel = np.array(0, dtype=np.int64)
    return {'tables': out, 'select': sel}


def shrink_table(attrs: Attrs, t: TensorType) -> Attrs | None:
    """Tables cut down to the entries input type ``t`` can reach (at its step), or None if already minimal."""
    per, changed = [], False
    for e, q in enumerate(t.elems):
        tab = table_entry(attrs, e)
        keys = table_keys(tab, q)
        vals = np.asarray(tab['values'])[keys.start - int(tab['lo']) : keys.stop - int(tab['lo']) : keys.step]
        if len(vals) != len(tab['values']):
            changed = True
            f_in = int(tab['f_in']) - (keys.step.bit_length() - 1)
            tab = make_table(keys.start // keys.step, f_in, int(tab['f']), vals)
        per.append(tab)
    return table_attrs(t.shape, per) if changed else None


@_define(Op.TABLE, 1)
class _Table:
    """y = table[x] elementwise; every element's table is exact over that element's input values.

    attrs: ``tables``: list of distinct tables ``{'lo': int, 'f_in': int, 'f': int, 'values': int array}``
    mapping the input value ``(lo + j) * 2^-f_in`` to ``values[j] * 2^-f``; ``select``: int array of
    the tensor shape (or 0-d, same table everywhere) naming each element's table. The result type
    spans the table entries the input type can reach (so it tightens as the input range shrinks).
    """

    @staticmethod
    def infer(attrs, ts):
        (t,) = ts
        sel = np.asarray(attrs['select'])
        if sel.ndim and sel.shape != t.shape:
            raise ValueError(f'table: select shape {sel.shape} differs from the input shape {t.shape}')
        if sel.size and (sel.min() < 0 or sel.max() >= len(attrs['tables'])):
            raise ValueError(f'table: select refers to a missing table (have {len(attrs["tables"])})')
        lo, hi, f = [], [], []
        for e, q in enumerate(t.elems):
            tab = table_entry(attrs, e)
            keys = table_keys(tab, q)
            vals = np.asarray(tab['values'])[keys.start - int(tab['lo']) : keys.stop - int(tab['lo']) : keys.step]
            lo.append(int(vals.min()))
            hi.append(int(vals.max()))
            f.append(int(tab['f']))
        fs = np.array(f, dtype=np.int64).reshape(t.shape)
        return _result(t.shape, _obj(lo).reshape(t.shape), _obj(hi).reshape(t.shape), fs)

    @staticmethod
    def evaluate(attrs, ts, xs):
        (t,), (x,) = ts, xs
        tabs = attrs['tables']
        offs = np.cumsum([0] + [len(tb['values']) for tb in tabs])
        flat = np.concatenate([np.asarray(tb['values']) for tb in tabs])
        sel = np.broadcast_to(np.asarray(attrs['select'], dtype=np.int64), t.shape).ravel()
        fi = np.array([int(tabs[s]['f_in']) for s in sel], dtype=np.int64)
        lo = np.array([int(tabs[s]['lo']) for s in sel], dtype=np.int64)
        ff = t.f.ravel()
        if np.any((ff > fi) & ~np.array([q.is_zero or q.is_const for q in t.elems], dtype=bool)):
            raise ValueError('table: input step finer than the table step')
        xf = np.asarray(x, dtype=np.int64).reshape(x.shape[0], -1)
        up = np.maximum(fi - ff, 0)
        down = np.maximum(ff - fi, 0)
        keys = (xf << up) >> down
        idx = keys - lo
        n = offs[1:][sel] - offs[:-1][sel]
        if np.any((idx < 0) | (idx >= n)):
            bad = int(np.argwhere((idx < 0) | (idx >= n))[0][1])
            raise ValueError(f'table: element {bad} reads a value outside its table domain')
        y = flat[idx + offs[:-1][sel]]
        f = np.array([int(tabs[s]['f']) for s in sel], dtype=np.int64).reshape(t.shape)
        return y.reshape(x.shape), f


# --------------------------------------------------------------------------- wiring


@_define(Op.GATHER, None, wiring=True)
class _Gather:
    """out.flat[n] = concat(inputs flattened)[index.flat[n]], or 0 where index is -1.

    attrs: index (int array with the output's shape).
    """

    @staticmethod
    def infer(attrs, ts):
        idx = np.asarray(attrs['index'], dtype=np.int64)
        elems = [e for t in ts for e in t.elems]
        total = len(elems)
        if idx.size and (idx.max() >= total or idx.min() < -1):
            raise ValueError(f'gather index out of range [-1, {total})')
        from .types import ZERO

        return TensorType(idx.shape, tuple(elems[i] if i >= 0 else ZERO for i in idx.ravel()))

    @staticmethod
    def evaluate(attrs, ts, xs):
        idx = np.asarray(attrs['index'], dtype=np.int64)
        b = xs[0].shape[0]
        cols = [x.reshape(b, -1) for x in xs]
        dtype = object if any(c.dtype == object for c in cols) else np.int64
        flat = np.concatenate([c.astype(dtype) for c in cols] + [np.zeros((b, 1), dtype=dtype)], axis=1)
        out = flat[:, np.where(idx.ravel() < 0, flat.shape[1] - 1, idx.ravel())].reshape((b,) + idx.shape)
        return out, _Gather.infer(attrs, ts).f


def fold_inputs_ok(op: Op) -> bool:
    """Whether a node of this op with all-constant inputs may be folded to a constant."""
    return op not in (Op.INPUT, Op.REG)

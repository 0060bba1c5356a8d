"""Handlers for table layers: ``QUnaryFunctionLUT``, ``QAffinedUnaryFunctionLUT`` and ``QSoftmax``.

A unary function layer becomes one ``table`` node: each element's table is computed by calling
the Keras layer itself on every value its input type can hold, so the table equals what
``keras.predict`` computes bit for bit (float32 evaluation of the function and the layer's own
output quantizer included). Elements with identical domains and functions share a table.
``QSoftmax`` follows hgq2's structure: (stable: ``max - x``), exp table, sum, reciprocal table,
multiply, optional output quantizer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hgq.layers import QAffinedUnaryFunctionLUT, QSoftmax, QUnaryFunctionLUT

from ..ir.graph import Node
from ..ir.ops import Op, make_table, table_attrs
from .keras import LoweringContext, Tensor, _single, keras_eval, quantizer_to_quantize, register_layer, shape_of
from .keras_ops import broadcast, keep_dims, reduce_axes, refuse

MAX_TABLE_ENTRIES = 1 << 16  # per element: a table addressed by more than 16 bits is not a sensible ROM
MAX_EVALUATIONS = 1 << 23  # points evaluated at once (elements x entries)


def tabulate(ctx: LoweringContext, layer: Any, x: Node, fn: Any, oq: Any, narrow: str = 'the input quantizer') -> Node:
    """A ``table`` node computing ``fn`` (a Keras callable ending in quantizer ``oq``) on every value of ``x``.

    ``fn`` receives float32 values shaped like ``x`` with a leading batch axis and must return
    ``oq``'s output; the table output frac is ``oq``'s per-element ``f``. ``narrow`` names the
    quantizer a too-wide input asks the user to narrow.
    """
    t = x.type
    shape = t.shape
    sizes = np.array([e.hi - e.lo + 1 for e in t.elems], dtype=np.int64)
    n = int(sizes.max()) if sizes.size else 1
    if n > MAX_TABLE_ENTRIES or n * max(t.size, 1) > MAX_EVALUATIONS:
        raise refuse(
            ctx,
            layer,
            f'an input element takes {n} values (max {t.max_width} bits): too many for a lookup table '
            f'(limit {MAX_TABLE_ENTRIES} entries); narrow {narrow}',
        )
    if t.max_width > 24:
        raise refuse(ctx, layer, f'input values of {t.max_width} bits are not exact in float32')
    lo = t.lo.astype(np.int64).ravel()
    f_in = t.f.ravel()
    k = np.arange(n, dtype=np.int64)[:, None] % np.maximum(sizes, 1)[None, :] + lo[None, :]
    xs = np.ldexp(k.astype(np.float64), -f_in[None, :]).astype(np.float32).reshape((n, *shape))
    p = quantizer_to_quantize(oq, shape)
    ys = np.asarray(keras_eval(fn, xs, variables=layer.variables), dtype=np.float64).reshape(n, -1)
    f_out = p.f.ravel()
    ints = np.ldexp(ys, f_out[None, :])
    if not np.all(np.isfinite(ints)) or np.any(ints != np.round(ints)):
        raise refuse(ctx, layer, 'the function output is not on the output quantizer grid (NaN or infinity?)')
    ints = ints.astype(np.int64)
    tables = [make_table(int(lo[e]), int(f_in[e]), int(f_out[e]), ints[: sizes[e], e]) for e in range(t.size)]
    return ctx.emit(Op.TABLE, [x], table_attrs(shape, tables))


def _unary_lut(ctx: LoweringContext, layer: Any, x: Tensor, narrow: str = 'the input quantizer') -> Node:
    """iq (if enabled) then the table of activation + oq."""
    if layer.enable_iq:
        x = ctx.quantize(x, layer.iq)
    if not layer.enable_oq:
        raise refuse(ctx, layer, 'enable_oq=False leaves the table output unquantized (float); enable the output quantizer')
    x = ctx.require(x)
    # the layer applied to values its iq already produced: iq is the identity there, so this is oq(f(x))
    return tabulate(ctx, layer, x, lambda v: layer(v, training=False), layer.oq, narrow)


@register_layer(QUnaryFunctionLUT, QAffinedUnaryFunctionLUT)
def _qunary_lut(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    return [_unary_lut(ctx, layer, _single(layer, inputs))]


@register_layer(QSoftmax)
def _qsoftmax(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    x = _single(layer, inputs)
    if layer.enable_iq:
        x = ctx.quantize(x, layer.iq)
    x = ctx.require(x)
    shape = shape_of(x)
    n = len(shape) + 1
    axes = [int(a) % n for a in layer.axes]
    if 0 in axes:
        raise refuse(ctx, layer, 'softmax over the batch axis is not supported')
    axes = [a - 1 for a in axes]
    if layer.stable:  # max over the axes minus x, then the exp table's own iq
        m = reduce_axes(ctx, x, axes, Op.MAX, keepdims=True)
        x = ctx.emit(Op.SUB, [broadcast(ctx, m, shape), x])
    e = _unary_lut(ctx, layer.exp_table, x, "the softmax's exp_iq_conf")
    s = reduce_axes(ctx, e, axes, Op.ADD, keepdims=True)
    inv = _unary_lut(ctx, layer.inv_table, ctx.reshape(s, keep_dims(shape, axes)), "the softmax's inv_iq_conf")
    y: Tensor = ctx.emit(Op.MUL, [e, broadcast(ctx, inv, shape)])
    if layer.enable_oq:
        y = ctx.quantize(y, layer.oq)
    return [y]

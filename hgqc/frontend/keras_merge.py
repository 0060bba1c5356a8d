"""Handlers for merges and reductions: ``QAdd``, ``QSubtract``, ``QMultiply``, ``QMaximum``,
``QMinimum``, ``QAveragePow2``, ``QSum``, ``QMeanPow2``, and Keras ``Add``, ``Subtract``,
``Concatenate`` on already-quantized tensors.

hgq2 merges quantize each input (``iq`` per input), combine in float32, then ``oq``; the IR ops
are exact, so the two agree while float32 is exact (see ``keras.py``'s exactness caveat).
Inputs of different shapes broadcast like numpy (Keras' merge layers do the same).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from hgq.layers import QAdd, QAveragePow2, QMaximum, QMeanPow2, QMinimum, QMultiply, QSubtract, QSum

from ..ir.ops import Op
from .keras import LoweringContext, Tensor, register_layer, shape_of
from .keras_ops import broadcast, concat, reduce_axes, refuse


def _pow2_exponent(ctx: LoweringContext, layer: Any, scale: float) -> int:
    mant, exp = math.frexp(float(scale))
    if mant != 0.5:
        raise refuse(ctx, layer, f'scale {scale!r} is not a power of two')
    return exp - 1


def _scaled(ctx: LoweringContext, x: Tensor, e: int) -> Tensor:
    """x * 2^e (pure wiring: a shift_add with the constant 0)."""
    if e == 0:
        return x
    zero = ctx.emit(Op.CONST, [], {'value': np.zeros(shape_of(x))})
    return ctx.emit(Op.SHIFT_ADD, [zero, x], {'shift': e, 'sub': False})


def _merge(ctx: LoweringContext, layer: Any, inputs: list[Tensor], op: Op, quantized: bool = True) -> Tensor:
    if len(inputs) < 2:
        raise refuse(ctx, layer, f'expects at least two inputs, got {len(inputs)}')
    if quantized and layer.enable_iq:
        inputs = [ctx.quantize(x, q) for x, q in zip(inputs, layer.iq)]
    shape = ctx.out_shapes[0]
    xs = [ctx.require(x) for x in inputs]
    xs = [x if shape_of(x) == shape else broadcast(ctx, x, shape) for x in xs]
    y: Tensor = xs[0]
    for x in xs[1:]:  # Keras folds left to right; every IR op is exact, so the order is immaterial
        y = ctx.emit(op, [y, x])
    return y


def _out_quantize(ctx: LoweringContext, layer: Any, y: Tensor) -> list[Tensor]:
    return [ctx.quantize(y, layer.oq) if layer.enable_oq else y]


@register_layer(QAdd)
def _qadd(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    return _out_quantize(ctx, layer, _merge(ctx, layer, inputs, Op.ADD))


@register_layer(QAveragePow2)
def _qaverage(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    y = _scaled(ctx, _merge(ctx, layer, inputs, Op.ADD), _pow2_exponent(ctx, layer, layer._scale))
    return _out_quantize(ctx, layer, y)


@register_layer(QSubtract)
def _qsubtract(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    if len(inputs) != 2:
        raise refuse(ctx, layer, f'expects exactly two inputs, got {len(inputs)}')
    return _out_quantize(ctx, layer, _merge(ctx, layer, inputs, Op.SUB))


@register_layer(QMultiply)
def _qmultiply(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    return _out_quantize(ctx, layer, _merge(ctx, layer, inputs, Op.MUL))


@register_layer(QMaximum)
def _qmaximum(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    return _out_quantize(ctx, layer, _merge(ctx, layer, inputs, Op.MAX))


@register_layer(QMinimum)
def _qminimum(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    return _out_quantize(ctx, layer, _merge(ctx, layer, inputs, Op.MIN))


@register_layer(keras.layers.Add)
def _add(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    return [_merge(ctx, layer, inputs, Op.ADD, quantized=False)]


@register_layer(keras.layers.Subtract)
def _subtract(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    if len(inputs) != 2:
        raise refuse(ctx, layer, f'expects exactly two inputs, got {len(inputs)}')
    return [_merge(ctx, layer, inputs, Op.SUB, quantized=False)]


@register_layer(keras.layers.Concatenate)
def _concatenate(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    axis = int(layer.axis)
    if axis == 0 or axis <= -(len(shape_of(inputs[0])) + 1):
        raise refuse(ctx, layer, 'concatenating along the batch axis is not supported')
    axis = axis - 1 if axis > 0 else axis
    return [concat(ctx, [ctx.require(x) for x in inputs], axis)]


@register_layer(QSum, QMeanPow2)
def _qsum(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    # hgq2: iq -> sum over `axes` (batch-inclusive numbering) * scale (a power of two) -> oq
    if len(inputs) != 1:
        raise refuse(ctx, layer, f'expects one input, got {len(inputs)}')
    x = inputs[0]
    if layer.enable_iq:
        x = ctx.quantize(x, layer.iq)
    n = len(shape_of(x)) + 1
    axes = [int(a) % n for a in layer.axes]
    if 0 in axes:
        raise refuse(ctx, layer, 'summing over the batch axis is not supported')
    e = _pow2_exponent(ctx, layer, layer.scale)
    y = reduce_axes(ctx, ctx.require(x), [a - 1 for a in axes], Op.ADD, bool(layer.keepdims), 2.0**e)
    return _out_quantize(ctx, layer, y)

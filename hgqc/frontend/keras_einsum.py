"""Handlers for einsum-shaped HGQ2 layers: ``QEinsumDense`` (and its batch-norm-fused form),
``QEinsum`` and ``QDot`` (variable x variable), and ``QBatchNormalization``.

Constant kernels are the layer's own quantized values evaluated by Keras (``qkernel``/``qbias``,
so batch-norm fusion is whatever hgq2 computes); the contraction becomes one ``cmvm``
(``keras_ops.einsum_const``). Products of two variables are ``mul`` nodes summed by a ``cmvm``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hgq.layers import QBatchNormalization, QDot, QEinsum, QEinsumDense, QEinsumDenseBatchnorm

from .keras import LoweringContext, Tensor, _activation_op, _class_path, _single, register_layer, shape_of
from .keras_ops import einsum_const, einsum_vars, expand_ellipsis, layer_where, refuse


def _split_dense_equation(ctx: LoweringContext, layer: Any, x_ndim: int) -> tuple[str, str, str]:
    """(input, kernel, output) letters of an EinsumDense equation without the batch letter."""
    eq = layer.equation.replace(' ', '')
    try:
        lhs, ly = eq.split('->')
        lx, lw = lhs.split(',')
    except ValueError:
        raise refuse(ctx, layer, f"equation '{layer.equation}' is not of the form 'x,kernel->y'") from None
    if '...' in lw:
        raise refuse(ctx, layer, f"equation '{layer.equation}': '...' in the kernel term is not supported")
    lx, ly = expand_ellipsis([lx, ly], [x_ndim + 1, None])
    if not lx or not ly or lx[0] != ly[0] or lx[0] in lw or lx.count(lx[0]) != 1 or ly.count(ly[0]) != 1:
        raise refuse(ctx, layer, f"equation '{layer.equation}': the batch axis must be the first axis of input and output")
    return lx[1:], lw, ly[1:]


@register_layer(QEinsumDense, QEinsumDenseBatchnorm)
def _qeinsum_dense(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    # hgq2: iq -> einsum(x, qkernel) (+ qbias) -> activation -> oq; the BN-fused form uses fused qkernel/qbias
    x = _single(layer, inputs)
    where = f"layer '{ctx.layer_name}' ({_class_path(type(layer))})"
    act = _activation_op(layer.activation, where)
    if layer.enable_iq:
        x = ctx.quantize(x, layer.iq)
    lx, lw, ly = _split_dense_equation(ctx, layer, len(shape_of(x)))
    w = ctx.layer_array(layer, 'qkernel', f'{where}: quantized kernel')
    if len(set(lx)) != len(lx) or len(set(lw)) != len(lw):
        raise refuse(ctx, layer, f"equation '{layer.equation}' repeats a letter within a term (a diagonal); not supported")
    dims = dict(zip(lx, shape_of(x))) | dict(zip(lw, np.shape(w)))
    out_shape = tuple(ctx.out_shapes[0])
    computed = tuple(dims.get(c, -1) for c in ly)
    if computed != out_shape:
        raise refuse(
            ctx,
            layer,
            f"Keras' symbolic output shape {out_shape} differs from what equation '{layer.equation}' computes "
            f'{computed} (Keras mis-shapes an ellipsis over several axes); spell the axes out in the equation',
        )
    b = None
    if isinstance(layer, QEinsumDenseBatchnorm) or layer.bias is not None:  # the fused form always has a bias
        b = ctx.layer_array(layer, 'qbias', f'{where}: quantized bias')
        b = np.broadcast_to(b, (1, *out_shape))[0] if b.ndim > len(out_shape) else np.broadcast_to(b, out_shape)
    y: Tensor = einsum_const(ctx, ctx.require(x), lx, lw, ly, w, b, out_shape)
    if act is not None:
        y = ctx.emit(act, [y])
    if layer.enable_oq:
        y = ctx.quantize(y, layer.oq)
    return [y]


def _quantize_inputs(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    if not layer.enable_iq:
        return inputs
    return [ctx.quantize(x, q) for x, q in zip(inputs, layer.iq)]


@register_layer(QEinsum)
def _qeinsum(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    # hgq2: iq per input -> einsum (the equation is explicit after build, batch included) -> oq
    if len(inputs) != 2:
        raise refuse(ctx, layer, f'only two-operand einsum is supported, got {len(inputs)} operands')
    a, b = _quantize_inputs(ctx, layer, inputs)
    eq = layer.equation.replace(' ', '')
    lhs, ly = eq.split('->')
    la, lb = lhs.split(',')
    if not (la and lb and ly) or not (la[0] == lb[0] == ly[0]) or any(t.count(la[0]) != 1 for t in (la, lb, ly)):
        raise refuse(ctx, layer, f"equation '{layer.equation}': the batch axis must be the first axis of every term")
    y: Tensor = einsum_vars(ctx, ctx.require(a), la[1:], ctx.require(b), lb[1:], ly[1:])
    if layer.enable_oq:
        y = ctx.quantize(y, layer.oq)
    return [y]


@register_layer(QDot)
def _qdot(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    # keras Dot = batch_dot over `axes` (batch axis 0 shared); a 1-D result gets a trailing axis
    if len(inputs) != 2:
        raise refuse(ctx, layer, f'expects two inputs, got {len(inputs)}')
    if getattr(layer, 'normalize', False):
        raise refuse(ctx, layer, 'normalize=True is not supported')
    a, b = _quantize_inputs(ctx, layer, inputs)
    na, nb = len(shape_of(a)) + 1, len(shape_of(b)) + 1
    axes = layer.axes if isinstance(layer.axes, (list, tuple)) else [layer.axes, layer.axes]
    axa, axb = (int(ax) % n for ax, n in zip(axes, (na, nb)))
    if axa == 0 or axb == 0:
        raise refuse(ctx, layer, 'contracting the batch axis is not supported')
    letters = iter('bcdefghijklmnopqrstuvwxyz')
    la = ['a'] + [next(letters) for _ in range(na - 1)]
    lb = ['a'] + [next(letters) for _ in range(nb - 1)]
    lb[axb] = la[axa]
    ly = [c for k, c in enumerate(la) if k != axa] + [c for k, c in enumerate(lb) if k not in (0, axb)]
    y: Tensor = einsum_vars(ctx, ctx.require(a), ''.join(la[1:]), ctx.require(b), ''.join(lb[1:]), ''.join(ly[1:]))
    y = ctx.reshape(y, ctx.out_shapes[0])
    if layer.enable_oq:
        y = ctx.quantize(y, layer.oq)
    return [y]


@register_layer(QBatchNormalization)
def _qbatchnorm(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    # hgq2: iq -> x * kq(scale) + bq(offset), per channel along `axis` -> oq
    x = _single(layer, inputs)
    where = layer_where(ctx, layer)
    if layer.enable_iq:
        x = ctx.quantize(x, layer.iq)
    shape = shape_of(x)
    axis = layer.axis if isinstance(layer.axis, int) else (layer.axis[0] if len(layer.axis) == 1 else None)
    if axis is None:
        raise refuse(ctx, layer, f'axis={layer.axis}: only one normalization axis is supported')
    axis = axis % (len(shape) + 1) - 1
    if axis < 0:
        raise refuse(ctx, layer, 'normalizing over the batch axis is not supported')
    scale, offset = (ctx.layer_array(layer, 'qscaler_and_qoffset', f'{where}: quantized scale/offset', k) for k in (0, 1))
    c = shape[axis]
    letters = 'bcdefghijklmnopqrstuvwxyz'[: len(shape)]
    lx = letters
    ch = letters[axis]
    w = np.diag(scale.reshape(c))  # (c, c'): y[..., c'] = x[..., c] * scale[c] on the diagonal
    lw, ly = ch + 'Z', letters.replace(ch, 'Z')
    bias = np.broadcast_to(offset.reshape([c if k == axis else 1 for k in range(len(shape))]), shape)
    y: Tensor = einsum_const(ctx, ctx.require(x), lx, lw, ly, w, bias, shape)
    if layer.enable_oq:
        y = ctx.quantize(y, layer.oq)
    return [y]

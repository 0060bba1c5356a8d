"""Handlers for hgq2's table layers ``QDenseT``, ``QEinsumDenseT``, ``QConvT1D`` and ``QConvT2D``.

Their semantics are a finite table per input: the input is broadcast to a "presum" tensor
(QDenseT: one copy per output, ``(..., n_in, n_out)``), quantized by ``iq``, and every presum
element goes through its own small float network (``module``, optional batch norm) and the
table output quantizer ``toq``; the results are summed over the contracted axes and passed
through the activation. So each becomes: ``gather`` (broadcast) -> ``quantize`` -> ``table``
(the layer's own sub-network evaluated by Keras on every input value) -> sum ``cmvm`` ->
``gather`` (transpose) -> activation -> optional ``oq``. The convolutions first extract
patches; their wiring is obtained by running Keras' ``extract_patches`` on position codes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hgq.layers import QConvT1D, QConvT2D, QDenseT, QEinsumDenseT
from keras import ops

from ..ir.ops import Op
from .keras import InputView, LoweringContext, Tensor, _activation_op, _class_path, _single, keras_eval, register_layer, shape_of
from .keras_ops import reduce_axes, refuse, transpose
from .keras_table import tabulate


def _finish(ctx: LoweringContext, layer: Any, presum: Tensor, contract: list[int], fn: Any, perm: list[int] | None) -> Tensor:
    where = f"layer '{ctx.layer_name}' ({_class_path(type(layer))})"
    act = _activation_op(layer.activation, where)
    if layer.enable_iq:
        presum = ctx.quantize(presum, layer.iq)
    t: Tensor = tabulate(ctx, layer, ctx.require(presum), fn, layer.toq)
    if contract:
        t = reduce_axes(ctx, t, contract, Op.ADD, keepdims=False)
    if perm is not None and perm != sorted(perm):
        t = transpose(ctx, t, perm)
    if act is not None:
        t = ctx.emit(act, [t])
    if layer.enable_oq:
        t = ctx.quantize(t, layer.oq)
    return t


def _dense_t(ctx: LoweringContext, layer: Any, x: Tensor) -> Tensor:
    # QDenseT.call: broadcast x[..., None] to (..., n_in, n_out), iq, module, (bn / sqrt(n_in)), toq, sum over n_in
    shape = shape_of(x)
    index = np.broadcast_to(np.arange(math.prod(shape), dtype=np.int64).reshape(shape)[..., None], (*shape, layer.n_out))
    presum = ctx.wire(x, index.copy())

    def fn(v):
        t = layer.module(v[..., None], training=False)
        if layer.enable_bn:
            t = layer.bn_module(t, training=False) / math.sqrt(layer.n_in)
        return layer.toq(t, training=False)

    return _finish(ctx, layer, presum, [len(shape) - 1], fn, None)


@register_layer(QDenseT)
def _qdense_t(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    return [_dense_t(ctx, layer, _single(layer, inputs))]


@register_layer(QEinsumDenseT)
def _qeinsum_dense_t(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    x = _single(layer, inputs)
    shape = shape_of(x)
    reshape, bshape = (tuple(int(d) for d in s[1:]) for s in layer._bcast[:2])
    if math.prod(reshape) != math.prod(shape):
        raise refuse(ctx, layer, f'input shape {shape} does not match the built shape {reshape}')
    index = np.broadcast_to(np.arange(math.prod(shape), dtype=np.int64).reshape(reshape), bshape)
    presum = ctx.wire(x, index.copy())

    def fn(v):
        t = layer.module(v[..., None], training=False)
        t = layer._apply_batch_norm(t, training=False)
        return layer.toq(t, training=False)

    contract = [a - 1 for a in layer._contract_axes]
    perm = [a - 1 for a in layer._output_transpose[1:]]
    if tuple(layer._output_transpose[:1]) != (0,):
        raise refuse(ctx, layer, f"equation '{layer.equation}': the batch axis must stay first")
    return [_finish(ctx, layer, presum, contract, fn, perm)]


def _patch_index(layer: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Flat input positions of every patch element (-1 where the patch reads padding)."""
    codes = (np.arange(math.prod(shape), dtype=np.float32) + 1).reshape((1, *shape))
    if layer.rank == 1:

        def patches():
            return ops.image.extract_patches(codes[:, :, None], **layer.im2col_params)[:, :, 0]
    else:

        def patches():
            return ops.image.extract_patches(codes, **layer.im2col_params)

    out = np.asarray(keras_eval(patches))[0]
    return np.rint(out).astype(np.int64) - 1


@register_layer(QConvT1D, QConvT2D)
def _qconv_t(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    x = _single(layer, inputs)
    shape = shape_of(x)
    if getattr(layer, 'data_format', 'channels_last') != 'channels_last':
        raise refuse(ctx, layer, f"data_format='{layer.data_format}' is not supported here; use channels_last")
    if math.prod(shape) >= 1 << 24:
        raise refuse(ctx, layer, 'input too large to trace the patch wiring exactly')
    index = _patch_index(layer, shape)
    if (index < 0).any() and isinstance(x, InputView):
        raise refuse(ctx, layer, 'patches reading padding need a quantized input: add an hgq.layers.Quantizer before it')
    return [_dense_t(ctx, layer, ctx.wire(x, index))]

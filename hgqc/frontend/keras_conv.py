"""HGQ2 convolutions (``QConv1D``, ``QConv2D``) as im2col wiring + one ``cmvm``.

hgq2's ``QBaseConv.call``: ``iq`` on the whole input, ``conv(x, qkernel)`` (Keras/XLA
semantics: strides, dilation, ``valid``/``same`` padding with zeros, ``causal`` for 1-D,
``groups``), ``+ qbias``, activation, then ``oq`` (hgq's layer metaclass).

Lowering: the quantized input is gathered into patches of shape ``(*out_spatial, K * C_in)``
(``-1`` = a padding zero), and one ``cmvm`` with the kernel reshaped to ``(K * C_in, filters)``
computes every output position. The ``cse`` pass solves the adder program once per distinct
input-type signature of the positions and reuses it (``cmvm`` attr ``program``), so a
convolution costs one CSE solve, not one per pixel. Grouped convolutions use a block-diagonal
kernel (zeros outside a filter's group, which CSE skips). ``QConv3D`` is not supported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hgq.layers import QConv1D, QConv2D

from ..ir.ops import Op
from .errors import FrontendError
from .keras import LoweringContext, Tensor, _activation_op, _class_path, _single, register_layer, shape_of
from .keras_window import channel_windows, channels_last, to_channels_first, window_index


def grouped_kernel(kernel: np.ndarray, groups: int) -> np.ndarray:
    """(*k, C_in / groups, filters) -> dense (*k, C_in, filters), zero outside each filter's group."""
    *ks, cin_g, filters = kernel.shape
    if groups == 1:
        return kernel
    out = np.zeros((*ks, cin_g * groups, filters), dtype=kernel.dtype)
    fg = filters // groups
    for g in range(groups):
        out[..., g * cin_g : (g + 1) * cin_g, g * fg : (g + 1) * fg] = kernel[..., g * fg : (g + 1) * fg]
    return out


@register_layer(QConv1D, QConv2D)
def _qconv(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    x = _single(layer, inputs)
    where = f"layer '{ctx.layer_name}' ({_class_path(type(layer))})"
    act = _activation_op(layer.activation, where)
    if layer.enable_iq:
        x = ctx.quantize(x, layer.iq)
    first = layer.data_format == 'channels_first'
    base = channels_last(shape_of(x), first)
    spatial = base.shape[:-1]
    try:
        win = window_index(spatial, layer.kernel_size, layer.strides, layer.dilation_rate, layer.padding)
    except ValueError as e:
        raise FrontendError(f'{where}: {e}') from e
    rank = len(spatial)
    out_spatial = win.shape[:rank]
    patches = channel_windows(base, win).reshape(*out_spatial, -1)  # (*out, K * C_in), kernel-major
    kernel = ctx.layer_array(layer, 'qkernel', f'{where}: quantized kernel')
    w = grouped_kernel(kernel, int(layer.groups)).reshape(patches.shape[-1], -1)
    b = ctx.layer_array(layer, 'qbias', f'{where}: quantized bias') if layer.use_bias else None
    y = ctx.emit(Op.CMVM, [ctx.wire(x, patches)], {'weights': w, 'bias': None if b is None or not b.any() else b})
    if act is not None:
        y = ctx.emit(act, [y])
    if first:
        y = ctx.wire(y, to_channels_first(shape_of(y)))
    if layer.enable_oq:
        y = ctx.quantize(y, layer.oq)
    return [y]

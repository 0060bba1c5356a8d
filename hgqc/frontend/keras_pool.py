"""Pooling layers: HGQ2's ``QMaxPooling*``/``QAveragePooling*``/``QGlobal*Pooling*`` (1-D, 2-D)
and the plain Keras pooling layers they subclass.

hgq2's ``QBasePooling.call``: ``iq`` on the whole input, then Keras' pooling, then ``oq``.

* Max pooling is wiring + a balanced tree of elementwise ``max`` over the window offsets
  (one gather per offset). A ``same``-padded border window reads one of its own valid
  elements instead of the padding (Keras pads with -inf; a duplicate never changes a max).
* Average pooling sums each window with one ``cmvm`` (all-ones weights over the window axis)
  and divides by the number of *valid* elements of the window (Keras' ``same`` padding
  counts only those). A power-of-two count is an exact weight ``2^-e``; any other count is a
  rational that no fixed-point value holds, so Keras' float32 average is only meaningful
  once a quantizer rounds it: the division is then fused into that ``quantize`` (attr
  ``div``, see docs/design.md), which rounds Keras' own ``fl32(sum) * fl32(1/n)``.
  Such an average must therefore reach a quantizer (its ``oq`` or the next layer's ``iq``)
  through wiring only.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from hgq.layers import (
    QAveragePooling1D,
    QAveragePooling2D,
    QGlobalAveragePooling1D,
    QGlobalAveragePooling2D,
    QGlobalMaxPooling1D,
    QGlobalMaxPooling2D,
    QMaxPooling1D,
    QMaxPooling2D,
)

from ..ir.graph import Node
from ..ir.ops import Op
from .errors import FrontendError
from .keras import LoweringContext, Tensor, _class_path, _single, register_layer, shape_of
from .keras_window import channel_windows, channels_last, to_channels_first, window_index

MAX_POOLS = (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, QMaxPooling1D, QMaxPooling2D)
AVG_POOLS = (keras.layers.AveragePooling1D, keras.layers.AveragePooling2D, QAveragePooling1D, QAveragePooling2D)
GLOBAL_MAX = (keras.layers.GlobalMaxPooling1D, keras.layers.GlobalMaxPooling2D, QGlobalMaxPooling1D, QGlobalMaxPooling2D)
GLOBAL_AVG = (
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    QGlobalAveragePooling1D,
    QGlobalAveragePooling2D,
)


def _windows(ctx: LoweringContext, layer: Any, x: Tensor, is_global: bool) -> tuple[np.ndarray, bool]:
    """Window index (*out_spatial, K, C) into x's flat positions (-1 = padding) and channels_first."""
    first = getattr(layer, 'data_format', 'channels_last') == 'channels_first'
    base = channels_last(shape_of(x), first)
    spatial = base.shape[:-1]
    if is_global:
        win = np.arange(math.prod(spatial), dtype=np.int64)
    else:
        try:
            win = window_index(spatial, layer.pool_size, layer.strides, 1, layer.padding)
        except ValueError as e:
            raise FrontendError(f"layer '{ctx.layer_name}' ({_class_path(type(layer))}): {e}") from e
        win = win.reshape(*win.shape[: len(spatial)], -1)
    return channel_windows(base, win), first


def _finish(ctx: LoweringContext, layer: Any, y: Tensor, first: bool, is_global: bool) -> Tensor:
    """Back to the layer's data format / keepdims shape, then the output quantizer."""
    if is_global:
        y = ctx.reshape(y, ctx.out_shapes[0])
    elif first:
        y = ctx.wire(y, to_channels_first(shape_of(y)))
    if getattr(layer, 'enable_oq', False):
        y = ctx.quantize(y, layer.oq)
    return y


def _input(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> Tensor:
    x = _single(layer, inputs)
    if getattr(layer, 'enable_iq', False):
        x = ctx.quantize(x, layer.iq)
    return x


def max_tree(ctx: LoweringContext, x: Tensor, windows: np.ndarray) -> Node:
    """Elementwise max over axis -2 of ``windows`` (*out, K, C): a balanced tree of ``max``."""
    valid = windows >= 0
    first_valid = np.take_along_axis(windows, np.argmax(valid, axis=-2)[..., None, :], axis=-2)
    windows = np.where(valid, windows, first_valid)  # padding reads a valid element of its window
    level: list[Tensor] = [ctx.wire(x, windows[..., k, :]) for k in range(windows.shape[-2])]
    while len(level) > 1:
        nxt = [ctx.emit(Op.MAX, [level[j], level[j + 1]]) for j in range(0, len(level) - 1, 2)]
        level = nxt + ([level[-1]] if len(level) % 2 else [])
    return ctx.require(level[0])


@register_layer(*MAX_POOLS, *GLOBAL_MAX)
def _max_pool(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    is_global = isinstance(layer, GLOBAL_MAX)
    x = _input(ctx, layer, inputs)
    windows, first = _windows(ctx, layer, x, is_global)
    return [_finish(ctx, layer, max_tree(ctx, x, windows), first, is_global)]


@register_layer(*AVG_POOLS, *GLOBAL_AVG)
def _avg_pool(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    is_global = isinstance(layer, GLOBAL_AVG)
    x = _input(ctx, layer, inputs)
    windows, first = _windows(ctx, layer, x, is_global)  # (*out, K, C)
    size = windows.shape[-2]
    count = (windows >= 0).sum(axis=-2)  # Keras divides by the valid elements of each window
    uniform = bool(np.all(count == size)) and size & (size - 1) == 0
    weight = 1.0 / size if uniform else 1.0  # a power-of-two mean is an exact weight
    sums = ctx.emit(Op.CMVM, [ctx.wire(x, np.swapaxes(windows, -1, -2))], {'weights': np.full((size, 1), weight), 'bias': None})
    y = ctx.reshape(sums, count.shape)
    if not uniform:
        y = ctx.divide(ctx.require(y), count)
    return [_finish(ctx, layer, y, first, is_global)]

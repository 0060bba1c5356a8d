"""Pure-wiring layers and Keras ops: every one is a single ``gather`` (or nothing at all).

Each handler computes the flat source position of every output element by applying the
layer's own index arithmetic to ``arange`` (numpy does the slicing, padding, repeating), so
the layer is never re-implemented element by element. ``-1`` marks a padding zero. On a graph
input not yet quantized the positions just move along (``InputView``), so e.g. a
``ZeroPadding2D`` before a convolution costs nothing.

Keras ops recorded in a functional graph (``x[1:3]``, ``keras.ops.reshape``/``transpose``/
``expand_dims``/``squeeze``) come with their non-tensor arguments in ``ctx.call_args``.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras.src.ops import numpy as knp

from .errors import FrontendError
from .keras import LoweringContext, Tensor, _single, register_layer, shape_of


def _base(x: Tensor) -> np.ndarray:
    return np.arange(math.prod(shape_of(x)), dtype=np.int64).reshape(shape_of(x))


def _spatial_view(layer: Any, base: np.ndarray) -> tuple[np.ndarray, bool]:
    """The index viewed channels last (rank-1 layers have no data_format: steps, channels)."""
    first = getattr(layer, 'data_format', 'channels_last') == 'channels_first'
    return (np.moveaxis(base, 0, -1) if first else base), first


def _back(index: np.ndarray, first: bool) -> np.ndarray:
    return np.moveaxis(index, -1, 0) if first else index


@register_layer(keras.layers.Permute)
def _permute(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    x = _single(layer, inputs)
    return [ctx.wire(x, _base(x).transpose([d - 1 for d in layer.dims]))]


@register_layer(keras.layers.RepeatVector)
def _repeat_vector(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    x = _single(layer, inputs)
    return [ctx.wire(x, np.repeat(_base(x)[None, :], int(layer.n), axis=0))]


@register_layer(keras.layers.Cropping1D, keras.layers.Cropping2D)
def _cropping(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    x = _single(layer, inputs)
    view, first = _spatial_view(layer, _base(x))
    rank = view.ndim - 1
    crops = [tuple(layer.cropping)] if rank == 1 else [tuple(c) for c in layer.cropping]
    index = view[tuple(slice(a, view.shape[d] - b) for d, (a, b) in enumerate(crops))]
    return [ctx.wire(x, _back(index, first))]


@register_layer(keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D)
def _zero_padding(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    x = _single(layer, inputs)
    view, first = _spatial_view(layer, _base(x))
    rank = view.ndim - 1
    pads = [tuple(layer.padding)] if rank == 1 else [tuple(p) for p in layer.padding]
    index = np.pad(view, [*pads, (0, 0)], constant_values=-1)
    return [ctx.wire(x, _back(index, first))]


@register_layer(keras.layers.UpSampling1D, keras.layers.UpSampling2D)
def _upsampling(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    x = _single(layer, inputs)
    interpolation = getattr(layer, 'interpolation', 'nearest')
    if interpolation != 'nearest':
        raise FrontendError(
            f"layer '{ctx.layer_name}' ({type(layer).__name__}): interpolation '{interpolation}' is not supported; "
            "use interpolation='nearest'"
        )
    view, first = _spatial_view(layer, _base(x))
    sizes = [int(layer.size)] if isinstance(layer.size, int) else [int(s) for s in layer.size]
    for d, s in enumerate(sizes):
        view = np.repeat(view, s, axis=d)
    return [ctx.wire(x, _back(view, first))]


# --------------------------------------------------------------------------- keras ops


def _op_args(ctx: LoweringContext, what: str) -> tuple[Any, ...]:
    args, _ = ctx.call_args
    if len(args) < 1:
        raise FrontendError(f"operation '{ctx.layer_name}' ({what}): no input")
    return tuple(args[1:])


def _batched(ctx: LoweringContext, x: Tensor, fn: Any) -> Tensor:
    """Apply numpy index arithmetic ``fn`` to the index with its batch axis (size 1) in place."""
    out = np.asarray(fn(_base(x)[None]))
    if out.ndim == 0 or out.shape[0] != 1:
        raise FrontendError(f"operation '{ctx.layer_name}': operations across the batch axis are not supported")
    return ctx.wire(x, out[0])


@register_layer(knp.GetItem)
def _get_item(ctx: LoweringContext, op: Any, inputs: list[Tensor]) -> list[Tensor]:
    x = _single(op, inputs)
    (key,) = _op_args(ctx, 'GetItem')[:1] or (None,)
    parts = key if isinstance(key, tuple) else (key,)
    if not all(p is None or p is Ellipsis or isinstance(p, (int, slice)) for p in parts):
        raise FrontendError(f"operation '{ctx.layer_name}' (GetItem): only static int/slice/None/... indexing is supported")
    return [_batched(ctx, x, lambda b: b[key])]


@register_layer(knp.Reshape, knp.ExpandDims, knp.Squeeze, knp.Transpose)
def _reshape_op(ctx: LoweringContext, op: Any, inputs: list[Tensor]) -> list[Tensor]:
    x = _single(op, inputs)
    if isinstance(op, knp.Transpose):
        axes = op.axes
        return [_batched(ctx, x, lambda b: np.transpose(b, axes))]
    # reshape, expand_dims, squeeze keep the row-major order: only the shape changes
    return [ctx.reshape(x, ctx.out_shapes[0])]

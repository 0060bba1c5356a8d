"""Tensor-level building blocks shared by the einsum, merge and table layer handlers.

Everything here emits ops through a ``LoweringContext`` so the nodes carry the current layer's
name. Rearrangements (transpose, broadcast) are ``gather`` wiring; sums are a ``cmvm`` whose
weights are the (power-of-two) scale, so the CMVM optimizer builds the adder tree; products of
two variables are ``mul`` nodes.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..ir.graph import Node
from ..ir.ops import Op
from .errors import FrontendError
from .keras import LoweringContext, Tensor, shape_of

# --------------------------------------------------------------------------- wiring


def transpose(ctx: LoweringContext, x: Tensor, perm: Sequence[int]) -> Tensor:
    shape = shape_of(x)
    return ctx.wire(x, np.arange(math.prod(shape), dtype=np.int64).reshape(shape).transpose(tuple(perm)))


def broadcast(ctx: LoweringContext, x: Tensor, shape: Sequence[int]) -> Tensor:
    """numpy broadcasting of ``x`` to ``shape`` (pure wiring)."""
    src = shape_of(x)
    index = np.arange(math.prod(src), dtype=np.int64).reshape(src)
    return ctx.wire(x, np.broadcast_to(index, tuple(shape)).copy())


def axes_last(ctx: LoweringContext, x: Tensor, axes: Sequence[int]) -> tuple[Tensor, tuple[int, ...]]:
    """``x`` with ``axes`` moved to the end and flattened into one: shape (*rest, prod(axes dims))."""
    shape = shape_of(x)
    axes = sorted(a % len(shape) for a in axes)
    rest = [a for a in range(len(shape)) if a not in axes]
    index = np.arange(math.prod(shape), dtype=np.int64).reshape(shape).transpose(rest + axes)
    rest_shape = tuple(shape[a] for a in rest)
    return ctx.wire(x, index.reshape(rest_shape + (-1,) if index.size else rest_shape + (0,))), rest_shape


def keep_dims(shape: Sequence[int], axes: Sequence[int]) -> tuple[int, ...]:
    axes = {a % len(shape) for a in axes}
    return tuple(1 if a in axes else d for a, d in enumerate(shape))


# --------------------------------------------------------------------------- reductions


def sum_last(ctx: LoweringContext, x: Tensor, scale: float = 1.0) -> Node:
    """``scale * sum(x, axis=-1)`` (keeps the axis with size 1) as a cmvm with constant weights."""
    n = shape_of(x)[-1]
    return ctx.emit(Op.CMVM, [x], {'weights': np.full((n, 1), float(scale)), 'bias': None})


def reduce_axes(ctx: LoweringContext, x: Tensor, axes: Sequence[int], op: Op, keepdims: bool, scale: float = 1.0) -> Tensor:
    """Reduce ``axes`` of ``x`` with ``op`` (ADD: scaled sum via cmvm; MAX/MIN: balanced trees)."""
    shape = shape_of(x)
    flat, rest = axes_last(ctx, x, axes)
    if op is Op.ADD:
        y: Tensor = sum_last(ctx, flat, scale)
    else:
        y = flat
        while shape_of(y)[-1] > 1:
            m = shape_of(y)[-1]
            h = m // 2
            lead = math.prod(shape_of(y)[:-1])
            base = (np.arange(lead, dtype=np.int64) * m)[:, None]
            a = ctx.wire(y, (base + np.arange(h)).reshape(shape_of(y)[:-1] + (h,)))
            b = ctx.wire(y, (base + np.arange(h, 2 * h)).reshape(shape_of(y)[:-1] + (h,)))
            z = ctx.emit(op, [a, b])
            if m % 2:  # the odd element joins the next level unchanged
                tail = ctx.wire(y, (base + m - 1).reshape(shape_of(y)[:-1] + (1,)))
                z = concat_last(ctx, [z, tail])
            y = z
    out_shape = keep_dims(shape, axes) if keepdims else rest
    return ctx.reshape(y, out_shape)


def concat_last(ctx: LoweringContext, xs: Sequence[Tensor]) -> Node:
    """Concatenate along the last axis (same leading shape)."""
    return concat(ctx, xs, -1)


def concat(ctx: LoweringContext, xs: Sequence[Tensor], axis: int) -> Node:
    shapes = [shape_of(x) for x in xs]
    axis %= len(shapes[0])
    offs = np.cumsum([0] + [math.prod(s) for s in shapes])
    parts = [np.arange(math.prod(s), dtype=np.int64).reshape(s) + o for s, o in zip(shapes, offs)]
    index = np.concatenate(parts, axis=axis)
    return ctx.emit(Op.GATHER, [ctx.require(x) for x in xs], {'index': index})


# --------------------------------------------------------------------------- einsum

_LETTERS = string.ascii_letters


def expand_ellipsis(terms: list[str], ndims: list[int | None]) -> list[str]:
    """Replace '...' in every term by the same fresh letters (count from the first term that knows its rank)."""
    used = set(''.join(terms).replace('.', ''))
    fresh = [c for c in _LETTERS if c not in used]
    n = None
    for t, nd in zip(terms, ndims):
        if '...' in t and nd is not None:
            n = nd - (len(t) - 3)
            break
    if n is None:
        if any('...' in t for t in terms):
            raise ValueError('cannot resolve "..." in the einsum equation')
        return terms
    rep = ''.join(fresh[:n])
    return [t.replace('...', rep) for t in terms]


def einsum_const(
    ctx: LoweringContext, x: Tensor, lx: str, lw: str, ly: str, w: np.ndarray, bias: np.ndarray | None, out_shape: tuple[int, ...]
) -> Node:
    """``einsum(lx,lw->ly)(x, w) + bias`` (batch letters removed; ``bias`` already broadcast to ``out_shape``).

    Axes of ``x`` kept in the output and absent from the kernel are positions of one shared
    ``cmvm``; everything else (contracted axes, axes shared with the kernel but kept, such as
    ``i`` in ``bij,ijk->bik``) goes into its weight matrix, block-structured where needed.
    """
    xs = shape_of(x)
    dims = dict(zip(lx, xs)) | dict(zip(lw, w.shape)) | dict(zip(ly, out_shape))
    par = [c for c in lx if c not in lw and c in ly]
    rx = [c for c in lx if c not in par]
    ry = [c for c in ly if c not in par]
    par_shape = tuple(dims[c] for c in par)
    rx_shape, ry_shape = tuple(dims[c] for c in rx), tuple(dims[c] for c in ry)
    n_rx, n_ry = math.prod(rx_shape), math.prod(ry_shape)
    perm = [lx.index(c) for c in par + rx]
    xt = ctx.wire(x, np.arange(math.prod(xs), dtype=np.int64).reshape(xs).transpose(perm).reshape(par_shape + (n_rx,)))
    z = next(c for c in _LETTERS if c not in lx + lw + ly)
    if not set(rx) & set(ry) and set(lw) == set(rx) | set(ry) and len(set(lw)) == len(lw):
        mat = np.einsum(f'{lw}->{"".join(rx)}{"".join(ry)}', np.asarray(w, dtype=np.float64)).reshape(n_rx, n_ry)  # a transpose
    else:  # sums over x-only letters, blocks along letters x, w and y share: through an identity basis
        basis = np.eye(n_rx).reshape((n_rx, *rx_shape))
        mat = np.einsum(f'{z}{"".join(rx)},{lw}->{z}{"".join(ry)}', basis, np.asarray(w, dtype=np.float64)).reshape(n_rx, n_ry)
    b = None
    if bias is not None and np.any(bias != 0):
        b = np.asarray(bias, dtype=np.float64).transpose([ly.index(c) for c in par + ry]).reshape(par_shape + (n_ry,))
    shared = b is None or np.all(b == b.reshape(-1, n_ry)[:1].reshape((1,) * len(par_shape) + (n_ry,)))
    y = ctx.emit(Op.CMVM, [xt], {'weights': mat, 'bias': None if b is None or not shared else b.reshape(-1, n_ry)[0].copy()})
    if b is not None and not shared:  # a bias varying along a position axis: one constant add
        y = ctx.emit(Op.ADD, [y, ctx.emit(Op.CONST, [], {'value': b})])
    order = par + ry
    index = np.arange(y.type.size, dtype=np.int64).reshape(par_shape + ry_shape).transpose([order.index(c) for c in ly])
    return ctx.wire(y, index)


def einsum_vars(ctx: LoweringContext, a: Tensor, la: str, b: Tensor, lb: str, ly: str) -> Tensor:
    """``einsum(la,lb->ly)(a, b)`` of two variables (batch letters removed): products, then sums."""
    sa, sb = shape_of(a), shape_of(b)
    dims: dict[str, int] = {}
    for letters, shape in ((la, sa), (lb, sb)):
        for c, d in zip(letters, shape):
            if dims.setdefault(c, d) != d:
                raise ValueError(f"einsum: axis '{c}' has sizes {dims[c]} and {d}")
    lc = [c for c in dict.fromkeys(la + lb) if c not in ly]
    order = list(ly) + lc
    grid = np.indices(tuple(dims[c] for c in order)) if order else np.zeros((0,), dtype=np.int64)

    def flat_index(letters: str, shape: tuple[int, ...]) -> np.ndarray:
        strides = np.cumprod((1,) + shape[::-1])[:-1][::-1] if shape else ()
        idx = np.zeros(tuple(dims[c] for c in order), dtype=np.int64)
        for c, s in zip(letters, strides):
            idx = idx + grid[order.index(c)] * int(s)
        return idx

    y_shape = tuple(dims[c] for c in ly)
    n_c = math.prod(dims[c] for c in lc)
    ia = flat_index(la, sa).reshape(y_shape + (n_c,))
    ib = flat_index(lb, sb).reshape(y_shape + (n_c,))
    prod = ctx.emit(Op.MUL, [ctx.wire(a, ia), ctx.wire(b, ib)])
    return ctx.reshape(prod if n_c == 1 else sum_last(ctx, prod), y_shape)


def layer_where(ctx: LoweringContext, layer: Any) -> str:
    """``layer 'name' (Class)``; a part of the layer being lowered (a softmax's exp table) says so."""
    top = getattr(ctx, 'layer', None)
    if top is not None and layer is not top:
        return f"layer '{ctx.layer_name}' ({type(top).__name__}, its {getattr(layer, 'name', type(layer).__name__)})"
    return f"layer '{ctx.layer_name}' ({type(layer).__name__})"


def refuse(ctx: LoweringContext, layer: Any, what: str) -> FrontendError:
    return FrontendError(f'{layer_where(ctx, layer)}: {what}')

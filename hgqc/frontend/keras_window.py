"""Index arithmetic shared by the convolution and pooling handlers (pure numpy, no Keras).

Everything here produces *flat element positions* for ``LoweringContext.wire`` (gather
indices, ``-1`` = constant 0), so a convolution or a pooling window becomes pure wiring
followed by one arithmetic op over the last axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _tuple(v: int | Sequence[int], rank: int) -> tuple[int, ...]:
    t = (int(v),) * rank if isinstance(v, (int, np.integer)) else tuple(int(e) for e in v)
    if len(t) != rank:
        raise ValueError(f'expected {rank} values, got {t}')
    return t


def window_geometry(size: int, kernel: int, stride: int, dilation: int, padding: str) -> tuple[int, int]:
    """(output length, padding before) of one spatial axis, as Keras/XLA compute them.

    ``same``: ``out = ceil(size / stride)``, total padding split with the extra element
    after (``pad_before = total // 2``); ``causal`` (Conv1D): all padding before, out = size.
    """
    span = (kernel - 1) * dilation + 1
    if padding == 'valid':
        return (size - span) // stride + 1, 0
    if padding == 'same':
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        return out, total // 2
    if padding == 'causal':
        return (size - 1) // stride + 1, span - 1
    raise ValueError(f"padding '{padding}' is not supported (valid, same, causal)")


def window_index(
    spatial: Sequence[int],
    kernel: int | Sequence[int],
    strides: int | Sequence[int],
    dilation: int | Sequence[int],
    padding: str,
) -> np.ndarray:
    """Flat positions (row-major over ``spatial``) read by every window.

    Shape ``(*out_spatial, *kernel)``; ``-1`` where the window lies on padding.
    """
    rank = len(spatial)
    ks, ss, ds = _tuple(kernel, rank), _tuple(strides, rank), _tuple(dilation, rank)
    flat = np.zeros((1,) * (2 * rank), dtype=np.int64)
    valid = np.ones((1,) * (2 * rank), dtype=bool)
    step = 1
    for d in reversed(range(rank)):
        out, before = window_geometry(int(spatial[d]), ks[d], ss[d], ds[d], padding)
        if out <= 0:
            raise ValueError(f'window {ks} with strides {ss} and dilation {ds} does not fit the input {tuple(spatial)}')
        pos = np.arange(out)[:, None] * ss[d] - before + np.arange(ks[d])[None, :] * ds[d]
        shape = [1] * (2 * rank)
        shape[d], shape[rank + d] = out, ks[d]
        pos = pos.reshape(shape)
        valid = valid & (pos >= 0) & (pos < spatial[d])
        flat = flat + pos * step
        step *= int(spatial[d])
    return np.where(valid, flat, -1)


def channel_windows(base: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Expand spatial windows over channels: ``base`` is (*spatial, C) flat positions (channels
    last); returns (*windows.shape, C) positions, ``-1`` on padding."""
    c = base.shape[-1]
    rows = base.reshape(-1, c)
    out = rows[np.maximum(windows, 0)]
    return np.where((windows >= 0)[..., None], out, -1)


def channels_last(shape: Sequence[int], channels_first: bool) -> np.ndarray:
    """Flat positions of a tensor of ``shape``, viewed channels last."""
    base = np.arange(math.prod(shape), dtype=np.int64).reshape(tuple(shape))
    return np.moveaxis(base, 0, -1) if channels_first else base


def to_channels_first(shape_last: Sequence[int]) -> np.ndarray:
    """Gather index turning a channels-last tensor of ``shape_last`` into channels first."""
    base = np.arange(math.prod(shape_last), dtype=np.int64).reshape(tuple(shape_last))
    return np.moveaxis(base, -1, 0)

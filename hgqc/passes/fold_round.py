"""``fold_round``: move a round-to-nearest quantize's half-LSB into the bias of the cmvm before it.

``quantize_RND(y)`` is ``floor(y * 2^f + 1/2)`` then overflow handling, i.e. ``quantize_TRN(y + h)``
with ``h = 2^-(f+1)``: in hardware one adder per element and one adder level. When ``y`` comes
from a cmvm (``y = x @ W + b``), ``h`` can join the bias, which the cmvm's adder trees already add
(a constant leaf), so the rounding becomes free. This holds through a relu as well:

    quantize_RND(relu(y)) == quantize_TRN(relu(y + h))

(for ``y < -h`` both sides are 0; for ``-h <= y < 0`` the left side is ``floor(1/2) = 0`` and the
right side ``floor(y * 2^f + 1/2)`` with ``y * 2^f`` in ``[-1/2, 0)``, also 0; for ``y >= 0`` they are
the same expression). Overflow handling comes after rounding in both, so it is unchanged.

Rewritten: ``cmvm -> quantize(RND)`` and ``cmvm -> relu -> quantize(RND)`` where each
intermediate value has that one user and is not a graph output. ``h`` is added only to elements
that the quantize actually rounds (input fraction bits > ``f``, target width > 0); the bias is per
output channel, so every position of a channel must need the same ``h`` (else the node is left
alone). Types are re-inferred afterwards; the quantize's result type is unchanged.
"""

from __future__ import annotations

import numpy as np

from ..ir.fixed import Round
from ..ir.graph import Graph, Node
from ..ir.ops import OPS, Op
from ..options import CompileOptions
from .manager import register_pass


def _single_user(graph: Graph, n: Node) -> Node | None:
    if len(n.users) != 1 or any(v is n for _, v in graph.outputs):
        return None
    return next(iter(n.users))


def _channel_half(q: Node, n_out: int) -> np.ndarray | None:
    """Per output channel, the half-LSB the quantize adds (0 where it does not round), or None."""
    shape = q.shape
    f = np.broadcast_to(np.asarray(q.attrs['f'], dtype=np.int64), shape).reshape(-1, n_out)
    width = (
        np.broadcast_to(np.asarray(q.attrs['k'], dtype=np.int64), shape)
        + np.broadcast_to(np.asarray(q.attrs['i'], dtype=np.int64), shape)
        + np.broadcast_to(np.asarray(q.attrs['f'], dtype=np.int64), shape)
    ).reshape(-1, n_out)
    fin = np.broadcast_to(q.inputs[0].type.f, shape).reshape(-1, n_out)
    rounds = (fin > f) & (width > 0)
    live = width > 0
    half = np.zeros(n_out, dtype=np.float64)
    for j in range(n_out):
        if not rounds[:, j].any():
            if live[:, j].any() and not np.all(fin[live[:, j], j] <= f[live[:, j], j]):
                return None
            continue
        if not (rounds[:, j] == live[:, j]).all() or len(set(f[rounds[:, j], j].tolist())) != 1:
            return None  # positions of this channel disagree: one bias cannot serve them all
        half[j] = np.ldexp(1.0, -int(f[rounds[:, j], j][0]) - 1)
    return half


def fold_rounding(graph: Graph) -> int:
    """Apply the rewrite everywhere it is exact; returns the number of quantize nodes changed."""
    changed = 0
    for n in graph:
        if n.op is not Op.CMVM or n.shape == ():
            continue
        q = _single_user(graph, n)
        if q is not None and q.op is Op.RELU:
            q = _single_user(graph, q)
        if q is None or q.op is not Op.QUANTIZE or Round(q.attrs['round']) is not Round.RND:
            continue
        if q.attrs.get('div') is not None:  # RND(x / d) != TRN((x + h) / d): h would be divided too
            continue
        w = np.asarray(n.attrs['weights'], dtype=np.float64)
        half = _channel_half(q, w.shape[1])
        if half is None:
            continue
        if np.any(half):
            bias = n.attrs.get('bias')
            bias = np.zeros(w.shape[1]) if bias is None else np.asarray(bias, dtype=np.float64)
            n.attrs['bias'] = bias + half
            n.attrs.pop('program', None)  # the bias is part of the program: stale now
        q.attrs['round'] = Round.TRN.value
        changed += 1
    if changed:
        for n in graph.nodes.values():
            if n.op is not Op.INPUT:
                n.type = OPS[n.op].infer(n.attrs, [i.type for i in n.inputs])
    return changed


@register_pass('fold_round')
def fold_round_pass(graph: Graph, options: CompileOptions) -> Graph:
    fold_rounding(graph)
    return graph

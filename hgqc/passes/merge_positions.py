"""``merge_positions``: one cmvm over every position of a convolution, so CSE shares across positions.

A convolution reaches the IR as ``cmvm(gather(x))``: the gather builds each output position's
patch (im2col) and the cmvm applies the same kernel ``W`` (``n_in x n_out``) to every patch.
Solved per position, a shift-add pattern ``x_a ± x_b << s`` can only be shared between the
output channels of one position; but neighbouring patches hold the same input elements, and a
pair of them recurs (with other kernel taps) in other positions. This pass rewrites

    y = cmvm(gather(x), W, b)            # shape (*positions, n_out)

into one matrix over the distinct input elements the patches use:

    u = gather(x, used)                  # (n_used,)
    z = cmvm(u, W_big, tile(b))          # (n_pos * n_out,), W_big[r, p*n_out + j] = W[t, j] where
                                         #   patch p reads element used[r] at tap t
    y = gather(z, arange(.).reshape(y.shape))   # wiring back to the old shape

Every output element is the same sum of the same products as before (padding taps read 0 and
get no row), so values and types are unchanged; ``csd``/``cse`` then see one sparse block
matrix and may share a pattern between any two outputs. Rewritten only when the patches
overlap (some input element is read by two positions: otherwise nothing can be shared), no
patch reads an element twice, and the merged matrix has at most ``max_digits`` signed digits
(``options.extra['merge_positions.max_digits']``, default ``MAX_DIGITS``; the solver's time
grows with the digit count, while per-position solving stays cheap for large images).
Runs after ``fold_round`` (which matches ``cmvm -> relu -> quantize`` chains without wiring
between them) and before ``csd``/``cse``.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from ..ir.ops import Op
from ..options import CompileOptions
from .csd import csd_matrix
from .manager import register_pass

MAX_DIGITS = 16000  # merged matrices up to this many signed digits (conv1 of the digits CNN: ~5000)


def merged_matrix(w: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(used, W_big)`` for a kernel ``w`` (n_in x n_out) applied to patches ``index`` (n_pos x n_in,
    flat source indices, -1 = padding zero), or None when a patch reads an element twice."""
    n_pos, n_in = index.shape
    n_out = w.shape[1]
    live = (index >= 0) & (w != 0).any(axis=1)[None, :]
    for p in range(n_pos):
        taps = index[p, live[p]]
        if len(np.unique(taps)) != len(taps):
            return None
    used = np.unique(index[live])
    row = np.searchsorted(used, index)
    big = np.zeros((len(used), n_pos * n_out), dtype=np.float64)
    for p in range(n_pos):
        t = np.flatnonzero(live[p])
        big[row[p, t], p * n_out : (p + 1) * n_out] = w[t]
    return used, big


def _merge(g: Graph, n: Node, x: Node, remap: dict[Node, Node], max_digits: int) -> Node | None:
    """The replacement of cmvm ``n`` (already-copied operands in ``remap``), or None to keep it."""
    w = np.asarray(n.attrs['weights'], dtype=np.float64)
    n_in, n_out = w.shape
    if x.op is not Op.GATHER or n_in == 0 or x.type.size // n_in < 2:
        return None
    index = np.asarray(x.attrs['index'], dtype=np.int64).reshape(-1, n_in)
    n_pos = index.shape[0]
    src_types = [q for s in x.inputs for q in s.type.elems]
    zero = np.array([q.is_zero for q in src_types] + [True], dtype=bool)  # index -1 reads zero
    index = np.where(zero[index], -1, index)
    digits_per_pos = len(csd_matrix(w[(index >= 0).any(axis=0)]))
    if n_pos * digits_per_pos > max_digits:
        return None
    merged = merged_matrix(w, index)
    if merged is None:
        return None
    used, big = merged
    if len(used) >= int((index >= 0).sum()):  # no element is shared by two patches
        return None
    u = g.add(Op.GATHER, [remap[s] for s in x.inputs], {'index': used}, name=f'{n.name}/inputs')
    attrs = {k: v for k, v in n.attrs.items() if k not in ('weights', 'bias', 'csd', 'program')}
    attrs['weights'] = big
    bias = n.attrs.get('bias')
    if bias is not None:
        attrs['bias'] = np.tile(np.asarray(bias, dtype=np.float64), n_pos)
    z = g.add(Op.CMVM, [u], attrs, name=n.name)
    flat = np.arange(n_pos * n_out, dtype=np.int64).reshape(n.shape)
    return g.add(Op.GATHER, [z], {'index': flat}, n.type, name=f'{n.name}/positions')


def merge_positions(graph: Graph, max_digits: int = MAX_DIGITS) -> Graph:
    """A new graph with every eligible multi-position cmvm merged (see the module docstring)."""

    def rewrite(g: Graph, n: Node, remap: dict[Node, Node]) -> Node | None:
        return _merge(g, n, n.inputs[0], remap, max_digits) if n.op is Op.CMVM else None

    g = graph.rewritten(rewrite)
    from .prune import dead_code_elimination

    return dead_code_elimination(g)


@register_pass('merge_positions')
def merge_positions_pass(graph: Graph, options: CompileOptions) -> Graph:
    return merge_positions(graph, int(options.extra.get('merge_positions.max_digits', MAX_DIGITS)))

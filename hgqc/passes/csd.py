"""``csd``: canonical-signed-digit decomposition of every cmvm weight.

Each dyadic weight ``w = m * 2^e`` (``m`` odd) is written with the fewest nonzero digits
``w = sum_k sign_k * 2^exp_k`` (the non-adjacent form of ``m``: no two digits at adjacent
exponents, which is also minimal). The result is stored on the cmvm node as attr ``csd``:
an int64 array of shape ``(n_terms, 4)`` whose rows are ``(row, col, exponent, sign)``, with
``sign`` in ``{-1, +1}``, sorted by column, then row, then exponent. JSON-serializable through
the IR text form and cheap to scan per column.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph
from ..ir.ops import Op
from ..ir.types import dyadic
from ..options import CompileOptions
from .manager import register_pass


def csd_digits(value: float) -> list[tuple[int, int]]:
    """Minimal signed-digit expansion of a dyadic number: ``[(exponent, sign), ...]`` ascending."""
    m, e = dyadic(value)
    out = []
    while m != 0:
        if m & 1:
            d = 2 - (m & 3)  # +1 if m = 1 mod 4, -1 if m = 3 mod 4: leaves a multiple of 4
            out.append((e, d))
            m -= d
        m >>= 1
        e += 1
    return out


def csd_matrix(weights: np.ndarray) -> np.ndarray:
    """The ``(n_terms, 4)`` array ``(row, col, exponent, sign)`` of a weight matrix."""
    w = np.asarray(weights, dtype=np.float64)
    rows = []
    for j in range(w.shape[1]):
        for i in range(w.shape[0]):
            if w[i, j] != 0:
                rows.extend((i, j, e, s) for e, s in csd_digits(float(w[i, j])))
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def csd_value(terms: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Rebuild the weight matrix from its digits (exact for float64-representable weights)."""
    w = np.zeros(shape, dtype=np.float64)
    for i, j, e, s in terms.tolist():
        w[i, j] += s * 2.0**e
    return w


@register_pass('csd')
def csd_pass(graph: Graph, options: CompileOptions) -> Graph:
    for n in graph.nodes.values():
        if n.op is Op.CMVM:
            n.attrs['csd'] = csd_matrix(n.attrs['weights'])
    return graph

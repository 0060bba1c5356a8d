"""Where a float32 reference (Keras' hgq2 layers, qonnx execution) may round a sum or product.

The IR computes exactly; a float32 reference agrees with it only while every value it forms fits
the 24-bit significand. These checks flag the nodes where that cannot be guaranteed from the
value types, so a mismatch against the reference there is explained before anyone looks for it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from ..ir.graph import Graph, Node
from ..ir.ops import Op

__all__ = ['F32_EXACT_BITS', 'Float32ExactnessWarning', 'float32_risks', 'caller_stacklevel']

F32_EXACT_BITS = 24  # float32 significand


class Float32ExactnessWarning(UserWarning):
    """The float32 reference may round where the compiled (exact) model does not."""


def float32_risks(g: Graph, skip: set[Node] = frozenset()) -> list[Node]:  # type: ignore[assignment]
    """The first node of each name whose values (or, for a cmvm, partial sums in any order) may
    need more than ``F32_EXACT_BITS`` significant bits; ``skip``: nodes exact by construction."""
    seen: set[str] = set()
    out = []
    for n in g.nodes.values():
        if n.op not in (Op.CMVM, Op.ADD, Op.SUB, Op.MUL) or n.name in seen or n in skip:
            continue
        wide = n.type.max_width > F32_EXACT_BITS
        if n.op is Op.CMVM and not wide:
            wide = cmvm_partial_bits(n) > F32_EXACT_BITS
        if wide:
            seen.add(n.name)
            out.append(n)
    return out


def cmvm_partial_bits(n: Node) -> int:
    """Bits of the largest sum of |x_i w_ij| in units of the finest term (bounds every partial sum, any order)."""
    from ..ir.ops import weight_digits

    t = n.inputs[0].type
    W = np.asarray(n.attrs['weights'], dtype=np.float64)
    if not W.size:
        return 0
    m, fw = weight_digits(W)
    n_in = W.shape[0]
    fx = t.f.reshape(-1, n_in)
    mag = np.ldexp(np.maximum(np.abs(t.lo), np.abs(t.hi)).astype(np.float64).reshape(-1, n_in), -fx)
    F = int(fx.max()) + int(fw[m != 0].max()) if (m != 0).any() else 0
    worst = float((mag @ np.abs(W)).max()) if mag.size else 0.0
    return int(math.ceil(math.log2(worst))) + F + 1 if worst > 0 else 0


_PACKAGE = str(Path(__file__).resolve().parents[1])


def caller_stacklevel() -> int:
    """The ``warnings.warn`` stacklevel of the first frame outside hgqc (the user's call), as
    seen from the function calling this one."""
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level

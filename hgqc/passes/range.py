"""``range``: recompute every node's type with its op's typing rule (tightest exact intervals).

Nodes are visited in topological order so each rule sees its operands' new types; graph
input types are kept (they are the interface). Since every rule is exact, the new types hold
exactly the values the old ones did, only tighter (or, after a pass that loosened them, again
tight), so simulated values never change.
"""

from __future__ import annotations

from ..ir.graph import Graph
from ..ir.ops import OPS, Op
from ..options import CompileOptions
from .cse import scalar_shift_add_type
from .manager import register_pass


@register_pass('range')
def range_pass(graph: Graph, options: CompileOptions) -> Graph:
    for n in graph.nodes.values():
        if n.op is Op.SHIFT_ADD and n.shape == ():  # the bulk of a lowered graph: fast scalar rule
            a, b = n.inputs
            n.type = scalar_shift_add_type(a.type.elems[0], b.type.elems[0], int(n.attrs['shift']), bool(n.attrs['sub']))
        elif n.op is not Op.INPUT:
            n.type = OPS[n.op].infer(n.attrs, [i.type for i in n.inputs])
    return graph

"""``pipeline``: cut an adder-level graph into register stages of ``latency_cutoff`` adder levels.

Delay model (adder levels, ``node_delay``):

==========================================  =====
op                                          delay
==========================================  =====
shift_add, add, sub, neg, max, min          1
shift_add(a, 0) or shift_add(0, b, sub=0)   0 (a wire / a pure shift)
quantize that rounds (drops bits, not TRN)  1
quantize that saturates (SAT/SAT_SYM and    1
the input does not fit)
other quantize (truncate / wrap / no-op)    0
mul                                         2
table on an input of w bits (w > 0)         1 + ceil(max(0, w - 6) / 2)
relu, gather, const, input, reg             0
cmvm (tensor level)                         its program depth (or minimal depth)
==========================================  =====

A table is a ROM read: a w-input function fits one 6-input LUT level for w <= 6, and each two
further address bits add one 4:1 multiplexer level (one LUT6 each), comparable to an adder level.

Nodes are scheduled as soon as possible; an op that would straddle a stage boundary starts at
the boundary instead. Every edge from a producer in stage ``s`` to a consumer in stage ``t > s``
goes through ``t - s`` chained ``reg`` nodes (shared by all consumers of the producer); a
``reg`` with attr ``stage = k`` holds its value from stage ``k`` on (the register sits on the
boundary between stages ``k - 1`` and ``k``). Constants are never registered. Every output is
registered into the final stage so all outputs share one latency, recorded as
``graph.meta['latency']`` (the number of register stages; 0 for a combinational graph).
Registers are identities in value, so simulation results are unchanged.
"""

from __future__ import annotations

import numpy as np

from ..ir.fixed import Overflow, Round, bounds, requantize
from ..ir.graph import Graph, Node
from ..ir.ops import Op
from ..options import CompileOptions
from .manager import register_pass
from .prune import dead_code_elimination

UNIT_OPS = frozenset({Op.SHIFT_ADD, Op.ADD, Op.SUB, Op.NEG, Op.MAX, Op.MIN})
WIRING_OPS = frozenset({Op.INPUT, Op.CONST, Op.GATHER, Op.REG, Op.RELU})


def is_zero(n: Node) -> bool:
    """Whether a node is the constant 0 (zero-width on every element)."""
    return all(e.is_zero for e in n.type.elems)


def quantize_is_free(n: Node) -> bool:
    """A quantize that neither rounds with an adder nor saturates is wiring (drop bits / wrap)."""
    if n.attrs.get('div') is not None:
        return False  # tensor level only: lower turns it into a constant multiply + rounding
    t = n.inputs[0].type
    f = np.broadcast_to(np.asarray(n.attrs['f']), t.shape)
    rnd, ovf = Round(n.attrs['round']), Overflow(n.attrs['overflow'])
    if rnd is not Round.TRN and np.any(t.f > f):
        return False
    if ovf is Overflow.WRAP:
        return True
    lo = np.asarray(requantize(t.lo, t.f, f, rnd), dtype=object)  # 0-d results stay arrays
    hi = np.asarray(requantize(t.hi, t.f, f, rnd), dtype=object)
    k = np.broadcast_to(np.asarray(n.attrs['k']), t.shape)
    i = np.broadcast_to(np.asarray(n.attrs['i']), t.shape)
    qlo, qhi = bounds(k, i, f, ovf, lo)
    return bool(np.all((lo >= qlo) & (hi <= qhi)))


def node_delay(n: Node) -> int:
    """Adder levels of one node (see the module docstring)."""
    op = n.op
    if op in UNIT_OPS:
        if op is Op.SHIFT_ADD and (is_zero(n.inputs[1]) or (is_zero(n.inputs[0]) and not n.attrs['sub'])):
            return 0
        return 1
    if op is Op.QUANTIZE:
        return 0 if quantize_is_free(n) else 1
    if op is Op.MUL:
        return 2
    if op is Op.TABLE:
        return table_delay(n.inputs[0].type.max_width) if not all(e.is_const for e in n.type.elems) else 0
    if op is Op.CMVM:
        from .cse import minimal_depth, program_depth

        prog = n.attrs.get('program')
        return program_depth(prog) if prog else minimal_depth(n.attrs['weights'], n.attrs.get('bias'))
    return 0


def table_delay(address_bits: int) -> int:
    """Adder levels of a ROM read with ``address_bits`` input bits (see the module docstring)."""
    if address_bits <= 0:
        return 0
    return 1 + (max(0, address_bits - 6) + 1) // 2


def arrival_times(graph: Graph) -> dict[Node, int]:
    """Adder levels from the inputs to each node's result (combinational, no registers)."""
    t: dict[Node, int] = {}
    for n in graph.nodes.values():
        t[n] = max((t[i] for i in n.inputs), default=0) + node_delay(n)
    return t


def is_lowered(graph: Graph) -> bool:
    return all(n.shape == () or n.op in (Op.INPUT, Op.GATHER, Op.CONST) for n in graph.nodes.values())


class _Pipeliner:
    def __init__(self, graph: Graph, cutoff: int):
        self.src = graph
        self.c = cutoff
        self.g = Graph(graph.name)
        self.g.input_quant = dict(graph.input_quant)
        self.g.meta = dict(graph.meta)
        self.map: dict[Node, Node] = {}
        self.ready: dict[Node, int] = {}  # adder level at which a value is available
        self.stage: dict[Node, int | None] = {}  # stage producing it (None: constant, any stage)
        self.regs: dict[Node, list[Node]] = {}  # producer -> its register chain

    def at_stage(self, v: Node, s: int) -> Node:
        """``v`` as seen from stage ``s`` (through a shared chain of registers)."""
        sv = self.stage[v]
        if sv is None or sv >= s:
            return v
        chain = self.regs.setdefault(v, [])
        while len(chain) < s - sv:
            prev = chain[-1] if chain else v
            r = self.g.add(Op.REG, [prev], {'stage': sv + len(chain) + 1}, prev.type, f'{v.name}@{sv + len(chain) + 1}')
            self.stage[r] = sv + len(chain) + 1
            self.ready[r] = self.stage[r] * self.c
            chain.append(r)
        return chain[s - sv - 1]

    def schedule(self, n: Node, ins: list[Node]) -> tuple[int, int | None]:
        """(start level, stage) of ``n`` given its operands' schedules (ASAP, no straddling)."""
        live = [i for i in ins if self.stage[i] is not None]
        start = max((self.ready[i] for i in live), default=0)
        d = node_delay(n)
        if d == 0:
            if n.op is Op.CONST:
                return start, None
            return start, max((self.stage[i] for i in live), default=0)  # type: ignore[type-var]
        if start % self.c and start // self.c != (start + d - 1) // self.c:
            start = (start // self.c + 1) * self.c  # would straddle a boundary: wait for it
        return start, start // self.c

    def add(self, n: Node) -> None:
        if n.op is Op.REG:  # re-pipelining: old registers are dropped
            self.map[n] = self.map[n.inputs[0]]
            return
        if n.op is Op.INPUT:
            v = self.g.add_input(n.name, n.type)
            self.ready[v], self.stage[v] = 0, 0
            self.map[n] = v
            return
        ins = [self.map[i] for i in n.inputs]
        start, st = self.schedule(n, ins)
        if st is not None:
            ins = [self.at_stage(i, st) for i in ins]
        v = self.g.add(n.op, ins, n.attrs, n.type, n.name)
        self.ready[v], self.stage[v] = start + node_delay(n), st
        self.map[n] = v

    def run(self) -> Graph:
        for n in self.src.nodes.values():
            self.add(n)
        outs = [(name, self.map[v]) for name, v in self.src.outputs]
        stages = [s for _, v in outs for s in self._out_stages(v)]
        latency = max(stages) + 1 if stages else 0  # constant outputs need no register
        for name, v in outs:
            self.g.add_output(name, self.register_output(v, latency))
        self.g.meta['latency'] = latency
        self.g.meta['latency_cutoff'] = self.c
        dead_code_elimination(self.g)  # the original output gathers were replaced by registered ones
        return self.g

    def _out_stages(self, v: Node) -> list[int]:
        """Stages of the values an output packs (constants have none)."""
        srcs = v.inputs if v.op is Op.GATHER else (v,)
        return [s for s in (self.stage[i] for i in srcs) if s is not None]

    def register_output(self, v: Node, latency: int) -> Node:
        if v.op is not Op.GATHER:
            return self.at_stage(v, latency)
        ins = [self.at_stage(i, latency) for i in v.inputs]
        return self.g.add(Op.GATHER, ins, v.attrs, v.type, v.name)


@register_pass('pipeline')
def pipeline_pass(graph: Graph, options: CompileOptions) -> Graph:
    if options.latency_cutoff <= 0:
        graph.meta['latency'] = 0
        return graph
    if not is_lowered(graph):
        raise ValueError('pipeline needs an adder-level graph: run "lower" first')
    return _Pipeliner(graph, options.latency_cutoff).run()

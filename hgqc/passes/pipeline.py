"""``pipeline``: cut an adder-level graph into register stages of ``latency_cutoff`` adder levels.

Delay model (adder levels, ``node_delay``):

==========================================  =====
op                                          delay
==========================================  =====
shift_add, add, sub, neg                    1
max, min                                    2 (compare on a carry chain, then a select)
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
A max/min is a comparison (a carry chain, like an adder) and then a select: counted as one level,
two chained max levels and a rounding shared a stage at a cutoff of 2 and made the digits CNN's
slowest stage path (6.45 ns in ``benchmarks/timing_model``); as two, it is 3.35 ns. The scheduler
caps every delay at the cutoff (an op is never cut, so a slower one just fills a stage).

Each node's stage comes from ``hgqc.passes.stages`` (``options.extra['pipeline.schedule']``):
``'min_registers'`` (default) keeps the as-soon-as-possible latency and places the registers
where they hold the fewest bits; ``'asap'`` puts every node as early as possible (an op that
would straddle a stage boundary starts at the boundary). Every edge from a producer in stage
``s`` to a consumer in stage ``t > s``
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
from .stages import Schedule, asap_stages, latency_of, min_register_stages

SCHEDULES = ('min_registers', 'asap')

UNIT_OPS = frozenset({Op.SHIFT_ADD, Op.ADD, Op.SUB, Op.NEG})
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
    if op in (Op.MAX, Op.MIN):
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
    """Builds the registered graph of a schedule (``hgqc.passes.stages``)."""

    def __init__(self, graph: Graph, cutoff: int, stage: Schedule):
        self.src = graph
        self.c = cutoff
        self.src_stage = stage
        self.g = Graph(graph.name)
        self.g.input_quant = dict(graph.input_quant)
        self.g.meta = dict(graph.meta)
        self.map: dict[Node, Node] = {}
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
            chain.append(r)
        return chain[s - sv - 1]

    def add(self, n: Node) -> None:
        if n.op is Op.INPUT:
            v = self.g.add_input(n.name, n.type)
            self.stage[v] = 0
            self.map[n] = v
            return
        st = self.src_stage[n]
        ins = [self.map[i] for i in n.inputs]
        if st is not None:
            ins = [self.at_stage(i, st) for i in ins]
        v = self.g.add(n.op, ins, n.attrs, n.type, n.name)
        self.stage[v] = st
        self.map[n] = v

    def run(self) -> Graph:
        for n in self.src.nodes.values():
            self.add(n)
        latency = latency_of(self.src, self.src_stage)
        for name, v in self.src.outputs:
            self.g.add_output(name, self.register_output(v, latency))
        self.g.meta['latency'] = latency
        self.g.meta['latency_cutoff'] = self.c
        dead_code_elimination(self.g)  # the original output gathers were replaced by registered ones
        return self.g

    def register_output(self, v: Node, latency: int) -> Node:
        """Output ``v`` (a source node) registered into the final stage, element by element (each
        element continues its producer's shared chain)."""
        if v.op is not Op.GATHER or v.shape == ():
            return self.at_stage(self.map[v], latency)
        ins = [self.at_stage(self.map[i], latency) for i in v.inputs]
        return self.g.add(Op.GATHER, ins, v.attrs, v.type, v.name)


def schedule(graph: Graph, cutoff: int, method: str = 'min_registers') -> Schedule:
    """The stage of every node of a register-free graph (``hgqc.passes.stages``): ``'asap'``, or
    ``'min_registers'`` (the ASAP latency with the fewest register bits; ASAP where that LP does
    not apply)."""
    if method not in SCHEDULES:
        raise ValueError(f'pipeline.schedule must be one of {", ".join(SCHEDULES)}, got {method!r}')
    # an op is never cut, so one slower than a stage fills a stage: waiting longer adds a stage, not speed
    delays = {n: min(node_delay(n), cutoff) for n in graph}
    asap = asap_stages(graph, cutoff, delays)
    if method == 'asap':
        return asap
    best = min_register_stages(graph, cutoff, asap, latency_of(graph, asap), delays)
    return asap if best is None else best


@register_pass('pipeline')
def pipeline_pass(graph: Graph, options: CompileOptions) -> Graph:
    if options.latency_cutoff <= 0:
        graph.meta['latency'] = 0
        return graph
    if not is_lowered(graph):
        raise ValueError('pipeline needs an adder-level graph: run "lower" first')
    if graph.count(Op.REG):  # re-pipelining: the old registers go first
        graph = graph.rewritten(lambda g, n, remap: remap[n.inputs[0]] if n.op is Op.REG else None)
    method = options.extra.get('pipeline.schedule', 'min_registers')
    return _Pipeliner(graph, options.latency_cutoff, schedule(graph, options.latency_cutoff, method)).run()

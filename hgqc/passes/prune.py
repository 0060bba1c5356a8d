"""``prune``: zero-bit pruning, constant folding and local simplification, then dead-code elimination.

The graph is rebuilt in topological order (a replacement node must precede its users, and
``Graph.add`` appends), applying per node, first match wins:

1. a node whose type is constant on every element (``lo == hi``, including zero width)
   becomes a ``const`` (value = that constant, float64) keeping the node's stored type;
2. a node whose operands are all ``const`` is folded by evaluating it with the interpreter's
   ``eval_node`` (so the op semantics come from ``hgqc.ir.ops.OPS`` only);
3. a ``quantize`` that provably changes nothing (no element's input has more fraction bits than
   the target, and every input interval fits the target's bounds) is replaced by its input;
4. a ``relu`` of a non-negative value is replaced by its input;
5. a ``cmvm`` loses the input rows whose weights are all zero or whose input is 0 at every
   position (a ``gather`` selects the remaining inputs; the ``csd`` / ``program`` attrs are
   dropped since their row numbering is stale: run ``csd``/``cse`` after ``prune``); with no
   rows left it is the constant bias;
6. ``x + 0``, ``x - 0``, ``0 + x``, ``x ± (0 << s)`` and ``0 + (x << 0)`` become ``x``;
7. a ``max`` / ``min`` whose operands' ranges are ordered on every element (``max(x, 0)`` of an
   ``x >= 0``, as a pooling window with a pruned 0-bit element gives) becomes the larger /
   smaller operand (otherwise the HDL compares against a constant: dead logic, and a
   ``verilator -Wall`` UNSIGNED warning);
8. a ``table`` keeps only the entries its input's type can reach (and a coarser input step
   thins the table to that step).

Gathers that are graph outputs are never turned into constants (after ``lower`` every output
stays one gather node). Nodes that no output needs are removed; inputs always stay. Every
rewrite keeps every value (output types may become tighter, never different in value).
"""

from __future__ import annotations

import numpy as np

from ..ir.fixed import Overflow, Round, bounds
from ..ir.graph import Graph, Node
from ..ir.ops import Op, fold_inputs_ok, shrink_table
from ..ir.types import TensorType
from ..options import CompileOptions
from .manager import register_pass

_EXACT = 1 << 53  # integers float64 holds exactly


def dead_code_elimination(graph: Graph) -> Graph:
    """Erase every node no output depends on (inputs stay: they are the interface)."""
    keep = set(graph.output_nodes())
    for n in reversed(list(graph.nodes.values())):
        if not n.users and n not in keep and n.op is not Op.INPUT:
            graph.erase(n)
    return graph


def _zero(n: Node) -> bool:
    return all(e.is_zero for e in n.type.elems)


def _const_value(t: TensorType) -> np.ndarray | None:
    """The float64 value of a constant type, or None if not exactly representable."""
    if any(abs(e.lo) >= _EXACT for e in t.elems):
        return None
    return np.ldexp(np.array([e.lo for e in t.elems], dtype=np.float64), -t.f.ravel()).reshape(t.shape)


def _const_ints(n: Node) -> np.ndarray:
    """A const node's integers at its stored type's step, with a batch axis of 1."""
    v = np.ldexp(np.asarray(n.attrs['value'], dtype=np.float64), n.type.f)
    return v.astype(np.int64)[None]


class _Pruner:
    def __init__(self, graph: Graph):
        self.src = graph
        self.g = Graph(graph.name)
        self.g.input_quant = dict(graph.input_quant)
        self.g.meta = dict(graph.meta)
        self.outputs = set(graph.output_nodes())

    def const(self, n: Node, value: np.ndarray) -> Node:
        return self.g.add(Op.CONST, (), {'value': np.asarray(value, dtype=np.float64)}, n.type, n.name)

    def rebuild(self, n: Node, ins: list[Node]) -> Node:
        if n.op is Op.INPUT:
            return self.g.add_input(n.name, n.type)
        if n.op is Op.CONST:
            return self.g.add(n.op, (), n.attrs, n.type, n.name)
        keep_gather = n.op is Op.GATHER and n in self.outputs
        if n.op is not Op.REG and not keep_gather:
            folded = self.constant(n, ins)
            if folded is not None:
                return folded
        simpler = self.simplify(n, ins)
        if simpler is not None:
            return simpler
        return self.g.add(n.op, ins, n.attrs, n.type, n.name)

    def constant(self, n: Node, ins: list[Node]) -> Node | None:
        if all(e.is_const for e in n.type.elems):
            value = _const_value(n.type)
            if value is not None:
                return self.const(n, value)
        if ins and fold_inputs_ok(n.op) and all(i.op is Op.CONST for i in ins):
            from ..runtime.interpreter import Interpreter

            tmp = Node(-1, n.op, tuple(ins), n.attrs, n.type, n.name)
            y = Interpreter.eval_node(tmp, [_const_ints(i) for i in ins], 1)[0]
            if np.all(np.abs(y) < _EXACT):
                return self.const(n, np.ldexp(y.astype(np.float64), -n.type.f))
        return None

    def simplify(self, n: Node, ins: list[Node]) -> Node | None:
        op = n.op
        if op is Op.QUANTIZE and _quantize_is_identity(n.attrs, ins[0].type):
            return ins[0]
        if op is Op.RELU and all(e.lo >= 0 for e in ins[0].type.elems):
            return ins[0]
        if op is Op.CMVM:
            return self.cmvm(n, ins[0])
        if op is Op.TABLE:
            attrs = shrink_table(n.attrs, ins[0].type)
            return None if attrs is None else self.g.add(Op.TABLE, ins, attrs, n.type, n.name)
        if op in (Op.MAX, Op.MIN):
            for a, b in (ins, ins[::-1]):
                if _at_least(a.type, b.type):  # every value of a >= every value of b
                    return a if op is Op.MAX else b
        if op in (Op.ADD, Op.SUB) and _zero(ins[1]):
            return ins[0]
        if op is Op.ADD and _zero(ins[0]):
            return ins[1]
        if op is Op.SHIFT_ADD:
            if _zero(ins[1]):
                return ins[0]
            if _zero(ins[0]) and not n.attrs['sub'] and int(n.attrs['shift']) == 0:
                return ins[1]
        return None

    def cmvm(self, n: Node, x: Node) -> Node | None:
        w = np.asarray(n.attrs['weights'], dtype=np.float64)
        n_in = w.shape[0]
        xz = np.array([e.is_zero for e in x.type.elems], dtype=bool).reshape(-1, n_in).all(axis=0)
        keep = np.flatnonzero(~(xz | (w == 0).all(axis=1)))
        if len(keep) == n_in:
            return None
        bias = n.attrs.get('bias')
        if len(keep) == 0:
            b = np.zeros(w.shape[1]) if bias is None else np.asarray(bias, dtype=np.float64)
            return self.const(n, np.broadcast_to(b, n.shape).copy())
        lead = x.shape[:-1]
        index = (np.arange(int(np.prod(lead, dtype=np.int64))) * n_in)[:, None] + keep[None, :]
        xs = self.g.add(Op.GATHER, [x], {'index': index.reshape(lead + (len(keep),))}, name=f'{n.name}/rows')
        attrs = {k: v for k, v in n.attrs.items() if k not in ('csd', 'program')}
        attrs['weights'] = w[keep]
        return self.g.add(Op.CMVM, [xs], attrs, n.type, n.name)

    def run(self) -> Graph:
        m: dict[Node, Node] = {}
        for n in self.src.nodes.values():
            m[n] = self.rebuild(n, [m[i] for i in n.inputs])
        self.g.inputs = [m[i] for i in self.src.inputs]
        for name, v in self.src.outputs:
            self.g.add_output(name, m[v])
        return dead_code_elimination(self.g)


def _at_least(a: TensorType, b: TensorType) -> bool:
    """Whether each element's smallest value in ``a`` is >= its largest in ``b`` (same shapes)."""
    if a.shape != b.shape:
        return False
    for x, y in zip(a.elems, b.elems):
        f = max(x.f, y.f)
        if x.lo << (f - x.f) < y.hi << (f - y.f):
            return False
    return True


def _quantize_is_identity(attrs: dict, t: TensorType) -> bool:
    """No rounding (input frac <= target frac everywhere) and the input fits the target bounds."""
    if attrs.get('div') is not None and np.any(np.asarray(attrs['div']) != 1):
        return False  # a division is never the identity
    f = np.broadcast_to(np.asarray(attrs['f']), t.shape)
    if np.any(t.f > f):
        return False
    k = np.broadcast_to(np.asarray(attrs['k']), t.shape)
    i = np.broadcast_to(np.asarray(attrs['i']), t.shape)
    up = (f - t.f).astype(object)
    lo, hi = np.asarray(t.lo << up, dtype=object), np.asarray(t.hi << up, dtype=object)  # 0-d stays an array
    qlo, qhi = bounds(k, i, f, Overflow(attrs['overflow']), lo)
    Round(attrs['round'])  # validates the attr; no rounding happens when no bits are dropped
    return bool(np.all((lo >= qlo) & (hi <= qhi)))


@register_pass('prune')
def prune_pass(graph: Graph, options: CompileOptions) -> Graph:
    return _Pruner(graph).run()

"""``lower``: tensor level -> adder level (design.md, "One op set, two levels").

Conventions of the lowered graph:

* every graph input stays one tensor ``input`` node; a scalar is taken from it by a
  ``gather`` of shape ``()`` (``index`` = the flat element), created only for elements used;
* every other non-wiring node is a scalar (shape ``()``): elementwise tensor ops become one
  scalar op per element (``quantize`` gets 0-d ``k``/``i``/``f`` arrays), a ``cmvm`` becomes
  ``shift_add`` nodes following its ``program`` attr (see ``hgqc.passes.cse``; without one, a
  plain CSD expansion summed by balanced adder trees), with its bias a scalar ``const`` added
  once inside the tree;
* a ``table`` becomes one scalar ``table`` per element carrying only that element's table;
* a tensor-level ``gather`` only renames scalars (no nodes); constants are scalar ``const``
  nodes (one per distinct value); zero elements are dropped where possible (``x + 0 -> x``);
* a shift or negation that cannot be merged into an adder is ``shift_add(const 0, x, shift,
  sub)``: with ``sub == False`` it is pure wiring (``hgqc.passes.pipeline.node_delay`` is 0);
* every graph output is ONE ``gather`` over the scalars of its elements (``-1`` = constant 0),
  with the output's shape;
* node names keep provenance: ``layer[i,j]`` for element ``(i, j)`` of a layer's result,
  ``layer/p/k`` for op ``k`` of a cmvm program at position ``p``.

``adder_depth`` and ``count_adders`` measure a graph at either level.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import HgqcError
from ..ir.fixed import Overflow, Round
from ..ir.graph import Graph, Node
from ..ir.ops import Op, make_table, table_entry, table_keys
from ..ir.types import ZERO, TensorType
from ..options import CompileOptions
from .average import AverageError, Correction, average_correction
from .cse import cmvm_program, program_matches, scalar_shift_add_type, solve
from .manager import register_pass
from .pipeline import arrival_times, node_delay

# A scalar reference: a scalar node of the new graph, a not yet materialised input element
# ('in', input node, flat index) or constant ('c', value), or None for the constant 0.
Lazy = tuple[Any, ...]
Ref = Node | Lazy | None
Scaled = tuple[Ref, int, int]  # sign * ref * 2^shift (ref is never None)

ELEMENTWISE = frozenset({Op.QUANTIZE, Op.RELU, Op.NEG, Op.ADD, Op.SUB, Op.MUL, Op.MAX, Op.MIN, Op.SHIFT_ADD, Op.REG, Op.TABLE})


def _elem_name(name: str, shape: tuple[int, ...], k: int) -> str:
    idx = np.unravel_index(k, shape) if shape else ()
    return f'{name}[{",".join(str(int(i)) for i in idx)}]'


def _cover(tab: dict[str, Any], q: Any) -> dict[str, Any]:
    """``tab`` extended (edge values repeated) to every key of the scalar input type ``q``.

    A lowered element's interval can be looser than its tensor-level one (interval arithmetic
    through a shift-add tree loses correlations), while the table covers only the tensor-level
    values; the extra keys are unreachable, so any value fills them.
    """
    fi, lo, vals = int(tab['f_in']), int(tab['lo']), np.asarray(tab['values'])
    if q.f > fi or q.is_zero:
        return tab
    k0, k1 = q.lo << (fi - q.f), q.hi << (fi - q.f)
    hi = lo + len(vals) - 1
    if k0 >= lo and k1 <= hi:
        return tab
    pre, post = max(0, lo - k0), max(0, k1 - hi)
    values = np.concatenate([np.repeat(vals[:1], pre), vals, np.repeat(vals[-1:], post)])
    return make_table(lo - pre, fi, int(tab['f']), values)


class LoweringError(HgqcError, ValueError):
    """A node hgqc cannot build exactly (a refusal naming it and what to change, not a bug)."""


class _Lowerer:
    def __init__(self, graph: Graph, options: CompileOptions):
        self.src = graph
        self.options = options
        self.g = Graph(graph.name)
        self.g.input_quant = dict(graph.input_quant)
        self.g.meta = dict(graph.meta)
        self.refs: dict[Node, list[Ref]] = {}
        self.lazy: dict[Lazy, Node] = {}
        self.zero_node: Node | None = None
        self.inputs: dict[Node, Node] = {}  # old input -> new input

    # ------------------------------------------------------------------ scalar references
    def node(self, r: Ref) -> Node:
        """Materialise a reference as a scalar node (input gathers and consts are shared)."""
        if isinstance(r, Node):
            return r
        if r is None:
            return self.zero()
        n = self.lazy.get(r)
        if n is None:
            if r[0] == 'in':
                src, k = r[1], r[2]
                t = TensorType((), (src.type.elems[k],))
                n = self.g.add(Op.GATHER, [src], {'index': np.array(k, dtype=np.int64)}, t, _elem_name(src.name, src.shape, k))
            else:
                n = self.g.add(Op.CONST, (), {'value': np.array(r[1], dtype=np.float64)}, name=f'const:{r[1]!r}')
            self.lazy[r] = n
        return n

    def zero(self) -> Node:
        if self.zero_node is None:
            self.zero_node = self.g.add(Op.CONST, (), {'value': np.array(0.0)}, TensorType((), (ZERO,)), 'const:0')
        return self.zero_node

    def scalar(self, op: Op, ins: list[Ref], attrs: dict[str, Any], name: str) -> Node:
        return self.g.add(op, [self.node(r) for r in ins], attrs, name=name)

    def shift_add(self, a: Node, b: Node, shift: int, sub: bool, name: str) -> Node:
        t = scalar_shift_add_type(a.type.elems[0], b.type.elems[0], shift, sub)
        return self.g.add(Op.SHIFT_ADD, [a, b], {'shift': int(shift), 'sub': bool(sub)}, t, name)

    def combine(self, t1: Scaled | None, t2: Scaled | None, shift: int, sub: bool, name: str) -> Scaled | None:
        """``t1 ± t2 * 2^shift`` with one adder (none if either is 0), as a scaled reference."""
        if t2 is None:
            return t1
        t2 = (t2[0], t2[1] + shift, -t2[2] if sub else t2[2])
        if t1 is None:
            return t2
        (r1, e1, g1), (r2, e2, g2) = t1, t2
        if g1 == g2:
            if e2 < e1:
                (r1, e1), (r2, e2) = (r2, e2), (r1, e1)
            return self.shift_add(self.node(r1), self.node(r2), e2 - e1, False, name), e1, g1
        if g1 < 0:
            (r1, e1), (r2, e2) = (r2, e2), (r1, e1)
        return self.shift_add(self.node(r1), self.node(r2), e2 - e1, True, name), e1, 1

    def settle(self, t: Scaled | None, name: str) -> Ref:
        """A scaled reference as a plain one (a wiring shift or a negation when needed)."""
        if t is None:
            return None
        r, e, g = t
        if e == 0 and g > 0:
            return r
        return self.shift_add(self.zero(), self.node(r), e, g < 0, name)

    # ------------------------------------------------------------------ ops
    def lower_node(self, n: Node) -> list[Ref]:
        op = n.op
        if op is Op.INPUT:
            v = self.inputs[n] = self.g.add_input(n.name, n.type)
            return [('in', v, k) for k in range(n.type.size)]
        if op is Op.CONST:
            vals = np.asarray(n.attrs['value'], dtype=np.float64).ravel()
            return [('c', float(v)) if v != 0 else None for v in vals]
        ins = [self.refs[i] for i in n.inputs]
        if op is Op.GATHER:
            flat = [r for refs in ins for r in refs]
            return [flat[k] if k >= 0 else None for k in np.asarray(n.attrs['index']).ravel().tolist()]
        if op is Op.CMVM:
            return self.cmvm(n, ins[0])
        if op in ELEMENTWISE:
            return [self.elementwise(n, k, [r[k] for r in ins]) for k in range(n.type.size)]
        raise NotImplementedError(f'lower: no lowering for {op.value}')

    def elementwise(self, n: Node, k: int, xs: list[Ref]) -> Ref:
        op, name = n.op, _elem_name(n.name, n.shape, k)
        if op in (Op.QUANTIZE, Op.RELU, Op.NEG, Op.REG) and xs[0] is None:
            return None  # each maps 0 to 0
        if op is Op.MUL and (xs[0] is None or xs[1] is None):
            return None
        if op in (Op.ADD, Op.SUB, Op.SHIFT_ADD) and xs[1] is None:
            return xs[0]
        if op is Op.ADD and xs[0] is None:
            return xs[1]
        attrs = dict(n.attrs)
        if op is Op.TABLE:
            tab = table_entry(n.attrs, k)
            if xs[0] is None:  # a table of the constant 0 is a constant
                v = int(np.asarray(tab['values'])[table_keys(tab, ZERO)[0] - int(tab['lo'])])
                return ('c', math.ldexp(v, -int(tab['f']))) if v else None
            q = self.node(xs[0]).type.elems[0]
            if q.f > int(tab['f_in']) and not q.is_const:
                # the tensor-level type puts every value on the table's grid: the finer bits of
                # this lowered element (its looser interval arithmetic) are zero
                xs = [self.drop_lsbs(self.node(xs[0]), int(tab['f_in']), f'{name}/key')]
            tab = _cover(tab, self.node(xs[0]).type.elems[0])
            attrs = {'tables': [tab], 'select': np.array(0, dtype=np.int64)}
        if op is Op.QUANTIZE:
            for key in ('k', 'i', 'f'):
                attrs[key] = np.array(np.broadcast_to(np.asarray(n.attrs[key]), n.shape).flat[k], dtype=np.int64)
            div = attrs.pop('div', None)
            d = 1 if div is None else int(np.broadcast_to(np.asarray(div), n.shape).flat[k])
            if d != 1:
                return self.divide(n, k, xs[0], attrs, d, name)
        if op is Op.SHIFT_ADD:
            a = (xs[0], 0, 1) if xs[0] is not None else None
            return self.settle(self.combine(a, (xs[1], 0, 1), int(attrs['shift']), bool(attrs['sub']), name), name)
        return self.scalar(op, xs, attrs, name)

    def divide(self, n: Node, k: int, x: Ref, attrs: dict[str, Any], d: int, name: str) -> Ref:
        """quantize(x / d) as Keras computes the average (``float32_average_round``): the exactly
        rounded quotient of ``x + c(x)`` (``hgqc.passes.average``; ``c`` is mostly absent) as a
        constant multiply-add ``z`` whose truncation at 2^-f is the quotient
        (``division_by_multiply``), then a TRN quantize with the node's overflow."""
        t = n.inputs[0].type.elems[k]  # holds every value of the element, so the magic is exact on it
        f, rnd = int(attrs['f']), Round(attrs['round'])
        try:
            fix = average_correction(t.lo, t.hi, t.f, d, f, rnd)
        except AverageError as e:
            raise LoweringError(
                f'"{n.name}": Keras computes this average over {d} elements as float32 sum * float32(1/{d}), '
                f"which can round differently from the exact average at its quantizer's rounding boundaries, "
                f'and hgqc cannot reproduce it here: {e}. Narrow the quantizer of the averaged values '
                '(fewer integer or fractional bits make fewer sums to reproduce)'
            ) from e
        if fix.needed:
            x = self.correct(x, t, fix, f'{name}/fix')
            t = self.node(x).type.elems[0]
        w, b = division_by_multiply(t.lo, t.hi, t.f, f, d, rnd)
        prog = solve(np.array([[w]]), None if b == 0 else [b], [t], self.options.max_adder_depth, True)
        (z,) = self.run_program(prog, [x], f'{name}/div', n, k)
        attrs['round'] = Round.TRN.value
        return self.scalar(Op.QUANTIZE, [z], attrs, name)

    def correct(self, x: Ref, t: Any, fix: Correction, name: str) -> Node:
        """``x + c(x) * 2^-m`` at step 2^-(f + m): c is a table of x's top bits (dropping the low ones is wiring)."""
        top = self.node(x)
        fk = int(t.f) - fix.shift
        if top.type.elems[0].f > fk:
            top = self.drop_lsbs(top, fk, f'{name}/key')
        tab = _cover(make_table(fix.key_lo, fk, int(t.f) + fix.m, fix.values), top.type.elems[0])
        c = self.scalar(Op.TABLE, [top], {'tables': [tab], 'select': np.array(0, dtype=np.int64)}, f'{name}/c')
        return self.shift_add(self.node(x), c, 0, False, name)

    def drop_lsbs(self, x: Node, f: int, name: str) -> Node:
        """Scalar ``x`` truncated to step 2^-f (``x.f > f``): wiring, wide enough never to wrap."""
        q = x.type.elems[0]
        lo, hi = q.lo >> (q.f - f), q.hi >> (q.f - f)
        bits = max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0, 1)
        attrs = {'k': np.array(int(lo < 0)), 'i': np.array(bits - f), 'f': np.array(f)}
        return self.scalar(Op.QUANTIZE, [x], {**attrs, 'round': Round.TRN.value, 'overflow': Overflow.WRAP.value}, name)

    def cmvm(self, n: Node, xs: list[Ref]) -> list[Ref]:
        w, bias = n.attrs['weights'], n.attrs.get('bias')
        prog = n.attrs.get('program')
        if prog is None:
            prog = cmvm_program(n, self.options.max_adder_depth, share=False)
        else:
            if 'variants' not in prog:  # a single variant for every position
                prog = {'variants': [prog], 'select': [0] * (n.type.size // max(1, n.shape[-1]))}
            if not program_matches(w, prog, bias):  # never lower a program that computes another matrix
                raise ValueError(
                    f'cmvm "{n.name}": its "program" attr does not compute its weights and bias; a pass that'
                    ' changes them must drop the attr (the cse pass then solves again); if no such pass ran, this is'
                    ' an hgqc bug: please report it with the model'
                )
        n_in, n_out = np.shape(w)
        n_pos = len(xs) // n_in if n_in else int(np.prod(n.shape[:-1], dtype=np.int64))
        out: list[Ref] = []
        for p in range(n_pos):
            v = prog['variants'][prog['select'][p]]
            tag = f'{n.name}/{p}' if n_pos > 1 else n.name
            out += self.run_program(v, xs[p * n_in : (p + 1) * n_in], tag, n, p * n_out)
        return out

    def run_program(self, prog: dict[str, Any], xs: list[Ref], tag: str, n: Node, base: int) -> list[Ref]:
        vals: list[Scaled | None] = [(x, 0, 1) if x is not None else None for x in xs]
        vals += [(('c', float(c)), 0, 1) for c in prog['consts']]
        for k, (a, b, s, sub) in enumerate(prog['ops']):
            vals.append(self.combine(vals[a] if a >= 0 else None, vals[b], s, bool(sub), f'{tag}/{k}'))
        out: list[Ref] = []
        for j, (idx, s, neg) in enumerate(prog['outputs']):
            t = vals[idx] if idx >= 0 else None
            if t is not None:
                t = (t[0], t[1] + s, -t[2] if neg else t[2])
            out.append(self.settle(t, _elem_name(n.name, n.shape, base + j)))
        return out

    # ------------------------------------------------------------------ graph
    def output(self, name: str, v: Node) -> Node:
        refs = self.refs[v]
        nodes: dict[Node, int] = {}
        index = []
        for r in refs:
            if r is None:
                index.append(-1)
            else:
                index.append(nodes.setdefault(self.node(r), len(nodes)))
        operands = list(nodes) or [self.zero()]
        attrs = {'index': np.array(index, dtype=np.int64).reshape(v.shape)}
        return self.g.add(Op.GATHER, operands, attrs, name=name)

    def run(self) -> Graph:
        for n in self.src.nodes.values():
            try:
                self.refs[n] = self.lower_node(n)
            except ValueError as e:  # name the node (its layer) unless the message does
                if f'"{n.name}"' in str(e):
                    raise
                raise (LoweringError if isinstance(e, HgqcError) else ValueError)(f'{n.op.value} "{n.name}": {e}') from e
        self.g.inputs = [self.inputs[i] for i in self.src.inputs]
        for name, v in self.src.outputs:
            self.g.add_output(name, self.output(name, v))
        return self.g


def division_by_multiply(lo: int, hi: int, fx: int, f: int, d: int, mode: Round) -> tuple[float, float]:
    """``(w, b)`` with ``floor((x * w + b) * 2^f) == round_mode(x / d)`` at step 2^-f for every
    ``x = X * 2^-fx``, ``lo <= X <= hi`` (division by a constant as a multiply, Granlund-Montgomery).

    With ``N = X * 2^max(f - fx, 0)`` and ``D = d * 2^max(fx - f, 0)`` the quotient in units of 2^-f
    is ``N / D``; each supported mode is ``floor(P / Q)`` for an affine ``P = alpha * N + beta``
    (RND: ``(2N + D) / 2D``). ``P`` is offset by a multiple of ``Q`` to be >= 0, and
    ``M = ceil(2^s / Q)`` with the smallest ``s`` such that ``span(P) * (M * Q - 2^s) < 2^s``
    makes ``floor(P * M / 2^s) == floor(P / Q)`` on the whole range.
    """
    big_d = d << max(fx - f, 0)
    forms = {  # mode: (alpha, beta, Q)
        Round.TRN: (1, 0, big_d),
        Round.CEIL: (1, big_d - 1, big_d),
        Round.RND: (2, big_d, 2 * big_d),
        Round.RND_MIN_INF: (2, big_d - 1, 2 * big_d),
    }
    if mode not in forms:
        raise ValueError(f'a division can only be rounded with {", ".join(m.value for m in forms)}, not {mode.value}')
    alpha, beta, q = forms[mode]
    alpha <<= max(f - fx, 0)
    p_lo, p_hi = alpha * lo + beta, alpha * hi + beta
    base = q * (p_lo // q)
    span = p_hi - base
    s = 0
    while span * (-(-(1 << s) // q) * q - (1 << s)) >= (1 << s):
        s += 1
    m = -(-(1 << s) // q)
    cx = alpha * m
    c = (beta - base) * m + ((base // q) << s)
    if abs(cx) >= 2**53 or abs(c) >= 2**53:
        raise LoweringError(
            f'an average over {d} elements of values in [{lo}, {hi}] * 2^-{fx} needs constants wider than float64; '
            'narrow the quantizer of the averaged values'
        )
    return math.ldexp(float(cx), fx - s - f), math.ldexp(float(c), -s - f)


@register_pass('lower')
def lower_pass(graph: Graph, options: CompileOptions) -> Graph:
    return _Lowerer(graph, options).run()


# --------------------------------------------------------------------------- metrics

ADDER_OPS = frozenset({Op.SHIFT_ADD, Op.ADD, Op.SUB, Op.NEG})


def adder_depth(graph: Graph) -> int:
    """Longest input-to-output path in adder levels (``hgqc.passes.pipeline.node_delay``)."""
    t = arrival_times(graph)
    return max((t[v] for v in graph.output_nodes()), default=0)


def count_adders(graph: Graph) -> int:
    """Adders/subtractors (add, sub, neg, shift_add; per element) excluding pure-wiring shifts."""
    return sum(n.type.size for n in graph.nodes.values() if n.op in ADDER_OPS and node_delay(n) > 0)

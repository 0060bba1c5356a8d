"""Hand-built and random graphs for the pass tests (seeded numpy; no global state)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import strategies as st

from hgqc.ir import Graph, Node, Op, Overflow, Round, TensorType
from hgqc.ir.types import QInterval
from hgqc.options import CompileOptions
from hgqc.passes import PassManager

from ..ir.strategies import random_type

MAX_WIDTH = 40  # random graphs stay within int64 (the interpreter's fast path) ...
WIDE_MAX_WIDTH = 160  # ... or, asked for wide values, within this


def quantize(g: Graph, x: Node, k, i, f, rnd: str = 'RND', ovf: str = 'WRAP', name: str = 'q') -> Node:
    s = x.shape
    attrs = {
        'k': np.broadcast_to(np.asarray(k, dtype=np.int64), s).copy(),
        'i': np.broadcast_to(np.asarray(i, dtype=np.int64), s).copy(),
        'f': np.broadcast_to(np.asarray(f, dtype=np.int64), s).copy(),
        'round': rnd,
        'overflow': ovf,
    }
    return g.add(Op.QUANTIZE, [x], attrs, name=name)


def dyadic_matrix(rng: np.random.Generator, shape: tuple[int, int], bits: int = 6, zeros: float = 0.3, exp: int = -2):
    """Random dyadic weights: ``bits``-bit signed mantissas at per-element exponents near ``exp``."""
    m = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), shape)
    e = exp + rng.integers(-2, 3, shape)
    w = np.ldexp(m.astype(np.float64), e)
    w[rng.random(shape) < zeros] = 0.0
    return w


def mlp(seed: int = 0, n_in: int = 8, hidden: int = 6, n_out: int = 4, zeros: float = 0.3) -> Graph:
    """input -> quantize -> cmvm(+bias) -> relu -> quantize -> cmvm, with HGQ-like per-element widths."""
    rng = np.random.default_rng(seed)
    g = Graph('mlp')
    x = g.add_input('x', TensorType.from_kif((n_in,), 1, 4, 4))
    h = quantize(g, x, 1, rng.integers(0, 3, n_in), rng.integers(0, 4, n_in), 'TRN', 'SAT', 'q_in')
    w1 = dyadic_matrix(rng, (n_in, hidden), zeros=zeros)
    b1 = np.ldexp(rng.integers(-8, 8, hidden).astype(np.float64), -3)
    h = g.add(Op.CMVM, [h], {'weights': w1, 'bias': b1}, name='dense1')
    h = g.add(Op.RELU, [h], name='relu1')
    h = quantize(g, h, 0, rng.integers(1, 4, hidden), rng.integers(0, 3, hidden), 'RND', 'SAT', 'q1')
    w2 = dyadic_matrix(rng, (hidden, n_out), zeros=zeros)
    g.add_output('y', g.add(Op.CMVM, [h], {'weights': w2, 'bias': None}, name='dense2'))
    return g


def run_checked(graph: Graph, pipeline: Sequence[str], samples: int = 24, **options) -> Graph:
    """Run passes in check mode (verify + bit-exact re-simulation after every pass)."""
    opts = CompileOptions(check=True, check_samples=samples, **options)
    return PassManager(pipeline, opts).run(graph)


# --------------------------------------------------------------------------- hypothesis


@st.composite
def weight_matrices(draw, max_in: int = 7, max_out: int = 7):
    """(weights, bias or None): dyadic, 0-80% zeros, either sign, 1-8 bit mantissas."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = (draw(st.integers(1, max_in)), draw(st.integers(1, max_out)))
    w = dyadic_matrix(rng, shape, bits=draw(st.integers(1, 8)), zeros=draw(st.floats(0.0, 0.8)), exp=draw(st.integers(-4, 2)))
    if draw(st.booleans()):
        return w, None
    return w, np.ldexp(rng.integers(-16, 16, shape[1]).astype(np.float64), -draw(st.integers(0, 5)))


_UNARY = ('quantize', 'relu', 'neg', 'cmvm', 'gather')
_BINARY = ('add', 'sub', 'max', 'min', 'mul', 'shift_add')


def _random_op(g: Graph, rng: np.random.Generator, vals: list[Node], step: int) -> Node:
    kind = rng.choice(_UNARY + _BINARY)
    x = vals[-1] if rng.random() < 0.6 else vals[rng.integers(len(vals))]
    name = f'{kind}{step}'
    if kind == 'quantize':
        return quantize(
            g,
            x,
            rng.integers(0, 2, x.shape),
            rng.integers(-1, 4, x.shape),
            rng.integers(-1, 4, x.shape),
            str(rng.choice([r.value for r in Round])),
            str(rng.choice([o.value for o in Overflow])),
            name,
        )
    if kind in ('relu', 'neg'):
        return g.add(Op(kind), [x], name=name)
    if kind == 'cmvm':
        n_out = int(rng.integers(1, 5))
        w = dyadic_matrix(rng, (x.shape[-1], n_out), bits=int(rng.integers(1, 6)), zeros=float(rng.random() * 0.8))
        bias = np.ldexp(rng.integers(-8, 8, n_out).astype(np.float64), -int(rng.integers(0, 4))) if rng.random() < 0.5 else None
        return g.add(Op.CMVM, [x], {'weights': w, 'bias': bias}, name=name)
    if kind == 'gather':
        size = int(rng.integers(1, 7))
        shape = (size,) if rng.random() < 0.7 or size % 2 else (2, size // 2)
        index = rng.integers(-1, x.type.size, size).reshape(shape)
        return g.add(Op.GATHER, [x], {'index': index}, name=name)
    same = [v for v in vals if v.shape == x.shape]
    y = same[rng.integers(len(same))]
    if kind == 'shift_add':
        return g.add(Op.SHIFT_ADD, [x, y], {'shift': int(rng.integers(-3, 4)), 'sub': bool(rng.random() < 0.5)}, name=name)
    return g.add(Op(kind), [x, y], name=name)


def _wide_type(rng: np.random.Generator, shape: tuple[int, ...]) -> TensorType:
    """Signed elements of 32-40 bits at steps 2^-5 .. 2^3: their squares are all beyond int64."""
    elems = []
    for _ in range(int(np.prod(shape, dtype=np.int64))):
        f = int(rng.integers(-3, 6))
        elems.append(QInterval.from_kif(1, int(rng.integers(31, 40)) - f, f))
    return TensorType(tuple(shape), tuple(elems))


def random_graph(seed: int, n_ops: int, wide: bool = False) -> Graph:
    """A small random tensor-level graph over every op kind (widths kept below ``MAX_WIDTH``).

    ``wide``: values beyond int64 instead: the input squared (up to 80 bits) comes first, and
    widths up to ``WIDE_MAX_WIDTH`` are kept."""
    rng = np.random.default_rng(seed)
    g = Graph(f'random{seed}')
    shape = (int(rng.integers(1, 6)),) if rng.random() < 0.7 else (2, int(rng.integers(1, 4)))
    vals = [g.add_input('x', _wide_type(rng, shape) if wide else random_type(rng, shape, max_bits=8))]
    if wide:
        vals.append(g.add(Op.MUL, [vals[0], vals[0]], name='square'))
    limit = WIDE_MAX_WIDTH if wide else MAX_WIDTH
    for step in range(n_ops):
        node = _random_op(g, rng, vals, step)
        if node.type.max_width > limit:  # too wide to simulate comfortably: clip its operand instead
            x = node.inputs[0]
            g.erase(node)
            node = quantize(g, x, 1, 6, 4, 'TRN', 'WRAP', f'clip{step}')
        vals.append(node)
    g.add_output('y', vals[-1])
    if len(vals) > 2 and rng.random() < 0.5:
        g.add_output('z', vals[int(rng.integers(1, len(vals) - 1))])
    return g

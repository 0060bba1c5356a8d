"""``fold_round``: a round-to-nearest quantize after a cmvm (through a relu) folds into the bias."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hgqc.ir import Graph, Op, Overflow, TensorType
from hgqc.passes.fold_round import fold_rounding
from hgqc.passes.manager import sample_inputs
from hgqc.runtime.interpreter import Interpreter

from ..ir.strategies import random_type
from .graphs import dyadic_matrix, quantize, run_checked


def _graph(seed: int, relu: bool, positions: int, uniform_f: bool) -> Graph:
    """input -> cmvm (+bias) -> [relu] -> quantize(RND), random per-element widths."""
    rng = np.random.default_rng(seed)
    n_in, n_out = int(rng.integers(1, 6)), int(rng.integers(1, 5))
    shape = (positions, n_in) if positions > 1 else (n_in,)
    g = Graph('fold')
    x = g.add_input('x', random_type(rng, shape, max_bits=8))
    w = dyadic_matrix(rng, (n_in, n_out), bits=int(rng.integers(1, 6)), zeros=0.3, exp=int(rng.integers(-3, 2)))
    bias = np.ldexp(rng.integers(-8, 8, n_out).astype(np.float64), -int(rng.integers(0, 4))) if rng.random() < 0.5 else None
    y = g.add(Op.CMVM, [x], {'weights': w, 'bias': bias}, name='dense')
    if relu:
        y = g.add(Op.RELU, [y], name='relu')
    out_shape = y.shape
    f = rng.integers(-2, 4, n_out if uniform_f else out_shape)
    ovf = str(rng.choice([o.value for o in Overflow]))
    q = quantize(g, y, rng.integers(0, 2, out_shape), rng.integers(0, 5, out_shape), np.broadcast_to(f, out_shape), 'RND', ovf)
    g.add_output('y', q)
    return g


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans(), st.sampled_from([1, 1, 3]), st.booleans())
def test_fold_round_is_exact(seed, relu, positions, uniform_f):
    g = _graph(seed, relu, positions, uniform_f)
    x = g.inputs[0]
    feeds = [sample_inputs(x.type, 2000, np.random.default_rng(seed))]  # corners + uniform over the full range
    before = Interpreter(g).run_int(feeds)[0]
    q_type = g.output_nodes()[0].type
    changed = fold_rounding(g)
    after = Interpreter(g).run_int(feeds)[0]
    np.testing.assert_array_equal(after, before)
    assert g.output_nodes()[0].type == q_type  # downstream types are untouched
    q = g.output_nodes()[0]
    assert q.attrs['round'] == ('TRN' if changed else 'RND')
    if positions == 1:
        assert changed == 1  # one element per channel: always foldable


def test_fold_round_in_pipeline_removes_the_rounding_adders():
    g = Graph('mlp')
    x = g.add_input('x', TensorType.from_kif((3,), 1, 3, 2))
    w = np.array([[0.75, -1.5], [0.25, 2.0], [-1.0, 0.5]])
    y = g.add(Op.RELU, [g.add(Op.CMVM, [x], {'weights': w, 'bias': np.array([0.5, 0.0])}, name='dense')])
    g.add_output('y', quantize(g, y, 0, 5, np.array([0, 1]), 'RND', 'SAT'))
    mid = run_checked(g, ['range', 'prune', 'fold_round', 'csd', 'cse'])
    (cm,) = [n for n in mid if n.op is Op.CMVM]
    np.testing.assert_array_equal(cm.attrs['bias'], [0.5 + 0.5, 0.0 + 0.25])  # + 2^-(f+1)
    low = run_checked(mid, ['lower', 'range', 'prune'], samples=500)
    assert not any(n.op is Op.QUANTIZE and n.attrs['round'] == 'RND' for n in low)


def test_fold_round_leaves_shared_or_other_rounding_alone():
    g = _graph(3, False, 1, True)
    y = g.nodes[1]
    g.add_output('raw', y)  # the cmvm result itself is an output: the bias must not change
    assert fold_rounding(g) == 0
    g2 = _graph(4, True, 1, True)
    g2.output_nodes()[0].attrs['round'] = 'RND_CONV'  # ties to even: not a half-LSB add
    assert fold_rounding(g2) == 0


def test_fold_round_skips_positions_that_disagree():
    g = Graph('conv')
    x = g.add_input('x', TensorType.from_kif((2, 2), 1, 3, 3))
    y = g.add(Op.CMVM, [x], {'weights': np.array([[1.0], [0.5]]), 'bias': None}, name='conv')
    q = quantize(g, y, 1, 4, np.array([[0], [1]]), 'RND', 'SAT')  # position 0 rounds to f=0, position 1 to f=1
    g.add_output('y', q)
    assert fold_rounding(g) == 0

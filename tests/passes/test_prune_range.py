"""``range`` and ``prune``: tighter types, zero-bit pruning, folding, simplification, DCE."""

from __future__ import annotations

import numpy as np

from hgqc.ir import ZERO, Graph, Op, QInterval, TensorType

from .graphs import mlp, quantize, run_checked


def test_range_tightens_and_keeps_inputs():
    g = Graph()
    t = TensorType.uniform((2,), QInterval(-4, 3, 1))
    x = g.add_input('x', t)
    loose = TensorType.uniform((2,), QInterval(-(2**20), 2**20, 6))
    r = g.add(Op.RELU, [x], type=loose, name='r')
    g.add_output('y', g.add(Op.ADD, [r, r], name='a'))
    out = run_checked(g, ['range'])
    assert out.inputs[0].type == t
    assert r.type == TensorType.uniform((2,), QInterval(0, 3, 1))
    assert out.outputs[0][1].type == TensorType.uniform((2,), QInterval(0, 6, 1))


def test_prune_zero_width_inputs_drop_cmvm_rows():
    g = Graph()
    x = g.add_input('x', TensorType((4,), (QInterval(-4, 3, 0), ZERO, QInterval(0, 7, 1), ZERO)))
    w = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0], [5.0, -1.0]])
    g.add_output('y', g.add(Op.CMVM, [x], {'weights': w, 'bias': np.array([0.5, 0.0])}, name='d'))
    out = run_checked(g, ['prune'])
    (cm,) = [n for n in out if n.op is Op.CMVM]
    np.testing.assert_array_equal(cm.attrs['weights'], [[1.0, 2.0]])  # rows 1, 3: zero input; row 2: zero weights
    assert cm.inputs[0].op is Op.GATHER and cm.inputs[0].attrs['index'].tolist() == [0]


def test_prune_all_rows_gone_is_the_bias():
    g = Graph()
    x = g.add_input('x', TensorType.uniform((2, 2), ZERO))
    g.add_output('y', g.add(Op.CMVM, [x], {'weights': np.ones((2, 3)), 'bias': np.array([1.0, 0.0, -0.5])}, name='d'))
    out = run_checked(g, ['prune'])
    (y,) = out.output_nodes()
    assert y.op is Op.CONST
    np.testing.assert_array_equal(y.attrs['value'], [[1.0, 0.0, -0.5]] * 2)


def test_prune_constant_folding_and_dce():
    g = Graph()
    x = g.add_input('x', TensorType.uniform((2,), QInterval(-8, 7, 0)))
    c1 = g.add(Op.CONST, (), {'value': np.array([1.5, -2.0])}, name='c1')
    c2 = g.add(Op.CONST, (), {'value': np.array([0.25, 4.0])}, name='c2')
    wide = TensorType.uniform((2,), QInterval(-100, 100, 2))  # loose stored type: only folding finds it
    s = g.add(Op.ADD, [c1, c2], type=wide, name='s')
    q = quantize(g, s, 1, 2, 1, 'RND', 'WRAP', 'qc')
    g.add(Op.NEG, [x], name='dead')
    g.add_output('y', g.add(Op.ADD, [x, q], name='y'))
    out = run_checked(g, ['prune'])
    assert [n.op for n in out] == [Op.INPUT, Op.CONST, Op.ADD]
    (c,) = [n for n in out if n.op is Op.CONST]
    np.testing.assert_array_equal(c.attrs['value'], [2.0, 2.0])  # 1.75 rounds to 2.0, 2.0 stays


def test_prune_identity_quantize_and_relu():
    g = Graph()
    x = g.add_input('x', TensorType.uniform((3,), QInterval(0, 15, 2)))
    q_id = quantize(g, x, 0, 2, 3, 'RND', 'SAT', 'q_id')  # finer grid, range fits: identity
    r = g.add(Op.RELU, [q_id], name='r')  # non-negative input: identity
    q_round = quantize(g, r, 0, 2, 1, 'RND', 'WRAP', 'q_round')  # drops a bit: stays
    q_sat = quantize(g, x, 1, 1, 2, 'TRN', 'SAT', 'q_sat')  # saturates: stays
    g.add_output('y', q_round)
    g.add_output('z', q_sat)
    out = run_checked(g, ['prune'])
    names = [n.name for n in out]
    assert names == ['x', 'q_round', 'q_sat']
    assert out.outputs[0][1].inputs[0] is out.inputs[0]


def test_prune_max_min_of_ordered_ranges():
    """max/min pick an operand outright when the ranges cannot overlap (at different steps too);
    overlapping ranges, even touching only at one element, keep the op."""
    g = Graph()
    lo = g.add_input('lo', TensorType.uniform((2,), QInterval(-8, 4, 2)))  # [-2, 1]
    hi = g.add_input('hi', TensorType.uniform((2,), QInterval(1, 6, 0)))  # [1, 6]
    mid = g.add_input('mid', TensorType((2,), (QInterval(0, 3, 0), QInterval(2, 3, 0))))  # [0, 3], [2, 3]
    g.add_output('a', g.add(Op.MAX, [lo, hi], name='max_lo_hi'))
    g.add_output('b', g.add(Op.MIN, [hi, lo], name='min_hi_lo'))
    g.add_output('c', g.add(Op.MAX, [hi, mid], name='max_hi_mid'))  # element 0 overlaps
    out = run_checked(g, ['prune'])
    (_, a), (_, b), (_, c) = out.outputs
    assert a.name == 'hi' and b.name == 'lo' and c.name == 'max_hi_mid'


def test_prune_keeps_output_gathers_after_lower():
    g = Graph()
    x = g.add_input('x', TensorType((3,), (QInterval(-4, 3, 0), ZERO, QInterval(1, 1, 0))))
    g.add_output('y', g.add(Op.RELU, [x], name='r'))
    out = run_checked(g, ['lower', 'range', 'prune'])
    (y,) = out.output_nodes()
    assert y.op is Op.GATHER and y.shape == (3,)
    assert all(n.shape == () for n in out if n.op not in (Op.INPUT, Op.GATHER))


def test_prune_mlp_in_check_mode():
    for seed in range(4):
        run_checked(mlp(seed, zeros=0.7), ['range', 'prune', 'csd', 'cse', 'lower', 'range', 'prune'])

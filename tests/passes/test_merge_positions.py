"""``merge_positions``: a convolution's positions as one cmvm (CSE across positions), exactly."""

from __future__ import annotations

import numpy as np
import pytest

from hgqc.ir import Graph, Op, QInterval, TensorType
from hgqc.passes import DEFAULT_PIPELINE, CompileOptions, PassManager, count_adders
from hgqc.passes.cse import program_cost
from hgqc.passes.merge_positions import merge_positions, merged_matrix

from .graphs import dyadic_matrix, quantize, run_checked

FRONT = ['range', 'prune', 'fold_round']


def im2col(h: int, w: int, k: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Flat input indices of every ``k x k`` patch (row-major positions, -1 = padding)."""
    rows = []
    for i in range(-pad, h + pad - k + 1, stride):
        for j in range(-pad, w + pad - k + 1, stride):
            rows.append([(i + a) * w + (j + b) if 0 <= i + a < h and 0 <= j + b < w else -1 for a in range(k) for b in range(k)])
    return np.array(rows, dtype=np.int64)


def conv_graph(seed: int = 0, h: int = 6, k: int = 3, stride: int = 1, pad: int = 0, n_out: int = 3) -> Graph:
    """x (h, h) with per-pixel types -> im2col gather -> cmvm (+bias) -> relu -> RND quantize."""
    rng = np.random.default_rng(seed)
    g = Graph('conv')
    elems = [QInterval(0, int(rng.integers(1, 16)), int(rng.integers(0, 4))) for _ in range(h * h)]
    elems[0] = QInterval(0, 0, 0)  # a pixel that is always 0 (pruned, never a row)
    x = g.add_input('x', TensorType((h, h), tuple(elems)))
    index = im2col(h, h, k, stride, pad)
    side = int(round(np.sqrt(len(index))))
    patches = g.add(Op.GATHER, [x], {'index': index.reshape(side, side, k * k)}, name='conv/im2col')
    w = dyadic_matrix(rng, (k * k, n_out), bits=5, zeros=0.2)
    b = np.ldexp(rng.integers(-8, 8, n_out).astype(np.float64), -4)
    y = g.add(Op.CMVM, [patches], {'weights': w, 'bias': b}, name='conv')
    y = g.add(Op.RELU, [y], name='conv/relu')
    g.add_output('y', quantize(g, y, 0, 2, 3, 'RND', 'WRAP', 'q'))
    return g


def cmvms(g: Graph):
    return [n for n in g if n.op is Op.CMVM]


def test_merged_matrix_places_every_tap():
    w = np.array([[1.0, -0.5], [0.25, 2.0]])
    index = np.array([[0, 1], [1, 2], [2, -1]])  # a 1-D conv of width 2 over 3 inputs, padded
    used, big = merged_matrix(w, index)
    assert used.tolist() == [0, 1, 2]
    x = np.array([3.0, -1.0, 5.0])
    want = np.concatenate([x[[0, 1]] @ w, x[[1, 2]] @ w, np.array([x[2], 0.0]) @ w])
    assert np.array_equal(x @ big, want)
    assert merged_matrix(w, np.array([[0, 0], [1, 2]])) is None  # a patch reading one input twice


@pytest.mark.parametrize(('stride', 'pad'), [(1, 0), (1, 1), (2, 1)])
def test_conv_positions_merge_exactly(stride, pad):
    """Every pass checked (verify + bit-exact re-simulation on random inputs and corners)."""
    g = run_checked(
        conv_graph(stride + pad, stride=stride, pad=pad), [*FRONT, 'merge_positions', 'csd', 'cse', 'lower', 'range', 'prune']
    )
    assert g.count(Op.SHIFT_ADD) > 0


def test_merged_cmvm_is_one_matrix_over_the_used_pixels():
    g = PassManager([*FRONT, 'merge_positions']).run(conv_graph(1))
    (n,) = cmvms(g)
    assert n.shape == (16 * 3,) and n.attrs['weights'].shape == (35, 48)  # 36 pixels, one always 0
    assert n.inputs[0].op is Op.GATHER and np.array_equal(n.attrs['bias'], np.tile(n.attrs['bias'][:3], 16))
    assert next(iter(n.users)).shape == (4, 4, 3)  # wiring back to the convolution's shape


def test_sharing_across_positions_saves_adders():
    def adders(merge: bool) -> int:
        pipeline = [p for p in DEFAULT_PIPELINE if merge or p != 'merge_positions']
        return count_adders(PassManager(pipeline, CompileOptions()).run(conv_graph(2, h=8, n_out=4)))

    assert adders(True) < adders(False)


def test_left_alone_without_overlap_or_above_the_digit_cap():
    g = PassManager(FRONT).run(conv_graph(3, stride=3))  # 2x2 disjoint 3x3 patches: nothing to share
    assert cmvms(merge_positions(g.copy()))[0].shape == (2, 2, 3)
    g = PassManager(FRONT).run(conv_graph(4))
    assert cmvms(merge_positions(g.copy(), max_digits=10))[0].shape == (4, 4, 3)
    opts = CompileOptions(extra={'merge_positions.max_digits': 0})
    assert cmvms(PassManager(['merge_positions'], opts).run(g.copy()))[0].shape == (4, 4, 3)


def test_merged_program_is_cheaper_than_per_position():
    g = PassManager([*FRONT, 'csd', 'cse']).run(conv_graph(5, h=7))
    (per,) = cmvms(g)
    types = [t for t in per.inputs[0].type.elems]
    n_in = per.attrs['weights'].shape[0]
    sel = per.attrs['program']['select']
    per_bits = sum(
        program_cost(per.attrs['program']['variants'][v], types[p * n_in : (p + 1) * n_in])[1] for p, v in enumerate(sel)
    )
    m = PassManager([*FRONT, 'merge_positions', 'csd', 'cse']).run(conv_graph(5, h=7))
    (joint,) = cmvms(m)
    (prog,) = joint.attrs['program']['variants']
    assert program_cost(prog, joint.inputs[0].type.elems)[1] < per_bits

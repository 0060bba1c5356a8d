"""Interpreter boundaries: exact float->fixed conversion, clear refusals, no silent int64 wrap."""

from __future__ import annotations

import re
from fractions import Fraction
from math import floor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hgqc.ir import Graph, Op, Overflow, Round
from hgqc.ir.types import QInterval, TensorType
from hgqc.runtime import Interpreter, InterpreterError
from hgqc.runtime.interpreter import float_to_fixed


def _ref(x: float, k: int, i: int, f: int, ovf: Overflow) -> int:
    v = floor(Fraction(x) * Fraction(2) ** f + Fraction(1, 2))  # RND: ties toward +inf
    n = i + f
    lo, hi = (-(2**n) if k else 0), 2**n - 1
    if ovf is Overflow.WRAP:
        return (v - lo) % (hi - lo + 1) + lo
    return min(max(v, lo), hi)


@settings(max_examples=400, deadline=None)
@given(
    x=st.floats(allow_nan=False, allow_infinity=False, width=32),
    k=st.integers(0, 1),
    i=st.integers(-2, 12),
    f=st.integers(-2, 12),
    ovf=st.sampled_from([Overflow.WRAP, Overflow.SAT]),
)
def test_float_to_fixed_is_exact_for_any_float32(x, k, i, f, ovf):
    """Huge, tiny and subnormal float32 values quantize exactly (no float rounding on the way)."""
    if k + i + f <= 0:
        return
    got = float_to_fixed(np.array([x]), k, i, f, Round.RND, ovf)
    assert int(got[0]) == _ref(x, k, i, f, ovf)


def _graph(t: TensorType) -> Graph:
    g = Graph()
    g.add_output('y', g.add(Op.NEG, [g.add_input('x', t)]))
    return g


def test_values_wider_than_int64_are_exact():
    """A 72-bit input, its 142-bit square plus itself, and a rounding saturating quantizer of that:
    Python ints where int64 would wrap, int64 again once the quantizer narrows the values."""
    g = Graph()
    x = g.add_input('x', TensorType((2,), (QInterval(-(2**70), 2**70, 0), QInterval(-(2**39), 2**39 - 1, 3))))
    y = g.add(Op.ADD, [g.add(Op.MUL, [x, x]), x])
    attrs = {'k': np.array([1, 1]), 'i': np.array([110, 60]), 'f': np.array([-100, -40]), 'round': 'RND', 'overflow': 'SAT'}
    g.add_output('z', g.add(Op.QUANTIZE, [y], attrs))
    g.add_output('y', y)
    rng = np.random.default_rng(0)
    vals = [[int(a), int(b)] for a, b in zip(rng.integers(-(2**62), 2**62, 500), rng.integers(-(2**39), 2**39, 500))]
    vals += [[2**70, 2**39 - 1], [-(2**70), -(2**39)], [0, 0], [2**70 - 1, 1]]
    z, y_out = Interpreter(g).run_int([np.array(vals, dtype=object) * np.array([1, 1])])
    for (a, b), zv, yv in zip(vals, z, y_out):
        exact = [Fraction(a * a + a), Fraction(b * b, 2**6) + Fraction(b, 2**3)]  # real values
        assert [Fraction(int(v), 2**6) if k else int(v) for k, v in enumerate(yv)] == exact
        for e, (i, f), got in zip(exact, ((110, -100), (60, -40)), zv):
            want = min(max(floor(e * Fraction(2) ** f + Fraction(1, 2)), -(2 ** (i + f))), 2 ** (i + f) - 1)
            assert int(got) == want
    assert z.dtype == np.int64 and y_out.dtype == object


def test_narrow_values_through_wide_intermediates_are_exact():
    """Narrow results whose evaluation passes through values beyond int64: a 3-bit value moved to
    a quantizer's 94-bit type, and a max aligning a step-2^18 operand to step 2^-40 (98 bits).
    They came out 0 (found by a fuzzer: the int64 path was chosen from the result's width only)."""
    g = Graph()
    x = g.add_input('x', TensorType((1,), (QInterval(0, 7, 9),)))
    for ovf in ('WRAP', 'SAT'):
        attrs = {'k': np.array([0]), 'i': np.array([60]), 'f': np.array([34]), 'round': 'TRN', 'overflow': ovf}
        g.add_output(f'q_{ovf}', g.add(Op.QUANTIZE, [x], attrs))
    a = g.add_input('a', TensorType((1,), (QInterval(-(2**40), 0, -18),)))
    b = g.add_input('b', TensorType((1,), (QInterval(0, 1, 40),)))
    g.add_output('mx', g.add(Op.MAX, [a, b]))
    g.add_output('mn', g.add(Op.MIN, [a, b]))
    xs = np.arange(8).reshape(8, 1)
    av = np.array([[-(2**40)], [-1], [0], [-(2**39)], [0], [-5], [-(2**40) + 1], [0]])
    bv = np.array([[1], [0], [1], [1], [0], [1], [0], [1]])
    q_wrap, q_sat, mx, mn = Interpreter(g).run_int([xs, av, bv])
    assert q_wrap.ravel().tolist() == q_sat.ravel().tolist() == [v << 25 for v in range(8)]
    for ai, bi, got_max, got_min in zip(av.ravel(), bv.ravel(), mx.ravel(), mn.ravel()):
        va, vb = Fraction(int(ai)) * 2**18, Fraction(int(bi), 2**40)
        assert Fraction(int(got_max), 2**40) == max(va, vb)
        assert Fraction(int(got_min), 2**40) == min(va, vb)  # both at the finer step


@pytest.mark.parametrize(
    'x,msg',
    [
        (np.array([[0.3]]), 'not on the fixed-point grid'),
        (np.array([[100.0]]), 'outside the input type range'),
        (np.array([[0.5, 0.5]]), re.escape('expected shape (N, 1), got (1, 2)')),
        (np.array([['a']]), 'numbers expected'),
    ],
)
def test_bad_inputs_without_declared_quantization(x, msg):
    g = _graph(TensorType.from_kif((1,), 1, 2, 1))
    with pytest.raises(InterpreterError, match=msg):
        Interpreter(g).predict(x)


def test_nan_inputs_rejected():
    with pytest.raises(InterpreterError, match='NaN'):
        float_to_fixed(np.array([np.nan]), 1, 3, 2, Round.RND, Overflow.SAT)


def test_declared_input_quantization_is_applied():
    g = _graph(TensorType.from_kif((2,), 1, 2, 1))
    g.input_quant['x'] = {'k': np.array([1, 1]), 'i': np.array([2, 2]), 'f': np.array([1, 1]), 'round': 'TRN', 'overflow': 'SAT'}
    y = Interpreter(g).predict(np.array([[0.7, 100.0], [-0.2, -100.0]]))
    assert np.array_equal(y, [[-0.5, -3.5], [0.5, 4.0]])

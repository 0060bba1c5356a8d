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


def test_refuses_values_wider_than_int64_can_hold():
    g = _graph(TensorType((1,), (QInterval(-(2**70), 2**70, 0),)))
    with pytest.raises(InterpreterError, match='72 bits wide'):
        Interpreter(g)


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

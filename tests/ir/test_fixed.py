"""Rounding/overflow kernels against a Fraction-based reference, on int64 and object arrays."""

from fractions import Fraction
from math import floor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hgqc.ir.fixed import Overflow, Round, overflow, shift_round


def ref_round(v: Fraction, mode: Round) -> int:
    fl = floor(v)
    rem = v - fl
    half = Fraction(1, 2)
    sign = -1 if v < 0 else 1
    a = abs(v)
    match mode:
        case Round.TRN:
            return fl
        case Round.CEIL:
            return -floor(-v)
        case Round.RND:
            return floor(v + half)
        case Round.RND_MIN_INF:
            return -floor(-v + half)
        case Round.RND_CONV:
            return fl + (1 if rem > half or (rem == half and fl % 2 == 1) else 0)
        case Round.TRN_ZERO:
            return sign * floor(a)
        case Round.RND_ZERO:
            return sign * -floor(-a + half)
        case Round.RND_INF:
            return sign * floor(a + half)
        case Round.TRN_INF:
            return sign * -floor(-a)
    raise AssertionError(mode)


@pytest.mark.parametrize('mode', list(Round))
@pytest.mark.parametrize('dtype', [np.int64, object])
def test_shift_round_matches_reference(mode, dtype):
    rng = np.random.default_rng(1)
    x = rng.integers(-(2**20), 2**20, 3000)
    s = rng.integers(0, 9, 3000)
    x[:16] = [-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7]
    s[:16] = 2
    got = shift_round(x.astype(dtype), s.astype(dtype), mode)
    want = [ref_round(Fraction(int(a), 2 ** int(b)), mode) for a, b in zip(x, s)]
    assert [int(v) for v in got] == want


def ref_overflow(v: int, k: int, i: int, f: int, mode: Overflow) -> int:
    if k + i + f <= 0:
        return 0
    n = i + f
    lo, hi = (-(2**n) if k else 0), 2**n - 1
    if mode is Overflow.SAT_SYM and k:
        lo = -hi
    if mode is Overflow.WRAP:
        return (v - lo) % (hi - lo + 1) + lo
    return min(max(v, lo), hi)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    v=st.integers(-(2**40), 2**40),
    k=st.integers(0, 1),
    i=st.integers(-6, 12),
    f=st.integers(-4, 12),
    mode=st.sampled_from(list(Overflow)),
)
def test_overflow_matches_reference(v, k, i, f, mode):
    i = max(i, -f)
    got = overflow(np.array([v]), np.array([k]), np.array([i]), np.array([f]), mode)
    assert int(got[0]) == ref_overflow(v, k, i, f, mode)

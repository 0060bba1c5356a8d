"""quantize with a ``div`` attr: exact rational rounding, and its multiply-add lowering."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from hgqc.ir.fixed import Round, divide_round
from hgqc.passes.lower import division_by_multiply

REFERENCE = {
    Round.TRN: math.floor,
    Round.CEIL: math.ceil,
    Round.RND: lambda v: math.floor(v + Fraction(1, 2)),
    Round.RND_MIN_INF: lambda v: math.ceil(v - Fraction(1, 2)),
    Round.TRN_ZERO: math.trunc,
    Round.RND_CONV: round,  # Fraction rounds half to even
}


@pytest.mark.parametrize('mode', list(REFERENCE), ids=lambda m: m.value)
def test_divide_round_is_exact(mode):
    rng = np.random.default_rng(list(REFERENCE).index(mode))
    for _ in range(60):
        lo = int(rng.integers(-500, 50))
        x = np.arange(lo, lo + int(rng.integers(1, 400)), dtype=np.int64)
        fx, f, d = int(rng.integers(-2, 6)), int(rng.integers(-2, 6)), int(rng.integers(1, 13))
        want = [REFERENCE[mode](Fraction(int(v)) * Fraction(2) ** (f - fx) / d) for v in x]
        assert divide_round(x, np.array(fx), np.array(d), np.array(f), mode).tolist() == want
        assert divide_round(x.astype(object), np.array(fx), np.array(d), np.array(f), mode).tolist() == want


@pytest.mark.parametrize('mode', [Round.TRN, Round.RND, Round.RND_MIN_INF, Round.CEIL], ids=lambda m: m.value)
def test_division_by_multiply_matches_on_the_whole_interval(mode):
    rng = np.random.default_rng(7)
    for _ in range(40):
        lo = int(rng.integers(-3000, 100))
        hi = lo + int(rng.integers(0, 3000))
        fx, f, d = int(rng.integers(-2, 8)), int(rng.integers(-2, 8)), int(rng.integers(1, 30))
        w, b = division_by_multiply(lo, hi, fx, f, d, mode)
        x = np.arange(lo, hi + 1)
        got = [math.floor((Fraction(int(v)) * Fraction(2) ** -fx * Fraction(w) + Fraction(b)) * Fraction(2) ** f) for v in x]
        assert got == divide_round(x.astype(np.int64), np.array(fx), np.array(d), np.array(f), mode).tolist()


def test_division_refuses_sign_dependent_modes():
    with pytest.raises(ValueError, match='RND_CONV'):
        division_by_multiply(-5, 5, 0, 0, 3, Round.RND_CONV)

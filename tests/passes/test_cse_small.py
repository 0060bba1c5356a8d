"""The plain-Python greedy for small cmvms (``cse_small``) makes the vectorised solver's decisions."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hgqc.ir import QInterval
from hgqc.passes import program_matches
from hgqc.passes.csd import csd_matrix
from hgqc.passes.cse import _new_solver, _Solver, program_cost
from hgqc.passes.cse_lookahead import pilot
from hgqc.passes.cse_small import SMALL_COLUMN, SmallSolver, fits

from .graphs import dyadic_matrix, weight_matrices


def _types(rng: np.random.Generator, n: int, mixed: bool) -> list[QInterval]:
    if not mixed:
        return [QInterval(-128, 127, 0)] * n
    out = []
    for _ in range(n):  # unsigned / signed inputs of 1-10 bits at fractional scales -3..3
        f, w = int(rng.integers(-3, 4)), int(rng.integers(1, 11))
        out.append(QInterval(0, 2**w - 1, f) if rng.random() < 0.5 else QInterval(-(2 ** (w - 1)), 2 ** (w - 1) - 1, f))
    return out


def _both(w, b, types, salt: int, slack: int) -> tuple[_Solver, SmallSolver]:
    d = csd_matrix(w)
    out = []
    for cls in (_Solver, SmallSolver):
        s = cls(w.shape[0], d, w.shape[1], b, types, salt)
        s.run_cse(s.min_depth() + slack)
        out.append(s)
    return out[0], out[1]


@settings(max_examples=80, deadline=None)
@given(weight_matrices(max_in=14, max_out=14), st.integers(0, 4), st.integers(0, 3), st.booleans(), st.integers(0, 99))
def test_same_decisions_as_the_vectorised_solver(wb, salt, slack, mixed, seed):
    """Same patterns in the same order, same program, on random matrices, input types, restart
    salts and depth limits (including the tightest, where the depth rule holds occurrences back)."""
    w, b = wb
    types = _types(np.random.default_rng(seed), w.shape[0], mixed)
    big, small = _both(w, b, types, salt, slack)
    assert small.taken == big.taken
    prog = small.program()
    assert prog == big.program()
    assert program_matches(w, prog, b)


def test_same_decisions_on_larger_matrices():
    """Larger and denser matrices: many occurrences per column (overlapping ``a == b`` patterns,
    operands made twice)."""
    rng = np.random.default_rng(7)
    for shape, bits, zeros in (((24, 24), 8, 0.0), ((40, 12), 6, 0.3), ((8, 48), 4, 0.5), ((16, 16), 3, 0.0)):
        w = dyadic_matrix(rng, shape, bits=bits, zeros=zeros)
        for salt in (0, 1, 2):
            big, small = _both(w, None, [QInterval(-128, 127, 0)] * shape[0], salt, 2)
            assert small.taken == big.taken and len(small.taken) > 20
            assert small.program() == big.program()


def test_lookahead_hooks_match():
    """The pilot search (forced prefixes, skipped patterns) gives the same program with either solver."""
    w = dyadic_matrix(np.random.default_rng(11), (10, 10), bits=6, zeros=0.2)
    d, types = csd_matrix(w), [QInterval(-128, 127, 0)] * 10

    def score(p):
        return (*program_cost(p, types), p['depth'])

    limit = _Solver(10, d, 10, None, types).min_depth() + 2
    progs = [pilot(lambda cls=cls: cls(10, d, 10, None, types), cls.program, limit, score, 3) for cls in (_Solver, SmallSolver)]
    assert progs[0] == progs[1]
    assert program_matches(w, progs[1])


def test_solver_choice_by_size():
    """Small cmvms get the plain-Python solver, ones with long columns the vectorised one."""
    rng = np.random.default_rng(0)
    small = csd_matrix(dyadic_matrix(rng, (8, 8), bits=6, zeros=0.0))
    long_cols = csd_matrix(dyadic_matrix(rng, (4 * SMALL_COLUMN, 4), bits=8, zeros=0.0))
    assert fits(small, 8) and not fits(long_cols, 4)
    types = [QInterval(-128, 127, 0)] * (4 * SMALL_COLUMN)
    assert isinstance(_new_solver(8, small, 8, None, types[:8]), SmallSolver)
    assert type(_new_solver(4 * SMALL_COLUMN, long_cols, 4, None, types)) is _Solver

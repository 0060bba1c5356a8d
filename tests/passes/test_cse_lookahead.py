"""The pilot search over the greedy CSE's first decisions (``cse.lookahead``): exactness, depth
limit, determinism, never worse than without it, and the solver hooks it relies on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hgqc.ir import Graph, Op, QInterval, TensorType
from hgqc.passes import CompileOptions, PassManager, program_matches
from hgqc.passes.csd import csd_matrix
from hgqc.passes.cse import _solve, _Solver, cmvm_program, minimal_depth, program_cost, solve
from hgqc.passes.cse_lookahead import pilot

from .graphs import dyadic_matrix, weight_matrices

TYPES8 = QInterval(-128, 127, 0)


def _run(w: np.ndarray, forced=(), skip=()) -> _Solver:
    s = _Solver(w.shape[0], csd_matrix(w), w.shape[1], None, [TYPES8] * w.shape[0])
    s.forced, s.skip = tuple(forced), frozenset(skip)
    s.run_cse(s.min_depth() + 2)
    return s


def test_forced_prefix_replays_the_greedy():
    """Forcing the greedy's own first picks gives the greedy's program; skipping its first pick
    makes the first free decision differ and the program stays exact."""
    w = dyadic_matrix(np.random.default_rng(3), (10, 10), bits=6, zeros=0.2)
    plain = _run(w)
    assert len(plain.taken) > 3
    for t in (1, 3):
        replay = _run(w, forced=plain.taken[:t])
        assert replay.taken == plain.taken and replay.program() == plain.program()
    other = _run(w, skip=plain.taken[:1])
    assert other.taken[0] != plain.taken[0]
    assert program_matches(w, other.program())
    with pytest.raises(ValueError, match='does not occur twice'):
        _run(w, forced=[plain.taken[0], plain.taken[0]])


def test_skipping_the_only_candidate_ends_the_run():
    w = np.array([[1.0, 1.0], [1.0, 1.0]])  # x0 + x1 in both columns: one pattern, occurring twice
    plain = _run(w)
    assert len(plain.taken) == 1 and len(plain.program()['ops']) == 1
    other = _run(w, skip=plain.taken)
    assert other.taken == [] and program_matches(w, other.program())


def test_pilot_starts_from_the_plain_greedy_and_counts_runs():
    w = dyadic_matrix(np.random.default_rng(4), (8, 8), bits=8, zeros=0.0)
    types = [TYPES8] * 8
    runs = []

    def make():
        s = _Solver(8, csd_matrix(w), 8, None, types)
        runs.append(s)
        return s

    def score(p):
        return (*program_cost(p, types), p['depth'])

    limit = minimal_depth(w) + 2
    got = pilot(make, _Solver.program, limit, score, steps=3, width=4)
    assert len(runs) == 1 + 3 * 3  # the winner's run is reused as the next decision's first candidate
    assert score(got) <= score(runs[0].program()) and program_matches(w, got) and got['depth'] <= limit
    assert pilot(make, _Solver.program, limit, score, steps=0) == runs[0].program()
    with pytest.raises(ValueError, match='lookahead'):
        pilot(make, _Solver.program, limit, score, steps=-1)


@settings(max_examples=15, deadline=None)
@given(weight_matrices(max_in=8, max_out=8), st.integers(1, 3), st.sampled_from(['adders', 'bits']))
def test_lookahead_exact_deterministic_within_depth_and_never_worse(wb, steps, objective):
    w, b = wb
    limit = minimal_depth(w, b) + 2
    got = solve(w, b, objective=objective, lookahead=steps)
    assert program_matches(w, got, b) and got['depth'] <= limit
    assert got == solve(w.copy(), b if b is None else b.copy(), objective=objective, lookahead=steps)
    if objective == 'adders':  # the pilot only adds candidates
        types = [TYPES8] * w.shape[0]
        assert program_cost(got, types) <= program_cost(solve(w, b, objective='adders'), types)


def test_lookahead_finds_fewer_adders_on_seeded_matrices():
    """Over a few seeded 8x8 matrices the pilot search saves adders beyond restarts and decompositions."""
    total = total_la = 0
    for seed in range(6):
        w = dyadic_matrix(np.random.default_rng(100 + seed), (8, 8), bits=8, zeros=0.5)
        total += len(solve(w, objective='adders')['ops'])
        total_la += len(solve(w, objective='adders', lookahead=3)['ops'])
    assert total_la < total


def test_lookahead_option_and_other_variants():
    """``cse.lookahead`` reaches the pass; the other position variants reuse a winning pilot strategy."""
    rng = np.random.default_rng(9)
    w = dyadic_matrix(rng, (8, 8), bits=6, zeros=0.3)
    wide, narrow = QInterval(-128, 127, 0), QInterval(0, 15, 0)
    g = Graph()
    x = g.add_input('x', TensorType((3, 8), (wide,) * 8 + (narrow,) * 8 + (wide,) * 8))
    n = g.add(Op.CMVM, [x], {'weights': w, 'bias': np.zeros(8)}, name='conv')
    g.add_output('y', n)
    prog = cmvm_program(n, None, objective='adders', lookahead=2)
    main, tag = _solve(w, np.zeros(8), (wide,) * 8, None, True, None, -1, -1, 'adders', 2)
    assert tag[0] == 'pilot' and prog['variants'][0] == main and program_matches(w, prog, np.zeros(8))
    other = _solve(w, np.zeros(8), (narrow,) * 8, None, True, None, -1, -1, 'adders', 2, only=tag)[0]
    assert prog['variants'][1] == other
    with pytest.raises(ValueError, match='lookahead'):
        solve(w, lookahead=-1)
    opts = CompileOptions(extra={'cse.lookahead': 2, 'cse.objective': 'adders'})
    PassManager(['cse'], opts).run(g)
    assert n.attrs['program'] == prog


def test_cli_cse_options():
    from hgqc.cli import _compile_parser, cse_options

    args = _compile_parser().parse_args(['m.keras', '-o', 'out', '--cse', 'lookahead=3', '--cse', 'objective=adders'])
    assert cse_options(args.cse) == {'cse.lookahead': 3, 'cse.objective': 'adders'}
    for bad in ('lookahead', 'depth=2', 'lookahead=x', 'objective=luts'):
        with pytest.raises(ValueError, match='--cse'):
            cse_options([bad])

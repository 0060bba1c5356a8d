"""``pipeline``: stage assignment, register chains, latency, and simulation equivalence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hgqc.ir import Graph, Op, QInterval, TensorType, parse_graph, print_graph, verify
from hgqc.options import CompileOptions
from hgqc.passes import PassManager, adder_depth
from hgqc.passes.pipeline import SCHEDULES, node_delay, pipeline_pass, schedule
from hgqc.passes.stages import is_valid, latency_of, register_bits

from .graphs import mlp, random_graph, run_checked


def _sum_tree(n: int) -> Graph:
    """y = x0 + ... + x_{n-1}: a balanced tree of depth ceil(log2 n)."""
    g = Graph('sum')
    x = g.add_input('x', TensorType.uniform((n,), QInterval(-8, 7, 0)))
    g.add_output('y', g.add(Op.CMVM, [x], {'weights': np.ones((n, 1)), 'bias': None}, name='sum'))
    return g


def _register_counts(g: Graph) -> dict:
    """(min, max) number of registers on any path from a non-constant source to each node."""
    c: dict = {}
    for n in g:
        srcs = [c[i] for i in n.inputs if c[i] is not None]
        if n.op is Op.INPUT:
            c[n] = (0, 0)
        elif not srcs:
            c[n] = None  # computed from constants only
        else:
            lo, hi = min(s[0] for s in srcs), max(s[1] for s in srcs)
            add = n.op is Op.REG
            c[n] = (lo + add, hi + add)
    return c


def _balanced(g: Graph) -> None:
    counts = _register_counts(g)
    lat = g.meta['latency']
    for v in g.output_nodes():
        assert counts[v] in ((lat, lat), None), (v, counts[v], lat)
    for n in g:  # every operand of a non-wiring node comes from the same stage
        if n.op is Op.REG:
            src = n.inputs[0]
            assert n.attrs['stage'] == (src.attrs['stage'] + 1 if src.op is Op.REG else n.attrs['stage'])
        elif n.op not in (Op.CONST, Op.GATHER) and n.inputs:
            live = {counts[i] for i in n.inputs if counts[i] is not None}
            assert len(live) <= 1 and all(a == b for a, b in live), n


@pytest.mark.parametrize(('n', 'cutoff', 'latency'), [(8, 0, 0), (8, 1, 3), (8, 2, 2), (8, 3, 1), (16, 3, 2), (5, 2, 2)])
def test_latency_of_adder_tree(n, cutoff, latency):
    out = run_checked(_sum_tree(n), ['lower', 'range', 'prune', 'pipeline'], latency_cutoff=cutoff)
    assert out.meta['latency'] == latency
    if cutoff:
        _balanced(out)
        assert out.count(Op.REG) > 0
    else:
        assert out.count(Op.REG) == 0


def test_pipelined_mlp_balanced_and_exact():
    for cutoff in (1, 2, 5):
        out = run_checked(mlp(5), ['range', 'prune', 'csd', 'cse', 'lower', 'range', 'prune', 'pipeline'], latency_cutoff=cutoff)
        _balanced(out)
        assert out.meta['latency'] >= -(-adder_depth(out) // cutoff)


def test_latency_matches_depth_for_unit_cutoff():
    g = PassManager(options=CompileOptions()).run(mlp(6))
    depth = adder_depth(g)
    out = pipeline_pass(g, CompileOptions(latency_cutoff=1))
    assert out.meta['latency'] == depth  # one stage per adder level, outputs registered once


def _mul_then_add() -> Graph:
    """y = a * b + a: the product takes 2 adder levels."""
    g = Graph()
    x = g.add_input('x', TensorType.uniform((2,), QInterval(-8, 7, 0)))
    a = g.add(Op.GATHER, [x], {'index': np.array([0])}, name='a')
    b = g.add(Op.GATHER, [x], {'index': np.array([1])}, name='b')
    g.add_output('y', g.add(Op.ADD, [g.add(Op.MUL, [a, b], name='m'), a], name='s'))
    return g


def test_mul_takes_two_levels():
    g = _mul_then_add()
    low = run_checked(g, ['lower'])
    assert adder_depth(low) == 3
    # an op is never cut: at cutoff 1 the product fills one stage (waiting a second one adds nothing)
    assert run_checked(g, ['lower', 'pipeline'], latency_cutoff=1).meta['latency'] == 2
    assert run_checked(g, ['lower', 'pipeline'], latency_cutoff=2).meta['latency'] == 2


def test_delay_table():
    g = Graph()
    x = g.add_input('x', TensorType.uniform((), QInterval(-8, 7, 2)))
    zero = g.add(Op.CONST, (), {'value': np.array(0.0)}, name='z')
    shift = g.add(Op.SHIFT_ADD, [zero, x], {'shift': 3, 'sub': False})
    neg = g.add(Op.SHIFT_ADD, [zero, x], {'shift': 0, 'sub': True})
    k0, i2 = np.array(1), np.array(2)
    trunc = g.add(Op.QUANTIZE, [x], {'k': k0, 'i': i2, 'f': np.array(1), 'round': 'TRN', 'overflow': 'WRAP'})
    rnd = g.add(Op.QUANTIZE, [x], {'k': k0, 'i': i2, 'f': np.array(1), 'round': 'RND', 'overflow': 'WRAP'})
    sat = g.add(Op.QUANTIZE, [x], {'k': k0, 'i': np.array(0), 'f': np.array(2), 'round': 'TRN', 'overflow': 'SAT'})
    delays = [node_delay(n) for n in (shift, neg, trunc, rnd, sat, g.add(Op.RELU, [x]), g.add(Op.MUL, [x, x]))]
    assert delays == [0, 1, 0, 1, 1, 0, 2]
    assert node_delay(g.add(Op.MAX, [x, neg])) == node_delay(g.add(Op.MIN, [x, neg])) == 2


def test_chained_maxes_get_a_stage_each_at_cutoff_2():
    """A max is a compare (carry chain) and a select: two in one 2-level stage made the digits CNN's
    slowest stage path (max pooling)."""
    g = Graph()
    x = g.add_input('x', TensorType.uniform((4,), QInterval(-8, 7, 0)))
    a, b, c, d = (g.add(Op.GATHER, [x], {'index': np.array([k])}, name=f'x{k}') for k in range(4))
    m = g.add(Op.MAX, [g.add(Op.MAX, [a, b], name='m1'), g.add(Op.MAX, [c, d], name='m2')], name='m3')
    g.add_output('y', m)
    low = run_checked(g, ['lower'])
    assert adder_depth(low) == 4
    out = run_checked(low, ['pipeline'], latency_cutoff=2)
    assert out.meta['latency'] == 2


def test_repipelining_replaces_registers_and_round_trips():
    g = PassManager(options=CompileOptions()).run(mlp(7))
    p2 = pipeline_pass(g, CompileOptions(latency_cutoff=2))
    p1 = run_checked(p2, ['pipeline'], latency_cutoff=1)
    assert p1.meta['latency'] == adder_depth(g)
    text = print_graph(p1)
    back = parse_graph(text)
    verify(back)
    assert print_graph(back) == text and back.meta['latency'] == p1.meta['latency']


def test_pipeline_requires_lowered_graph():
    with pytest.raises(ValueError, match='lower'):
        pipeline_pass(mlp(), CompileOptions(latency_cutoff=1))
    assert pipeline_pass(mlp(), CompileOptions()).meta['latency'] == 0


def test_constant_outputs_need_no_registers():
    g = Graph()
    x = g.add_input('x', TensorType.uniform((2,), QInterval(-8, 7, 0)))
    g.add_output('y', g.add(Op.CMVM, [x], {'weights': np.zeros((2, 2)), 'bias': np.array([1.0, 0.0])}, name='c'))
    out = run_checked(g, ['lower', 'range', 'prune', 'pipeline'], latency_cutoff=1)
    assert out.meta['latency'] == 0 and out.count(Op.REG) == 0
    g.add_output('z', g.add(Op.NEG, [x], name='n'))
    out = run_checked(g, ['lower', 'range', 'prune', 'pipeline'], latency_cutoff=1)
    assert out.meta['latency'] == 1
    _balanced(out)


# --------------------------------------------------------------------------- stage assignment


def _lowered(seed: int, n_ops: int) -> Graph:
    return PassManager(['csd', 'cse', 'lower', 'range', 'prune'], CompileOptions()).run(random_graph(seed, n_ops))


def _schedules(g: Graph, cutoff: int) -> dict[str, tuple]:
    """Per method: (schedule, latency, register bits of the schedule, register bits of the built graph)."""
    out = {}
    for method in SCHEDULES:
        st = schedule(g, cutoff, method)
        built = pipeline_pass(g, CompileOptions(latency_cutoff=cutoff, extra={'pipeline.schedule': method}))
        lat = latency_of(g, st)
        assert built.meta['latency'] == lat
        reg_bits = sum(n.type.max_width for n in built if n.op is Op.REG)
        out[method] = (st, lat, register_bits(g, st, lat), reg_bits)
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_ops=st.integers(2, 12), cutoff=st.integers(1, 4))
def test_min_register_schedule_is_valid_and_never_worse(seed, n_ops, cutoff):
    g = _lowered(seed, n_ops)
    got = _schedules(g, cutoff)
    delays = {n: node_delay(n) for n in g}
    for st_, lat, bits, built_bits in got.values():
        assert is_valid(g, st_, cutoff, lat, delays)
        assert bits == built_bits  # the cost model is what the registered graph holds
    assert got['min_registers'][1] == got['asap'][1]  # same latency
    assert got['min_registers'][2] <= got['asap'][2]


def test_min_register_schedule_saves_registers_and_stays_exact():
    g = PassManager(options=CompileOptions()).run(mlp(3, n_in=12, hidden=10, n_out=6))
    got = _schedules(g, 2)
    assert got['min_registers'][2] < got['asap'][2]
    out = run_checked(g, ['pipeline'], latency_cutoff=2)  # check mode: bit-exact against the unpipelined graph
    _balanced(out)
    assert out.meta['latency'] == got['asap'][1]


def test_slow_node_gets_a_stage_of_its_own():
    low = run_checked(_mul_then_add(), ['lower'])  # the product takes 2 levels: more than a 1-level stage
    delays = {n: node_delay(n) for n in low}
    st_ = schedule(low, 1)
    assert is_valid(low, st_, 1, latency_of(low, st_), delays)
    (m,) = [n for n in low if n.op is Op.MUL]
    (s,) = [n for n in low if n.op is Op.ADD]
    assert st_[s] > st_[m]
    assert run_checked(low, ['pipeline'], latency_cutoff=1).meta['latency'] == 2  # one stage each


def test_unknown_schedule_is_a_clear_error():
    g = PassManager(options=CompileOptions()).run(mlp(1))
    with pytest.raises(ValueError, match='pipeline.schedule must be one of min_registers, asap'):
        pipeline_pass(g, CompileOptions(latency_cutoff=1, extra={'pipeline.schedule': 'alap'}))


def test_register_placement_is_deterministic():
    g = PassManager(options=CompileOptions()).run(mlp(5, n_in=12, hidden=10, n_out=6))
    first, again = (print_graph(pipeline_pass(g, CompileOptions(latency_cutoff=1))) for _ in range(2))
    assert first == again

"""``pipeline``: stage assignment, register chains, latency, and simulation equivalence."""

from __future__ import annotations

import numpy as np
import pytest

from hgqc.ir import Graph, Op, QInterval, TensorType, parse_graph, print_graph, verify
from hgqc.options import CompileOptions
from hgqc.passes import PassManager, adder_depth
from hgqc.passes.pipeline import node_delay, pipeline_pass

from .graphs import mlp, run_checked


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


def test_mul_takes_two_levels():
    g = Graph()
    x = g.add_input('x', TensorType.uniform((2,), QInterval(-8, 7, 0)))
    a = g.add(Op.GATHER, [x], {'index': np.array([0])}, name='a')
    b = g.add(Op.GATHER, [x], {'index': np.array([1])}, name='b')
    g.add_output('y', g.add(Op.ADD, [g.add(Op.MUL, [a, b], name='m'), a], name='s'))
    low = run_checked(g, ['lower'])
    assert adder_depth(low) == 3
    assert run_checked(g, ['lower', 'pipeline'], latency_cutoff=1).meta['latency'] == 3
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

"""Hypothesis: small random graphs of every supported op, compiled to every target, simulate
bit-exactly like the interpreter (the property behind each backend's promise).

``TARGET_SIMULATORS`` is the hook for targets: a new backend adds its target and the simulator
that verifies it, and this test covers it with the same graphs.
"""

from __future__ import annotations

import shutil

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hgqc
from hgqc.ir import Graph, Op
from hgqc.ir.ops import make_table, table_attrs
from hgqc.runtime.sim import random_int_inputs, verify_project

from ..passes.graphs import quantize, random_graph

TARGET_SIMULATORS = {'verilog': 'iverilog', 'vhdl': 'ghdl'}
_EXECUTABLE = {'iverilog': 'iverilog', 'ghdl': 'ghdl', 'verilator': 'verilator', 'gxx': 'g++'}


def random_table(graph: Graph, seed: int) -> None:
    """Route output ``y`` through a saturating quantizer and a random per-element lookup table."""
    rng = np.random.default_rng(seed)
    (name, y), *rest = graph.outputs
    q = quantize(graph, y, 1, 2, int(rng.integers(0, 3)), 'RND', 'SAT', name='q_table')
    f_out = int(rng.integers(-1, 4))
    tabs = [make_table(e.lo, e.f, f_out, rng.integers(-40, 40, e.hi - e.lo + 1)) for e in q.type.elems]
    graph.outputs = []
    graph.add_output(name, graph.add(Op.TABLE, [q], table_attrs(q.shape, tabs), name='lut'))
    for n, node in rest:
        graph.add_output(n, node)


GRAPHS = {'seed': st.integers(0, 2**32 - 1), 'n_ops': st.integers(1, 8), 'cutoff': st.integers(0, 2), 'table': st.booleans()}


def _graph(seed: int, n_ops: int, table: bool) -> Graph:
    graph = random_graph(seed, n_ops)
    if table:
        random_table(graph, seed)
    return graph


def _verify(graph: Graph, target: str, simulator: str, cutoff: int, seed: int) -> None:
    assert shutil.which(_EXECUTABLE[simulator]), f'{simulator} is required to verify the {target} target'
    project = hgqc.compile(graph, target=target, latency_cutoff=cutoff)
    xs = random_int_inputs(project.graph, 200, seed=seed % 1000)
    res = verify_project(project, xs, simulator=simulator)
    assert res.ok and res.total == 200, f'{target}/{simulator}: {res.first_mismatch_detail}'


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**GRAPHS)
def test_random_graphs_equal_interpreter_in_every_target(seed, n_ops, cutoff, table):
    graph = _graph(seed, n_ops, table)
    for target, simulator in TARGET_SIMULATORS.items():
        _verify(graph, target, simulator, cutoff, seed)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**GRAPHS)
def test_random_graphs_equal_interpreter_in_hls(seed, n_ops, cutoff, table):
    """Fewer examples than the HDL targets: each needs a g++ build."""
    _verify(_graph(seed, n_ops, table), 'hls4ml', 'gxx', cutoff, seed)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=GRAPHS['seed'], n_ops=GRAPHS['n_ops'], cutoff=GRAPHS['cutoff'])
def test_values_beyond_int64_equal_interpreter(seed, n_ops, cutoff):
    """Graphs whose values are up to 160 bits wide (the interpreter on Python ints) simulate
    exactly in every target, the C simulation's bridge passing wide ports as several words."""
    graph = random_graph(seed, n_ops, wide=True)
    assert max(n.type.max_width for n in graph.nodes.values()) > 62
    for target, simulator in [*TARGET_SIMULATORS.items(), ('hls4ml', 'gxx')]:
        _verify(graph, target, simulator, cutoff, seed)


def test_hls_writes_a_zero_held_in_a_wider_type_as_zero():
    """An output constant 0 typed [-1, 0] (a 1-bit WRAP quantize of 4.5) was written as -1."""
    _verify(random_graph(13, 10), 'hls4ml', 'gxx', 0, 13)

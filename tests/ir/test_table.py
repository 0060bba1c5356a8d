"""The ``table`` op: typing, interpreter, text form, verifier, prune/range, lowering and Verilog.

Tables here are built from integer functions evaluated on every value of the input type, so
the reference is a plain Python lookup; Keras-built tables are tested in the frontend tests.
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from hgqc.backends.verilog import emit_verilog
from hgqc.ir import Graph, Op, QInterval, TensorType, verify
from hgqc.ir.ops import make_table, table_attrs
from hgqc.ir.text import graphs_equal, parse_graph, print_graph
from hgqc.ir.verifier import VerificationError
from hgqc.options import CompileOptions
from hgqc.passes import DEFAULT_PIPELINE, PassManager
from hgqc.passes.pipeline import node_delay
from hgqc.runtime.interpreter import Interpreter
from hgqc.runtime.sim import random_int_inputs
from hgqc.runtime.sim import verify as hw_verify

from ..backends.test_verilog import _lint
from ..passes.graphs import quantize

needs_verilator = pytest.mark.skipif(shutil.which('verilator') is None, reason='verilator not installed')

# per element: (input type, function on the float value, output frac)
_FUNCS = [
    (QInterval(-32, 31, 3), math.tanh, 6),
    (QInterval(0, 63, 4), lambda v: 1 / (1 + math.exp(-v)), 7),
    (QInterval(-32, 31, 3), math.tanh, 6),  # shares element 0's table
    (QInterval(-8, 7, 0), lambda v: v * v - 3, 0),
    (QInterval(-3, 12, -1), lambda v: -abs(v) / 4, 2),
]


def _table_for(q: QInterval, fn, f_out: int) -> dict:
    vals = [math.floor(fn(math.ldexp(k, -q.f)) * 2**f_out + 0.5) for k in range(q.lo, q.hi + 1)]
    return make_table(q.lo, q.f, f_out, vals)


def table_graph() -> tuple[Graph, list[dict]]:
    g = Graph('tables')
    t_in = TensorType((len(_FUNCS),), tuple(q for q, _, _ in _FUNCS))
    x = g.add_input('x', t_in)
    tabs = [_table_for(q, fn, fo) for q, fn, fo in _FUNCS]
    y = g.add(Op.TABLE, [x], table_attrs(t_in.shape, tabs), name='lut')
    g.add_output('y', y)
    return g, tabs


def _reference(x: np.ndarray, tabs: list[dict]) -> np.ndarray:
    out = np.zeros_like(x)
    for e, tab in enumerate(tabs):
        out[:, e] = np.asarray(tab['values'])[x[:, e] - tab['lo']]
    return out


def _all_inputs(g: Graph) -> np.ndarray:
    t = g.inputs[0].type
    n = max(e.hi - e.lo + 1 for e in t.elems)
    return np.stack([np.arange(n) % (e.hi - e.lo + 1) + e.lo for e in t.elems], axis=1).astype(np.int64)


def test_identical_tables_are_stored_once():
    g, _ = table_graph()
    node = g.outputs[0][1]
    assert len(node.attrs['tables']) == 4
    sel = node.attrs['select']
    assert sel[0] == sel[2] and len(set(sel.tolist())) == 4


def test_interpreter_matches_lookup_on_every_input():
    g, tabs = table_graph()
    verify(g)
    x = _all_inputs(g)
    (y,) = Interpreter(g).run_int([x])
    assert np.array_equal(y, _reference(x, tabs))
    t = g.outputs[0][1].type
    assert all(e.f == tab['f'] for e, tab in zip(t.elems, tabs))
    assert np.array_equal(t.lo.astype(np.int64), y.min(axis=0)) and np.array_equal(t.hi.astype(np.int64), y.max(axis=0))


def test_text_round_trip():
    g, _ = table_graph()
    text = print_graph(g)
    assert graphs_equal(parse_graph(text), g)
    assert text.count('"values"') == 4  # distinct tables only


def test_verifier_rejects_an_input_outside_the_table():
    g = Graph('bad')
    x = g.add_input('x', TensorType.uniform((2,), QInterval(-4, 4, 1)))
    tab = make_table(-4, 1, 0, range(8))  # covers -4..3 only
    g.add(Op.TABLE, [x], table_attrs((2,), [tab, tab]), type=TensorType.uniform((2,), QInterval(0, 8, 0)))
    with pytest.raises(VerificationError, match='table domain'):
        verify(g)


def test_verifier_rejects_an_input_finer_than_the_table():
    g = Graph('fine')
    x = g.add_input('x', TensorType.uniform((), QInterval(-4, 3, 2)))
    with pytest.raises(ValueError, match='finer than the table step'):
        g.add(Op.TABLE, [x], table_attrs((), [make_table(-4, 1, 0, range(8))]))


def _narrowed_graph() -> Graph:
    """A saturating quantizer in front of the table makes most of each table unreachable."""
    g, _ = table_graph()
    x, lut = g.inputs[0], g.outputs[0][1]
    q = quantize(g, x, [1, 0, 1, 1, 1], [1, 1, 0, 1, 2], [1, 2, 1, 0, -1], 'RND', 'SAT', 'narrow')
    g2 = Graph('narrowed')
    x2 = g2.add_input('x', x.type)
    q2 = g2.add(Op.QUANTIZE, [x2], q.attrs, name='narrow')
    g2.add_output('y', g2.add(Op.TABLE, [q2], lut.attrs, name='lut'))
    return g2


def test_prune_shrinks_tables_to_the_reachable_inputs_and_keeps_values():
    g = _narrowed_graph()
    before = sum(len(t['values']) for t in g.outputs[0][1].attrs['tables'])
    opts = CompileOptions(check=True, check_samples=200)
    out = PassManager(['range', 'prune'], opts).run(g)
    lut = next(n for n in out.nodes.values() if n.op is Op.TABLE)
    after = sum(len(t['values']) for t in lut.attrs['tables'])
    assert after < before
    x = _all_inputs(g)
    assert np.array_equal(Interpreter(out).run_int([x])[0], Interpreter(g).run_int([x])[0])


def test_lowered_tables_are_scalar_and_delay_grows_with_address_bits():
    g, _ = table_graph()
    out = PassManager(list(DEFAULT_PIPELINE), CompileOptions(check=True, check_samples=200, latency_cutoff=1)).run(g)
    luts = [n for n in out.nodes.values() if n.op is Op.TABLE]
    assert luts and all(n.shape == () and len(n.attrs['tables']) == 1 for n in luts)
    delays = {n.inputs[0].type.max_width: node_delay(n) for n in luts}
    assert delays[6] == 1 and delays[4] == 1
    assert out.meta['latency'] >= 1


@needs_verilator
@pytest.mark.parametrize('cutoff', [0, 1])
def test_verilator_equals_interpreter(tmp_path, cutoff):
    g = _narrowed_graph()
    y = g.outputs[0][1]
    g.outputs = []
    z = g.add(Op.ADD, [y, g.add(Op.TABLE, [g.inputs[0]], table_graph()[0].outputs[0][1].attrs, name='lut2')], name='sum')
    g.add_output('y', z)
    opts = CompileOptions(check=True, check_samples=100, latency_cutoff=cutoff)
    hw = PassManager(list(DEFAULT_PIPELINE), opts).run(g)
    x = random_int_inputs(hw, 2000, seed=cutoff)
    every = _all_inputs(g)
    x[0][-len(every) :] = every
    src = emit_verilog(hw)
    assert 'case (' in src['model.v']
    _lint(tmp_path, src)
    res = hw_verify(hw, x, src, workdir=tmp_path)
    assert res.ok, res


@pytest.mark.skipif(shutil.which('ghdl') is None, reason='ghdl not installed')
@pytest.mark.parametrize('cutoff', [0, 1])
def test_ghdl_equals_interpreter(tmp_path, cutoff):
    from hgqc.backends.vhdl import emit_vhdl

    g, _ = table_graph()
    opts = CompileOptions(check=True, check_samples=100, latency_cutoff=cutoff)
    hw = PassManager(list(DEFAULT_PIPELINE), opts).run(g)
    x = random_int_inputs(hw, 2000, seed=cutoff)
    every = _all_inputs(g)
    x[0][-len(every) :] = every  # every table entry is read at least once
    src = emit_vhdl(hw)
    assert ' select ' in src['model.vhd']
    res = hw_verify(hw, x, src, simulator='ghdl', workdir=tmp_path)
    assert res.ok and res.total == 2000, res

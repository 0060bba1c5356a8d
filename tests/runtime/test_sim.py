"""Simulation driver: error reporting, input checks, sources, mismatch reports, random graphs.

Bit-exactness of the big hand-built graphs lives in tests/backends/test_verilog.py; here the
driver itself is tested, plus a hypothesis sweep of random small adder-level graphs (with
random pipelining) simulated with Icarus, which compiles in a fraction of a second.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hgqc.backends.verilog import emit_verilog
from hgqc.backends.vhdl import emit_vhdl
from hgqc.ir import Graph, Node, Op, Overflow, QInterval, Round, TensorType, verify
from hgqc.ir.types import ZERO
from hgqc.runtime.sim import (
    SimulationError,
    Simulator,
    check_inputs,
    default_simulator,
    random_int_inputs,
    simulate,
    simulators_for,
    verify_project,
)
from hgqc.runtime.sim import verify as hw_verify

needs_verilator = pytest.mark.skipif(shutil.which('verilator') is None, reason='verilator not installed')
needs_iverilog = pytest.mark.skipif(shutil.which('iverilog') is None, reason='iverilog not installed')
needs_ghdl = pytest.mark.skipif(shutil.which('ghdl') is None, reason='ghdl not installed')


def small_graph() -> Graph:
    """y = [relu(a + b/2), sat(a - b)] and a wide (93-bit) second output of a + b."""
    g = Graph('small')
    x = g.add_input('x', TensorType((2,), (QInterval(-100, 100, 2), QInterval(0, 63, 0))))
    a = g.add(Op.GATHER, [x], {'index': np.array(0)})
    b = g.add(Op.GATHER, [x], {'index': np.array(1)})
    s = g.add(Op.SHIFT_ADD, [a, b], {'shift': -1, 'sub': False})
    r = g.add(Op.RELU, [s])
    d = g.add(Op.SUB, [a, b])
    q = g.add(Op.QUANTIZE, [d], {'k': np.array(1), 'i': np.array(4), 'f': np.array(0), 'round': 'RND', 'overflow': 'SAT'})
    g.add_output('y', g.add(Op.GATHER, [r, q], {'index': np.array([0, 1])}))
    big = TensorType((), (QInterval(-(1 << 29), 1 << 29, 2),))  # stored far wider than needed
    g.add_output('wide', g.add(Op.GATHER, [g.add(Op.ADD, [a, b], type=big)], {'index': np.array([0, 0, 0])}))  # 93 bits
    verify(g)
    return g


# =========================================================================== errors


@pytest.mark.parametrize(('simulator', 'other'), [('verilator', 'iverilog'), ('iverilog', 'verilator')])
def test_missing_simulator_is_explained(monkeypatch, simulator, other):
    monkeypatch.setenv('PATH', '')
    g = small_graph()
    with pytest.raises(SimulationError) as e:
        simulate(emit_verilog(g), g, random_int_inputs(g, 2), simulator=simulator)
    assert (
        str(e.value) == f'{simulator} not found on PATH; install it (apt-get install {simulator}) or choose --simulator {other}'
    )


def test_missing_ghdl_is_explained(monkeypatch):
    monkeypatch.setenv('PATH', '')
    g = small_graph()
    with pytest.raises(SimulationError, match=r'ghdl not found on PATH; install it \(apt-get install ghdl\)'):
        simulate(emit_vhdl(g), g, random_int_inputs(g, 2), simulator='ghdl')


@needs_ghdl
def test_ghdl_build_failure_shows_first_errors():
    g = small_graph()
    broken = {'model.vhd': emit_vhdl(g)['model.vhd'].replace('y <=', 'y <= <=')}
    with pytest.raises(SimulationError) as e:
        simulate(broken, g, random_int_inputs(g, 2), simulator='ghdl')
    msg = str(e.value)
    assert 'ghdl analysis failed' in msg and 'model.vhd' in msg, msg


@needs_ghdl
def test_ghdl_wide_ports_and_zero_vectors():
    g = small_graph()
    with Simulator(emit_vhdl(g), g, 'ghdl') as sim:
        xs = random_int_inputs(g, 300, seed=3)
        assert hw_verify(g, xs, sim=sim).ok
        empty = sim.run([x[:0] for x in xs])
        assert [e.shape for e in empty] == [(0, 2), (0, 3)]


def test_unknown_simulator():
    g = small_graph()
    with pytest.raises(ValueError, match='unknown simulator'):
        simulate(emit_verilog(g), g, random_int_inputs(g, 2), simulator='modelsim')


@pytest.mark.parametrize(
    'simulator', [pytest.param('iverilog', marks=needs_iverilog), pytest.param('verilator', marks=needs_verilator)]
)
def test_build_failure_shows_first_errors(simulator):
    g = small_graph()
    broken = {'model.v': emit_verilog(g)['model.v'].replace('assign y =', 'assign y = = ')}
    with pytest.raises(SimulationError) as e:
        simulate(broken, g, random_int_inputs(g, 2), simulator=simulator)
    msg = str(e.value)
    assert 'failed' in msg and 'model.v' in msg and ('syntax error' in msg or '%Error' in msg), msg


@needs_iverilog
def test_undriven_output_is_reported():
    g = small_graph()
    text = emit_verilog(g)['model.v']
    undriven = {'model.v': '\n'.join(line for line in text.splitlines() if not line.strip().startswith('assign y ='))}
    with pytest.raises(SimulationError, match='undefined'):
        simulate(undriven, g, random_int_inputs(g, 3), simulator='iverilog')


def test_inputs_are_checked():
    g = small_graph()
    assert check_inputs(g, [np.array([[-100, 63], [100, 0]])]) == 2
    with pytest.raises(ValueError, match='outside its type'):
        check_inputs(g, [np.array([[0, 64]])])
    with pytest.raises(ValueError, match='expected 1 input'):
        check_inputs(g, [])
    with pytest.raises(ValueError, match='shape'):
        check_inputs(g, [np.zeros((3, 3), np.int64)])
    with pytest.raises(ValueError, match='integer'):
        check_inputs(g, [np.zeros((3, 2))])


# =========================================================================== sources and reports


@needs_iverilog
def test_simulate_project_directory_and_workdir(tmp_path):
    g = small_graph()
    src = tmp_path / 'project' / 'src'
    src.mkdir(parents=True)
    for name, text in emit_verilog(g, top='net').items():
        (src / name).write_text(text)
    work = tmp_path / 'work'
    xs = random_int_inputs(g, 300, seed=1)
    got = simulate(src, g, xs, simulator='iverilog', top='net', workdir=work)
    assert (work / 'hgqc_tb.v').exists() and (work / 'in0.hex').exists()  # kept for inspection
    res = hw_verify(g, xs, src=src, simulator='iverilog', top='net')
    assert res.ok and res.total == 300
    a, b = xs[0][:, 0], xs[0][:, 1]
    np.testing.assert_array_equal(got[1], np.repeat((a + 4 * b)[:, None], 3, axis=1))


@needs_iverilog
def test_mismatch_is_reported_with_location():
    g = small_graph()
    wrong = {'model.v': emit_verilog(g)['model.v'].replace(' - ', ' + ', 1)}
    res = hw_verify(g, random_int_inputs(g, 200, seed=2), src=wrong, simulator='iverilog')
    assert not res.ok and 0 < res.mismatches <= res.total == 200
    assert res.first_mismatch_detail is not None and 'output "y"' in res.first_mismatch_detail


@needs_verilator
def test_verilator_wide_ports_and_zero_vectors():
    g = small_graph()
    with Simulator(emit_verilog(g), g, 'verilator') as sim:
        xs = random_int_inputs(g, 500, seed=3)
        assert hw_verify(g, xs, sim=sim).ok
        empty = sim.run([x[:0] for x in xs])
        assert [e.shape for e in empty] == [(0, 2), (0, 3)]


@needs_iverilog
def test_verify_project_uses_its_sources_and_top():
    g = small_graph()
    files = {f'src/{n}': t for n, t in emit_verilog(g, top='net').items()}
    project = SimpleNamespace(graph=g, target='verilog', top='net', files=files)
    res = verify_project(project, random_int_inputs(g, 100), simulator='iverilog')
    assert res.ok and res.total == 100
    with pytest.raises(SimulationError, match='iverilog cannot simulate a vhdl project; choose --simulator ghdl'):
        verify_project(
            SimpleNamespace(graph=g, target='vhdl', top='net', files={}), random_int_inputs(g, 1), simulator='iverilog'
        )
    with pytest.raises(SimulationError, match='ghdl cannot simulate a verilog project; choose --simulator verilator or iverilog'):
        verify_project(project, random_int_inputs(g, 1), simulator='ghdl')


@needs_ghdl
def test_verify_vhdl_project_defaults_to_ghdl(tmp_path):
    g = small_graph()
    files = {f'src/{n}': t for n, t in emit_vhdl(g, top='net').items()}
    project = SimpleNamespace(graph=g, target='vhdl', top='net', files=files)
    assert default_simulator('vhdl') == 'ghdl'
    res = verify_project(project, random_int_inputs(g, 100), workdir=tmp_path)
    assert res.ok and res.total == 100
    assert (tmp_path / 'hgqc_tb.vhd').is_file()


def test_default_simulator_follows_the_target(monkeypatch):
    monkeypatch.setenv('PATH', '')  # nothing installed: the first choice, so the error explains how to install it
    assert (default_simulator('verilog'), default_simulator('vhdl')) == ('verilator', 'ghdl')
    assert simulators_for('verilog') == ('verilator', 'iverilog') and simulators_for('vhdl') == ('ghdl',)
    with pytest.raises(SimulationError, match='no simulator can build'):
        default_simulator('spice')


def test_random_inputs_cover_extremes_and_stay_in_range():
    g = small_graph()
    (x,) = random_int_inputs(g, 100, seed=7)
    assert x.shape == (100, 2)
    assert list(x[0]) == [-100, 0] and list(x[1]) == [100, 63]
    assert x[:, 0].min() >= -100 and x[:, 1].max() <= 63
    np.testing.assert_array_equal(x, random_int_inputs(g, 100, seed=7)[0])


@needs_iverilog
def test_signed_result_of_unsigned_operands_in_a_wider_stored_type():
    """Found by test_random_adder_graphs_match_interpreter (seed-dependent): 0 - u with u in [0, 1]
    is -1 in its 1-bit natural type, but the emitter read the bits with the first operand's
    (unsigned) sign, so storing the result in a wider type zero-extended it: hardware 1, interpreter -1."""
    g = Graph('signs')
    x = g.add_input('x', TensorType((3,), (ZERO, QInterval(0, 1, 0), QInterval(-2, 1, 0))))
    z, u, s = (g.add(Op.GATHER, [x], {'index': np.array(i)}) for i in range(3))
    wide = TensorType((), (QInterval(-9, 9, 0),))
    outs = [
        g.add(Op.SUB, [z, u], type=wide),  # the minimized failing example
        g.add(Op.ADD, [u, s], type=wide),
        g.add(Op.SHIFT_ADD, [u, u], {'shift': 1, 'sub': True}, type=wide),
        g.add(Op.MUL, [u, s], type=wide),
        g.add(Op.NEG, [u], type=wide),
    ]
    g.add_output('y', g.add(Op.GATHER, outs, {'index': np.arange(len(outs))}))
    verify(g)
    xs = [np.array([[0, a, b] for a in (0, 1) for b in range(-2, 2)])]
    res = hw_verify(g, xs, src=emit_verilog(g), simulator='iverilog')
    assert res.ok and res.total == 8, res.first_mismatch_detail


# =========================================================================== random graphs


@st.composite
def qintervals(draw) -> QInterval:
    if draw(st.integers(0, 9)) == 0:
        return ZERO
    a, b = draw(st.integers(-300, 300)), draw(st.integers(-300, 300))
    if a == b == 0:
        return ZERO
    return QInterval(min(a, b), max(a, b), draw(st.integers(-3, 6)))


def _keep(g: Graph, node: Node, pool: list[Node], draw) -> None:
    """Add ``node`` to the pool (possibly re-stored in a finer, wider type) unless it is too wide."""
    q = node.type.elems[0]
    if q.width > 40:
        g.erase(node)
        return
    if not q.is_const and draw(st.integers(0, 3)) == 0:
        fine = q.with_frac(q.f + draw(st.integers(0, 3)))
        t = TensorType((), (QInterval(fine.lo - draw(st.integers(0, 50)), fine.hi + draw(st.integers(0, 50)), fine.f),))
        wide = g.add(node.op, node.inputs, node.attrs, type=t, name='widened')
        g.erase(node)
        node = wide
    pool.append(node)


_KINDS = ('binary', 'quantize', 'shift_add', 'unary', 'quantize', 'binary', 'const', 'stage')
_BINARY = (Op.ADD, Op.SUB, Op.MAX, Op.MIN, Op.MUL)
_ROUNDS, _OVERFLOWS = list(Round), list(Overflow)


@st.composite
def adder_graphs(draw) -> Graph:
    g = Graph('random')
    pool: list[Node] = []
    staged = False
    for k in range(draw(st.integers(1, 2))):
        t = TensorType((n := draw(st.integers(1, 3)),), tuple(draw(qintervals()) for _ in range(n)))
        x = g.add_input(f'in{k}', t)
        pool += [g.add(Op.GATHER, [x], {'index': np.array(i)}) for i in range(n)]
    # Hypothesis favours the first choice of a sampled_from; rotating through the choices from a
    # drawn offset makes every op and every round/overflow mode appear across a few examples.
    rot = draw(st.integers(0, 23))
    seen = dict.fromkeys(_KINDS, rot)
    for step in range(draw(st.integers(1, 12))):
        kind = _KINDS[(rot + step) % len(_KINDS)]
        seen[kind] += 1
        j = seen[kind]
        a, b = draw(st.sampled_from(pool)), draw(st.sampled_from(pool))
        if kind == 'stage':  # register every live value at once: paths stay balanced
            pool = [g.add(Op.REG, [v], {'stage': 0}) for v in pool]
            staged = True
            continue
        if kind == 'binary':
            node = g.add(_BINARY[j % len(_BINARY)], [a, b])
        elif kind == 'shift_add':
            node = g.add(Op.SHIFT_ADD, [a, b], {'shift': draw(st.integers(-6, 6)), 'sub': draw(st.booleans())})
        elif kind == 'unary':
            node = g.add((Op.NEG, Op.RELU)[j % 2], [a])
        elif kind == 'quantize':
            t = a.type.elems[0]
            attrs = {
                'k': np.array(draw(st.integers(0, 1))),
                'i': np.array(draw(st.integers(-2, 8))),
                'f': np.array(t.f + draw(st.integers(-6, 3))),
                'round': _ROUNDS[j % len(_ROUNDS)].value,
                'overflow': _OVERFLOWS[(j // len(_ROUNDS) + rot) % len(_OVERFLOWS)].value,
            }
            node = g.add(Op.QUANTIZE, [a], attrs)
        else:
            node = g.add(Op.CONST, [], {'value': np.array(draw(st.integers(-40, 40)) / 8)})
        _keep(g, node, pool, draw)
    idx = draw(st.lists(st.integers(-1, len(pool) - 1), min_size=1, max_size=6))
    g.add_output('y', g.add(Op.GATHER, pool, {'index': np.array(idx)}))
    if not staged and draw(st.booleans()):
        g.add_output('x', g.inputs[0])  # a straight wire (or a 1-bit dummy if it has no bits)
    verify(g)
    return g


@needs_iverilog
@settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(adder_graphs())
def test_random_adder_graphs_match_interpreter(g):
    files = emit_verilog(g)
    res = hw_verify(g, random_int_inputs(g, 300, seed=0), src=files, simulator='iverilog')
    assert res.ok and res.total == 300, res.first_mismatch_detail
    if shutil.which('verilator'):  # lint is cheap, so every random netlist is also checked -Wall clean
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / 'model.v').write_text(files['model.v'])
            lint = subprocess.run(['verilator', '--lint-only', '-Wall', 'model.v'], cwd=d, capture_output=True, text=True)
        assert lint.returncode == 0 and not lint.stderr.strip(), lint.stderr


@needs_ghdl
@settings(max_examples=30, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(adder_graphs())
def test_random_adder_graphs_match_interpreter_in_ghdl(g):
    res = hw_verify(g, random_int_inputs(g, 300, seed=0), src=emit_vhdl(g), simulator='ghdl')
    assert res.ok and res.total == 300, res.first_mismatch_detail

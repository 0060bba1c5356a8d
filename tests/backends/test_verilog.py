"""Verilog backend: naming, port layout, lint, synthesis, and bit-exactness against the interpreter.

The graphs are built by hand at adder level (what ``lower``/``pipeline`` produce): tensor inputs,
``gather`` extracting scalars, scalar ops, ``gather`` packing the outputs. The two big graphs
(every op and every round x overflow mode, and a pipelined one) are compiled once per module
and simulated on thousands of random vectors including the interval corners.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from hgqc.backends.common import BackendError, Namespace, is_identifier, pack_port, port_layout, unpack_port
from hgqc.backends.verilog import emit_verilog
from hgqc.ir import Graph, Node, Op, Overflow, QInterval, Round, TensorType, verify
from hgqc.ir.types import ZERO
from hgqc.options import CompileOptions
from hgqc.passes.pipeline import pipeline_pass
from hgqc.runtime.sim import Simulator, random_int_inputs
from hgqc.runtime.sim import verify as hw_verify

N_VECTORS = 4000

needs_verilator = pytest.mark.skipif(shutil.which('verilator') is None, reason='verilator not installed')
needs_iverilog = pytest.mark.skipif(shutil.which('iverilog') is None, reason='iverilog not installed')
needs_yosys = pytest.mark.skipif(shutil.which('yosys') is None, reason='yosys not installed')


# =========================================================================== graph builders


def scalar(g: Graph, src: Node, i: int, name: str = '') -> Node:
    return g.add(Op.GATHER, [src], {'index': np.array(i)}, name=name)


def quant(g: Graph, x: Node, k: int, i: int, f: int, rnd: Round, ovf: Overflow, name: str = '') -> Node:
    attrs = {'k': np.array(k), 'i': np.array(i), 'f': np.array(f), 'round': rnd.value, 'overflow': ovf.value}
    return g.add(Op.QUANTIZE, [x], attrs, name=name)


def const(g: Graph, v: float, type: QInterval | None = None) -> Node:
    t = None if type is None else TensorType((), (type,))
    return g.add(Op.CONST, [], {'value': np.array(v)}, type=t)


def widened(g: Graph, op: Op, args: list[Node], attrs: dict, extra_f: int, pad: int) -> Node:
    """A node whose stored type is finer and wider than its op's natural result."""
    nat = g.add(op, args, attrs)
    q = nat.type.elems[0].with_frac(nat.type.elems[0].f + extra_f)
    t = TensorType((), (QInterval(q.lo - pad, q.hi + pad, q.f),))
    node = g.add(op, args, attrs, type=t, name='widened')
    g.erase(nat)
    return node


def kitchen_sink_graph() -> Graph:
    """Combinational: every op, every round x overflow mode, mixed signedness and steps,
    zero-width elements and ports, negative shifts, wide (>64-bit) and medium (33..64-bit) ports."""
    g = Graph('kitchen_sink')
    x = g.add_input(
        'x',
        TensorType(
            (6,),
            (
                QInterval(-128, 127, 3),  # signed 8 bits
                QInterval(0, 255, 0),  # unsigned 8 bits
                QInterval(-37, 90, 5),  # odd signed interval
                ZERO,  # zero-width element
                QInterval(-1, 0, -2),  # 1-bit signed, step 4
                QInterval(0, 1, 7),  # 1-bit unsigned, step 2^-7
            ),
        ),
    )
    z = g.add_input('z', TensorType.uniform((3,), QInterval(-2048, 2047, 4)))  # 36 bits: 64-bit C++ port
    w = g.add_input('w', TensorType.uniform((2, 2), QInterval(-(1 << 40), (1 << 40) - 1, 20)))  # 164 bits
    g.add_input('e', TensorType.uniform((2,), ZERO))  # no bits at all: a 1-bit dummy port
    xs = [scalar(g, x, i, name=f'x{i}') for i in range(6)]
    zs = [scalar(g, z, i) for i in range(3)]
    ws = [scalar(g, w, i) for i in range(4)]
    x0, x1, x2, x3, x4, x5 = xs
    vals: list[Node] = []
    pairs = [(x0, x1), (x0, x2), (x1, x2), (x2, x0), (x0, x3), (x4, x5), (x5, x1), (zs[0], x2), (x4, x4)]
    for a, b in pairs:
        vals += [g.add(op, [a, b], name='binary') for op in (Op.ADD, Op.SUB, Op.MAX, Op.MIN)]
    for a, b in [(x0, x2), (x1, x4), (x4, x5), (x0, x0), (x1, x5), (zs[1], x0)]:
        vals.append(g.add(Op.MUL, [a, b], name='mul'))
    for a in (x0, x1, x2, x4, x5, zs[2]):
        vals += [g.add(Op.NEG, [a], name='neg'), g.add(Op.RELU, [a], name='relu')]
    for a, b, shift, sub in [
        (x0, x1, 3, False),
        (x2, x0, -2, True),
        (x1, x2, -6, True),
        (x4, x0, 5, False),
        (x0, x0, 0, True),
        (x5, x4, -9, False),
        (x3, x1, 2, True),
        (ws[0], ws[1], -7, True),
        (ws[2], ws[3], 4, False),
    ]:
        vals.append(g.add(Op.SHIFT_ADD, [a, b], {'shift': shift, 'sub': sub}, name='shift_add'))
    # constants: folded, negative, zero, finer/wider stored type, coarser stored type of a constant
    c1 = const(g, -3.25)
    vals += [g.add(Op.ADD, [x0, c1]), g.add(Op.MAX, [x2, const(g, 0.75)]), const(g, 0.0), c1]
    vals.append(const(g, 1.5, QInterval(-16, 15, 3)))
    half = const(g, 0.5)
    vals.append(g.add(Op.ADD, [half, half], type=TensorType((), (QInterval(1, 1, 0),))))
    # stored types finer and wider than the natural result
    vals += [widened(g, Op.ADD, [x0, x2], {}, 2, 5), widened(g, Op.RELU, [x2], {}, 1, 3)]
    vals.append(widened(g, Op.SHIFT_ADD, [x1, x4], {'shift': -1, 'sub': True}, 3, 100))
    # quantize: every mode on sources with different signedness, steps and overflow reach
    s_sub = g.add(Op.SUB, [x1, x2])
    sources = [
        (x2, (1, 1, 2)),  # drop 3 bits, overflow above only
        (s_sub, (1, 3, 1)),  # wide signed source, both sides overflow
        (x1, (0, 5, -2)),  # unsigned, coarser than integer step
        (x0, (1, -1, 3)),  # negative integer bits (n = i + f = 2)
        (x1, (1, 4, 2)),  # finer step than the source: pure shift, saturating
        (x5, (1, 1, 2)),  # dropping more bits than the value has
        (x4, (1, 3, -5)),  # ditto for a signed value with a negative step
        (zs[0], (0, 2, 3)),  # signed to unsigned
    ]
    for (src, (k, i, f)), rnd, ovf in product(sources, Round, Overflow):
        vals.append(quant(g, src, k, i, f, rnd, ovf, name=f'q_{rnd.value}_{ovf.value}'))
    vals.append(quant(g, x0, 1, -4, 2, Round.RND, Overflow.SAT))  # k + i + f <= 0: constant 0
    # tensor-level elementwise op (the emitter is per element) and a tensor gather feeding it
    pair = g.add(Op.GATHER, [x, z], {'index': np.array([0, 7])})
    tq = g.add(
        Op.QUANTIZE,
        [pair],
        {'k': np.array([1, 0]), 'i': np.array([2, 3]), 'f': np.array([1, 0]), 'round': 'RND_CONV', 'overflow': 'SAT_SYM'},
    )
    gat = g.add(Op.GATHER, [tq], {'index': np.array(1)}, type=TensorType((), (QInterval(-64, 63, 2),)))  # wider stored
    vals += [scalar(g, tq, 0), gat]
    n = len(vals)
    idx = np.concatenate([[-1, -1, -1], np.arange(n)])  # three constant-0 entries first
    g.add_output('y', g.add(Op.GATHER, vals, {'index': idx}, name='pack_y'))
    g.add_output('y2', g.add(Op.GATHER, vals[:40], {'index': np.arange(6).reshape(2, 3) * 7}))
    g.add_output('nothing', g.add(Op.GATHER, [x], {'index': np.array([3, -1])}))  # total width 0
    g.add_output('x_through', x)
    g.add_output('scalar', vals[5])
    verify(g)
    return g


def pipelined_graph() -> Graph:
    """Three register stages, a two-deep reg chain, constants entering late, mixed types."""
    g = Graph('pipelined')
    a = g.add_input(
        'a', TensorType((4,), (QInterval(-512, 511, 4), QInterval(0, 63, 1), QInterval(-8, 7, 0), QInterval(0, 3, -1)))
    )
    s = [scalar(g, a, i, name='in') for i in range(4)]
    st0 = [
        g.add(Op.SHIFT_ADD, [s[0], s[1]], {'shift': 2, 'sub': True}, name='dense'),
        g.add(Op.SHIFT_ADD, [s[2], s[3]], {'shift': -3, 'sub': False}, name='dense'),
        g.add(Op.MAX, [s[0], s[2]], name='dense'),
        s[3],
    ]
    r0 = [g.add(Op.REG, [v], {'stage': 0}, name='stage0') for v in st0]
    st1 = [
        g.add(Op.ADD, [r0[0], r0[1]], name='dense_1'),
        quant(g, r0[2], 1, 3, 1, Round.RND_CONV, Overflow.SAT, name='act'),
        g.add(Op.RELU, [r0[0]], name='act'),
        g.add(Op.SUB, [r0[3], const(g, 1.25)], name='bias'),
    ]
    r1 = [g.add(Op.REG, [v], {'stage': 1}, name='stage1') for v in st1]
    q = quant(g, r1[0], 1, 4, 0, Round.TRN_ZERO, Overflow.WRAP, name='act_1')
    wide = TensorType((), (QInterval(-4096, 4095, 2),))
    r2 = [g.add(Op.REG, [q], {'stage': 2}, name='stage2'), g.add(Op.REG, [r1[1]], {'stage': 2}, type=wide)]
    chain = g.add(Op.REG, [g.add(Op.REG, [r1[2]], {'stage': 2})], {'stage': 3})
    chain2 = g.add(Op.REG, [g.add(Op.REG, [r1[3]], {'stage': 2})], {'stage': 3})
    r3 = [g.add(Op.REG, [v], {'stage': 3}) for v in r2]
    out = g.add(Op.GATHER, [*r3, chain, chain2, const(g, 2.0)], {'index': np.array([0, 1, 2, 3, -1, 4])}, name='out')
    g.add_output('y', out)
    verify(g)
    return g


def hostile_names_graph() -> Graph:
    g = Graph('hostile')
    names = ['module', 'reg', 'input', '1st-layer', 'Ünïcødé 层', 'x' * 200, 'Data', 'data', 'clk', '', 'entity', 'class', 'name']
    ins = [g.add_input(n, TensorType.uniform((1,), QInterval(-8, 7, 1))) for n in names]
    for k, node in enumerate(ins):
        g.add_output(
            ['output', 'wire', 'DATA', 'eval', 'y', 'Y', 'endmodule', 'signal', 'y y', 'y-y', 'model', 'always', 'int'][k], node
        )
    return g


# =========================================================================== fixtures


@pytest.fixture(scope='module')
def kitchen_sink() -> Graph:
    return kitchen_sink_graph()


@pytest.fixture(scope='module')
def pipelined() -> Graph:
    return pipelined_graph()


def _sim(request, graph: Graph, simulator: str) -> Simulator:
    sim = Simulator(emit_verilog(graph), graph, simulator)
    request.addfinalizer(sim.close)
    return sim


@pytest.fixture(scope='module')
def kitchen_sink_verilator(request, kitchen_sink):
    return _sim(request, kitchen_sink, 'verilator')


@pytest.fixture(scope='module')
def pipelined_verilator(request, pipelined):
    return _sim(request, pipelined, 'verilator')


# =========================================================================== naming


def test_namespace_sanitizes_hostile_names():
    ns = Namespace()
    hints = [
        'module',
        'reg',
        'input',
        'Input',
        '1st',
        '',
        '___',
        'a__b__',
        'Ünïcødé 层',
        'x' * 300,
        'Data',
        'data',
        'DATA',
        'signal',
        'new',
    ]
    names = [ns.take(h) for h in hints]
    assert all(is_identifier(n) for n in names), names
    assert len({n.lower() for n in names}) == len(names)
    assert all(len(n) <= 48 for n in names)
    assert names[:5] == ['module_1', 'reg_1', 'input_1', 'Input_2', 'n_1st']
    assert names[7] == 'a_b' and names[8] == 'Unicde'  # ø has no ASCII decomposition, 层 none at all
    assert names[10:13] == ['Data', 'data_1', 'DATA_2']
    # deterministic: a fresh namespace gives the same answers
    ns2 = Namespace()
    assert [ns2.take(h) for h in hints] == names


def test_namespace_suffixes_skip_taken_names_and_respect_length():
    ns = Namespace(max_len=10)
    assert [ns.take(h) for h in ['x_1', 'x', 'x', 'abcdefghijklmnop', 'abcdefghijklmnop']] == [
        'x_1',
        'x',
        'x_2',
        'abcdefghij',
        'abcdefgh_1',
    ]


def test_hostile_port_names_are_valid_unique_and_lint_clean(tmp_path):
    g = hostile_names_graph()
    layout = port_layout(g)
    idents = [p['port'] for p in layout['inputs'] + layout['outputs']]
    assert all(is_identifier(i) for i in idents)
    assert len({i.lower() for i in idents}) == len(idents)
    assert 'clk' not in {i.lower() for i in idents}  # reserved for the clock even without one
    src = emit_verilog(g)['model.v']
    assert re.search(r'input wire \[3:0\] module_1 ', src)
    if shutil.which('verilator'):
        _lint(tmp_path, {'model.v': src})


def test_invalid_top_name_is_refused():
    g = hostile_names_graph()
    with pytest.raises(BackendError, match="top module name 'module' .* reserved word"):
        emit_verilog(g, top='module')
    with pytest.raises(BackendError, match="top module name '2fast' .* starting with a letter"):
        emit_verilog(g, top='2fast')
    with pytest.raises(BackendError, match='longer than 64'):
        emit_verilog(g, top='a' * 65)
    for clock in ('clk', 'CLK'):  # Verilator cannot build a module with a port of its own name
        with pytest.raises(BackendError, match="is the clock port's name"):
            emit_verilog(g, top=clock)


# =========================================================================== layout and packing


def test_port_layout_offsets_and_zero_width(kitchen_sink):
    lay = port_layout(kitchen_sink)
    assert lay['clock'] is None and lay['latency'] == 0
    x, z, w, e = lay['inputs']
    assert x['elements'] == [
        [0, 8, True, 3],
        [8, 8, False, 0],
        [16, 8, True, 5],
        [24, 0, False, 0],
        [24, 1, True, -2],
        [25, 1, False, 7],
    ]
    assert (x['width'], x['port_width']) == (26, 26)
    assert (z['width'], w['width']) == (36, 164)
    assert (e['width'], e['port_width']) == (0, 1)
    assert [p['name'] for p in lay['outputs']] == ['y', 'y2', 'nothing', 'x_through', 'scalar']
    assert lay['outputs'][2]['width'] == 0 and lay['outputs'][1]['shape'] == [2, 3]


def test_pack_unpack_roundtrip_wide_and_signed(kitchen_sink):
    lay = port_layout(kitchen_sink)
    for port, xs in zip(lay['inputs'], random_int_inputs(kitchen_sink, 50, seed=3)):
        words = pack_port(port, xs)
        assert all(0 <= v < (1 << port['port_width']) for v in words)
        np.testing.assert_array_equal(unpack_port(port, words), xs)
    x = lay['inputs'][0]
    # element 0 at the LSBs, two's complement per element, zero-width element absent
    assert pack_port(x, np.array([[-1, 2, -3, 0, -1, 1]])) == [0xFF | 2 << 8 | 0xFD << 16 | 1 << 24 | 1 << 25]


def test_pipeline_latency_and_clock(pipelined):
    lay = port_layout(pipelined)
    assert lay['clock'] == 'clk' and lay['latency'] == 4
    src = emit_verilog(pipelined)['model.v']
    assert 'input wire clk' in src and src.count('always @(posedge clk)') == sum(1 for n in pipelined if n.op is Op.REG)


def test_unbalanced_pipeline_is_refused():
    g = Graph('bad')
    x = g.add_input('x', TensorType.uniform((2,), QInterval(-8, 7, 0)))
    a, b = scalar(g, x, 0), scalar(g, x, 1)
    g.add_output('y', g.add(Op.GATHER, [g.add(Op.ADD, [g.add(Op.REG, [a], {'stage': 0}), b])], {'index': np.array([0])}))
    with pytest.raises(BackendError, match='pipeline stages'):
        emit_verilog(g)


def test_cmvm_must_be_lowered_first():
    g = Graph('tensor')
    x = g.add_input('x', TensorType.uniform((2,), QInterval(-8, 7, 0)))
    g.add_output('y', g.add(Op.CMVM, [x], {'weights': np.array([[1.0], [0.5]]), 'bias': None}))
    with pytest.raises(BackendError, match='lower'):
        emit_verilog(g)


# =========================================================================== text


def test_emitted_text_structure(kitchen_sink):
    files = emit_verilog(kitchen_sink, top='net')
    assert list(files) == ['net.v']
    src = files['net.v']
    assert 'module net (' in src and 'clk' not in src.split(');')[0]
    assert '"pack_y"' in src and '"q_RND_CONV_SAT_SYM"' in src  # provenance in comments
    assert 'input wire [0:0] e ' in src and "assign nothing = 1'h0;  //" in src
    # one declaration per scalar value: every live scalar non-constant node has a named wire
    decls = re.findall(r'^\s*(?:wire|reg)(?: signed)? \[(\d+):0\] (\w+);', src, re.M)
    assert len({n for _, n in decls}) == len(decls)


def _lint(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    proc = subprocess.run(['verilator', '--lint-only', '-Wall', *files], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


@needs_verilator
@pytest.mark.parametrize('builder', [kitchen_sink_graph, pipelined_graph])
def test_verilator_lint_wall_clean(tmp_path, builder):
    _lint(tmp_path, emit_verilog(builder()))


@needs_yosys
def test_yosys_synth_xilinx(tmp_path, pipelined):
    (tmp_path / 'model.v').write_text(emit_verilog(pipelined)['model.v'])
    script = 'read_verilog model.v; synth_xilinx -family xcup -top model; tee -o stat.txt stat'
    proc = subprocess.run(['yosys', '-q', '-p', script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'FDRE' in (tmp_path / 'stat.txt').read_text()  # the pipeline registers survived as flip-flops


def adder_tree_graph() -> Graph:
    """(a + b) + (c - d), ((a + b) + (c - d)) - e: single-use sums feeding sums, unshifted."""
    g = Graph('tree')
    x = g.add_input('x', TensorType((5,), (QInterval(0, 255, 0),) * 4 + (QInterval(-128, 127, 0),)))
    a, b, c, d, e = (scalar(g, x, i) for i in range(5))
    t = g.add(Op.SHIFT_ADD, [a, b], {'shift': 0, 'sub': False})
    u = g.add(Op.SHIFT_ADD, [c, d], {'shift': 0, 'sub': True})
    v = g.add(Op.SHIFT_ADD, [t, u], {'shift': 0, 'sub': False})
    y = g.add(Op.SHIFT_ADD, [v, e], {'shift': 0, 'sub': True})
    g.add_output('y', g.add(Op.GATHER, [y], {'index': np.array([0])}))
    verify(g)
    return g


@needs_yosys
def test_yosys_keeps_every_adder_a_two_input_carry_chain(tmp_path):
    """yosys' ``alumacc`` merges a sum whose whole result feeds one other sum into a multi-operand
    ``$macc`` (mapped to full-adder trees: ~1.5x the LUTs of two-input carry chains); the guard
    LSB of every emitted adder keeps each one its own ``$alu``."""
    (tmp_path / 'model.v').write_text(emit_verilog(adder_tree_graph())['model.v'])
    script = 'read_verilog model.v; proc; flatten; opt; wreduce; alumacc; tee -o stat.txt stat'
    proc = subprocess.run(['yosys', '-q', '-p', script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cells = dict(re.findall(r'^\s+(\$\w+)\s+(\d+)$', (tmp_path / 'stat.txt').read_text(), re.M))
    assert '$macc' not in cells and int(cells['$alu']) == 4, cells


@needs_verilator
def test_adder_tree_verilator_matches_interpreter(tmp_path):
    g = adder_tree_graph()
    res = hw_verify(g, random_int_inputs(g, 500, seed=3), simulator='verilator', workdir=tmp_path)
    assert res.ok and res.total == 500, res.first_mismatch_detail


def relu_pool_graph() -> Graph:
    """Max trees over ``quantize(relu(y))`` (several round/overflow modes, finer and coarser steps)
    and over a non-negative input: the max emitter compares the un-relu'd values."""
    g = Graph('relu_pool')
    x = g.add_input(
        'x',
        TensorType(
            (6,),
            (
                QInterval(-300, 500, 4),
                QInterval(-77, 40, 2),
                QInterval(-512, 511, 3),
                QInterval(-9, 300, 5),
                QInterval(0, 60, 1),
                QInterval(-40, 3, 0),
            ),
        ),
    )
    s = [scalar(g, x, i) for i in range(6)]
    modes = [
        (2, 2, Round.TRN, Overflow.WRAP),
        (1, 3, Round.RND, Overflow.SAT),
        (3, 1, Round.RND_CONV, Overflow.WRAP),
        (2, 4, Round.TRN, Overflow.SAT),
    ]
    r = [quant(g, g.add(Op.RELU, [v]), 0, i, f, rnd, ovf) for v, (i, f, rnd, ovf) in zip(s, modes)]
    r.append(quant(g, g.add(Op.RELU, [s[5]]), 0, 3, 0, Round.RND, Overflow.WRAP))
    m1 = g.add(Op.MAX, [r[0], r[1]])
    m2 = g.add(Op.MAX, [r[2], s[4]])  # one side plain (non-negative)
    m3 = g.add(Op.MAX, [r[3], r[4]])
    top = g.add(Op.MAX, [g.add(Op.MAX, [m1, m2]), m3])
    outs = [m1, m2, m3, top, g.add(Op.MAX, [r[4], s[5]])]  # the last has a signed operand: not fused
    g.add_output('y', g.add(Op.GATHER, outs, {'index': np.arange(5)}))
    verify(g)
    return g


@needs_verilator
def test_relu_pool_max_skips_the_relus_and_matches_interpreter(tmp_path):
    g = relu_pool_graph()
    text = emit_verilog(g)['model.v']
    quantized = re.findall(r'wire \S*\s*(quantize_\d+);', text)
    assert len(quantized) == 4  # the fifth is a plain slice of its relu
    read = [q for q in quantized if len(re.findall(rf'\b{q}\b', text)) > 2]  # declared + assigned only: dead
    assert read == []  # every fused max reads y itself, not quantize(relu(y))
    assert any(re.match(r'\s*assign max_\d+\S* = .*relu_', line) for line in text.splitlines())  # the unfused one
    res = hw_verify(g, random_int_inputs(g, N_VECTORS, seed=5), simulator='verilator', workdir=tmp_path)
    assert res.ok and res.total == N_VECTORS, res.first_mismatch_detail


def relu_pool_pipelined_graph() -> Graph:
    """``relu_pool_graph`` at one adder level per stage: registers split some relu'd operands
    from their max (the rounding quantizers take a level)."""
    return pipeline_pass(relu_pool_graph(), CompileOptions(latency_cutoff=1))


@needs_verilator
def test_relu_pool_max_reads_registered_parts(tmp_path):
    g = relu_pool_pipelined_graph()
    text = emit_verilog(g)['model.v']
    fused = [line for line in text.splitlines() if re.match(r'\s*assign max_\d+ = .*reg_\d+_s\b', line)]
    assert fused  # a max in a later stage compares the registered un-relu'd value, picks by the registered sign
    res = hw_verify(g, random_int_inputs(g, N_VECTORS, seed=7), simulator='verilator', workdir=tmp_path)
    assert res.ok and res.total == N_VECTORS, res.first_mismatch_detail


# =========================================================================== bit-exactness


@needs_verilator
def test_kitchen_sink_verilator_matches_interpreter(kitchen_sink, kitchen_sink_verilator):
    res = hw_verify(kitchen_sink, random_int_inputs(kitchen_sink, N_VECTORS, seed=1), sim=kitchen_sink_verilator)
    assert res.ok and res.total == N_VECTORS, res.first_mismatch_detail


@needs_iverilog
def test_kitchen_sink_iverilog_matches_interpreter(kitchen_sink):
    res = hw_verify(kitchen_sink, random_int_inputs(kitchen_sink, N_VECTORS, seed=2), simulator='iverilog')
    assert res.ok and res.total == N_VECTORS, res.first_mismatch_detail


@needs_verilator
def test_pipelined_verilator_streams_at_ii1(pipelined, pipelined_verilator):
    res = hw_verify(pipelined, random_int_inputs(pipelined, N_VECTORS, seed=4), sim=pipelined_verilator)
    assert res.ok and res.total == N_VECTORS, res.first_mismatch_detail


@needs_iverilog
def test_pipelined_iverilog_streams_at_ii1(pipelined):
    res = hw_verify(pipelined, random_int_inputs(pipelined, N_VECTORS, seed=5), simulator='iverilog')
    assert res.ok, res.first_mismatch_detail


@needs_verilator
def test_verilator_reuses_build_for_several_batches(pipelined, pipelined_verilator):
    xs = random_int_inputs(pipelined, 7, seed=6)
    a = pipelined_verilator.run(xs)
    b = pipelined_verilator.run([x[:3] for x in xs])
    np.testing.assert_array_equal(a[0][:3], b[0])

"""The report's LUT estimate: carry-chain bits where both operands vary; ROMs apart, as a bound."""

from __future__ import annotations

import numpy as np
import pytest

from hgqc.backends.report import adder_luts, graph_stats
from hgqc.ir import Graph, Op, QInterval, TensorType

U8 = QInterval(0, 255, 0)  # bits 0..7
S8 = QInterval(-128, 127, 0)  # bits 0..6, then the sign (extends)


def _adder(a: QInterval, b: QInterval, shift: int = 0, sub: bool = False) -> Graph:
    g = Graph('t')
    x = g.add_input('x', TensorType.uniform((), a))
    y = g.add_input('y', TensorType.uniform((), b))
    g.add_output('s', g.add(Op.SHIFT_ADD, [x, y], {'shift': shift, 'sub': sub}, name='acc'))
    return g


def _the_adder(g: Graph):
    return next(n for n in g.nodes.values() if n.op is Op.SHIFT_ADD)


@pytest.mark.parametrize(
    ('a', 'b', 'shift', 'sub', 'luts'),
    [
        (U8, U8, 0, False, 8),  # bits 0..7 overlap; the carry out is free
        (U8, U8, 4, False, 4),  # x's bits 4..7 meet y's 0..3 shifted: below, x passes; above, y does
        (U8, U8, 8, False, 0),  # no overlap: a concatenation
        (S8, S8, 4, False, 9),  # the sign extension of both varies: bits 4 .. result MSB (13 bits)
        (S8, U8, 4, True, 8),  # bits 4..11; above y's MSB its (inverted) zeros are constant
        (QInterval(0, 255, 2), U8, 0, False, 6),  # x's bits -2..5, y's 0..7: overlap 0..5
    ],
)
def test_adder_luts_count_the_bits_where_both_operands_vary(a, b, shift, sub, luts):
    assert adder_luts(_the_adder(_adder(a, b, shift, sub))) == luts


def test_a_constant_add_costs_no_lut():
    g = Graph('t')
    x = g.add_input('x', TensorType.uniform((), S8))
    c = g.add(Op.CONST, (), {'value': np.float64(37.0)})
    g.add_output('s', g.add(Op.SHIFT_ADD, [x, c], {'shift': 0, 'sub': False}, name='bias'))
    (stats,) = [s for s in graph_stats(g).values() if s.adders]
    assert (stats.adders, stats.luts) == (1, 0)
    assert stats.adder_bits == _the_adder(g).type.max_width  # (adder bits still count its width)


def test_roms_are_an_upper_bound_apart_from_the_logic():
    g = Graph('t')
    x = g.add_input('x', TensorType.uniform((), QInterval(-512, 511, 4)))  # 10 address bits
    table = {'lo': -512, 'f_in': 4, 'f': 3, 'values': np.arange(1024) // 8 - 64}
    y = g.add(Op.TABLE, [x], {'tables': [table], 'select': np.int64(0)}, name='rom')
    g.add_output('y', y)
    stats = graph_stats(g)['rom']
    assert stats.luts == 0
    assert stats.rom_luts == y.type.max_width * 2 ** (10 - 6)

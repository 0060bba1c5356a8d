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


def _rom(values: np.ndarray, address_bits: int) -> Graph:
    """A scalar ROM over every code of a signed ``address_bits``-bit input."""
    g = Graph('t')
    half = 1 << (address_bits - 1)
    x = g.add_input('x', TensorType.uniform((), QInterval(-half, half - 1, 4)))
    table = {'lo': -half, 'f_in': 4, 'f': 0, 'values': np.asarray(values, dtype=np.int64)}
    g.add_output('y', g.add(Op.TABLE, [x], {'tables': [table], 'select': np.int64(0)}, name='rom'))
    return g


def test_a_random_rom_costs_a_full_lut6_tree_per_bit():
    values = np.random.default_rng(0).integers(0, 256, 1024)  # 10 address bits, 8 output bits
    stats = graph_stats(_rom(values, 10))['rom']
    assert stats.luts == 0  # (apart from the logic)
    assert stats.rom_luts == 8 * (16 + 1)  # 16 LUT6 per bit + one LUT muxing the two 9-bit halves


def test_a_saturating_rom_costs_only_its_varying_blocks():
    codes = np.arange(-512, 512)
    stats = graph_stats(_rom(np.clip(codes, -8, 7), 10))['rom']  # varies on 16 codes around 0
    # bits 0-2 vary only in the two 64-entry blocks around code 0 (addresses 0..63 and 960..1023):
    # 2 LUT6 + the top mux LUT each; the sign is the top address bit: its two halves are constant
    assert stats.rom_luts == 3 * 3 + 1


def test_constant_and_repeated_output_bits_are_free():
    values = np.random.default_rng(1).integers(0, 16, 128) * 2  # bit 0 always 0
    both = values | (values >> 1 & 1) << 5  # bit 5 repeats bit 1
    assert graph_stats(_rom(both, 7))['rom'].rom_luts == graph_stats(_rom(values, 7))['rom'].rom_luts == 4 * 2

"""``benchmarks.timing_model``: the slowest path of small hand-made Xilinx netlists."""

from __future__ import annotations

import pytest

from benchmarks.timing_model import DelayModel, critical_path

M = DelayModel()


def _cell(kind: str, **conn: list) -> dict:
    outs = {'O', 'Q', 'CO'}
    return {'type': kind, 'connections': conn, 'port_directions': {p: 'output' if p in outs else 'input' for p in conn}}


def _module(cells: list[dict], ports: dict[str, tuple[str, list]]) -> dict:
    return {
        'cells': {f'c{i}': c for i, c in enumerate(cells)},
        'ports': {n: {'direction': d, 'bits': b} for n, (d, b) in ports.items()},
        'netnames': {'ff_out': {'bits': [14]}},
    }


def test_register_to_register_through_two_luts_and_an_inverter():
    cells = [
        _cell('FDRE', C=[1], CE=['1'], R=['0'], D=[2], Q=[10]),
        _cell('LUT2', I0=[10], I1=[3], O=[11]),
        _cell('LUT1', I0=[11], O=[12]),
        _cell('INV', I=[12], O=[13]),  # folded into the next cell: its hop is the LUT's
        _cell('FDRE', C=[1], CE=['1'], R=['0'], D=[13], Q=[14]),
        _cell('OBUF', I=[14], O=[20]),
    ]
    mod = _module(cells, {'clk': ('input', [1]), 'x': ('input', [2, 3]), 'y': ('output', [20])})
    got = critical_path(mod)
    want = M.clk_to_q + 2 * (M.net + M.lut) + M.net + M.setup
    assert got['ns'] == pytest.approx(want)
    assert (got['luts'], got['carry'], got['hops']) == (2, 0, 3)
    assert got['to'] == 13


def test_a_carry_chain_rides_its_dedicated_route():
    s = [31, 32, 33, 34]
    cells = [
        _cell('FDRE', C=[1], CE=['1'], R=['0'], D=[2], Q=[10]),
        _cell('LUT1', I0=[10], O=[31]),
        _cell('CARRY4', CI=['0'], CYINIT=['0'], DI=['0'] * 4, S=s, O=[40, 41, 42, 43], CO=[44, 45, 46, 47]),
        _cell('CARRY4', CI=[47], CYINIT=['0'], DI=['0'] * 4, S=['0'] * 4, O=[50, 51, 52, 53], CO=[54, 55, 56, 57]),
        _cell('FDRE', C=[1], CE=['1'], R=['0'], D=[53], Q=[60]),
    ]
    mod = _module(cells, {'clk': ('input', [1]), 'x': ('input', [2, 32, 33, 34])})
    got = critical_path(mod)
    chain = M.carry_in + 3 * M.carry_bit + 3 * M.carry_bit + M.carry_xor  # S[0] -> CO[3] -> CI -> O[3]
    want = M.clk_to_q + (M.net + M.lut) + M.net + chain + M.net + M.setup
    assert got['ns'] == pytest.approx(want)
    assert (got['luts'], got['carry'], got['hops']) == (1, 2, 3)


def test_ports_start_and_end_combinational_paths():
    cells = [_cell('IBUF', I=[2], O=[5]), _cell('LUT1', I0=[5], O=[6]), _cell('OBUF', I=[6], O=[9])]
    got = critical_path(_module(cells, {'x': ('input', [2]), 'y': ('output', [9])}))
    assert got['ns'] == pytest.approx(2 * M.net + M.lut)  # IBUF -> LUT -> OBUF: two routed hops
    assert got['from'] == 2 and got['to'] == 9


def test_loops_and_unknown_cells_are_refused():
    loop = [_cell('LUT2', I0=[2], I1=[6], O=[5]), _cell('LUT1', I0=[5], O=[6])]
    with pytest.raises(ValueError, match='loop'):
        critical_path(_module(loop, {'x': ('input', [2]), 'y': ('output', [6])}))
    with pytest.raises(ValueError, match="'DSP48E2'"):
        critical_path(_module([_cell('DSP48E2', A=[2], P=[3])], {'x': ('input', [2])}))


def test_a_block_ram_is_a_register_with_slower_figures():
    cells = [
        _cell('RAMB18E2', CLKARDCLK=[1], ADDRARDADDR=[2], DOUTADOUT=[5]),
        _cell('LUT1', I0=[5], O=[6]),
        _cell('FDRE', C=[1], CE=['1'], R=['0'], D=[6], Q=[7]),
    ]
    cells[0]['port_directions']['DOUTADOUT'] = 'output'
    got = critical_path(_module(cells, {'clk': ('input', [1]), 'x': ('input', [2])}))
    assert got['ns'] == pytest.approx(M.bram_clk_to_q + M.net + M.lut + M.net + M.setup)

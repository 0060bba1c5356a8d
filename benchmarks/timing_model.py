"""A timing proxy for a yosys Xilinx netlist: the longest register-to-register path.

yosys 0.23 has no usable timing for ``-family xcup`` (``sta`` after ``-abc9`` falls back to xc7
timing and has no arcs through ``CARRY4``, the cells every adder maps to), and Vivado is not
available here.  So this module walks the mapped netlist (``write_json``) itself with a fixed,
stated delay model and reports the slowest path between timing start points (FF outputs, the
design's input ports) and end points (FF D/CE/R/S inputs, output ports):

* ``ns``     -- the path's delay under ``DelayModel`` (clock-to-Q, cells, one routing hop per net
  leaving a LUT/MUXF/CARRY/FF, setup); shift-register LUTs (``SRL16E``: registers that only delay
  a value by several cycles) are registers with a slower clock-to-Q, block RAMs (a registered ROM
  yosys maps to ``RAMB18E2``) start and end paths like registers with their own, slower figures;
* ``luts``   -- LUTs and MUXF7/8/9 on it (logic levels outside carry chains);
* ``carry``  -- CARRY4/CARRY8 cells on it (each 4/8 bits of a ripple chain it rides);
* ``hops``   -- routed nets on it.

The delays are round, UltraScale+-like magnitudes, not a device model: use the figures to compare
designs mapped by the same flow (hgqc against its peers at equal pipeline depth), never as an
Fmax promise.  ``INV`` cells are free wires (Vivado folds them into the next LUT); ``IBUF``,
``OBUF`` and ``BUFG`` are transparent (a port is a start or an end point).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

__all__ = ['DelayModel', 'critical_path', 'top_module']


@dataclass(frozen=True)
class DelayModel:
    """Delays in ns (round magnitudes of an UltraScale+ -2 part; see the module doc)."""

    lut: float = 0.10  # any LUT input to O
    muxf: float = 0.10  # MUXF7/8/9 input to O
    net: float = 0.30  # one routed hop (LUT/MUXF/CARRY/FF output to the next cell)
    carry_in: float = 0.15  # S or DI of a carry bit into the chain
    carry_bit: float = 0.02  # the chain, per bit
    carry_xor: float = 0.10  # chain into a sum output O
    clk_to_q: float = 0.10
    srl_clk_to_q: float = 0.80  # a shift-register LUT's output is slow (a delay line of >= 2 stages)
    bram_clk_to_q: float = 1.00  # a block RAM read (a ROM yosys put in BRAM), no output register
    bram_setup: float = 0.40
    setup: float = 0.05


_FF = re.compile(r'FD[A-Z]*(_1)?')
_SRL = re.compile(r'SRLC?(16|32)E?(_1)?')
_BRAM = re.compile(r'RAMB(18|36)E[12]')
_LUT = re.compile(r'LUT[1-6]')
_MUXF = re.compile(r'MUXF[5-9]')
_WIRE = frozenset({'INV', 'IBUF', 'OBUF', 'BUFG', 'BUFGCE', 'IBUFG'})
_FF_INPUTS = ('D', 'CE', 'R', 'S', 'CLR', 'PRE')


def top_module(netlist: dict[str, Any], top: str) -> dict[str, Any]:
    mods = netlist['modules']
    if top in mods:
        return mods[top]
    raise KeyError(f'module {top!r} not in the netlist (has {len(mods)} modules)')


def _carry_arcs(conn: dict[str, list], m: DelayModel, width: int):
    """(input bit, output bit, delay, routed) of one CARRY4/CARRY8: a carry ripples one bit per
    stage; CI/CYINIT come over the dedicated chain (not routed)."""
    co, o = conn.get('CO', []), conn.get('O', [])
    chain_in = [*conn.get('CI', []), *conn.get('CYINIT', [])]
    for i in range(width):
        for src in (conn['S'][i], conn['DI'][i]):
            for j in range(i, width):
                if j < len(co):
                    yield src, co[j], m.carry_in + (j - i) * m.carry_bit, True
                if j < len(o) and (j > i or src is conn['S'][i]):
                    yield src, o[j], (m.carry_xor if j == i else m.carry_in + (j - i) * m.carry_bit + m.carry_xor), True
    for src in chain_in:
        for j in range(width):
            if j < len(co):
                yield src, co[j], (j + 1) * m.carry_bit, False
            if j < len(o):
                yield src, o[j], j * m.carry_bit + m.carry_xor, False


Arc = tuple[int, float, str, bool]  # (output bit, cell delay, 'lut' / 'carry' / '', routed input)


def critical_path(module: dict[str, Any], model: DelayModel | None = None) -> dict[str, Any]:
    """The slowest start-to-end path of a flattened, Xilinx-mapped yosys module (``write_json``)."""
    m = model or DelayModel()
    arcs: dict[int, list[Arc]] = defaultdict(list)  # per input bit, the cell arcs it starts
    routed: set[int] = set()  # bits driven by a LUT/MUXF/CARRY/FF/IBUF output: one hop to any cell input
    starts: dict[int, float] = {}
    ends: dict[int, float] = {}

    def arc(src: Any, dst: Any, delay: float, kind: str, via_fabric: bool = True) -> None:
        if isinstance(src, int) and isinstance(dst, int):  # (constants '0'/'1' have no timing)
            arcs[src].append((dst, delay, kind, via_fabric))

    for cell in module['cells'].values():
        t, conn = cell['type'], cell['connections']
        if _FF.fullmatch(t):
            for q in conn.get('Q', []):
                starts[q] = m.clk_to_q
                routed.add(q)
            for p in _FF_INPUTS:
                for b in conn.get(p, []):
                    if isinstance(b, int):
                        ends[b] = m.setup
        elif _SRL.fullmatch(t):  # a delay line: its D/CE end a path, its Q starts one, A* select the tap
            for q in [*conn.get('Q', []), *conn.get('Q31', [])]:
                starts[q] = m.srl_clk_to_q
                routed.add(q)
                for p in ('A', 'A0', 'A1', 'A2', 'A3', 'A4'):
                    for a in conn.get(p, []):
                        arc(a, q, m.lut, 'lut')
            for p in ('D', 'CE'):
                for b in conn.get(p, []):
                    if isinstance(b, int):
                        ends[b] = m.setup
        elif _BRAM.fullmatch(t):  # synchronous: every data/address/enable input ends a path, outputs start one
            dirs = cell.get('port_directions', {})
            for p, bits in conn.items():
                for b in bits:
                    if not isinstance(b, int):
                        continue
                    if dirs.get(p) == 'output':
                        starts[b] = m.bram_clk_to_q
                        routed.add(b)
                    elif not p.startswith('CLK'):
                        ends[b] = m.bram_setup
        elif t in ('CARRY4', 'CARRY8'):
            for src, dst, d, via in _carry_arcs(conn, m, 4 if t == 'CARRY4' else 8):
                arc(src, dst, d, 'carry', via)
            routed.update(b for b in [*conn.get('O', []), *conn.get('CO', [])] if isinstance(b, int))
        elif _LUT.fullmatch(t) or _MUXF.fullmatch(t) or t in _WIRE:
            dirs = cell.get('port_directions', {})
            outs = [b for p, bits in conn.items() if dirs.get(p) == 'output' for b in bits]
            ins = [b for p, bits in conn.items() if dirs.get(p) == 'input' for b in bits]
            logic = t not in _WIRE
            for a in ins:
                for b in outs:
                    arc(a, b, (m.lut if t.startswith('LUT') else m.muxf) if logic else 0.0, 'lut' if logic else '')
            if logic or t.startswith('IBUF'):
                routed.update(b for b in outs if isinstance(b, int))
        elif t not in ('GND', 'VCC'):
            raise ValueError(f'timing_model: no delay model for cell type {t!r}')
    for p in module['ports'].values():
        for b in p['bits']:
            if isinstance(b, int) and p['direction'] == 'input':
                starts.setdefault(b, 0.0)
            elif isinstance(b, int) and p['direction'] == 'output':
                ends.setdefault(b, 0.0)
    best = _longest(arcs, routed, starts, ends, m)
    names = _bit_names(module)
    best['from'], best['to'] = names.get(best['from'], best['from']), names.get(best['to'], best['to'])
    return best


def _bit_names(module: dict[str, Any]) -> dict[int, str]:
    """A readable name per bit (``net[i]``), preferring user nets over yosys' ``$`` ones."""
    out: dict[int, str] = {}
    for name, net in sorted(module.get('netnames', {}).items(), key=lambda kv: (kv[0].startswith('$'), kv[0])):
        for i, b in enumerate(net['bits']):
            if isinstance(b, int) and b not in out:
                out[b] = f'{name}[{i}]' if len(net['bits']) > 1 else name
    return out


def _longest(
    arcs: dict[int, list[Arc]], routed: set[int], starts: dict[int, float], ends: dict[int, float], m: DelayModel
) -> dict[str, Any]:
    """Longest path over the bit graph (acyclic once FFs cut it), in Kahn's order."""
    indeg: dict[int, int] = defaultdict(int)
    for outs in arcs.values():
        for b, *_ in outs:
            indeg[b] += 1
    # per bit: ns, luts, carry, hops, start bit of the slowest path to it
    arrival: dict[int, tuple[float, int, int, int, int]] = {b: (t, 0, 0, 0, b) for b, t in starts.items()}
    ready = [b for b in {*arcs, *starts} if indeg[b] == 0]
    while ready:
        a = ready.pop()
        at = arrival.get(a)
        for b, d, kind, via in arcs.get(a, ()):
            if at is not None:
                hop = via and a in routed
                cand = (at[0] + m.net * hop + d, at[1] + (kind == 'lut'), at[2] + (kind == 'carry'), at[3] + hop, at[4])
                if b not in arrival or cand[0] > arrival[b][0]:
                    arrival[b] = cand
            indeg[b] -= 1
            if indeg[b] == 0:
                ready.append(b)
    if any(v > 0 for v in indeg.values()):
        raise ValueError('timing_model: combinational loop in the netlist')
    best: dict[str, Any] = {'ns': 0.0, 'luts': 0, 'carry': 0, 'hops': 0, 'from': None, 'to': None}
    for b, setup in ends.items():
        if b in arrival:
            ns, luts, carry, hops, start = arrival[b]
            hop = b in routed and setup > 0  # (an output port's bit is the OBUF's: no hop of its own)
            total = round(ns + m.net * hop + setup, 3)
            if total > best['ns']:
                best = {'ns': total, 'luts': luts, 'carry': carry, 'hops': hops + hop, 'from': start, 'to': b}
    return best

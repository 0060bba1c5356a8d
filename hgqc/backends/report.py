"""Resource summary of an adder-level graph: adders, widths, estimated LUTs, registers, per layer.

The LUT estimate counts, for every adder/subtractor, one LUT per carry-chain bit where *both*
operands are variable (``adder_luts``): below the finer operand's LSB, above an unsigned
operand's MSB, and at every bit of a constant operand, the carry chain takes the other operand
directly, so those bits cost no LUT (a bias add costs none). Comparators count two LUTs per
result bit, saturating quantizers one (rounding alone is a constant add: none); wiring,
constants and relu-as-AND (absorbed into the next LUT) count as free. ROMs are reported apart,
as an upper bound (``rom_luts``: a Shannon tree per output bit; synthesis compresses further).
On the bundled examples the logic estimate lands within 5 % of yosys' ``synth_xilinx`` LUT
count, combinational (docs/benchmarks.md); real numbers come from synthesis
(``benchmarks/resources.py`` runs yosys).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..ir import Graph, Node, Op, Overflow, QInterval
from ..ir.ops import table_entry, table_keys
from ..passes.lower import adder_depth
from ..passes.pipeline import node_delay

if TYPE_CHECKING:
    from ..project import Project

ADDER_OPS = (Op.SHIFT_ADD, Op.ADD, Op.SUB, Op.NEG)
COMPARE_OPS = (Op.MAX, Op.MIN)


@dataclass
class LayerStats:
    adders: int = 0
    adder_bits: int = 0
    luts: int = 0  # logic: adders, comparators, saturation
    rom_luts: int = 0  # upper bound for the ROMs (``table``)
    ffs: int = 0
    other: dict[str, int] = field(default_factory=dict)


def layer_of(name: str) -> str:
    """Provenance layer of a node name ('dense_1[3]' / 'dense_1:acc' -> 'dense_1')."""
    for sep in ('[', ':', '#', '/'):
        name = name.split(sep, 1)[0]
    return name or '(unnamed)'


def _variable_bits(q: QInterval, shift: int) -> tuple[float, float]:
    """Bit positions ``[start, end)`` (weight ``2^p``) where ``q * 2^shift`` is not a constant bit."""
    if q.is_const:
        return 0, 0
    start = shift - q.f
    return start, math.inf if q.signed else q.width - q.f + shift  # (sign extension varies)


def adder_luts(n: Node) -> int:
    """LUTs of one scalar add/sub: its carry-chain bits where both operands are variable."""
    if n.op is Op.NEG:  # 0 - b: the chain inverts b (no LUT)
        return 0
    a, b = (i.type.elems[0] for i in n.inputs)
    sa, ea = _variable_bits(a, 0)
    sb, eb = _variable_bits(b, int(n.attrs['shift']) if n.op is Op.SHIFT_ADD else 0)
    t = n.type.elems[0]
    return int(max(0, min(ea, eb, t.width - t.f) - max(sa, sb)))


MAX_ROM_BITS = 20  # wider ROMs (or outputs wider than 62 bits) get the plain bound: one LUT6 per bit and 64 entries


def rom_luts(n: Node, memo: dict | None = None) -> int:
    """An upper bound on the LUT6s of one scalar ROM (``table``), built as the emitter writes it
    (address = the input's bits, unreached addresses 0): per distinct non-constant output bit, a
    Shannon tree over the address bits from the top, where a constant half costs nothing, 6 bits
    take one LUT6 and the muxes of bits 7-9 are the slice's free MUXF7/8/9 (one LUT each above).
    Smooth, saturating functions (tanh, sigmoid) leave most halves constant. ``memo`` shares the
    result between the elements that use the same table on the same input type."""
    q, t = n.inputs[0].type.elems[0], n.type.elems[0]
    a, w = q.width, t.width
    if a > MAX_ROM_BITS or w > 62:
        return w << max(0, a - 6)
    tab = table_entry(n.attrs, 0)
    key = (id(tab), q, w)
    if memo is not None and key in memo:
        return memo[key]
    keys = table_keys(tab, q)
    values = np.asarray(tab['values'], dtype=np.int64)[keys.start - int(tab['lo']) : keys.stop - int(tab['lo']) : keys.step]
    rom = np.zeros(1 << a, dtype=np.int64)
    rom[np.arange(q.lo, q.hi + 1, dtype=np.int64) & ((1 << a) - 1)] = values & ((1 << w) - 1)
    bits = {b.tobytes(): b for b in ((rom >> k) & 1 for k in range(w))}
    luts = sum(_shannon_luts(b, a) for b in bits.values())
    if memo is not None:
        memo[key] = luts
    return luts


def _shannon_luts(bits: np.ndarray, a: int) -> int:
    """LUTs of the Shannon tree of one output bit: a non-constant block of 64 entries (or the whole
    table, if smaller) is one LUT6; a non-constant block above 9 address bits adds its mux LUT (a
    constant block is never entered, so every non-constant block is reached)."""
    return _varying_blocks(bits, min(64, 1 << a)) + sum(_varying_blocks(bits, 1 << b) for b in range(10, a + 1))


def _varying_blocks(bits: np.ndarray, size: int) -> int:
    return int(np.count_nonzero(np.ptp(bits.reshape(-1, size), axis=1)))


def _saturates(n: Node) -> bool:
    """Whether a scalar quantize clips (compare + select) rather than only rounding or wrapping."""
    if Overflow(n.attrs['overflow']) is Overflow.WRAP:
        return False
    x, t = n.inputs[0].type.elems[0], n.type.elems[0]
    f = max(x.f, t.f)  # compare at the finer step
    return x.lo << (f - x.f) < t.lo << (f - t.f) or x.hi << (f - x.f) > t.hi << (f - t.f)


def graph_stats(g: Graph) -> dict[str, LayerStats]:
    per: dict[str, LayerStats] = defaultdict(LayerStats)
    rom_memo: dict = {}
    for n in g.nodes.values():
        s = per[layer_of(n.name)]
        w = n.type.max_width if n.shape == () else 0
        if n.op in ADDER_OPS and node_delay(n) == 0:
            continue  # a shift of one operand (the other is 0) is wiring
        if n.op in ADDER_OPS:
            s.adders += 1
            s.adder_bits += w
            s.luts += adder_luts(n)
        elif n.op in COMPARE_OPS:
            s.luts += 2 * w
            s.other[n.op.value] = s.other.get(n.op.value, 0) + 1
        elif n.op is Op.QUANTIZE and node_delay(n):
            s.luts += w if _saturates(n) else 0  # rounding alone is a constant add
            s.other['quantize'] = s.other.get('quantize', 0) + 1
        elif n.op is Op.TABLE and node_delay(n):
            s.rom_luts += rom_luts(n, rom_memo)
            s.other['table'] = s.other.get('table', 0) + 1
        elif n.op is Op.MUL:
            s.other['mul'] = s.other.get('mul', 0) + 1
        elif n.op is Op.REG:
            s.ffs += sum(e.width for e in n.type.elems)
    return dict(per)


def format_report(project: Project) -> str:
    g = project.graph
    per = graph_stats(g)
    tot = LayerStats()
    for s in per.values():
        tot.adders += s.adders
        tot.adder_bits += s.adder_bits
        tot.luts += s.luts
        tot.rom_luts += s.rom_luts
        tot.ffs += s.ffs
    lines = [
        f'hgqc report: {g.name} -> {project.target} (top {project.top})',
        f'  adders:            {tot.adders}',
        f'  summed adder bits: {tot.adder_bits}',
        f'  adder depth:       {adder_depth(g)}',
        f'  estimated LUTs:    {tot.luts}' + (f' + ROMs: at most {tot.rom_luts}' if tot.rom_luts else ''),
        f'  flip-flops:        {tot.ffs}',
        f'  pipeline stages:   {int(g.meta.get("latency", 0))} (latency in clock cycles)',
        '',
        f'  {"layer":<24} {"adders":>7} {"adder bits":>11} {"est. LUTs":>10} {"FFs":>7}' + (' ROM<=' if tot.rom_luts else ''),
    ]
    for name, s in per.items():
        if s.adders or s.luts or s.ffs or s.rom_luts:
            row = f'  {name[:24]:<24} {s.adders:>7} {s.adder_bits:>11} {s.luts:>10} {s.ffs:>7}'
            lines.append(row + (f' {s.rom_luts:>5}' if tot.rom_luts else ''))
    return '\n'.join(lines)

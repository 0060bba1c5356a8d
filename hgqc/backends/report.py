"""Resource summary of an adder-level graph: adders, widths, estimated LUTs, registers, per layer.

The LUT estimate counts one LUT per result bit of every adder/subtractor/comparator (a carry
chain on Xilinx/Intel parts maps one bit per LUT) and per bit of saturation/rounding logic;
wiring, constants and relu-as-AND are counted as free/cheap. Real numbers come from synthesis
(benchmarks/resources.py runs yosys).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..ir import Graph, Op
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
    luts: int = 0
    ffs: int = 0
    other: dict[str, int] = field(default_factory=dict)


def layer_of(name: str) -> str:
    """Provenance layer of a node name ('dense_1[3]' / 'dense_1:acc' -> 'dense_1')."""
    for sep in ('[', ':', '#', '/'):
        name = name.split(sep, 1)[0]
    return name or '(unnamed)'


def graph_stats(g: Graph) -> dict[str, LayerStats]:
    per: dict[str, LayerStats] = defaultdict(LayerStats)
    for n in g.nodes.values():
        s = per[layer_of(n.name)]
        w = n.type.max_width if n.shape == () else 0
        if n.op in ADDER_OPS and node_delay(n) == 0:
            continue  # a shift of one operand (the other is 0) is wiring
        if n.op in ADDER_OPS:
            s.adders += 1
            s.adder_bits += w
            s.luts += w
        elif n.op in COMPARE_OPS:
            s.luts += 2 * w
            s.other[n.op.value] = s.other.get(n.op.value, 0) + 1
        elif n.op is Op.QUANTIZE and node_delay(n):
            s.luts += w
            s.other['quantize'] = s.other.get('quantize', 0) + 1
        elif n.op is Op.TABLE and node_delay(n):
            # a w-input ROM: one LUT6 per output bit and 64 entries (F7/F8 muxes are free)
            s.luts += w * max(1, 1 << max(0, n.inputs[0].type.max_width - 6))
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
        tot.ffs += s.ffs
    lines = [
        f'hgqc report: {g.name} -> {project.target} (top {project.top})',
        f'  adders:            {tot.adders}',
        f'  summed adder bits: {tot.adder_bits}',
        f'  adder depth:       {adder_depth(g)}',
        f'  estimated LUTs:    {tot.luts}',
        f'  flip-flops:        {tot.ffs}',
        f'  pipeline stages:   {int(g.meta.get("latency", 0))} (latency in clock cycles)',
        '',
        f'  {"layer":<24} {"adders":>7} {"adder bits":>11} {"est. LUTs":>10} {"FFs":>7}',
    ]
    for name, s in per.items():
        if s.adders or s.luts or s.ffs:
            lines.append(f'  {name[:24]:<24} {s.adders:>7} {s.adder_bits:>11} {s.luts:>10} {s.ffs:>7}')
    return '\n'.join(lines)

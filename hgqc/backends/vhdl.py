"""VHDL-2008 backend: the syntax layer for ``common.build_netlist`` plus entity rendering.

Same structure, naming, packing and pipelining as the Verilog target (everything
language-neutral lives in ``common``); only the spelling of primitives differs. Conventions:

* one entity ``top`` (architecture ``rtl``) in ``<top>.vhd``, using ``ieee.std_logic_1164``
  and ``ieee.numeric_std`` only; ports are ``std_logic_vector`` packed per
  ``common.port_layout`` (element 0 at the LSBs); a zero-width port is a 1-bit dummy;
* input ``clk`` (rising edge, no reset) only when the graph has live ``reg`` nodes; all
  registers update in one clocked process;
* every internal signal is ``unsigned`` of its value's exact width, whatever its sign. The
  netlist's adders run modulo 2^width on equal-width operands, where signed and unsigned
  arithmetic give the same bits, so a value's sign only matters in comparisons, which convert
  explicitly (``signed(a) < signed(b)``). This keeps VHDL's strict typing out of the way: no
  expression ever mixes ``signed`` and ``unsigned``;
* VHDL has no conditional *expression* before 2019 and its reductions return ``std_ulogic``,
  so three tiny pure functions (``hgqc_mux``, ``hgqc_bool``, ``hgqc_rep``, declared in the
  architecture only when used; their names are reserved by the namespace) keep every primitive
  an expression.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..ir.graph import Graph
from .common import (
    CLOCK,
    Assign,
    Decl,
    Netlist,
    RegUpdate,
    Rom,
    RomTree,
    Val,
    build_netlist,
    clean_comment,
    port_layout,
    rom_tree,
    select_tree_lines,
)

__all__ = ['VhdlSyntax', 'emit_vhdl']

ARCH = 'rtl'

_HELPERS = {
    'hgqc_mux': """\
-- cond ? a : b (VHDL-2008 has no conditional expression); cond is one bit
function hgqc_mux(hgqc_c : unsigned; hgqc_a : unsigned; hgqc_b : unsigned) return unsigned is
begin
    if hgqc_c(hgqc_c'low) = '1' then
        return hgqc_a;
    end if;
    return hgqc_b;
end function;""",
    'hgqc_bool': """\
-- a boolean as a 1-bit unsigned
function hgqc_bool(hgqc_x : boolean) return unsigned is
begin
    if hgqc_x then
        return "1";
    end if;
    return "0";
end function;""",
    'hgqc_rep': """\
-- n copies of the bit b (sign extension)
function hgqc_rep(hgqc_b : unsigned; hgqc_n : positive) return unsigned is
    variable hgqc_r : unsigned(hgqc_n - 1 downto 0);
begin
    hgqc_r := (others => hgqc_b(hgqc_b'low));
    return hgqc_r;
end function;""",
}
# identifiers of the helpers above; the namespace never hands them out (common.RESERVED)
HELPER_NAMES = ('rtl', 'hgqc_mux', 'hgqc_bool', 'hgqc_rep', 'hgqc_a', 'hgqc_b', 'hgqc_c', 'hgqc_n', 'hgqc_r', 'hgqc_x')


def _used_helpers(code: Sequence[str]) -> list[str]:
    """The helper functions the code calls (unused ones would draw GHDL's -Wunused notes)."""
    text = '\n'.join(code)
    return [line for name, src in _HELPERS.items() if re.search(rf'\b{name}\(', text) for line in src.splitlines()]


def _range(width: int) -> str:
    return f'({width - 1} downto 0)'


def _signal(name: str, width: int, signed: bool, comment: str) -> str:
    """A signal declaration; the comment keeps the value's sign, which the type does not carry."""
    note = ' '.join(t for t in ('signed' if signed else '', comment) if t)
    return f'signal {name} : unsigned{_range(width)};' + (f'  -- {note}' if note else '')


class VhdlSyntax:
    """VHDL-2008 spelling of the ``common.Syntax`` primitives; every expression is ``unsigned``.

    ``slv`` names the input ports, which are ``std_logic_vector``: wherever one is read it is
    converted to ``unsigned`` first.
    """

    def __init__(self, slv: set[str] | frozenset[str] = frozenset()):
        self.slv = frozenset(slv)

    def _u(self, text: str) -> str:
        return f'unsigned({text})' if text in self.slv else text

    def literal(self, bits: int, width: int, signed: bool) -> str:
        return f'unsigned\'("{bits:0{width}b}")'

    def slice(self, v: Val, hi: int, lo: int) -> str:
        # always a range, never an index: an index would give std_logic, not unsigned
        text = f'{v.text}({hi} downto {lo})'
        return f'unsigned({text})' if v.text in self.slv else text

    def concat(self, parts: Sequence[Val]) -> str:
        texts = [self._u(p.text) for p in parts]
        if len(texts) > 8:  # output packing: one element per line keeps the text diffable
            return '(\n        ' + ' &\n        '.join(texts) + '\n    )'
        return '(' + ' & '.join(texts) + ')'

    def replicate(self, count: int, bit: Val) -> str:
        return f'hgqc_rep({self._u(bit.text)}, {count})'

    def arith(self, op: str, a: Val, b: Val) -> str:
        if op == '*':  # numeric_std's product is twice as wide; keep the low bits (modulo 2^width)
            return f'resize({self._u(a.text)} * {self._u(b.text)}, {a.width})'
        return f'({self._u(a.text)} {op} {self._u(b.text)})'

    def negate(self, a: Val) -> str:
        return f'(0 - {self._u(a.text)})'  # unary minus is not defined on unsigned

    def logic(self, op: str, a: Val, b: Val) -> str:
        word = {'&': 'and', '|': 'or'}[op]
        return f'({self._u(a.text)} {word} {self._u(b.text)})'

    def invert(self, a: Val) -> str:
        return f'(not {self._u(a.text)})'

    def reduce_or(self, a: Val) -> str:
        return f'hgqc_bool({self._u(a.text)} /= 0)'

    def less(self, a: Val, b: Val) -> str:
        x, y = self._u(a.text), self._u(b.text)
        if a.signed:
            return f'hgqc_bool(signed({x}) < signed({y}))'
        return f'hgqc_bool({x} < {y})'

    def mux(self, cond: Val, a: Val, b: Val) -> str:
        return f'hgqc_mux({self._u(cond.text)}, {self._u(a.text)}, {self._u(b.text)})'

    # ------------------------------------------------------------------ entity
    def render(self, netlist: Netlist, top: str) -> dict[str, str]:
        layout = netlist.layout
        lines = [
            f'-- Generated by hgqc from graph "{clean_comment(netlist.graph_name)}"; do not edit.',
            '-- VHDL-2008, synthesizable; uses only ieee.std_logic_1164 and ieee.numeric_std.',
            '-- Tensor ports are flat vectors: elements in row-major order, element 0 at the LSBs,',
            "-- each element exactly its own width (two's complement when signed, zero-width ones",
            '-- absent); a port with no bits at all is a 1-bit dummy (ignored / driven 0).',
            '-- Internal signals are unsigned whatever their sign: sums and products are taken',
            '-- modulo 2^width (the same bits either way); comparisons convert to signed explicitly.',
        ]
        if layout['clock']:
            lines.append(f'-- Pipelined: latency {layout["latency"]} cycles, a new input vector every cycle (II=1).')
        lines += ['', 'library ieee;', 'use ieee.std_logic_1164.all;', 'use ieee.numeric_std.all;', '']
        lines += [f'entity {top} is', '    port (']
        lines += self._ports(layout)
        lines += ['    );', f'end entity {top};', '', f'architecture {ARCH} of {top} is']
        decls, assigns, regs = self._body(netlist.body)
        lines += [f'    {s}' for s in _used_helpers([*decls, *assigns, *regs, *netlist.output_exprs])]
        lines += [f'    {s}' for s in decls]
        lines.append('begin')
        lines += [f'    {s}' for s in assigns]
        if regs:
            lines += [f'    process ({CLOCK})', '    begin', f'        if rising_edge({CLOCK}) then']
            lines += [f'            {s}' for s in regs]
            lines += ['        end if;', '    end process;']
        for port, expr, note in zip(layout['outputs'], netlist.output_exprs, netlist.output_comments):
            lines.append(f'    {port["port"]} <= std_logic_vector({self._u(expr)});  -- {note}')
        lines += [f'end architecture {ARCH};', '']
        return {f'{top}.vhd': '\n'.join(lines)}

    @staticmethod
    def _ports(layout: dict[str, Any]) -> list[str]:
        items = []  # (declaration, comment)
        if layout['clock']:
            items.append((f'{layout["clock"]} : in std_logic', 'rising edge, no reset'))
        for kind, ports in (('in', layout['inputs']), ('out', layout['outputs'])):
            for p in ports:
                note = clean_comment(f'"{p["name"]}" shape {tuple(p["shape"])}, {p["width"]} bits')
                items.append((f'{p["port"]} : {kind} std_logic_vector{_range(p["port_width"])}', note))
        # the ';' separators go before the comments, which end their lines
        return [f'        {d}{";" if k + 1 < len(items) else ""}  -- {c}' for k, (d, c) in enumerate(items)]

    def _body(self, body: Sequence[Any]) -> tuple[list[str], list[str], list[str]]:
        decls, assigns, regs = [], [], []
        for s in body:
            if isinstance(s, Decl):
                decls.append(_signal(s.name, s.width, s.signed, s.comment))
            elif isinstance(s, Assign):
                assigns.append(f'{s.name} <= {self._u(s.expr)};')
            elif isinstance(s, RegUpdate):
                regs.append(f'{s.name} <= {self._u(s.expr)};')
            elif isinstance(s, Rom):
                decls.append(_signal(s.name, s.width, s.signed, s.comment))
                assigns += self._rom(s)
        return decls, assigns, regs

    @staticmethod
    def _rom(s: Rom) -> list[str]:
        """A selected signal assignment; ``others`` (never reached, and the 'U'/'X' patterns) gives 0.

        The selector is spelled as a slice of its identifier (a port's slice stays
        ``std_logic_vector``): a case selector must have a locally static subtype, which a
        conversion like ``unsigned(x(3 downto 0))`` has not.
        """
        assert s.sel.src is not None
        name, lsb = s.sel.src
        sel = f'{name}({lsb + s.sel_width - 1} downto {lsb})'
        tree = rom_tree(s)
        if tree is not None:  # long runs: selects on the key bits
            return ['process (all)', 'begin', *VhdlSyntax._select_tree(s, tree), 'end process;']
        lines = [f'with {sel} select {s.name} <=']
        lines += [f'    "{v:0{s.width}b}" when "{k:0{s.sel_width}b}",' for k, v in s.entries]
        lines.append("    (others => '0') when others;")
        return lines

    @staticmethod
    def _select_tree(s: Rom, tree: RomTree) -> list[str]:
        assert s.sel.src is not None
        name, lsb = s.sel.src
        leaf, test = (lambda v: f'{s.name} <= "{v:0{s.width}b}";'), (lambda b: f"if {name}({lsb + b}) = '1' then")
        return select_tree_lines(tree, '    ', leaf, test, 'end if;')


def emit_vhdl(graph: Graph, top: str = 'model') -> dict[str, str]:
    """Synthesizable VHDL-2008 for an adder-level graph: ``{'<top>.vhd': text}``."""
    layout = port_layout(graph, top)
    syntax = VhdlSyntax({p['port'] for p in layout['inputs']})
    return syntax.render(build_netlist(graph, syntax, top), top)

"""Language-neutral HDL backend core: identifiers, port layout, bit packing and the netlist walker.

The Verilog and VHDL backends share everything here and differ only in a small *syntax layer*
(``Syntax``): the walker (``build_netlist``) visits an adder-level graph, and one emit function
per op (registry ``EMITTERS``, keyed by ``Op``) builds the logic through a ``Builder`` whose
primitives (resize, shift, add, compare, mux, ...) each take operands of explicit width and
signedness and ask the syntax layer for the text. The result is a ``Netlist`` (ports plus an
ordered list of declarations / assignments / register updates) that the syntax layer renders.

Arithmetic convention: every value is an integer in units of its own step ``2^-f`` (as in the
IR). Adders, subtractors and multipliers run modulo ``2^W`` where ``W`` is the width of the op's
exact (natural) result type: operands are sign/zero-extended (or truncated) to ``W`` and the
low ``W`` bits of a two's complement sum/product are right whatever the operands' signedness.
Values then move to the node's stored type with ``Builder.convert`` (shift left to a finer
step, drop provably-zero LSBs to a coarser one, extend or truncate to the stored width).

Port packing follows docs/design.md: a tensor port is the row-major concatenation of its
elements, element 0 at the LSBs, each element exactly its type's width (zero-width elements
take no bits), two's complement when signed. HDL has no zero-width vectors, so a port whose
total width is 0 is still emitted with one bit: ignored when it is an input, driven 0 when it
is an output (``port_width`` in the layout says so). The clock, when the graph has live ``reg``
nodes, is the input ``clk`` (rising edge, no reset, no enable; one new vector per cycle).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import HgqcError
from ..ir.fixed import Overflow, Round, bounds, requantize
from ..ir.graph import Graph, Node
from ..ir.ops import OPS, Op, table_entry, table_keys
from ..ir.types import QInterval, dyadic

CLOCK = 'clk'


class BackendError(HgqcError, ValueError):
    """The graph cannot be turned into hardware (not adder level, unbalanced pipeline, ...)."""


# =========================================================================== identifiers

_VERILOG_SV = """
accept_on alias always always_comb always_ff always_latch and assert assign assume automatic before begin bind bins
binsof bit break buf bufif0 bufif1 byte case casex casez cell chandle checker class clocking cmos config const
constraint context continue cover covergroup coverpoint cross deassign default defparam design disable dist do edge
else end endcase endchecker endclass endclocking endconfig endfunction endgenerate endgroup endinterface endmodule
endpackage endprimitive endprogram endproperty endspecify endsequence endtable endtask enum event eventually expect
export extends extern final first_match for force foreach forever fork forkjoin function generate genvar global
highz0 highz1 if iff ifnone ignore_bins illegal_bins implements implies import incdir include initial inout input
inside instance int integer interconnect interface intersect join join_any join_none large let liblist library local
localparam logic longint macromodule matches medium modport module nand negedge nettype new nexttime nmos nor
noshowcancelled not notif0 notif1 null or output package packed parameter pmos posedge primitive priority program
property protected pull0 pull1 pulldown pullup pulsestyle_ondetect pulsestyle_onevent pure rand randc randcase
randsequence rcmos real realtime ref reg reject_on release repeat restrict return rnmos rpmos rtran rtranif0
rtranif1 s_always s_eventually s_nexttime s_until s_until_with scalared sequence shortint shortreal showcancelled
signed small soft solve specify specparam static string strong strong0 strong1 struct super supply0 supply1
sync_accept_on sync_reject_on table tagged task this throughout time timeprecision timeunit tran tranif0 tranif1 tri
tri0 tri1 triand trior trireg type typedef union unique unique0 unsigned until until_with untyped use uwire var
vectored virtual void wait wait_order wand weak weak0 weak1 while wildcard wire with within wor xnor xor
"""
_VHDL = """
abs access after alias all and architecture array assert assume assume_guarantee attribute begin block body buffer
bus case component configuration constant context cover default disconnect downto else elsif end entity exit
fairness file for force function generate generic group guarded if impure in inertial inout is label library
linkage literal loop map mod nand new next nor not null of on open or others out package parameter port postponed
procedure process property protected pure range record register reject release rem report restrict
restrict_guarantee return rol ror select sequence severity shared signal sla sll sra srl strong subtype then to
transport type unaffected units until use variable vmode vprop vunit wait when while with xnor xor
ieee std work std_logic std_logic_vector std_ulogic std_ulogic_vector numeric_std std_logic_1164 signed unsigned
resize integer natural positive boolean bit bit_vector string character real time to_integer to_signed
to_unsigned rising_edge falling_edge shift_left shift_right
"""
# C++ keywords and the members of a Verilated model class: ports become C++ members there.
_CPP_VERILATOR = """
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t char32_t class compl
concept const consteval constexpr constinit const_cast continue co_await co_return co_yield decltype default delete
do double dynamic_cast else enum explicit export extern false float for friend goto if inline int long mutable
namespace new noexcept not not_eq nullptr operator or or_eq private protected public register reinterpret_cast
requires return short signed sizeof static static_assert static_cast struct switch template this thread_local throw
true try typedef typeid typename union unsigned using virtual void volatile wchar_t while xor xor_eq main
vlsymsp rootp eval eval_step eval_end_step final eventspending nexttimeslot name hiername modelname threads trace
contextp
"""
# Names of hgqc's own VHDL architecture and helper functions (backends/vhdl.py).
_HGQC = 'rtl hgqc_mux hgqc_bool hgqc_rep hgqc_a hgqc_b hgqc_c hgqc_n hgqc_r hgqc_x'
RESERVED: frozenset[str] = frozenset((_VERILOG_SV + _VHDL + _CPP_VERILATOR + _HGQC).split())

_IDENT = re.compile(r'[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*\Z')


def is_identifier(name: str, max_len: int = 64) -> bool:
    """A plain identifier valid in Verilog, SystemVerilog, VHDL and C++ (not reserved anywhere)."""
    return identifier_problem(name, max_len) is None


def identifier_problem(name: str, max_len: int = 64) -> str | None:
    """Why ``name`` is not such an identifier (None: it is one), for error messages."""
    if not _IDENT.match(name):
        return "use letters, digits and single '_' between them, starting with a letter"
    if len(name) > max_len:
        return f'it is longer than {max_len} characters'
    if name.lower() in RESERVED:
        return 'it is a reserved word of Verilog, VHDL or C++ (or of hgqc) in some letter case'
    return None


class Namespace:
    """Hands out unique, sanitized identifiers, deterministically.

    Identifiers satisfy the strictest of the target languages (VHDL): ASCII letters, digits and
    single underscores, starting with a letter, no trailing underscore, not a keyword of
    Verilog/SystemVerilog/VHDL/C++, unique *case-insensitively* (VHDL is case-insensitive), at
    most ``max_len`` characters. A clash gets the first free suffix ``_1``, ``_2``, ...
    """

    def __init__(self, max_len: int = 48, reserved: Iterable[str] = RESERVED):
        if max_len < 8:
            raise ValueError('max_len must be at least 8')
        self.max_len = max_len
        self._taken: set[str] = {r.lower() for r in reserved}
        self.names: list[str] = []

    @staticmethod
    def sanitize(hint: str) -> str:
        # Decompose accents (é -> e) and drop what has no ASCII form; every other character
        # outside [A-Za-z0-9] becomes a separator.
        ascii_hint = unicodedata.normalize('NFKD', str(hint)).encode('ascii', 'ignore').decode('ascii')
        base = re.sub(r'[^A-Za-z0-9]+', '_', ascii_hint).strip('_')
        if not base:
            return 'n'
        return base if base[0].isalpha() else 'n_' + base

    def _fit(self, base: str, suffix: str) -> str:
        return base[: self.max_len - len(suffix)].rstrip('_') + suffix

    def take(self, hint: str) -> str:
        """A fresh identifier resembling ``hint``; it is reserved from then on."""
        base = self.sanitize(hint)
        name = self._fit(base, '')
        k = 0
        while name.lower() in self._taken:
            k += 1
            name = self._fit(base, f'_{k}')
        self._taken.add(name.lower())
        self.names.append(name)
        return name

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._taken


# =========================================================================== port layout


def live_nodes(graph: Graph) -> set[Node]:
    """Nodes some graph output depends on (everything else is not emitted)."""
    live: set[Node] = set()
    stack = list(graph.output_nodes())
    while stack:
        n = stack.pop()
        if n not in live:
            live.add(n)
            stack.extend(n.inputs)
    return live


def pipeline_latency(graph: Graph, live: set[Node] | None = None) -> int:
    """Clock cycles from inputs to outputs; every path must cross the same number of ``reg``s.

    Values derived only from constants have no stage and fit anywhere. An unbalanced graph
    would mix data of different input vectors when streamed, so it is refused. (``live``: the
    graph's ``live_nodes`` when the caller has them.)
    """
    live = live_nodes(graph) if live is None else live
    depth: dict[Node, int | None] = {}
    for n in graph.nodes.values():
        if n not in live:
            continue
        if n.op is Op.INPUT:
            depth[n] = 0
            continue
        ds = sorted({d for d in (depth[i] for i in n.inputs) if d is not None})
        if len(ds) > 1:
            raise BackendError(
                f'%{n.id} ({n.op.value} "{n.name}") joins values from different pipeline stages {ds}; '
                'every path must cross the same number of reg nodes'
            )
        d = ds[0] if ds else None
        depth[n] = d + 1 if (d is not None and n.op is Op.REG) else d
    outs = sorted({d for d in (depth[v] for v in graph.output_nodes()) if d is not None})
    if len(outs) > 1:
        raise BackendError(f'outputs have different latencies {outs}')
    return outs[0] if outs else 0


def _port(name: str, ident: str, node: Node) -> dict[str, Any]:
    elems, off = [], 0
    for q in node.type.elems:
        elems.append([off, q.width, q.signed, q.f if q.width else 0])
        off += q.width
    return {'name': name, 'port': ident, 'shape': list(node.shape), 'width': off, 'port_width': max(off, 1), 'elements': elems}


def _port_namespace(graph: Graph, top: str) -> tuple[Namespace, dict[str, Any]]:
    why = identifier_problem(top)
    if why:
        raise BackendError(f'top module name {top!r} is not a legal HDL identifier: {why}')
    if top.lower() == CLOCK:
        raise BackendError(f"top module name {top!r} is the clock port's name; choose another")
    ns = Namespace()
    ns.take(CLOCK)  # reserved even for combinational graphs so port names never depend on it
    ns.take(top)  # Verilator (C++) refuses a port named like its module
    live = live_nodes(graph)
    has_clock = any(n.op is Op.REG for n in live)
    layout: dict[str, Any] = {
        'clock': CLOCK if has_clock else None,
        'latency': pipeline_latency(graph, live),
        'inputs': [_port(n.name, ns.take(n.name or 'in'), n) for n in graph.inputs],
        'outputs': [_port(name, ns.take(name or 'out'), n) for name, n in graph.outputs],
    }
    return ns, layout


def port_layout(graph: Graph, top: str = 'model') -> dict[str, Any]:
    """JSON-ready description of the hardware interface (what ``metadata.json`` records).

    Port identifiers avoid ``clk`` and the module name ``top`` (pass the same ``top`` as to the
    emitter).

    ``{'clock': 'clk' | None, 'latency': cycles, 'inputs': [port], 'outputs': [port]}`` with
    ``port = {'name': graph name, 'port': HDL identifier, 'shape': [...], 'width': total bits,
    'port_width': max(width, 1), 'elements': [[offset, width, signed, f], ...]}``.
    """
    return _port_namespace(graph, top)[1]


# =========================================================================== packing


def pack_port(port: dict[str, Any], values: np.ndarray) -> list[int]:
    """Pack integers of shape (N, *shape) into one non-negative Python int per vector."""
    n = values.shape[0]
    flat = np.asarray(values).reshape(n, len(port['elements']))
    acc = np.zeros(n, dtype=object)
    for k, (off, width, _signed, _f) in enumerate(port['elements']):
        if width:
            acc = acc + ((flat[:, k].astype(object) & ((1 << width) - 1)) << off)
    return [int(v) for v in acc]


def unpack_port(port: dict[str, Any], words: Sequence[int]) -> np.ndarray:
    """Inverse of ``pack_port``: sign-extend each element; shape (N, *shape)."""
    acc = np.array(list(words), dtype=object)
    n = len(acc)
    wide = any(w > 63 for _o, w, _s, _f in port['elements'])
    out = np.zeros((n, len(port['elements'])), dtype=object if wide else np.int64)
    for k, (off, width, signed, _f) in enumerate(port['elements']):
        if not width or not n:
            continue
        v = (acc >> off) & ((1 << width) - 1)
        if signed:
            v = v - ((v >> (width - 1)) << width)
        out[:, k] = v
    return out.reshape((n, *port['shape']))


def to_hex_lines(words: Iterable[int], width: int) -> str:
    digits = max((width + 3) // 4, 1)
    return ''.join(f'{w:0{digits}x}\n' for w in words)


# =========================================================================== syntax layer


@dataclass(frozen=True)
class Val:
    """An expression of exact ``width`` bits; ``signed`` is its meaning (two's complement).

    ``simple`` marks a plain identifier; ``src = (identifier, lsb)`` says the value is a field
    of an identifier (HDL can only slice identifiers, so slices of slices compose through it);
    ``const`` holds the bit pattern (0 <= const < 2^width) when the value is known, so
    constants fold in Python. Width 0 is the constant 0 and has no text.
    """

    text: str
    width: int
    signed: bool
    simple: bool = False
    const: int | None = None
    src: tuple[str, int] | None = None

    @property
    def value(self) -> int | None:
        """The integer this constant stands for (sign applied), None when not constant."""
        if self.const is None:
            return None
        if self.signed and self.width and self.const >> (self.width - 1):
            return self.const - (1 << self.width)
        return self.const


ZERO_VAL = Val('', 0, False, True, 0)


class Syntax(Protocol):
    """Text of each primitive; operands are ``Val``s of the widths noted (never width 0)."""

    def literal(self, bits: int, width: int, signed: bool) -> str: ...
    def slice(self, v: Val, hi: int, lo: int) -> str: ...  # v is an identifier; unsigned result
    def concat(self, parts: Sequence[Val]) -> str: ...  # MSB first, result unsigned
    def replicate(self, count: int, bit: Val) -> str: ...
    def arith(self, op: str, a: Val, b: Val) -> str: ...  # '+', '-', '*'; equal widths, modulo 2^width
    def negate(self, a: Val) -> str: ...
    def logic(self, op: str, a: Val, b: Val) -> str: ...  # '&', '|' on single bits
    def invert(self, a: Val) -> str: ...  # single bit
    def reduce_or(self, a: Val) -> str: ...  # one bit: a != 0
    def less(self, a: Val, b: Val) -> str: ...  # equal widths and signedness
    def mux(self, cond: Val, a: Val, b: Val) -> str: ...  # cond ? a : b; a, b equal widths

    def render(self, netlist: Netlist, top: str) -> dict[str, str]: ...  # must render every Stmt kind, Rom included


# =========================================================================== netlist


@dataclass(frozen=True)
class Decl:
    name: str
    width: int
    signed: bool
    is_reg: bool = False
    comment: str = ''


@dataclass(frozen=True)
class Assign:
    name: str
    expr: str


@dataclass(frozen=True)
class RegUpdate:
    """``name`` takes ``expr`` at every rising clock edge."""

    name: str
    expr: str


@dataclass(frozen=True)
class Rom:
    """A combinational read-only table (the ``table`` op): declares ``name`` and drives it.

    ``name`` (``width`` bits, two's complement when ``signed``) takes the bit pattern ``out``
    of the entry ``(key, out)`` whose ``key`` equals the bit pattern of ``sel`` (an identifier
    or a slice of one, ``sel_width`` bits, read as unsigned); keys are distinct, and any other
    select value gives 0 (it cannot occur: the keys cover every value the input type allows).
    Both patterns are non-negative Python ints below 2^width. Verilog spells it as a ``case``
    in an ``always @(*)`` block; VHDL as a selected signal assignment (``with sel select``).
    """

    name: str
    width: int
    signed: bool
    sel: Val
    sel_width: int
    entries: tuple[tuple[int, int], ...]
    comment: str = ''


Stmt = Decl | Assign | RegUpdate | Rom

# A ROM of at least this many entries whose values change at most once per RUN_RATIO entries (in
# key order) is written as a tree of 2:1 selects on its key bits instead of a line per entry: the
# float32-average corrections (``hgqc.passes.average``) are tens of thousands of keys in ~30 runs,
# and a ``case`` that long makes megabytes of HDL for the few LUTs synthesis folds it into.
TREE_ROM_MIN = 1024
RUN_RATIO = 16


def few_runs(entries: int, runs: int) -> bool:
    """Whether a table is long with few runs (written as a tree of selects or compares)."""
    return entries >= TREE_ROM_MIN and runs * RUN_RATIO <= entries


def value_runs(values: Sequence[int]) -> list[tuple[int, int]] | None:
    """``[(last index, value), ...]`` of the runs of a long table with few runs, else None."""
    v = np.asarray(values)
    ends = np.r_[np.flatnonzero(v[1:] != v[:-1]), len(v) - 1]
    return [(int(e), int(v[e])) for e in ends] if few_runs(len(v), len(ends)) else None


# a ROM as select tree: a constant output pattern, or ``(bit, tree if the bit is 0, tree if 1)``
RomTree = int | tuple[int, Any, Any]


def rom_tree(s: Rom) -> RomTree | None:
    """The select tree of a long ROM with few runs (see ``TREE_ROM_MIN``), else None.

    Shannon expansion on the key bits from the top: a block of keys whose present entries agree
    is that constant, and a block with no entry (a key that cannot occur) takes its sibling's
    tree, so the tree has at most ~(runs x key bits) selects, as the logic folded from the ``case``.
    """
    if len(s.entries) < TREE_ROM_MIN:
        return None
    keys, values = np.array(sorted(s.entries), dtype=object).T if s.sel_width > 62 else np.array(sorted(s.entries)).T
    changes = np.flatnonzero(values[1:] != values[:-1]) + 1  # first index of every run but the first
    if not few_runs(len(keys), len(changes) + 1):
        return None

    def tree(i: int, j: int, base: int, bit: int) -> RomTree | None:  # entries i:j, keys base + [0, 2^(bit+1))
        if i == j:
            return None
        k = int(np.searchsorted(changes, i, side='right'))
        if k == len(changes) or changes[k] >= j:
            return int(values[i])
        mid = int(np.searchsorted(keys[i:j], base + (1 << bit))) + i
        low, high = tree(i, mid, base, bit - 1), tree(mid, j, base + (1 << bit), bit - 1)
        return high if low is None else low if high is None else (bit, low, high)

    return tree(0, len(keys), 0, s.sel_width - 1)


def select_tree_lines(
    tree: RomTree, pad: str, leaf: Callable[[int], str], test: Callable[[int], str], end: str = ''
) -> list[str]:
    """A select tree as nested ``if``/``else`` lines: ``leaf(value)`` is a statement, ``test(bit)``
    the ``if`` line taking the bit-is-1 branch, ``end`` the line closing an ``if`` (if any)."""
    if isinstance(tree, int):
        return [pad + leaf(tree)]
    bit, low, high = tree
    inner = pad + '    '
    lines = [pad + test(bit), *select_tree_lines(high, inner, leaf, test, end), pad + 'else']
    return lines + select_tree_lines(low, inner, leaf, test, end) + ([pad + end] if end else [])


@dataclass
class Netlist:
    graph_name: str
    layout: dict[str, Any]
    body: list[Stmt] = field(default_factory=list)
    output_exprs: list[str] = field(default_factory=list)  # one per layout['outputs'] entry
    output_comments: list[str] = field(default_factory=list)  # provenance of each output node


def clean_comment(text: str) -> str:
    """Provenance text safe inside a one-line comment of any HDL (ASCII, no line breaks)."""
    t = str(text).encode('ascii', 'backslashreplace').decode('ascii')
    return re.sub(r'[\x00-\x1f\x7f]', ' ', t).replace('*/', '* /')


def _mask(width: int) -> int:
    return (1 << width) - 1


class Builder:
    """Constructs logic through the syntax layer: constant folding, temporaries, conversions."""

    def __init__(self, syntax: Syntax, ns: Namespace):
        self.syn = syntax
        self.ns = ns
        self.body: list[Stmt] = []
        self.scope = 't'  # name hint for temporaries of the node being emitted
        self._temps: dict[tuple[str, int, bool], Val] = {}  # one temporary per distinct expression
        self.env: dict[Node, list[Val]] = {}  # every emitted node's element values (the walker's)
        # registers of a relu'd quantized value also hold its parts (sign, un-relu'd value) for a
        # max after them (``_relu_parts``); per register node and element, None: no parts
        self.parts: dict[Node, list[tuple[Val, Val] | None]] = {}

    # ------------------------------------------------------------------ declarations
    def define(self, v: Val, hint: str, comment: str = '') -> Val:
        """A new wire holding ``v`` (width 0 stays the unnamed constant 0)."""
        if v.width == 0:
            return ZERO_VAL
        name = self.ns.take(hint)
        self.body.append(Decl(name, v.width, v.signed, False, comment))
        self.body.append(Assign(name, v.text))
        return Val(name, v.width, v.signed, True, v.const, (name, 0))

    def register(self, v: Val, hint: str, comment: str = '') -> Val:
        if v.width == 0:
            return ZERO_VAL
        name = self.ns.take(hint)
        self.body.append(Decl(name, v.width, v.signed, True, comment))
        self.body.append(RegUpdate(name, v.text))
        return Val(name, v.width, v.signed, True, None, (name, 0))

    def rom(self, sel: Val, entries: Sequence[tuple[int, int]], width: int, signed: bool, hint: str, comment: str = '') -> Val:
        """A new signal reading ``entries`` (``(select bits, output bits)``) at ``sel`` (see ``Rom``)."""
        if width == 0:
            return ZERO_VAL
        if sel.width == 0 or sel.const is not None:
            key = 0 if sel.width == 0 else sel.const
            return self.const(dict(entries).get(key, 0), width, signed)
        sel = self.sliceable(sel)
        name = self.ns.take(hint)
        self.body.append(Rom(name, width, signed, sel, sel.width, tuple(entries), comment))
        return Val(name, width, signed, True, None, (name, 0))

    def sliceable(self, v: Val) -> Val:
        """``v`` itself if it is (a field of) an identifier, else a temporary wire holding it."""
        if v.src is not None:
            return v
        key = (v.text, v.width, v.signed)
        if key not in self._temps:
            self._temps[key] = self.define(v, f'{self.scope}_t')
        return self._temps[key]

    def shared(self, v: Val) -> Val:
        """``v`` for use in several places: compound expressions go to a temporary, not copied."""
        return v if v.src is not None or v.const is not None else self.sliceable(v)

    def field(self, v: Val, hi: int, lo: int, signed: bool) -> Val:
        """Bits ``v[hi:lo]`` (slices of slices compose into one slice of the identifier)."""
        v = self.sliceable(v)
        assert v.src is not None
        name, base = v.src
        ident = Val(name, 0, False, True)
        return Val(self.syn.slice(ident, base + hi, base + lo), hi - lo + 1, signed, False, None, (name, base + lo))

    # ------------------------------------------------------------------ constants
    def const(self, value: int, width: int, signed: bool) -> Val:
        if width == 0:
            return ZERO_VAL
        bits = value & _mask(width)
        return Val(self.syn.literal(bits, width, signed), width, signed, False, bits)

    # ------------------------------------------------------------------ bit manipulation
    def resize(self, v: Val, width: int) -> Val:
        """Extend (sign or zero, per ``v.signed``) or truncate to ``width`` bits: exact modulo 2^width."""
        if width == v.width:
            return v
        if width == 0:
            return ZERO_VAL
        if v.const is not None:
            return self.const(v.value or 0, width, v.signed)
        if width < v.width:
            return self.field(v, width - 1, 0, v.signed)
        ext = width - v.width
        if v.signed:
            v = self.sliceable(v)
            pad = Val(self.syn.replicate(ext, self.field(v, v.width - 1, v.width - 1, False)), ext, False)
            return Val(self.syn.concat([pad, v]), width, True)
        return Val(self.syn.concat([self.const(0, ext, False), v]), width, False)

    def shl(self, v: Val, n: int) -> Val:
        """Append ``n`` zero LSBs (exact multiplication by 2^n, width grows by n)."""
        if n == 0 or v.width == 0:
            return v
        if v.const is not None:
            return self.const((v.value or 0) << n, v.width + n, v.signed)
        return Val(self.syn.concat([v, self.const(0, n, False)]), v.width + n, v.signed)

    def drop(self, v: Val, n: int) -> Val:
        """Floor division by 2^n (drop ``n`` < width LSBs, keep the sign)."""
        if n == 0:
            return v
        if n >= v.width:
            raise ValueError('drop: cannot remove every bit')
        if v.const is not None:
            return self.const((v.value or 0) >> n, v.width - n, v.signed)
        return self.field(v, v.width - 1, n, v.signed)

    def bits(self, v: Val, hi: int, lo: int) -> Val:
        """Unsigned field ``v[hi:lo]``."""
        if v.const is not None:
            return self.const((v.const >> lo) & _mask(hi - lo + 1), hi - lo + 1, False)
        return self.field(v, hi, lo, False)

    def reinterpret(self, v: Val, signed: bool) -> Val:
        return v if v.signed == signed else Val(v.text, v.width, signed, v.simple, v.const, v.src)

    def scale(self, v: Val, d: int, width: int) -> Val:
        """``v * 2^d`` modulo 2^width (d >= 0), keeping ``v``'s signedness."""
        if d >= width:
            return self.const(0, width, v.signed)
        return self.shl(self.resize(v, width - d), d)

    def convert(self, v: Val, f: int, to: QInterval) -> Val:
        """Re-express ``v`` (an integer at step 2^-f) in type ``to``, which holds the value exactly."""
        if to.width == 0:
            return ZERO_VAL
        d = to.f - f
        if v.const is not None:
            x = v.value or 0
            return self.const(x << d if d >= 0 else x >> -d, to.width, to.signed)
        if d >= 0:
            v = self.scale(v, d, to.width)
        elif -d >= v.width:
            return self.const(0, to.width, to.signed)  # only 0 is a multiple of 2^width that fits
        else:
            v = self.resize(self.drop(v, -d), to.width)  # the dropped LSBs are provably zero
        return self.reinterpret(self.resize(v, to.width), to.signed)

    # ------------------------------------------------------------------ arithmetic
    def arith(self, op: str, a: Val, b: Val) -> Val:
        """``a op b`` modulo 2^width for equal-width operands (signedness of ``a``)."""
        assert a.width == b.width, (a, b)
        if a.width == 0:
            return ZERO_VAL
        if a.const is not None and b.const is not None:
            x, y = a.value or 0, b.value or 0
            return self.const({'+': x + y, '-': x - y, '*': x * y}[op], a.width, a.signed)
        if op == '+' and a.const == 0:
            return self.reinterpret(b, a.signed)
        if op in '+-' and b.const == 0:
            return a
        return Val(self.syn.arith(op, a, b), a.width, a.signed)

    def negate(self, a: Val) -> Val:
        if a.const is not None:
            return self.const(-(a.value or 0), a.width, a.signed)
        return Val(self.syn.negate(a), a.width, a.signed)

    # ------------------------------------------------------------------ single bits
    def logic(self, op: str, a: Val, b: Val) -> Val:
        for x, y in ((a, b), (b, a)):
            if x.const is not None:
                absorbing = x.const == (0 if op == '&' else 1)
                return x if absorbing else y
        return Val(self.syn.logic(op, a, b), 1, False)

    def invert(self, a: Val) -> Val:
        if a.const is not None:
            return self.const(1 - a.const, 1, False)
        return Val(self.syn.invert(a), 1, False)

    def reduce_or(self, a: Val) -> Val:
        if a.width == 0 or a.const is not None:
            return self.const(int(bool(a.const)), 1, False)
        return a if a.width == 1 else Val(self.syn.reduce_or(a), 1, False)

    def common(self, a: Val, b: Val) -> tuple[Val, Val]:
        """Both operands at one width and signedness that holds either's values exactly."""
        signed = a.signed or b.signed
        width = max(v.width + (signed and not v.signed) for v in (a, b))
        return self.reinterpret(self.resize(a, width), signed), self.reinterpret(self.resize(b, width), signed)

    def less(self, a: Val, b: Val) -> Val:
        a, b = self.common(a, b)
        if a.const is not None and b.const is not None:
            return self.const(int((a.value or 0) < (b.value or 0)), 1, False)
        return Val(self.syn.less(a, b), 1, False)

    def mux(self, cond: Val, a: Val, b: Val) -> Val:
        """``cond ? a : b`` for equal-width operands."""
        assert a.width == b.width and cond.width == 1, (cond, a, b)
        if cond.const is not None:
            return a if cond.const else b
        if a.width == 0:
            return ZERO_VAL
        return Val(self.syn.mux(cond, a, b), a.width, a.signed or b.signed)

    def sign(self, v: Val) -> Val:
        """1 when ``v`` is negative."""
        return self.bits(v, v.width - 1, v.width - 1) if v.signed and v.width else self.const(0, 1, False)


# =========================================================================== per-op emitters


@dataclass
class NodeCtx:
    b: Builder
    node: Node
    args: list[list[Val]]  # per operand, per flat element
    base: str  # identifier hint for the node's signals
    comment: str
    port_elems: list[Val] | None = None  # INPUT only


NodeEmitter = Callable[[NodeCtx], list[Val]]
EMITTERS: dict[Op, NodeEmitter] = {}


@dataclass
class Elem:
    """One element of an elementwise node: operands at their stored types."""

    b: Builder
    node: Node
    index: int
    args: list[Val]
    types: list[QInterval]
    natural: QInterval  # the op's exact result type for this element
    out: QInterval  # the node's stored type


ElemEmitter = Callable[[Elem], tuple[Val, int]]  # value and its frac (step 2^-f)


def _elem_name(ctx: NodeCtx, e: int) -> str:
    return ctx.base if ctx.node.shape == () else f'{ctx.base}_{e}'


def elementwise(op: Op) -> Callable[[ElemEmitter], ElemEmitter]:
    """Register an element-level emitter; the wrapper loops elements and names the results."""

    def deco(fn: ElemEmitter) -> ElemEmitter:
        def emit(ctx: NodeCtx) -> list[Val]:
            node, b = ctx.node, ctx.b
            natural = OPS[node.op].infer(node.attrs, [i.type for i in node.inputs])
            out = []
            for e, q in enumerate(node.type.elems):
                b.scope = _elem_name(ctx, e)
                nat = natural.elems[e]
                if q.is_const:  # a forced value needs no logic
                    v = b.const(q.lo, q.width, q.signed)
                elif nat.is_const:
                    v = b.convert(b.const(nat.lo, nat.width + 1, True), nat.f, q)
                else:
                    el = Elem(b, node, e, [a[e] for a in ctx.args], [i.type.elems[e] for i in node.inputs], nat, q)
                    val, f = fn(el)
                    v = b.convert(val, f, q)
                out.append(v if v.simple or v.const is not None else b.define(v, b.scope, ctx.comment))
            return out

        EMITTERS[op] = emit
        return fn

    return deco


def _aligned_sum(e: Elem, b_frac: int, sub: bool) -> tuple[Val, int]:
    """a ± b at the natural step, modulo 2^natural width (b's step given as ``b_frac``)."""
    (a, bb), (ta, _) = e.args, e.types
    f, w = e.natural.f, e.natural.width
    x = e.b.scale(a, f - ta.f, w)
    y = e.b.scale(bb, f - b_frac, w)
    if not (y.const == 0 or (x.const == 0 and not sub)):  # a real adder: see ``guarded_sum``
        x, y = e.b.scale(a, f - ta.f + 1, w + 1), e.b.scale(bb, f - b_frac + 1, w + 1)
        return e.b.reinterpret(e.b.drop(e.b.arith('-' if sub else '+', x, y), 1), e.natural.signed), f
    # the bits are exact modulo 2^w; read them with the natural type's sign, not a's (0 - u is negative)
    return e.b.reinterpret(e.b.arith('-' if sub else '+', x, y), e.natural.signed), f


@elementwise(Op.ADD)
def _emit_add(e: Elem) -> tuple[Val, int]:
    return _aligned_sum(e, e.types[1].f, sub=False)


@elementwise(Op.SUB)
def _emit_sub(e: Elem) -> tuple[Val, int]:
    return _aligned_sum(e, e.types[1].f, sub=True)


@elementwise(Op.SHIFT_ADD)
def _emit_shift_add(e: Elem) -> tuple[Val, int]:
    # b * 2^shift is b's integer read at step 2^-(f_b - shift): a shift is only a change of step
    return _aligned_sum(e, e.types[1].f - int(e.node.attrs['shift']), sub=bool(e.node.attrs['sub']))


@elementwise(Op.MUL)
def _emit_mul(e: Elem) -> tuple[Val, int]:
    w = e.natural.width
    a, b = (e.b.resize(v, w) for v in e.args)
    return e.b.reinterpret(e.b.arith('*', a, b), e.natural.signed), e.types[0].f + e.types[1].f


@elementwise(Op.NEG)
def _emit_neg(e: Elem) -> tuple[Val, int]:
    return e.b.reinterpret(e.b.negate(e.b.resize(e.args[0], e.natural.width)), e.natural.signed), e.types[0].f


@elementwise(Op.RELU)
def _emit_relu(e: Elem) -> tuple[Val, int]:
    (x,), (t,) = e.args, e.types
    if not x.signed:
        return x, t.f
    return e.b.mux(e.b.sign(x), e.b.const(0, x.width, True), x), t.f


def _relu_parts(b: Builder, q: Node, index: int) -> tuple[Val, Val] | None:
    """``(s, v)`` for element ``index`` of ``q = quantize(relu(y))``: its value is ``s ? 0 : v``
    for ``s = (y < 0)`` and ``v = quantize(y)`` (relu(y) = y when ``y >= 0``, and every quantize
    maps 0 to 0), ``v`` in ``q``'s stored type (meaningful only where ``s == 0``); for a register
    of such a value, its registered parts. None for any other value."""
    if q.op is Op.REG:
        parts = b.parts.get(q)
        return parts[index] if parts is not None else None
    if q.op is not Op.QUANTIZE or q.inputs[0].op is not Op.RELU or q.attrs.get('div') is not None:
        return None
    y = q.inputs[0].inputs[0]
    if y.shape != q.shape:
        return None
    ty, yv = y.type.elems[index], b.env[y][index]
    if not ty.signed or yv.width == 0:
        return None
    # the operand's own quantize, applied to y instead of relu(y) (natural/out are not read)
    val, f = _emit_quantize(Elem(b, q, index, [yv], [ty], ty, ty))
    return b.sign(yv), b.convert(val, f, q.type.elems[index])


def _relu_quantized(e: Elem, k: int) -> tuple[Val, Val] | None:
    """``_relu_parts`` of operand ``k`` of a max (None when that operand has none)."""
    q = e.node.inputs[k]
    return _relu_parts(e.b, q, e.index) if q.shape == e.node.shape else None


def _fused_max(e: Elem, f: int) -> Val | None:
    """``max(r1, r2)`` of non-negative operands where at least one is ``quantize(relu(y))``
    (``_relu_quantized``), without the relus: compare the un-relu'd ``v``s and pick with the signs,

        max = (s1 & s2) ? 0 : (s1 | (~s2 & v1 < v2)) ? v2 : v1

    (an operand without the pattern has ``s = 0``, ``v = r``). Saves the relu's AND gate per
    bit of each operand: yosys does not fold them into the comparator and the mux."""
    pats = [_relu_quantized(e, k) for k in range(2)]
    if not any(pats) or any(t.lo < 0 for t in e.types):
        return None
    zero = e.b.const(0, 1, False)
    (s1, v1), (s2, v2) = ((p if p is not None else (zero, x)) for p, x in zip(pats, e.args))
    a, b = (e.b.shl(v, f - t.f) for v, t in zip((v1, v2), e.types))
    a, b = (e.b.shared(v) for v in e.b.common(a, b))
    pick_b = e.b.logic('|', s1, e.b.logic('&', e.b.invert(s2), e.b.less(a, b)))
    out = e.b.mux(pick_b, b, a)
    both = e.b.logic('&', s1, s2)
    return e.b.mux(both, e.b.const(0, out.width, out.signed), out)


def _minmax(e: Elem, take_max: bool) -> tuple[Val, int]:
    f = e.natural.f
    if take_max:
        fused = _fused_max(e, f)
        if fused is not None:
            return fused, f
    a, b = (e.b.shl(v, f - t.f) for v, t in zip(e.args, e.types))
    a, b = (e.b.shared(v) for v in e.b.common(a, b))
    lt = e.b.less(a, b)
    return (e.b.mux(lt, b, a) if take_max else e.b.mux(lt, a, b)), f


@elementwise(Op.MAX)
def _emit_max(e: Elem) -> tuple[Val, int]:
    return _minmax(e, take_max=True)


@elementwise(Op.MIN)
def _emit_min(e: Elem) -> tuple[Val, int]:
    return _minmax(e, take_max=False)


@elementwise(Op.CONST)
def _emit_const(e: Elem) -> tuple[Val, int]:  # the wrapper folds constants before calling this
    m, ex = dyadic(float(np.asarray(e.node.attrs['value']).flat[e.index]))
    return e.b.const(m, m.bit_length() + 1, True), -ex


@elementwise(Op.TABLE)
def _emit_table(e: Elem) -> tuple[Val, int]:
    """A ROM keyed by the input's own bits: every value of the input type maps to its table entry."""
    (x,), (q,) = e.args, e.types
    tab = table_entry(e.node.attrs, e.index)
    values, lo = np.asarray(tab['values']), int(tab['lo'])
    keys = table_keys(tab, q)
    nat = e.natural
    mask_in, mask_out = _mask(q.width), _mask(nat.width)
    entries = [(k & mask_in, int(values[key - lo]) & mask_out) for k, key in zip(range(q.lo, q.hi + 1), keys)]
    return e.b.rom(x, entries, nat.width, nat.signed, e.b.scope, clean_comment(f'table of "{e.node.name}"')), nat.f


# --------------------------------------------------------------------------- quantize


def _round_increment(b: Builder, q: Val, rem: Val, neg: Val, mode: Round) -> Val:
    """The 0/1 added to the floor ``q`` when dropping the bits ``rem`` (fixed.shift_round semantics).

    With half = 2^(s-1): ``rem >= half`` is rem's MSB, ``rem > half`` is MSB & (lower bits != 0).
    """
    s = rem.width
    msb = b.bits(rem, s - 1, s - 1)
    low_nz = b.reduce_or(b.bits(rem, s - 2, 0)) if s >= 2 else b.const(0, 1, False)
    any_nz = b.logic('|', msb, low_nz)
    above_half = b.logic('&', msb, low_nz)
    if mode is Round.TRN:
        return b.const(0, 1, False)
    if mode is Round.RND:
        return msb
    if mode is Round.CEIL:
        return any_nz
    if mode is Round.RND_MIN_INF:
        return above_half
    if mode is Round.RND_CONV:
        return b.logic('&', msb, b.logic('|', low_nz, b.bits(q, 0, 0)))
    if mode is Round.TRN_ZERO:
        return b.logic('&', neg, any_nz)
    if mode is Round.RND_ZERO:  # ties toward zero: up only for negatives
        return b.mux(neg, msb, above_half)
    if mode is Round.RND_INF:  # ties away from zero: up only for positives
        return b.mux(neg, above_half, msb)
    if mode is Round.TRN_INF:  # away from zero: up unless negative (floor already moved it away)
        return b.mux(neg, b.const(0, 1, False), any_nz)
    raise BackendError(f'unknown rounding mode {mode}')  # pragma: no cover - enum is closed


def _round_shift(b: Builder, x: Val, s: int, mode: Round) -> Val:
    """round(x / 2^s) for s > 0, one bit wider than the floor so the increment cannot overflow."""
    x = b.resize(x, max(x.width, s + 1))  # keep at least the sign above the dropped bits
    q = b.drop(x, s)
    rem = b.bits(x, s - 1, 0)
    inc = _round_increment(b, q, rem, b.sign(x), mode)
    w = q.width + (mode is not Round.TRN)
    return b.arith('+', b.resize(q, w), b.reinterpret(b.resize(inc, w), q.signed))


def _saturate(b: Builder, y: Val, lo: int, hi: int, ylo: int, yhi: int) -> Val:
    """Clamp ``y`` (known to lie in [ylo, yhi]) to [lo, hi]; only the reachable sides get logic."""
    if yhi > hi:  # hi < yhi, so hi is representable in y's format
        y = b.shared(y)
        y = b.mux(b.less(b.const(hi, y.width, y.signed), y), b.const(hi, y.width, y.signed), y)
    if ylo < lo:
        y = b.shared(y)
        y = b.mux(b.less(y, b.const(lo, y.width, y.signed)), b.const(lo, y.width, y.signed), y)
    return y


@elementwise(Op.QUANTIZE)
def _emit_quantize(e: Elem) -> tuple[Val, int]:
    (x,), (t,) = e.args, e.types
    attrs, i_ = e.node.attrs, e.index
    if attrs.get('div') is not None:  # ``lower`` expands divisions; backends never see one
        raise ValueError(f'quantize "{e.node.name}" still divides (attr div): run the lower pass first')
    k, ib, f = (int(np.asarray(attrs[a]).flat[i_]) for a in ('k', 'i', 'f'))
    rnd, ovf = Round(attrs['round']), Overflow(attrs['overflow'])
    b = e.b
    if k + ib + f <= 0:
        return b.const(0, 1, False), f
    # 1. rounding to step 2^-f
    y = b.shl(x, f - t.f) if f >= t.f else _round_shift(b, x, t.f - f, rnd)
    ylo, yhi = (int(v) for v in requantize(np.array([t.lo, t.hi], dtype=object), np.array(t.f), np.array(f), rnd))
    # 2. overflow into ap_fixed<k, i, f>
    lo, hi = (int(v) for v in bounds(np.array(k), np.array(ib), np.array(f), ovf, np.array(0, dtype=object)))
    if lo <= ylo and yhi <= hi:
        return y, f
    if ovf is Overflow.WRAP:
        return b.reinterpret(b.resize(y, k + ib + f), bool(k)), f
    return _saturate(b, y, lo, hi, ylo, yhi), f


# --------------------------------------------------------------------------- node-level ops


def _emit_input(ctx: NodeCtx) -> list[Val]:
    assert ctx.port_elems is not None
    return ctx.port_elems


def _emit_gather(ctx: NodeCtx) -> list[Val]:
    """Pure wiring; a scalar extraction gets a named wire so the netlist reads like the graph."""
    src = [v for a in ctx.args for v in a]
    src_t = [q for i in ctx.node.inputs for q in i.type.elems]
    idx = np.asarray(ctx.node.attrs['index'], dtype=np.int64).ravel()
    b, out = ctx.b, []
    for e, (j, q) in enumerate(zip(idx, ctx.node.type.elems)):
        b.scope = _elem_name(ctx, e)
        v = ZERO_VAL if j < 0 else src[j]
        v = b.convert(v, 0 if j < 0 else src_t[j].f, q)
        if ctx.node.shape == () and not (v.simple or v.const is not None):
            v = b.define(v, b.scope, ctx.comment)
        out.append(v)
    return out


def _emit_reg(ctx: NodeCtx) -> list[Val]:
    b, out = ctx.b, []
    for e, q in enumerate(ctx.node.type.elems):
        b.scope = _elem_name(ctx, e)
        v = b.convert(ctx.args[0][e], ctx.node.inputs[0].type.elems[e].f, q)
        out.append(v if v.const is not None else b.register(v, b.scope, ctx.comment))
    if _feeds_max(ctx.node):
        _register_parts(ctx)
    return out


def _feeds_max(reg: Node) -> bool:
    """Whether a max reads this register's value, directly or through later registers (only
    then are its ``_relu_parts`` worth registering)."""
    return any((u.op is Op.MAX and u.shape == reg.shape) or (u.op is Op.REG and _feeds_max(u)) for u in reg.users)


def _register_parts(ctx: NodeCtx) -> None:
    """Register the ``_relu_parts`` of a relu'd quantized value beside it, so a max in a later
    stage still compares the un-relu'd values (one flip-flop more: the sign); only done where a
    max reads the register (``_feeds_max``), and synthesis drops whichever of the two registers
    nothing reads."""
    b, src, parts = ctx.b, ctx.node.inputs[0], []
    for e in range(ctx.node.type.size):
        got = _relu_parts(b, src, e)
        if got is not None:
            b.scope = _elem_name(ctx, e)
            s, v = (x if x.const is not None else b.register(x, b.scope + tag, ctx.comment) for x, tag in zip(got, ('_s', '_v')))
            got = (s, v)
        parts.append(got)
    if any(parts):
        b.parts[ctx.node] = parts


def _emit_cmvm(ctx: NodeCtx) -> list[Val]:
    raise BackendError(f'%{ctx.node.id} ({ctx.comment}): cmvm must be lowered to adder level (run the lower pass) first')


EMITTERS[Op.INPUT] = _emit_input
EMITTERS[Op.GATHER] = _emit_gather
EMITTERS[Op.REG] = _emit_reg
EMITTERS[Op.CMVM] = _emit_cmvm


# =========================================================================== walker


def _input_elems(b: Builder, port: dict[str, Any]) -> list[Val]:
    whole = Val(port['port'], port['port_width'], False, True, None, (port['port'], 0))
    out = []
    for off, width, signed, _f in port['elements']:
        if width == 0:
            out.append(ZERO_VAL)
        elif width == port['width']:
            out.append(b.reinterpret(whole, signed))
        else:
            out.append(b.field(whole, off + width - 1, off, signed))
    return out


def build_netlist(graph: Graph, syntax: Syntax, top: str) -> Netlist:
    """Walk the live nodes in topological order, emitting each through ``EMITTERS``."""
    ns, layout = _port_namespace(graph, top)
    b = Builder(syntax, ns)
    ports_in = {n: p for n, p in zip(graph.inputs, layout['inputs'])}
    live = live_nodes(graph)
    env: dict[Node, list[Val]] = b.env
    for node in graph.nodes.values():
        if node not in live:
            continue
        emit = EMITTERS.get(node.op)
        if emit is None:
            raise BackendError(f'%{node.id}: no hardware emitter for op {node.op.value}')
        comment = clean_comment(f'%{node.id} {node.op.value} "{node.name}"')
        ctx = NodeCtx(b, node, [env[i] for i in node.inputs], f'{node.op.value}_{node.id}', comment)
        if node.op is Op.INPUT:
            ctx.port_elems = _input_elems(b, ports_in[node])
        env[node] = emit(ctx)
    net = Netlist(graph.name, layout, b.body)
    for _name, node in graph.outputs:
        net.output_comments.append(clean_comment(f'%{node.id} {node.op.value} "{node.name}"'))
        parts = [v for v in reversed(env[node]) if v.width]
        if not parts:
            net.output_exprs.append(syntax.literal(0, 1, False))
        elif len(parts) == 1:
            net.output_exprs.append(parts[0].text)
        else:
            net.output_exprs.append(syntax.concat(parts))
    return net

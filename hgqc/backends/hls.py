"""hls4ml-style HLS C++ backend: an ``ap_fixed`` function per model, laid out as an hls4ml project.

The adder-level graph is written as straight-line C++, one variable per scalar value, typed with
the ``ap_fixed``/``ap_ufixed`` typedef of the value's exact type (``defines.h`` has one typedef
per distinct type). Exactness rests on two facts about the ap_types library:

* ``+``, ``-``, ``*`` and unary ``-`` of ap_fixed values return a full-precision result type,
  so an op's C++ expression is its exact value; assigning it to the node's stored type is then
  exact too, because the stored type holds every value the op can produce (the IR verifier
  checks this), whatever its quantization/overflow modes;
* ``value * 2^s`` (the shift of ``shift_add``) is the same bits read with the binary point
  moved, which the helper ``hgqc_shift<s>`` does by a bit copy (pure wiring).

``quantize`` casts to ``ap_fixed<k+i+f, k+i, Q, O>`` (``ap_ufixed`` when ``k == 0``), whose
modes match our ``Round``/``Overflow`` one to one, except ``CEIL``, which has no ap_fixed mode:
it is written as ``floor(x + 2^-f - 2^-f_x)`` (exact for x on its grid ``2^-f_x``). A zero-width
value (constant 0) has no type; it appears as the literal ``ap_ufixed<1, 1>(0)``.

Pipelining: C++ has no registers, so a ``reg`` node is a copy that marks a stage boundary; the
top function asks HLS for a fully unrolled ``PIPELINE II=1`` with ``LATENCY`` equal to our
pipeline depth. Ports are arrays of one type per tensor (the hull of its elements' types), as
hls4ml's ``io_parallel`` functions have.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ir.fixed import Overflow, Round, requantize
from ..ir.graph import Graph, Node
from ..ir.ops import OPS, Op, table_entry, table_keys
from ..ir.types import QInterval, dyadic
from .common import RESERVED, BackendError, Namespace, clean_comment, live_nodes, pipeline_latency, port_layout, value_runs

__all__ = ['DEFAULT_CLOCK_PERIOD', 'DEFAULT_PART', 'HlsDesign', 'Port', 'build_hls_design', 'emit_hls', 'hull']

DEFAULT_PART = 'xcvu13p-flga2577-2-e'  # hls4ml's default part
DEFAULT_CLOCK_PERIOD = 5.0  # ns, hls4ml's default

ZERO_EXPR = 'ap_ufixed<1, 1>(0)'  # a zero-width value: the constant 0 with the smallest type
_DOUBLE_BITS = 53  # constants and tb_data values up to this many significant bits are exact doubles

_AP_ROUND = {
    Round.TRN: 'AP_TRN',
    Round.RND: 'AP_RND',
    Round.RND_CONV: 'AP_RND_CONV',
    Round.TRN_ZERO: 'AP_TRN_ZERO',
    Round.RND_ZERO: 'AP_RND_ZERO',
    Round.RND_MIN_INF: 'AP_RND_MIN_INF',
    Round.RND_INF: 'AP_RND_INF',
    Round.CEIL: 'AP_TRN',  # applied after adding 2^-f - 2^-f_x (see the module docstring)
    Round.TRN_INF: 'AP_TRN',  # CEIL for x >= 0, floor below
}
_AP_OVERFLOW = {Overflow.WRAP: 'AP_WRAP', Overflow.SAT: 'AP_SAT', Overflow.SAT_SYM: 'AP_SAT_SYM'}

# Macros and global names of the ap_types headers and of the generated files: a port or signal
# must not be spelled like one of them (names starting with ``ap``/``hgqc`` are avoided too).
_HLS_RESERVED = """
AF_ASSIGN_OP_WITH_AP_INT AF_ASSIGN_OP_WITH_INT AF_BIN_OP_WITH_AP_INT AF_BIN_OP_WITH_INT AF_REL_OP_WITH_INT
ALL_AF_OP_WITH_INT ALL_OP_WITH_FLOAT APFX_IEEE_DOUBLE_E_MAX APFX_IEEE_DOUBLE_E_MIN ASSIGN_OP_FROM_INT BIAS
BIT_WIDTH_UPPER_LIMIT CONCAT_OP_WITH_INT CTOR CTOR_FROM_INT DOUBLE_BIAS DOUBLE_EXP DOUBLE_MAN FLOAT_BIAS FLOAT_EXP
FLOAT_MAN HALF_BIAS HALF_EXP HALF_MAN INLINE MAX_MODE OPS_MIX_FLOAT OPS_MIX_INT SC_BIN SC_DEC SC_HEX SC_OCT SC_RND
SC_RND_CONV SC_RND_INF SC_RND_MIN_INF SC_RND_ZERO SC_SAT SC_SAT_SYM SC_SAT_ZERO SC_TRN SC_TRN_ZERO SC_WRAP SC_WRAP_SM
isdigit isxdigit std hls nnet half size_t int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t NULL
assert printf fprintf malloc free exit abs
"""
_RESERVED_PREFIXES = ('ap', 'hgqc', 'sc_', 'af_', 'op_', 'ref_')


class CppNamespace(Namespace):
    """``Namespace`` that also avoids the ap_types library's macros and global names."""

    def __init__(self, max_len: int = 48):
        super().__init__(max_len, RESERVED | frozenset(_HLS_RESERVED.split()))

    def take(self, hint: str) -> str:
        base = self.sanitize(hint)
        if base.lower().startswith(_RESERVED_PREFIXES):
            base = 'n_' + base
        return super().take(base)


# =========================================================================== types


def hull(elems: Sequence[QInterval]) -> QInterval:
    """The smallest type holding every value of every element (the type of a port array)."""
    live = [q for q in elems if q.width]
    if not live:
        return QInterval(0, 0, 0)
    f = max(q.f for q in live)
    return QInterval(min(q.lo << (f - q.f) for q in live), max(q.hi << (f - q.f) for q in live), f)


def ap_spelling(q: QInterval, modes: tuple[str, str] | None = None) -> str:
    """``ap_fixed<W, I>`` (``ap_ufixed`` when unsigned) holding ``q`` exactly; I = W - f."""
    assert q.width, 'zero-width values have no ap type'
    tail = f', {modes[0]}, {modes[1]}' if modes else ''
    return f'ap_{"" if q.signed else "u"}fixed<{q.width}, {q.width - q.f}{tail}>'


def _type_hint(q: QInterval, modes: tuple[str, str] | None) -> str:
    i = q.width - q.f
    name = f'{"" if q.signed else "u"}fixed{q.width}_{"m" if i < 0 else ""}{abs(i)}'
    if modes:
        name += '_' + '_'.join(m[3:].lower() for m in modes)
    return name + '_t'


class TypeTable:
    """One typedef per distinct (type, modes), named after its ap_fixed parameters."""

    def __init__(self, ns: Namespace):
        self.ns = ns
        self._names: dict[tuple[int, int, bool, tuple[str, str] | None], str] = {}
        self.lines: list[str] = []

    def name(self, q: QInterval, modes: tuple[str, str] | None = None) -> str:
        key = (q.width, q.width - q.f, q.signed, modes)
        if key not in self._names:
            name = self.ns.take(_type_hint(q, modes))
            self._names[key] = name
            self.lines.append(f'typedef {ap_spelling(q, modes)} {name};')
        return self._names[key]


# =========================================================================== values


@dataclass(frozen=True)
class CVal:
    """A C++ expression for one scalar: an identifier, an array element or a literal.

    ``text`` is None for the constant 0 of zero-width values.
    """

    text: str | None

    @property
    def expr(self) -> str:
        return ZERO_EXPR if self.text is None else self.text


ZERO = CVal(None)


def literal(q: QInterval, value_int: int) -> str:
    """An exact C++ expression of type ``q`` for the integer ``value_int`` (units of 2^-q.f)."""
    if abs(value_int).bit_length() <= _DOUBLE_BITS:
        return repr(math.ldexp(value_int, -q.f))  # shortest round-trip text of an exact double
    bits = value_int & ((1 << q.width) - 1)
    return f'hgqc_from_bits<{ap_spelling(q)}>("{bits:x}")'


# =========================================================================== emitter


@dataclass(frozen=True)
class Port:
    """A top-function array: C++ name, element type (typedef), size and its size macro."""

    name: str
    type: str
    size: int
    size_macro: str


@dataclass
class HlsDesign:
    """The emitted top function and what the project files around it need."""

    top: str
    layout: dict[str, Any]  # common.port_layout (HDL names) + 'cpp' names and hull types
    typedefs: list[str]
    tables: list[str]  # file-scope static const arrays (table op ROMs)
    body: list[str]
    latency: int
    inputs: list[Port]
    outputs: list[Port]


class _Emitter:
    def __init__(self, graph: Graph, top: str):
        self.graph = graph
        self.top = top
        self.layout = port_layout(graph, top)  # validates top; HDL port names for metadata
        self.latency = pipeline_latency(graph)
        self.ns = CppNamespace()
        self.ns.take(top)
        self.types = TypeTable(self.ns)
        self.body: list[str] = []
        self.tables: list[str] = []  # file-scope ROM arrays
        self._tables: dict[tuple, tuple[str, bool]] = {}  # -> (name, read by a call)
        # The layout's HDL identifiers are the hints, so C++ ports match metadata.json's names
        # (they differ only where C++/ap_types reserve a name the HDL targets allow).
        lay = self.layout
        self.inputs = [self._port(p['port'], n.type.elems) for p, n in zip(lay['inputs'], graph.inputs)]
        self.outputs = [self._port(p['port'], n.type.elems) for p, (_, n) in zip(lay['outputs'], graph.outputs)]

    def _port(self, hint: str, elems: Sequence[QInterval]) -> Port:
        h = hull(elems)
        name = self.ns.take(hint)
        tname = self.types.name(h if h.width else QInterval(0, 1, 0))  # all-zero port: 1-bit dummy
        return Port(name, tname, max(len(elems), 1), self.ns.take(f'N_{name}'.upper()))

    # ------------------------------------------------------------------ statements
    def define(self, q: QInterval, expr: str, hint: str, comment: str, const: bool = False) -> CVal:
        name = self.ns.take(hint)
        prefix = 'const ' if const else ''
        self.body.append(f'{prefix}{self.types.name(q)} {name} = {expr};  // {comment}')
        return CVal(name)

    def table(self, tab: dict[str, Any], node: Node) -> str:
        """How to read ``tab`` at index ``%s``: a ``static const`` array, or a function of compares
        when the table is long with few runs (``common.value_runs``); one per distinct table."""
        values = [int(v) for v in np.asarray(tab['values'])]
        key = (int(tab['lo']), int(tab['f_in']), int(tab['f']), tuple(values))
        if key not in self._tables:
            f = int(tab['f'])
            q = QInterval(min(values), max(values), f)
            name = self.ns.take(f'table_{node.id}')
            if q.width == 0:
                ty, items = self.types.name(QInterval(0, 1, 0)), ['0'] * len(values)
            else:
                ty, items = self.types.name(q), [literal(q, v) for v in values]
            note = clean_comment(f'table of %{node.id} "{node.name}": input (lo + j) * 2^-{tab["f_in"]}, lo = {tab["lo"]}')
            self.tables.append(f'// {note}')
            runs = value_runs(values)
            if runs is None:
                rows = [', '.join(items[i : i + 8]) for i in range(0, len(items), 8)]
                self.tables.append(f'static const {ty} {name}[{len(values)}] = {{\n    ' + ',\n    '.join(rows) + '\n};')
            else:  # long runs: compares on j (a 100k-entry array takes g++ minutes)
                items_of = dict(zip(values, items))
                body = _run_compares([(j, items_of[v]) for j, v in runs], '    ')
                self.tables.append(f'static {ty} {name}(int j) {{\n' + '\n'.join(body) + '\n}')
            self._tables[key] = (name, runs is not None)
        name, is_function = self._tables[key]
        return f'{name}(%s)' if is_function else f'{name}[%s]'

    def constant(self, q: QInterval, hint: str, comment: str) -> CVal:
        if q.width == 0:
            return ZERO
        return self.define(q, literal(q, q.lo), hint, comment, const=True)

    # ------------------------------------------------------------------ walk
    def run(self) -> HlsDesign:
        live = live_nodes(self.graph)
        env: dict[Node, list[CVal]] = {}
        ports = dict(zip(self.graph.inputs, self.inputs))
        for node in self.graph.nodes.values():
            if node not in live:
                continue
            comment = clean_comment(f'%{node.id} {node.op.value} "{node.name}"')
            if node.op is Op.INPUT:
                name = ports[node].name
                env[node] = [CVal(f'{name}[{j}]') if q.width else ZERO for j, q in enumerate(node.type.elems)]
            elif node.op is Op.GATHER:
                env[node] = self.gather(node, [env[i] for i in node.inputs], comment)
            elif node.op is Op.CMVM:
                raise BackendError(f'{comment}: cmvm must be lowered to adder level (run the lower pass) first')
            elif node.op in _ELEMENTWISE:
                env[node] = self.elementwise(node, [env[i] for i in node.inputs], comment)
            else:
                raise BackendError(f'{comment}: no HLS C++ emitter for op {node.op.value}; it must be lowered first')
        for (name, node), port in zip(self.graph.outputs, self.outputs):
            note = clean_comment(f'output "{name}" = %{node.id} {node.op.value} "{node.name}"')
            self.body.append(f'// {note}')
            elems = env[node] or [ZERO]
            for j, v in enumerate(elems):
                self.body.append(f'{port.name}[{j}] = {v.expr};')
        return HlsDesign(self.top, self.layout, self.types.lines, self.tables, self.body, self.latency, self.inputs, self.outputs)

    def _scalar_hint(self, node: Node, e: int) -> str:
        base = f'{node.op.value}_{node.id}'
        return base if node.shape == () else f'{base}_{e}'

    def gather(self, node: Node, args: list[list[CVal]], comment: str) -> list[CVal]:
        src = [v for a in args for v in a]
        idx = np.asarray(node.attrs['index'], dtype=np.int64).ravel()
        out = []
        for e, (j, q) in enumerate(zip(idx, node.type.elems)):
            v = ZERO if j < 0 or q.width == 0 else src[j]
            if v.text is not None and node.shape == ():  # a named, exactly typed scalar (HLS sizes it)
                v = self.define(q, v.text, self._scalar_hint(node, e), comment)
            elif v.text is None and q.width:  # the constant 0 (text-less) stored in a wider type
                v = self.define(q, literal(q, 0), self._scalar_hint(node, e), comment, const=True)
            out.append(v)
        return out

    def elementwise(self, node: Node, args: list[list[CVal]], comment: str) -> list[CVal]:
        natural = OPS[node.op].infer(node.attrs, [i.type for i in node.inputs])
        out = []
        for e, q in enumerate(node.type.elems):
            hint = self._scalar_hint(node, e)
            nat = natural.elems[e]
            if q.is_const or nat.is_const:  # a forced or provably constant value needs no logic
                value = q.lo if q.is_const else _rescale(nat.lo, nat.f, q.f)
                out.append(self.constant(QInterval(value, value, q.f), hint, comment) if value else ZERO)
                continue
            a = [x[e] for x in args]
            types = [i.type.elems[e] for i in node.inputs]
            expr = _ELEMENTWISE[node.op](self, node, e, a, types)
            note = f'{comment} (stage {node.attrs.get("stage")})' if node.op is Op.REG else comment
            out.append(self.define(q, expr, hint, note))
        return out


def _rescale(x: int, f_from: int, f_to: int) -> int:
    d = f_to - f_from
    return x << d if d >= 0 else x >> -d  # exact: the stored type holds the value


# --------------------------------------------------------------------------- per-op expressions

OpExpr = Callable[['_Emitter', Node, int, list[CVal], list[QInterval]], str]  # -> the element's C++ expression


def _shifted(v: CVal, s: int) -> str:
    if v.text is None:
        return ZERO_EXPR
    return v.text if s == 0 else f'hgqc_shift<{s}>({v.text})'


def _add(em: _Emitter, node: Node, e: int, a: list[CVal], t: list[QInterval]) -> str:
    return f'{a[0].expr} + {a[1].expr}'


def _sub(em: _Emitter, node: Node, e: int, a: list[CVal], t: list[QInterval]) -> str:
    return f'{a[0].expr} - {a[1].expr}'


def _shift_add(em: _Emitter, node: Node, e: int, a: list[CVal], t: list[QInterval]) -> str:
    op = '-' if node.attrs['sub'] else '+'
    return f'{a[0].expr} {op} {_shifted(a[1], int(node.attrs["shift"]))}'


def _mul(em: _Emitter, node: Node, e: int, a: list[CVal], t: list[QInterval]) -> str:
    return f'{a[0].expr} * {a[1].expr}'


def _neg(em: _Emitter, node: Node, e: int, a: list[CVal], t: list[QInterval]) -> str:
    return f'-{a[0].expr}'


def _relu(em: _Emitter, node: Node, e: int, a: list[CVal], t: list[QInterval]) -> str:
    if not t[0].signed:
        return a[0].expr
    ty = em.types.name(node.type.elems[e])
    return f'{a[0].expr} > 0 ? {ty}({a[0].expr}) : {ty}(0)'


def _minmax(em: _Emitter, node: Node, e: int, a: list[CVal], t: list[QInterval]) -> str:
    ty = em.types.name(node.type.elems[e])
    cmp = '>' if node.op is Op.MAX else '<'
    x, y = a[0].expr, a[1].expr
    if t[0].signed != t[1].signed:
        # ap_types (hls4ml's copy) compare a signed with an unsigned value wrongly once they are
        # about 32 bits wide (ap_fixed<40,30>(-1) < ap_ufixed<40,30>(1) is false): compare in one
        # signed type holding both
        common = em.types.name(hull(t))
        return f'{common}({x}) {cmp} {common}({y}) ? {ty}({x}) : {ty}({y})'
    return f'{x} {cmp} {y} ? {ty}({x}) : {ty}({y})'


def _reg(em: _Emitter, node: Node, e: int, a: list[CVal], t: list[QInterval]) -> str:
    return a[0].expr


def _quantize(em: _Emitter, node: Node, e: int, a: list[CVal], t: list[QInterval]) -> str:
    (x,), (tx,) = a, t
    k, ib, f = (int(np.asarray(node.attrs[n]).flat[e]) for n in ('k', 'i', 'f'))
    rnd, ovf = Round(node.attrs['round']), Overflow(node.attrs['overflow'])
    # (k + i + f <= 0 gives the constant 0, which ``elementwise`` has already folded)
    rounds = tx.f > f
    if not rounds:
        rnd = Round.TRN
    # Overflow modes only where overflow can happen: the others read better and synthesize smaller.
    ylo, yhi = (int(v) for v in requantize(np.array([tx.lo, tx.hi], dtype=object), np.array(tx.f), np.array(f), rnd))
    full = QInterval.from_kif(k, ib, f)
    sym = ovf is Overflow.SAT_SYM and k
    lo = full.lo + 1 if sym else full.lo
    if lo <= ylo and yhi <= full.hi:
        ovf = Overflow.WRAP
    modes = (_AP_ROUND[rnd], _AP_OVERFLOW[ovf])
    qt = em.types.name(full, modes)
    src = x.expr
    if rnd in (Round.CEIL, Round.TRN_INF):  # ceil(x) = floor(x + 2^-f - 2^-f_x) on the grid 2^-f_x
        m = (1 << (tx.f - f)) - 1
        c = QInterval(m, m, tx.f)
        ceil = f'{qt}({x.expr} + {em.types.name(c)}({literal(c, m)}))'
        if rnd is Round.TRN_INF and tx.signed:  # away from zero: floor for negatives, ceil otherwise
            return f'{x.expr} < 0 ? {qt}({x.expr}) : {ceil}'
        return ceil
    return f'{qt}({src})'


def _table(em: _Emitter, node: Node, e: int, a: list[CVal], t: list[QInterval]) -> str:
    """``table[key - lo]`` with key = x * 2^f_in (an integer: the input lies on the table's grid)."""
    tab = table_entry(node.attrs, e)
    table_keys(tab, t[0])  # checks that every input value has an entry
    read = em.table(tab, node)
    shift = int(tab['f_in'])
    key = f'{_shifted(a[0], shift)}.to_int()' if shift else f'{a[0].expr}.to_int()'
    lo = int(tab['lo'])
    index = key if lo == 0 else f'{key} - ({lo})'
    return read % index


def _run_compares(runs: list[tuple[int, str]], pad: str) -> list[str]:
    """Balanced ``if (j <= end)`` tree returning each run's literal (``runs``: (last index, literal))."""
    if len(runs) == 1:
        return [f'{pad}return {runs[0][1]};']
    mid = len(runs) // 2
    inner = _run_compares(runs[:mid], pad + '    ')
    return [f'{pad}if (j <= {runs[mid - 1][0]}) {{', *inner, f'{pad}}}', *_run_compares(runs[mid:], pad)]


def _const(em: _Emitter, node: Node, e: int, a: list[CVal], t: list[QInterval]) -> str:
    # Reached only for a constant whose stored type is not a single value (a widened const).
    m, ex = dyadic(float(np.asarray(node.attrs['value']).flat[e]))
    return literal(QInterval(m, m, -ex), m) if m else ZERO_EXPR


_ELEMENTWISE: dict[Op, OpExpr] = {
    Op.ADD: _add,
    Op.SUB: _sub,
    Op.SHIFT_ADD: _shift_add,
    Op.MUL: _mul,
    Op.NEG: _neg,
    Op.RELU: _relu,
    Op.MAX: _minmax,
    Op.MIN: _minmax,
    Op.REG: _reg,
    Op.QUANTIZE: _quantize,
    Op.CONST: _const,
    Op.TABLE: _table,
}


def build_hls_design(graph: Graph, top: str = 'model') -> HlsDesign:
    """Walk an adder-level graph into the body of the HLS top function."""
    return _Emitter(graph, top).run()


def emit_hls(
    graph: Graph,
    top: str = 'model',
    part: str = DEFAULT_PART,
    clock_period: float = DEFAULT_CLOCK_PERIOD,
    vectors: int | None = None,
):
    """The hls4ml-style project files ``{relative path: text}`` for an adder-level graph, with
    ``vectors`` test vectors in ``tb_data/`` (default ``hls_project.TB_VECTORS``)."""
    from .hls_project import TB_VECTORS, project_files

    return project_files(build_hls_design(graph, top), graph, part, clock_period, TB_VECTORS if vectors is None else vectors)

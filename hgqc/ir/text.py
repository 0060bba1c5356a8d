"""Textual form of the IR: one line per node, MLIR-like, parsed back to an equal graph.

    hgqc-ir 1 "model"
    %0 = input "x" {} : {"shape": [16], "all": [-128, 127, 4]}
    %1 = cmvm(%0) "dense" {"weights": {...}, "bias": null} : {"shape": [5], "e": [[lo, hi, f], ...]}
    output "y" %1

Attributes and types are JSON so every value (arrays, exact floats via repr, big ints)
round-trips. The same text, with its version header, is the on-disk serialized form
(``model.hgqir`` in every project); ``parse`` upgrades older versions when they exist.
"""

from __future__ import annotations

import json
import re
from enum import Enum
from typing import Any

import numpy as np

from ..errors import HgqcError
from .graph import Graph
from .ops import Op
from .types import QInterval, TensorType

IR_VERSION = 1
_HEADER = 'hgqc-ir'


class ParseError(HgqcError, ValueError):
    pass


# --------------------------------------------------------------------------- encoding


def encode_type(t: TensorType) -> dict[str, Any]:
    triples = [[e.lo, e.hi, e.f] for e in t.elems]
    if triples and all(tr == triples[0] for tr in triples):
        return {'shape': list(t.shape), 'all': triples[0]}
    return {'shape': list(t.shape), 'e': triples}


def decode_type(d: dict[str, Any]) -> TensorType:
    shape = tuple(d['shape'])
    if 'all' in d:
        return TensorType.uniform(shape, _qi(d['all']))
    return TensorType(shape, tuple(_qi(tr) for tr in d['e']))


def _qi(tr) -> QInterval:
    lo, hi, f = (int(v) for v in tr)
    return QInterval(0, 0, 0) if lo == 0 and hi == 0 else QInterval(lo, hi, f)


def encode_value(v: Any) -> Any:
    if isinstance(v, TensorType):
        return {'__type__': encode_type(v)}
    if isinstance(v, np.ndarray):
        kind = 'f' if v.dtype.kind == 'f' else 'b' if v.dtype.kind == 'b' else 'i'
        data = v.ravel().tolist()
        if kind == 'i':
            data = [int(x) for x in data]
        return {'__nd__': kind, 'shape': list(v.shape), 'data': data}
    if isinstance(v, Enum):
        return v.value
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, dict):
        return {k: encode_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [encode_value(x) for x in v]
    return v


def decode_value(v: Any) -> Any:
    if isinstance(v, dict):
        if '__type__' in v:
            return decode_type(v['__type__'])
        if '__nd__' in v:
            kind = v['__nd__']
            dtype = {'f': np.float64, 'b': bool}.get(kind)
            if dtype is None:
                data = v['data']
                dtype = np.int64 if all(-(2**63) <= x < 2**63 for x in data) else object
            return np.array(v['data'], dtype=dtype).reshape(v['shape'])
        return {k: decode_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode_value(x) for x in v]
    return v


def _dump(v: Any) -> str:
    return json.dumps(encode_value(v), separators=(',', ':'))


# --------------------------------------------------------------------------- printing


def print_graph(g: Graph) -> str:
    g = g.renumbered()
    lines = [f'{_HEADER} {IR_VERSION} {json.dumps(g.name)}']
    for n in g.nodes.values():
        args = '(' + ', '.join(f'%{i.id}' for i in n.inputs) + ')' if n.inputs else ''
        attrs = {k: v for k, v in n.attrs.items() if not (n.op is Op.INPUT and k == 'type')}
        lines.append(f'%{n.id} = {n.op.value}{args} {json.dumps(n.name)} {_dump(attrs)} : {_dump(encode_type(n.type))}')
    for name, v in g.outputs:
        lines.append(f'output {json.dumps(name)} %{v.id}')
    if g.input_quant:
        lines.append(f'input_quant {_dump(g.input_quant)}')
    if g.meta:
        lines.append(f'meta {_dump(g.meta)}')
    return '\n'.join(lines) + '\n'


# --------------------------------------------------------------------------- parsing

_NODE = re.compile(r'%(\d+) = (\w+)(?:\(([^)]*)\))? ')
_DEC = json.JSONDecoder()


def parse_graph(text: str) -> Graph:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith('//')]
    if not lines or not lines[0].startswith(_HEADER + ' '):
        raise ParseError(f'not an hgqc IR file (missing "{_HEADER} <version>" header)')
    head = lines[0][len(_HEADER) + 1 :]
    version_s, _, name_s = head.partition(' ')
    version = int(version_s)
    if version > IR_VERSION:
        raise ParseError(f'IR version {version} is newer than this hgqc understands ({IR_VERSION}); upgrade hgqc')
    g = Graph(json.loads(name_s) if name_s else 'model')
    ids: dict[int, Any] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        try:
            if line.startswith('output '):
                name, end = _DEC.raw_decode(line, len('output '))
                ref = line[end:].strip()
                g.add_output(name, ids[int(ref.lstrip('%'))])
            elif line.startswith('input_quant '):
                g.input_quant = decode_value(json.loads(line[len('input_quant ') :]))
            elif line.startswith('meta '):
                g.meta = decode_value(json.loads(line[len('meta ') :]))
            else:
                _parse_node(g, ids, line)
        except ParseError:
            raise
        except Exception as e:  # noqa: BLE001 - any malformed line becomes one clear error
            raise ParseError(f'line {lineno}: {e}: {line[:120]}') from e
    return g


def _parse_node(g: Graph, ids: dict[int, Any], line: str) -> None:
    m = _NODE.match(line)
    if not m:
        raise ParseError(f'cannot parse node: {line[:120]}')
    nid, opname, args = int(m.group(1)), m.group(2), m.group(3)
    op = Op(opname)
    pos = m.end()
    name, pos = _DEC.raw_decode(line, pos)
    attrs, pos = _DEC.raw_decode(line, pos + 1)
    if line[pos : pos + 3] != ' : ':
        raise ParseError('expected " : " before the type')
    tdict, _ = _DEC.raw_decode(line, pos + 3)
    typ = decode_type(tdict)
    attrs = decode_value(attrs)
    inputs = [ids[int(a.strip().lstrip('%'))] for a in args.split(',')] if args else []
    if op is Op.INPUT:
        node = g.add_input(name, typ)
    else:
        node = g.add(op, inputs, attrs, typ, name)
    ids[nid] = node


def graphs_equal(a: Graph, b: Graph) -> bool:
    """Structural equality (same ops, wiring, attributes, types, outputs) via canonical text."""
    return print_graph(a) == print_graph(b)

"""QONNX / ONNX frontend: lower a quantized ONNX model (Brevitas, QONNX, hand-built) into the tensor-level IR.

Entry point: ``from_qonnx(model_or_path) -> Graph``. See ``docs/qonnx.md`` for the supported nodes
and the exactness conditions; the short version follows.

Loading: the model is cleaned with ``qonnx.util.cleanup.cleanup_model`` (shape inference, constant
folding that keeps Quant nodes, unique names) after the batch dimension (fixed 1 or symbolic) has
been set to 1. Data tensors carry the batch axis first in ONNX; IR shapes drop it, so a model in
NCHW stays NCHW (``hgqc run`` takes ``(N, C, H, W)``).

Values during the walk are one of: ``Const`` (a numpy array, evaluated with qonnx's own executor:
``Quant`` on weights is folded by the very function the reference runs), an IR ``Node`` whose
value is exactly the ONNX tensor's value, or an ``InputView`` (elements of a graph input not yet
quantized, moved by pure wiring). A ``Quant`` reading an input view becomes the port's type and
``graph.input_quant``.

Exactness: the IR computes exactly; qonnx's reference computes in float32. Power-of-two scales map
onto fixed-point types exactly. Every other elementwise function of one tensor with constant
parameters (non-power-of-two ``Quant``/``Trunc``/``BipolarQuant`` scales, ``MultiThreshold``,
``BatchNormalization``, ``Mul``/``Div`` whose float32 result rounds) is compiled as an exact lookup
table (``table`` op) filled by running the reference function on every value the input can take,
so float32 effects are reproduced bit for bit. Sums and products (``MatMul``, ``Conv``, ``Add``...)
are exact in float32 only while they fit 24 significant bits: nodes where that cannot be guaranteed
get a ``QonnxExactnessWarning`` naming the node.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ..ir.fixed import Overflow, Round, bounds
from ..ir.graph import Graph, Node
from ..ir.ops import Op, make_table, table_attrs
from ..ir.types import TensorType, dyadic
from .errors import FrontendError

__all__ = [
    'QonnxCostWarning',
    'QonnxExactnessWarning',
    'ROUND_MODES',
    'from_qonnx',
    'load_qonnx_model',
    'register_onnx_op',
    'supported_ops',
]

# qonnx rounding-mode names (intquant.resolve_rounding_mode) -> IR rounding
ROUND_MODES: dict[str, Round] = {
    'ROUND': Round.RND_CONV,  # np.round: half to even
    'HALF_EVEN': Round.RND_CONV,
    'CEIL': Round.CEIL,
    'FLOOR': Round.TRN,
    'UP': Round.TRN_INF,  # away from zero
    'DOWN': Round.TRN_ZERO,  # np.fix
    'HALF_UP': Round.RND_INF,  # ties away from zero
    'HALF_DOWN': Round.RND_ZERO,  # ties toward zero
}

TABLE_LIMIT = 1 << 12  # largest exact lookup table (entries) the frontend builds for one element
STAIRCASE_LIMIT = 1 << 10  # most comparators per element for a monotone function of a wider input
F32_EXACT_BITS = 24  # float32 significand


class QonnxExactnessWarning(UserWarning):
    """The float32 reference may round where the compiled (exact) model does not."""


class QonnxCostWarning(UserWarning):
    """Exact, but expensive: a node became a large comparator bank."""


# =========================================================================== values


@dataclass(frozen=True, eq=False)
class InputView:
    """Elements of graph input ``input`` not yet quantized; ``index`` holds flat positions (batch-less shape)."""

    input: str
    index: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.index.shape)


@dataclass(frozen=True, eq=False)
class Const:
    """A constant tensor in ONNX layout (batch axis included when it has one)."""

    value: np.ndarray


@dataclass(frozen=True, eq=False)
class Deferred:
    """``fn(x)`` elementwise with constant parameters, ``fn`` being the float32 reference: built only
    when a non-elementwise node reads it, so chains (BatchNormalization -> Quant, Mul -> Quant...)
    fuse into one exact table or comparator bank of few levels.

    ``params`` are arrays of x's shape; ``fallback`` (single stage only) builds a non-exact
    lowering when the exact one is too large.
    """

    x: Node
    fn: Callable[[np.ndarray, tuple[Any, ...]], np.ndarray]
    params: tuple[np.ndarray, ...]
    node: onnx.NodeProto
    fallback: Callable[[], Node] | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.x.shape


Value = Node | InputView | Const | Deferred
RefFn = Callable[[np.ndarray, tuple[Any, ...]], np.ndarray]
Handler = Callable[['_Ctx', onnx.NodeProto, list['Value | None']], list[Value]]
_HANDLERS: dict[str, Handler] = {}


def register_onnx_op(*op_types: str) -> Callable[[Handler], Handler]:
    """Register ``handler(ctx, node, inputs) -> outputs`` for ONNX/QONNX ``op_types``."""

    def deco(fn: Handler) -> Handler:
        for t in op_types:
            _HANDLERS[t] = fn
        return fn

    return deco


def supported_ops() -> list[str]:
    return sorted(_HANDLERS)


# =========================================================================== input claims


@dataclass
class _Claims:
    """The quantization each element of one graph input has been given (one port = one type)."""

    name: str
    shape: tuple[int, ...]
    k: np.ndarray = field(init=False)
    i: np.ndarray = field(init=False)
    f: np.ndarray = field(init=False)
    owner: list[str | None] = field(init=False)
    modes: tuple[Round, Overflow] | None = None
    modes_owner: str = ''

    def __post_init__(self) -> None:
        n = math.prod(self.shape)
        self.k, self.i, self.f = (np.zeros(n, dtype=np.int64) for _ in range(3))
        self.scale, self.zeropt = np.ones(n, dtype=np.float32), np.zeros(n, dtype=np.float32)
        self.owner = [None] * n

    def claim(self, flat: np.ndarray, k, i, f, rnd: Round, ovf: Overflow, who: str, scale=None, zeropt=None) -> None:
        """Give elements ``flat`` the conversion ``x -> quantize_kif(x / scale + zeropt)`` (float32 prescale)."""
        scale = np.ones(np.shape(k), dtype=np.float32) if scale is None else np.asarray(scale, dtype=np.float32)
        zeropt = np.zeros(np.shape(k), dtype=np.float32) if zeropt is None else np.asarray(zeropt, dtype=np.float32)
        if self.modes is None:
            self.modes, self.modes_owner = (rnd, ovf), who
        elif self.modes != (rnd, ovf):
            raise FrontendError(
                f"input '{self.name}' is quantized with {self.modes[0].value}/{self.modes[1].value} by node "
                f"'{self.modes_owner}' and with {rnd.value}/{ovf.value} by node '{who}'; one input port takes one "
                'rounding/overflow mode: quantize the input once with a single Quant node'
            )
        for pos, e in enumerate(flat.ravel().tolist()):
            kif = (int(k.flat[pos]), int(i.flat[pos]), int(f.flat[pos]), float(scale.flat[pos]), float(zeropt.flat[pos]))
            prev = self.owner[e]
            if prev is None:
                self.k[e], self.i[e], self.f[e], self.scale[e], self.zeropt[e] = kif
                self.owner[e] = who
            elif (int(self.k[e]), int(self.i[e]), int(self.f[e]), float(self.scale[e]), float(self.zeropt[e])) != kif:
                raise FrontendError(
                    f"input '{self.name}' element {np.unravel_index(e, self.shape)} is quantized differently by nodes "
                    f"'{prev}' and '{who}'; an input port holds one quantization: quantize the input once"
                )


# =========================================================================== context


class _Ctx:
    def __init__(self, name: str, shapes: dict[str, tuple[int, ...]]):
        self.graph = Graph(name)
        self.shapes = shapes
        self.node: onnx.NodeProto | None = None
        self.claims: dict[str, _Claims] = {}
        self.views: dict[Node, tuple[str, np.ndarray]] = {}
        self.warned: set[str] = set()
        self.opsets: dict[str, int] = {}
        self.consumers: dict[str, int] = {}  # ONNX tensor -> number of reads (graph outputs count)
        self.internal: set[Node] = set()  # exact by construction (staircases): no float32 check
        self.built: dict[Deferred, Node] = {}

    # ------------------------------------------------------------ errors and naming
    @property
    def where(self) -> str:
        n = self.node
        return f"node '{n.name}' ({n.op_type})" if n is not None else 'model'

    def error(self, msg: str) -> FrontendError:
        return FrontendError(f'{self.where}: {msg}')

    def warn(self, msg: str, category: type[Warning] = QonnxExactnessWarning) -> None:
        key = f'{self.where}: {msg}'
        if key not in self.warned:
            self.warned.add(key)
            warnings.warn(key, category, stacklevel=3)

    def out_shape(self, k: int = 0) -> tuple[int, ...]:
        """Batch-less inferred shape of the current node's output ``k``."""
        name = self.node.output[k]
        shape = self.shapes.get(name)
        if shape is None:
            raise self.error(f"shape inference gave no shape for output '{name}'")
        if not shape or shape[0] != 1:
            raise self.error(f"output '{name}' has shape {shape}: data tensors must keep the batch axis first")
        return shape[1:]

    # ------------------------------------------------------------ emission
    def emit(self, op: Op, inputs: list[Node], attrs: dict[str, Any] | None = None, type: TensorType | None = None) -> Node:
        try:
            return self.graph.add(op, inputs, attrs, type=type, name=self.node.name if self.node else '')
        except FrontendError:
            raise
        except Exception as e:  # noqa: BLE001 - the typing rule rejected the operands
            raise self.error(f'cannot build {op.value}: {e}') from e

    def require(self, v: Value, shape: tuple[int, ...] | None = None) -> Node:
        """An IR node for ``v``; constants are broadcast to ``shape`` (batch-less)."""
        if isinstance(v, InputView):
            raise self.error(
                f"graph input '{v.input}' reaches this node without a Quant; quantize model inputs with a Quant node first"
            )
        if isinstance(v, Const):
            if shape is None:
                raise self.error('operation on constants only')
            return self.const(data_const(v.value, shape, self))
        if isinstance(v, Deferred):
            return self.materialize(v)
        return v

    def materialize(self, d: Deferred) -> Node:
        """Build a deferred elementwise function (once) as a table or comparator bank."""
        if d in self.built:
            return self.built[d]
        here, self.node = self.node, d.node
        try:
            node = _table(self, d.x, d.fn, list(d.params))
        except FrontendError:
            if d.fallback is None:
                raise
            node = d.fallback()
        finally:
            self.node = here
        self.built[d] = node
        return node

    def const(self, value: np.ndarray) -> Node:
        return self.emit(Op.CONST, [], {'value': np.asarray(value, dtype=np.float64)})

    def wire(self, v: Value, index: np.ndarray) -> Value:
        """Pure wiring: ``out.flat[n] = v.flat[index.flat[n]]`` (index: batch-less output shape)."""
        index = np.asarray(index, dtype=np.int64)
        if isinstance(v, InputView):
            return InputView(v.input, v.index.ravel()[index])
        if isinstance(v, Const):
            raise self.error('internal: wiring a constant')
        if index.shape == v.shape and np.array_equal(index.ravel(), np.arange(index.size)):
            return v
        return self.emit(Op.GATHER, [v], {'index': index})

    def quantize_input(self, view: InputView, k, i, f, rnd: Round, ovf: Overflow, scale=None, zeropt=None) -> Node:
        claims = self.claims[view.input]
        claims.claim(view.index, k, i, f, rnd, ovf, self.node.name, scale, zeropt)
        t = TensorType.from_arrays(view.shape, *_kif_bounds(k, i, f, ovf), f)
        node = self.graph.add_input(self.node.name, t)
        self.views[node] = (view.input, view.index)
        return node

    # ------------------------------------------------------------ finish
    def finalize(self, inputs: list[str], outputs: list[tuple[str, Value]]) -> Graph:
        old = self.graph
        g = Graph(old.name)
        ports: dict[str, Node] = {}
        for name in inputs:
            c = self.claims[name]
            rnd, ovf = c.modes or (Round.TRN, Overflow.SAT)
            k, i, f = (a.reshape(c.shape) for a in (c.k, c.i, c.f))
            unclaimed = np.array([o is None for o in c.owner]).reshape(c.shape)
            k, i = np.where(unclaimed, 0, k), np.where(unclaimed, -f, i)  # never read: width 0
            ports[name] = g.add_input(name, TensorType.from_arrays(c.shape, *_kif_bounds(k, i, f, ovf), f))
            g.input_quant[name] = {'k': k, 'i': i, 'f': f, 'round': rnd.value, 'overflow': ovf.value}
            if np.any(c.scale != 1) or np.any(c.zeropt != 0):  # float32 prescale (see Interpreter.to_fixed)
                g.input_quant[name]['scale'] = c.scale.reshape(c.shape).astype(np.float64)
                g.input_quant[name]['zeropt'] = c.zeropt.reshape(c.shape).astype(np.float64)
        remap: dict[Node, Node] = {}
        for n in old.nodes.values():
            if n in self.views:
                src, index = self.views[n]
                port = ports[src]
                if index.shape == port.shape and np.array_equal(index.ravel(), np.arange(index.size)):
                    remap[n] = port
                else:
                    remap[n] = g.add(Op.GATHER, [port], {'index': index}, name=n.name)
                if remap[n].type != n.type:
                    raise FrontendError(f"internal error: input view of node '{n.name}' changed type")
            else:
                remap[n] = g.add(n.op, [remap[i] for i in n.inputs], n.attrs, n.type, n.name)
        for name, v in outputs:
            if isinstance(v, InputView):
                raise FrontendError(f"graph input '{v.input}' reaches model output '{name}' without a Quant")
            if isinstance(v, Const):
                raise FrontendError(f"model output '{name}' is a constant; hgqc compiles data paths only")
            g.add_output(name, remap[v])
        return g


def _kif_bounds(k, i, f, ovf: Overflow):
    like = np.zeros(np.shape(k), dtype=object)
    return bounds(np.asarray(k), np.asarray(i), np.asarray(f), ovf, like)


def data_const(value: np.ndarray, shape: tuple[int, ...], ctx: _Ctx | None = None) -> np.ndarray:
    """A constant broadcast against a data tensor of batch-less ``shape`` (ONNX broadcasting), batch dropped."""
    value = np.asarray(value)
    try:
        return np.broadcast_to(value, (1, *shape))[0].astype(np.float64)
    except ValueError as e:
        msg = f'constant of shape {value.shape} does not broadcast to the data shape {(1, *shape)}'
        raise (ctx.error(msg) if ctx else FrontendError(msg)) from e


# =========================================================================== loading


def _read_proto(model: Any) -> onnx.ModelProto:
    from qonnx.core.modelwrapper import ModelWrapper

    if isinstance(model, (str, os.PathLike)):
        p = Path(model)
        if not p.is_file():
            raise FrontendError(f"cannot read model '{model}': file not found")
        try:
            return onnx.load(str(p))
        except Exception as e:  # noqa: BLE001 - any parse failure is one message
            raise FrontendError(f"cannot read model '{model}': not an ONNX model: {e}") from e
    if isinstance(model, ModelWrapper):
        model = model.model
    if isinstance(model, onnx.ModelProto):
        return onnx.ModelProto.FromString(model.SerializeToString())  # never modify the caller's model
    raise FrontendError(f'expected an .onnx path, onnx.ModelProto or qonnx ModelWrapper, got {type(model).__name__}')


def load_qonnx_model(model: Any) -> Any:
    """A cleaned ``qonnx`` ModelWrapper (batch 1, shapes inferred) from a path, ModelProto or ModelWrapper."""
    from qonnx.core.modelwrapper import ModelWrapper

    proto = _read_proto(model)
    inits = {t.name for t in proto.graph.initializer}
    for vi in list(proto.graph.input) + list(proto.graph.output):
        if vi.name in inits:
            continue
        dims = vi.type.tensor_type.shape.dim
        if not dims:
            if vi in proto.graph.input:
                raise FrontendError(f"graph input '{vi.name}' has no shape; hgqc needs (batch, ...) shapes")
            vi.type.tensor_type.ClearField('shape')  # an output: shape inference fills it
            continue
        if dims[0].HasField('dim_value') and dims[0].dim_value not in (0, 1):
            raise FrontendError(f"'{vi.name}' has batch size {dims[0].dim_value}; export with batch 1 or a symbolic batch")
        dims[0].Clear()
        dims[0].dim_value = 1
        for d in dims[1:]:
            if not d.HasField('dim_value'):
                raise FrontendError(f"'{vi.name}' has a symbolic non-batch dimension '{d.dim_param}'; hgqc needs static shapes")
    del proto.graph.value_info[:]  # re-inferred with batch 1
    try:
        return _cleanup(ModelWrapper(proto))
    except Exception as e:  # noqa: BLE001 - qonnx failed on the model
        raise FrontendError(f'qonnx cleanup / shape inference failed: {type(e).__name__}: {e}') from e


def _cleanup(model: Any) -> Any:
    """qonnx's ``cleanup_model`` minus ``GiveReadableTensorNames``: tensors keep their own names (ports
    keep the user's names, and qonnx's rename misses a tensor used twice by one node)."""
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import (
        GiveUniqueNodeNames,
        GiveUniqueParameterTensors,
        RemoveStaticGraphInputs,
        RemoveUnusedTensors,
        SortGraph,
    )
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit

    for n in model.graph.node:  # what cleanup_model does for Brevitas exports
        if n.op_type in ('Quant', 'Trunc', 'BipolarQuant'):
            n.domain = 'qonnx.custom_op.general'
    steps = [
        InferShapes(),
        GiveUniqueParameterTensors(),
        FoldConstants(exclude_op_types=['Quant', 'BipolarQuant', 'QuantizeLinear', 'DequantizeLinear']),
        FoldTransposeIntoQuantInit(),
        RemoveUnusedTensors(),
        RemoveStaticGraphInputs(),
        SortGraph(),
        InferShapes(),
    ]
    for step in steps:
        model = model.transform(step)
    names = [n.name for n in model.graph.node]
    if '' in names or len(set(names)) != len(names):
        model = model.transform(GiveUniqueNodeNames())
    return model


def _shapes(model: Any) -> dict[str, tuple[int, ...]]:
    g = model.model.graph
    out = {}
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField('dim_value') for d in dims):
            out[vi.name] = tuple(int(d.dim_value) for d in dims)
    return out


def from_qonnx(model: Any, name: str | None = None) -> Graph:
    """Lower a QONNX/ONNX model (path, ModelProto or ModelWrapper) into a tensor-level IR graph.

    Ports keep the model's own input/output names.
    """
    proto = _read_proto(model)
    wrapped = load_qonnx_model(proto)
    g = wrapped.model.graph
    gname = name or (Path(model).stem if isinstance(model, (str, os.PathLike)) else (proto.graph.name or 'model'))
    ctx = _Ctx(_safe_name(gname), _shapes(wrapped))
    values: dict[str, Value] = {t.name: Const(numpy_helper.to_array(t)) for t in g.initializer}
    in_names = [v.name for v in g.input if v.name not in values]
    out_names = [v.name for v in g.output]
    port_names, port_out = in_names, out_names
    for tensor, port in zip(in_names, port_names):
        shape = ctx.shapes.get(tensor)
        if shape is None or not shape or shape[0] != 1:
            raise FrontendError(f"graph input '{port}' has shape {shape}; expected (batch, ...) with static dims")
        ctx.claims[port] = _Claims(port, shape[1:])
        values[tensor] = InputView(port, np.arange(math.prod(shape[1:]), dtype=np.int64).reshape(shape[1:]))
    opset = _opset(wrapped)
    ctx.opsets = {imp.domain: int(imp.version) for imp in wrapped.model.opset_import}
    for t in [i for n in g.node for i in n.input] + out_names:
        ctx.consumers[t] = ctx.consumers.get(t, 0) + 1
    for node in g.node:
        ctx.node = node
        ins: list[Value | None] = []
        for t in node.input:
            if t == '':
                ins.append(None)
            elif t not in values:
                raise ctx.error(f"input tensor '{t}' is not produced by any earlier node")
            else:
                ins.append(values[t])
        present = [v for v in ins if v is not None]
        if all(isinstance(v, Const) for v in present):
            outs = _fold(ctx, node, ins, g, opset)
        else:
            handler = _HANDLERS.get(node.op_type)
            if handler is None:
                raise ctx.error(f'op type is not supported; supported: {", ".join(supported_ops())}')
            try:
                outs = handler(ctx, node, ins)
            except FrontendError:
                raise
            except Exception as e:  # noqa: BLE001 - name the node whose lowering failed
                raise ctx.error(f'lowering failed: {type(e).__name__}: {e}') from e
        for t, v in zip(node.output, outs):
            if t:
                values[t] = v
    ctx.node = None
    outs = [
        (p, ctx.materialize(values[t]) if isinstance(values[t], Deferred) else values[t]) for t, p in zip(out_names, port_out)
    ]
    _check_float32(ctx.graph, ctx.internal)
    return ctx.finalize(port_names, outs)


def _safe_name(s: str) -> str:
    out = ''.join(c if c.isalnum() or c == '_' else '_' for c in s).strip('_')
    return out if out and out[0].isalpha() else f'model_{out}' if out else 'model'


def _opset(model: Any) -> int:
    for imp in model.model.opset_import:
        if imp.domain in ('', 'ai.onnx'):
            return int(imp.version)
    return 11


def _fold(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None], graph: onnx.GraphProto, opset: int) -> list[Value]:
    """Evaluate a node whose inputs are all constant with qonnx's own executor (the reference)."""
    from qonnx.core.onnx_exec import execute_node

    context: dict[str, Any] = {}
    for t, v in zip(node.input, ins):
        if t and isinstance(v, Const):
            context[t] = v.value
    for t in node.output:
        context[t] = None
    try:
        execute_node(node, context, graph, opset)
    except Exception as e:  # noqa: BLE001 - constant folding failed in the reference executor
        raise ctx.error(f'evaluating this constant node failed: {type(e).__name__}: {e}') from e
    return [Const(np.asarray(context[t])) if t else Const(np.zeros(0)) for t in node.output]


# =========================================================================== helpers


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _custom_op(ctx: _Ctx, node: onnx.NodeProto) -> Any:
    """qonnx's CustomOp for ``node`` at the model's opset of its domain (qonnx picks Trunc v1/v2 this way)."""
    from qonnx.custom_op.registry import getCustomOp

    return getCustomOp(node, ctx.opsets.get(node.domain, 1))


def _custom_attr(node: onnx.NodeProto, name: str, ctx: _Ctx | None = None) -> Any:
    """A QONNX custom-op attribute with qonnx's own defaults."""
    from qonnx.custom_op.registry import getCustomOp

    op = _custom_op(ctx, node) if ctx is not None else getCustomOp(node)
    v = op.get_nodeattr(name)
    return v.decode() if isinstance(v, bytes) else v


def _const_input(ctx: _Ctx, ins: list[Value | None], k: int, what: str) -> np.ndarray:
    v = ins[k] if k < len(ins) else None
    if not isinstance(v, Const):
        raise ctx.error(f'{what} (input {k}) must be a constant initializer')
    return np.asarray(v.value)


def _data(ctx: _Ctx, v: Value | None, what: str = 'the data input') -> Node | InputView:
    if v is None or isinstance(v, Const):
        raise ctx.error(f'{what} must be a tensor computed from the model input')
    return ctx.materialize(v) if isinstance(v, Deferred) else v


def _elem_input(ctx: _Ctx, v: Value | None) -> Node | Deferred:
    """The data input of an elementwise node: a node, or a deferred function to fuse with."""
    if isinstance(v, Deferred):
        return v
    return ctx.require(_data(ctx, v))


def _defer(
    ctx: _Ctx, x: Node | Deferred, fn: RefFn, params: list[np.ndarray], fallback: Callable[[], Node] | None = None
) -> Deferred:
    """``fn`` applied to ``x``, composed with ``x``'s own function when ``x`` is deferred too."""
    params = [np.broadcast_to(np.asarray(p), x.shape) for p in params]
    if isinstance(x, Deferred):
        n1, f1 = len(x.params), x.fn

        def composed(xs: np.ndarray, p: tuple[Any, ...]) -> np.ndarray:
            return fn(np.asarray(f1(xs, p[:n1]), dtype=np.float32), p[n1:])

        return Deferred(x.x, composed, x.params + tuple(params), ctx.node)
    return Deferred(x, fn, tuple(params), ctx.node, fallback)


def _pow2_exponent(a: np.ndarray) -> np.ndarray | None:
    """e with a == 2**e elementwise, or None if some element is not a positive power of two."""
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        return None
    m, e = np.frexp(a)
    if np.any(m != 0.5):
        return None
    return (e - 1).astype(np.int64)


def _bit_len(v: np.ndarray) -> np.ndarray:
    return np.array([int(x).bit_length() for x in np.asarray(v, dtype=object).ravel()], dtype=np.int64).reshape(np.shape(v))


def _int_range_quantize(
    ctx: _Ctx, x: Node | InputView, f: np.ndarray, lo: np.ndarray, hi: np.ndarray, rnd: Round, prescale: tuple | None = None
) -> Node:
    """Round ``x`` to step 2^-f (``rnd``), then clamp the integer to [lo, hi] (per element) exactly.

    The quantize op clamps to an ap_fixed range; bounds that are not one (narrow unsigned, zero
    points) get an extra max/min with constants.
    """
    lo = np.asarray(lo, dtype=object)
    hi = np.asarray(hi, dtype=object)
    k = (lo < 0).astype(np.int64)
    n = np.maximum(_bit_len(hi), np.where(lo < 0, _bit_len(-lo - 1), 0)).astype(np.int64)
    i = n - f
    sym = bool(np.all(np.where(lo < 0, lo == -hi, True))) and bool(np.any(lo < 0))
    ovf = Overflow.SAT_SYM if sym else Overflow.SAT
    if isinstance(x, InputView):
        y = ctx.quantize_input(x, k, i, f, rnd, ovf, *(prescale or ()))
    else:
        y = ctx.emit(Op.QUANTIZE, [x], {'k': k, 'i': i, 'f': f, 'round': rnd.value, 'overflow': ovf.value})
    qlo, qhi = _kif_bounds(k, i, f, ovf)
    scale = np.ldexp(1.0, -f)
    if np.any(lo > qlo):
        y = ctx.emit(Op.MAX, [y, ctx.const(np.asarray(lo, dtype=np.float64) * scale)])
    if np.any(hi < qhi):
        y = ctx.emit(Op.MIN, [y, ctx.const(np.asarray(hi, dtype=np.float64) * scale)])
    return y


# =========================================================================== exact tables


def _table(ctx: _Ctx, x: Node, fn: RefFn, params: list[np.ndarray]) -> Node:
    """``y = fn(x)`` elementwise, exactly as the float32 reference ``fn`` computes it.

    ``fn(xs, p)`` maps a float32 vector of input values to output values for one parameter set
    ``p`` (one entry per array of ``params``, each broadcast to x's shape). Elements sharing a
    parameter set share one domain: the union of their input types. A domain of at most
    ``TABLE_LIMIT`` values becomes a lookup table (``table`` op) evaluated on every value; a wider
    one becomes a comparator staircase (``_staircase``), which needs ``fn`` monotone. Either way
    the result equals the reference for every input the reference itself sees exactly.
    """
    t = x.type
    shape = t.shape
    ps = [np.broadcast_to(np.asarray(p), shape) for p in params]
    groups: dict[tuple, list[int]] = {}
    for e in range(t.size):
        groups.setdefault(tuple(p.flat[e].item() for p in ps), []).append(e)
    domains = {}
    for key, elems in groups.items():
        F = max(int(t.elems[e].f) for e in elems)
        lo = min(t.elems[e].lo << (F - t.elems[e].f) for e in elems)
        hi = max(t.elems[e].hi << (F - t.elems[e].f) for e in elems)
        if max(abs(lo), abs(hi)) >= 1 << F32_EXACT_BITS:
            ctx.warn('its input is not always exactly representable in float32, the reference rounds it')
        domains[key] = (lo, hi, F)
    if any(hi - lo + 1 > TABLE_LIMIT for lo, hi, _ in domains.values()):
        return _staircase(ctx, x, fn, groups, domains)
    per: list[dict[str, Any] | None] = [None] * t.size
    for key, elems in groups.items():
        lo, hi, F = domains[key]
        ys = _eval_ref(ctx, fn, np.arange(lo, hi + 1, dtype=np.float64), F, key)
        fo, vals = _dyadic_ints(ys)
        tab = make_table(lo, F, fo, vals)
        for e in elems:
            per[e] = tab
    return ctx.emit(Op.TABLE, [x], table_attrs(shape, per))


def _eval_ref(ctx: _Ctx, fn: RefFn, keys: np.ndarray, F: int, p: tuple[Any, ...]) -> np.ndarray:
    xs = np.ldexp(np.asarray(keys, dtype=np.float64), -F).astype(np.float32)
    ys = np.asarray(fn(xs, p), dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(ys)):
        raise ctx.error('the reference function gives NaN or infinity on some input value')
    return ys


def _steps(ctx: _Ctx, fn: RefFn, lo: int, hi: int, F: int, p: tuple[Any, ...]) -> tuple[float, list[tuple[int, float]]]:
    """(fn(lo), [(key, jump)]): the keys where a monotone ``fn`` changes value on [lo, hi], by bisection."""
    ev = lambda k: float(_eval_ref(ctx, fn, np.array([k], dtype=np.float64), F, p)[0])  # noqa: E731
    v0, vend = ev(lo), ev(hi)
    sample = np.unique(_eval_ref(ctx, fn, np.linspace(lo, hi, 4096).round(), F, p))
    if len(sample) > STAIRCASE_LIMIT:  # fail fast: bisection would find at least this many levels
        raise ctx.error(
            f'the input takes {hi - lo + 1} values and the output more than {STAIRCASE_LIMIT} levels: too wide '
            'for an exact table or comparator bank; quantize the input more coarsely before this node'
        )
    steps: list[tuple[int, float]] = []
    cur, val = lo, v0
    while val != vend:
        if len(steps) >= STAIRCASE_LIMIT:
            raise ctx.error(
                f'the input takes {hi - lo + 1} values and the output more than {STAIRCASE_LIMIT} levels: too wide '
                'for an exact table or comparator bank; quantize the input more coarsely before this node'
            )
        a, b = cur, hi  # fn(a) == val, fn(b) != val: find the first key that differs
        while b - a > 1:
            mid = (a + b) // 2
            if ev(mid) == val:
                a = mid
            else:
                b = mid
        nxt = ev(b)
        steps.append((b, nxt - val))
        cur, val = b, nxt
    return v0, steps


def _staircase(ctx: _Ctx, x: Node, fn: RefFn, groups: dict[tuple, list[int]], domains: dict) -> Node:
    """``y = v0 + sum_j jump_j * [x >= key_j]``: a bank of comparators for a monotone reference ``fn``.

    Each comparison is ``ceil(x - (key_j - 1) 2^-F)`` saturated to {0, 1} (an adder and a sign
    test); the weighted sum is one cmvm per element group (block-diagonal over the groups). The
    staircase is checked against ``fn`` on a sample of each domain (a non-monotone ``fn`` fails).
    """
    t = x.type
    shape = t.shape
    plans = {key: _steps(ctx, fn, *domains[key], key) for key in groups}
    rng = np.random.default_rng(0)
    for key, (v0, steps) in plans.items():  # monotonicity check on a sample (bisection assumes it)
        lo, hi, F = domains[key]
        ks = np.unique(np.concatenate([rng.integers(lo, hi + 1, 512), [k for k, _ in steps], [k - 1 for k, _ in steps]]))
        ks = ks[(ks >= lo) & (ks <= hi)]
        want = _eval_ref(ctx, fn, ks, F, key)
        got = v0 + np.array([sum(j for k, j in steps if k <= kk) for kk in ks.tolist()])
        if not np.array_equal(want, got):
            raise ctx.error('the reference function is not monotone over the input range; it cannot be compiled exactly')
    m = max(1, max(len(st) for _, st in plans.values()))
    ctx.warn(f'compiled as a bank of up to {m} comparators per element (input too wide for a lookup table)', QonnxCostWarning)
    thr = np.zeros((t.size, m))
    w = np.zeros((t.size, m))
    v0s = np.zeros(t.size)
    for key, elems in groups.items():
        v0, steps = plans[key]
        lo, hi, F = domains[key]
        row_t = np.full(m, math.ldexp(hi, -F))  # padding: never passed, weight 0
        row_w = np.zeros(m)
        for j, (k, jump) in enumerate(steps):
            row_t[j] = math.ldexp(k - 1, -F)
            row_w[j] = jump
        thr[elems], w[elems], v0s[elems] = row_t, row_w, v0
    rep = np.repeat(np.arange(t.size, dtype=np.int64).reshape(*shape, 1), m, axis=-1)
    xr = ctx.wire(x, rep)
    d = ctx.emit(Op.ADD, [xr, ctx.const(-thr.reshape(*shape, m))])
    ones = np.ones((*shape, m), dtype=np.int64)
    b = ctx.emit(Op.QUANTIZE, [d], {'k': 0 * ones, 'i': ones, 'f': 0 * ones, 'round': Round.CEIL.value, 'overflow': 'SAT'})
    y = _channel_cmvm(ctx, b, w.reshape(*shape, m), v0s.reshape(shape))
    ctx.internal.update(n for n in ctx.graph.nodes.values() if n.id > x.id)
    return y


def _channel_cmvm(ctx: _Ctx, xm: Node, w: np.ndarray, bias: np.ndarray | None) -> Node:
    """``y[e] = sum_j xm[e, j] w[e, j] + bias[e]`` for xm of shape S + (m,): one cmvm whose matrix is
    block-diagonal over the axes of S along which ``w``/``bias`` vary (diagonal when m == 1)."""
    shape = xm.shape[:-1]
    m = xm.shape[-1]
    b = np.zeros(shape) if bias is None else np.asarray(bias, dtype=np.float64)
    if not shape:
        y = ctx.emit(
            Op.CMVM,
            [ctx.wire(xm, np.arange(m).reshape(1, m))],
            {'weights': w.reshape(m, 1), 'bias': b.reshape(1) if b.any() else None},
        )
        return ctx.wire(y, np.array(0, dtype=np.int64))

    def varies(a: np.ndarray, ax: int) -> bool:
        return not np.all(a == np.take(a, [0], axis=ax))

    vary = [a for a in range(len(shape)) if varies(w, a) or varies(b, a)]
    keep = [a for a in range(len(shape)) if a not in vary]
    perm = keep + vary
    pdims, cdims = [shape[a] for a in keep], [shape[a] for a in vary]
    C = math.prod(cdims)
    idx = np.arange(xm.type.size, dtype=np.int64).reshape(*shape, m).transpose(*perm, len(shape)).reshape(*pdims, C * m)
    xg = ctx.wire(xm, np.ascontiguousarray(idx))
    wc = np.ascontiguousarray(w.transpose(*perm, len(shape))).reshape(-1, C, m)[0]  # (C, m), same at every position
    bc = np.ascontiguousarray(b.transpose(perm)).reshape(-1, C)[0]
    W = np.zeros((C, m, C))
    W[np.arange(C), :, np.arange(C)] = wc
    y = ctx.emit(Op.CMVM, [xg], {'weights': W.reshape(C * m, C), 'bias': bc if bc.any() else None})
    back = np.arange(y.type.size, dtype=np.int64).reshape(*pdims, *cdims).transpose(np.argsort(perm))
    return ctx.wire(y, np.ascontiguousarray(back))


def _dyadic_ints(ys: np.ndarray) -> tuple[int, list[int]]:
    """The coarsest f and integers v with ys == v * 2^-f exactly."""
    digits = [dyadic(float(y)) for y in ys]
    f = max((-e for m, e in digits if m), default=0)
    return f, [m << (e + f) if m else 0 for m, e in digits]


# =========================================================================== QONNX ops


@register_onnx_op('Quant')
def _quant(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    from qonnx.custom_op.general.quant import max_int, min_int, quant

    x = ins[0] if isinstance(ins[0], Deferred) else _data(ctx, ins[0])
    scale = _const_input(ctx, ins, 1, 'scale').astype(np.float32)
    zeropt = _const_input(ctx, ins, 2, 'zero point').astype(np.float32)
    bw = _const_input(ctx, ins, 3, 'bit width')
    signed, narrow = int(_custom_attr(node, 'signed', ctx)), int(_custom_attr(node, 'narrow', ctx))
    mode = str(_custom_attr(node, 'rounding_mode', ctx)).upper()
    if mode not in ROUND_MODES:
        raise ctx.error(f"rounding mode '{mode}' is unknown; qonnx defines {', '.join(ROUND_MODES)}")
    if bw.size != 1 or float(bw.ravel()[0]) != int(bw.ravel()[0]) or int(bw.ravel()[0]) < 1:
        raise ctx.error(f'bit width must be one integer >= 1, got {bw.ravel().tolist()}')
    bits = int(bw.ravel()[0])
    shape = x.shape
    s = data_const(scale, shape, ctx)
    z = data_const(zeropt, shape, ctx)
    e = _pow2_exponent(s)
    z_int = bool(np.all(z == np.round(z)))
    if (
        e is not None
        and z_int
        and not (bits == 1 and signed)
        and not isinstance(x, Deferred)
        and not (isinstance(x, InputView) and np.any(z))
    ):
        lo = np.full(shape, min_int(signed, narrow, bits), dtype=object)
        hi = np.full(shape, max_int(signed, narrow, bits), dtype=object)
        if not np.any(z):
            return [_int_range_quantize(ctx, x, -e, lo, hi, ROUND_MODES[mode])]
        # round(x/s + z) is not round(x/s) + z for half-even or sign-symmetric modes: shift first, exactly
        zs = z * s  # integer times a power of two: exact
        q = _int_range_quantize(ctx, ctx.emit(Op.ADD, [x, ctx.const(zs)]), -e, lo, hi, ROUND_MODES[mode])
        return [ctx.emit(Op.SUB, [q, ctx.const(zs)])]
    if np.any(s <= 0) or not np.all(np.isfinite(s)):
        raise ctx.error('scales must be positive and finite')
    if isinstance(x, InputView):
        if bits == 1 and signed:
            raise ctx.error('a bipolar (1-bit signed) Quant on a graph input is not supported; quantize the input to >= 2 bits')
        # The port carries the integer code q = round(x/scale + zeropt) (float32 prescale in input_quant);
        # the value (q - zeropt) * scale is the reference's own float32 product, deferred like any function.
        lo = np.full(shape, min_int(signed, narrow, bits), dtype=object)
        hi = np.full(shape, max_int(signed, narrow, bits), dtype=object)
        f0 = np.zeros(shape, dtype=np.int64)
        q = _int_range_quantize(ctx, x, f0, lo, hi, ROUND_MODES[mode], prescale=(s, z))
        return [_defer(ctx, q, lambda qs, p: (qs - np.float32(p[1])) * np.float32(p[0]), [s, z])]

    def ref(xs: np.ndarray, p: tuple[Any, ...]) -> np.ndarray:
        return quant(xs, np.float32(p[0]), np.float32(p[1]), np.float32(bits), signed, narrow, mode)

    return [_defer(ctx, x, ref, [s, z])]


@register_onnx_op('BipolarQuant')
def _bipolar_quant(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    from qonnx.custom_op.general.bipolar_quant import binary_quant

    x = _elem_input(ctx, ins[0])
    s = data_const(_const_input(ctx, ins, 1, 'scale').astype(np.float32), x.shape, ctx)
    if np.any(s <= 0) or not np.all(np.isfinite(s)):
        raise ctx.error('scales must be positive and finite')
    return [_defer(ctx, x, lambda xs, p: binary_quant(xs, np.float32(p[0])), [s])]


@register_onnx_op('Trunc')
def _trunc(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    from qonnx.custom_op.general.trunc import max_int, min_int, trunc_v2

    if type(_custom_op(ctx, node)).__name__ != 'Trunc_v2':
        raise ctx.error(
            'only Trunc version 2 is supported (qonnx runs version 1 unless the model imports '
            "opset 2 of domain 'qonnx.custom_op.general')"
        )
    if len(ins) != 6:
        raise ctx.error(f'Trunc version 2 takes six inputs, got {len(ins)}')
    x = _elem_input(ctx, ins[0])
    shape = x.shape
    scale, zeropt, in_bw, out_scale, out_bw = (
        _const_input(ctx, ins, k, w).astype(np.float32)
        for k, w in ((1, 'scale'), (2, 'zero point'), (3, 'input bit width'), (4, 'output scale'), (5, 'output bit width'))
    )
    mode = str(_custom_attr(node, 'rounding_mode', ctx)).upper()
    signed, narrow = int(_custom_attr(node, 'signed', ctx)), int(_custom_attr(node, 'narrow', ctx))
    if mode not in ROUND_MODES:
        raise ctx.error(f"rounding mode '{mode}' is unknown; qonnx defines {', '.join(ROUND_MODES)}")
    if out_bw.size != 1 or float(out_bw.ravel()[0]) != int(out_bw.ravel()[0]):
        raise ctx.error('output bit width must be one integer')
    ob = int(out_bw.ravel()[0])
    s, z, os_ = (data_const(a, shape, ctx) for a in (scale, zeropt, out_scale))
    ts = np.exp2(np.round(np.log2(np.asarray(out_scale, np.float32) / np.asarray(scale, np.float32))))
    ts = data_const(ts, shape, ctx)
    e_s, e_o, e_t = _pow2_exponent(s), _pow2_exponent(os_), _pow2_exponent(ts)
    pow2 = e_s is not None and e_o is not None and e_t is not None and not np.any(z)
    if pow2 and np.all(e_o == e_s + e_t) and not isinstance(x, Deferred):
        # round(x/s) half-even at step s, then divide by ts, clamp and round at step s*ts = out_scale
        r = ctx.emit(
            Op.QUANTIZE, [x], {**_covering_kif(x.type, -e_s), 'round': Round.RND_CONV.value, 'overflow': Overflow.WRAP.value}
        )
        lo = np.full(shape, min_int(signed, narrow, ob), dtype=object)
        hi = np.full(shape, max_int(signed, narrow, ob), dtype=object)
        return [_int_range_quantize(ctx, r, -e_o, lo, hi, ROUND_MODES[mode])]
    ib = float(in_bw.ravel()[0])

    def ref(xs: np.ndarray, p: tuple[Any, ...]) -> np.ndarray:
        return trunc_v2(xs, *(np.float32(v) for v in (p[0], p[1], ib)), narrow, signed, np.float32(p[2]), np.float32(ob), mode)

    return [_defer(ctx, x, ref, [s, z, os_])]


def _covering_kif(t: TensorType, f: np.ndarray) -> dict[str, np.ndarray]:
    """ap_fixed (k, i, f) parameters at step 2^-f wide enough that rounding ``t`` to it never overflows."""
    f = np.broadcast_to(np.asarray(f, dtype=np.int64), t.shape)
    k = np.where(np.asarray(t.lo) < 0, 1, 0).astype(np.int64)
    # magnitude in units of 2^-f after rounding is at most ceil(|v| * 2^(f - t.f)) + 1
    mag = np.maximum(np.abs(np.asarray(t.lo, dtype=object)), np.abs(np.asarray(t.hi, dtype=object)))
    d = (t.f - f).astype(np.int64)
    q = np.array(
        [(int(m) >> int(dd)) + 1 if dd >= 0 else int(m) << int(-dd) for m, dd in zip(mag.ravel(), d.ravel())], dtype=object
    )
    n = _bit_len(q.reshape(t.shape)) + 1
    return {'k': k, 'i': (n - f).astype(np.int64), 'f': f.astype(np.int64)}


@register_onnx_op('MultiThreshold')
def _multithreshold(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    from qonnx.custom_op.general.multithreshold import multithreshold

    x = _elem_input(ctx, ins[0])
    thr = _const_input(ctx, ins, 1, 'thresholds').astype(np.float32)
    out_scale = float(np.float32(_custom_attr(node, 'out_scale', ctx)))
    out_bias = float(np.float32(_custom_attr(node, 'out_bias', ctx)))
    layout = str(_custom_attr(node, 'data_layout', ctx))
    shape = x.shape
    if thr.ndim != 2:
        raise ctx.error(f'thresholds must be 2-D (channels, steps), got shape {thr.shape}')
    if not layout:  # qonnx's defaults by rank
        layout = {2: 'NC', 3: 'NWC', 4: 'NCHW'}.get(len(shape) + 1, '')
    cax = layout.index('C') - 1 if 'C' in layout else 0
    if not 0 <= cax < max(1, len(shape)):
        raise ctx.error(f"data_layout '{layout}' does not fit the input shape {shape}")
    n_ch = shape[cax] if shape else 1
    if thr.shape[0] not in (1, n_ch):
        raise ctx.error(f'{thr.shape[0]} threshold rows for {n_ch} channels')
    ch = np.arange(n_ch).reshape([-1 if a == cax else 1 for a in range(len(shape))])
    ch = np.broadcast_to(ch if thr.shape[0] > 1 else np.zeros_like(ch), shape)

    def ref(xs: np.ndarray, p: tuple[Any, ...]) -> np.ndarray:
        v = xs.reshape(-1, 1)
        return multithreshold(v, thr[int(p[0])].reshape(1, -1), np.float32(out_scale), np.float32(out_bias)).reshape(-1)

    return [_defer(ctx, x, ref, [ch])]


# =========================================================================== ONNX ops: arithmetic


def _broadcast_data(ctx: _Ctx, v: Node, shape: tuple[int, ...]) -> Node:
    if v.shape == shape:
        return v
    idx = np.arange(v.type.size, dtype=np.int64).reshape((1, *v.shape))
    try:
        b = np.broadcast_to(idx, (1, *shape))[0]
    except ValueError as e:
        raise ctx.error(f'operand shapes {v.shape} and {shape} do not broadcast') from e
    return ctx.emit(Op.GATHER, [v], {'index': np.ascontiguousarray(b)})


def _binary_operands(ctx: _Ctx, ins: list[Value | None]) -> tuple[Node, Node]:
    shape = ctx.out_shape()
    a, b = ins[0], ins[1]
    na = _broadcast_data(ctx, ctx.require(a, shape), shape)
    nb = _broadcast_data(ctx, ctx.require(b, shape), shape)
    return na, nb


def _fold_bias(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None], sign: int) -> Node | None:
    """``cmvm(x) + c`` (``c`` constant per output, the cmvm read by this node only) as one cmvm with a bias.

    Exporters write a bias as a separate Add after MatMul; inside the cmvm the bias is one more
    leaf of the adder tree instead of an extra adder level.
    """
    x, c = ins[0], ins[1]
    if sign > 0 and isinstance(x, Const):
        x, c = c, x
    src = node.input[0] if x is ins[0] else node.input[1]
    if not (isinstance(x, Node) and isinstance(c, Const) and x.op is Op.CMVM and not x.users):
        return None
    if ctx.consumers.get(src, 0) != 1 or x.shape != ctx.out_shape():
        return None
    cb = data_const(np.asarray(c.value, dtype=np.float64), x.shape, ctx).reshape(-1, x.shape[-1])
    if not np.all(cb == cb[:1]):
        return None
    old = x.attrs.get('bias')
    bias = (np.zeros(x.shape[-1]) if old is None else np.asarray(old, dtype=np.float64)) + sign * cb[0]
    y = ctx.emit(Op.CMVM, [x.inputs[0]], {'weights': x.attrs['weights'], 'bias': bias if bias.any() else None})
    y.name = x.name
    ctx.graph.erase(x)
    return y


@register_onnx_op('Add')
def _add(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    folded = _fold_bias(ctx, node, ins, +1)
    return [folded if folded is not None else ctx.emit(Op.ADD, list(_binary_operands(ctx, ins)))]


@register_onnx_op('Sub')
def _sub(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    folded = _fold_bias(ctx, node, ins, -1) if isinstance(ins[1], Const) else None
    return [folded if folded is not None else ctx.emit(Op.SUB, list(_binary_operands(ctx, ins)))]


def _const_scale(ctx: _Ctx, x: Node | Deferred, c: np.ndarray, ref: RefFn) -> Node | Deferred:
    """x * c elementwise (c a float constant broadcast to x): exact shift-add constant multiplication when
    the float32 reference is exact for every input value, else the reference itself, deferred."""
    shape = ctx.out_shape()
    cb = data_const(c, shape, ctx)
    if isinstance(x, Deferred) and x.shape == shape:
        return _defer(ctx, x, ref, [cb])
    x = _broadcast_data(ctx, ctx.require(x), shape)
    y = _per_channel_scale(ctx, x, cb)
    if y.type.max_width <= F32_EXACT_BITS:
        return y

    def inexact() -> Node:
        ctx.warn('the float32 reference rounds products that need more than 24 bits; compiled exactly instead')
        return y

    return _defer(ctx, x, ref, [cb], fallback=inexact)


def _per_channel_scale(ctx: _Ctx, x: Node, c: np.ndarray) -> Node:
    """x * c with c (x's shape) constant along some axes: one cmvm with a diagonal matrix over the others."""
    x1 = ctx.wire(x, np.arange(x.type.size, dtype=np.int64).reshape(*x.shape, 1))
    return _channel_cmvm(ctx, x1, np.asarray(c, dtype=np.float64).reshape(*x.shape, 1), None)


@register_onnx_op('Mul')
def _mul(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    a, b = ins[0], ins[1]
    if isinstance(a, Const) or isinstance(b, Const):
        x, c = (b, a.value) if isinstance(a, Const) else (a, b.value)
        c = np.asarray(c, dtype=np.float32)
        return [_const_scale(ctx, _elem_input(ctx, x), c, lambda xs, p: xs * np.float32(p[0]))]
    return [ctx.emit(Op.MUL, list(_binary_operands(ctx, ins)))]


@register_onnx_op('Div')
def _div(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    x, d = ins[0], ins[1]
    if not isinstance(d, Const):
        raise ctx.error('only division by a constant is supported')
    d = np.asarray(d.value, dtype=np.float32)
    if np.any(d == 0):
        raise ctx.error('division by zero')
    xn = _elem_input(ctx, x)
    if _pow2_exponent(np.abs(d)) is not None:
        return [_const_scale(ctx, xn, 1.0 / d.astype(np.float64), lambda xs, p: xs * np.float32(p[0]))]
    shape = ctx.out_shape()
    if not (isinstance(xn, Deferred) and xn.shape == shape):
        xn = _broadcast_data(ctx, ctx.require(xn), shape)
    return [_defer(ctx, xn, lambda xs, p: xs / np.float32(p[0]), [data_const(d, shape, ctx)])]


@register_onnx_op('Relu')
def _relu(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    if isinstance(ins[0], Deferred):  # keep fusing: BatchNormalization -> Relu -> Quant is one function
        return [_defer(ctx, ins[0], lambda xs, p: np.maximum(xs, np.float32(0)), [])]
    return [ctx.emit(Op.RELU, [ctx.require(_data(ctx, ins[0]))])]


@register_onnx_op('Clip')
def _clip(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    x = ctx.require(_data(ctx, ins[0]))
    lo = ins[1] if len(ins) > 1 else None
    hi = ins[2] if len(ins) > 2 else None
    lo_v = np.asarray(lo.value) if isinstance(lo, Const) else _attr(node, 'min')
    hi_v = np.asarray(hi.value) if isinstance(hi, Const) else _attr(node, 'max')
    if (lo is not None and not isinstance(lo, Const)) or (hi is not None and not isinstance(hi, Const)):
        raise ctx.error('Clip bounds must be constants')
    if lo_v is not None:
        x = ctx.emit(Op.MAX, [x, ctx.const(data_const(np.float32(lo_v), x.shape, ctx))])
    if hi_v is not None:
        x = ctx.emit(Op.MIN, [x, ctx.const(data_const(np.float32(hi_v), x.shape, ctx))])
    return [x]


@register_onnx_op('BatchNormalization')
def _batchnorm(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    x = _elem_input(ctx, ins[0])
    gamma, beta, mean, var = (
        _const_input(ctx, ins, k, w).astype(np.float32) for k, w in enumerate(('scale', 'bias', 'mean', 'var'), 1)
    )
    eps = np.float32(_attr(node, 'epsilon', 1e-5))
    if len(node.output) > 1 and any(node.output[1:]):
        raise ctx.error('training-mode BatchNormalization (more than one output) is not supported')
    shape = x.shape
    cs = [-1 if a == 0 else 1 for a in range(len(shape))]
    params = [data_const(p.reshape(cs), shape, ctx) for p in (gamma, beta, mean, var)]

    def ref(xs: np.ndarray, p: tuple[Any, ...]) -> np.ndarray:  # ONNX Runtime's own float32 arithmetic
        return _ort_batchnorm(xs, [np.float32(q) for q in p], float(eps))

    def affine() -> Node:
        a = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + float(eps))
        b = beta.astype(np.float64) - mean.astype(np.float64) * a
        ctx.warn(
            'too many output levels for an exact table or comparator bank: compiled as a float64 per-channel '
            'multiply-add, which may differ from the float32 reference (follow it by a Quant to make it exact)'
        )
        y = _per_channel_scale(ctx, ctx.require(x), data_const(a.reshape(cs), shape, ctx))
        return ctx.emit(Op.ADD, [y, ctx.const(data_const(b.reshape(cs), shape, ctx))])

    return [_defer(ctx, x, ref, params, fallback=affine)]


_BN_SESSIONS: dict[tuple[float, ...], Any] = {}


def _ort_batchnorm(xs: np.ndarray, params: list[np.float32], eps: float) -> np.ndarray:
    """ONNX Runtime's own BatchNormalization of one channel (the reference's float32 arithmetic)."""
    key = (*(float(p) for p in params), eps)
    sess = _BN_SESSIONS.get(key)
    if sess is None:
        sess = _BN_SESSIONS[key] = _bn_session(params, eps)
    return sess.run(None, {'x': xs.reshape(-1, 1).astype(np.float32)})[0].reshape(-1)


def _bn_session(params: list[np.float32], eps: float) -> Any:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    inits = [numpy_helper.from_array(np.array([p], dtype=np.float32), n) for p, n in zip(params, ('g', 'b', 'm', 'v'))]
    node = helper.make_node('BatchNormalization', ['x', 'g', 'b', 'm', 'v'], ['y'], epsilon=eps)
    graph = helper.make_graph(
        [node],
        'bn',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['n', 1])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, ['n', 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 15)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), opts, providers=['CPUExecutionProvider'])


# =========================================================================== ONNX ops: linear


def _matrix(ctx: _Ctx, W: np.ndarray, what: str) -> np.ndarray:
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2:
        raise ctx.error(f'{what} must be a 2-D constant, got shape {W.shape}')
    if not np.all(np.isfinite(W)):
        raise ctx.error(f'{what} contains NaN or infinity')
    return W


def _bias_vector(ctx: _Ctx, b: np.ndarray | None, n: int) -> np.ndarray | None:
    if b is None:
        return None
    b = np.asarray(b, dtype=np.float64)
    try:
        v = np.broadcast_to(b, (1, n)).reshape(n) if b.ndim <= 2 else None
    except ValueError:
        v = None
    if v is None or (b.ndim == 2 and b.shape[0] != 1):
        raise ctx.error(f'bias of shape {b.shape} is not a per-output vector of {n}')
    return None if not v.any() else np.array(v)


@register_onnx_op('MatMul')
def _matmul(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    a, b = ins[0], ins[1]
    if not isinstance(b, Const):
        raise ctx.error('only data @ constant matrix is supported (the right operand must be an initializer)')
    x = ctx.require(_data(ctx, a))
    W = _matrix(ctx, b.value, 'the weight matrix')
    if not x.shape or x.shape[-1] != W.shape[0]:
        raise ctx.error(f'input shape {x.shape} does not match the weights {W.shape}')
    return [ctx.emit(Op.CMVM, [x], {'weights': W, 'bias': None})]


@register_onnx_op('Gemm')
def _gemm(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    if int(_attr(node, 'transA', 0)):
        raise ctx.error('transA=1 would transpose the batch axis; only transA=0 is supported')
    b = ins[1]
    if not isinstance(b, Const):
        raise ctx.error('the B operand must be a constant initializer')
    x = ctx.require(_data(ctx, ins[0]))
    W = _matrix(ctx, b.value, 'B')
    if int(_attr(node, 'transB', 0)):
        W = W.T
    alpha, beta = float(np.float32(_attr(node, 'alpha', 1.0))), float(np.float32(_attr(node, 'beta', 1.0)))
    W = W * alpha  # products of two float32 numbers are exact in float64
    c = ins[2] if len(ins) > 2 else None
    if c is not None and not isinstance(c, Const):
        raise ctx.error('the C operand must be a constant')
    bias = _bias_vector(ctx, None if c is None else np.asarray(c.value, dtype=np.float64) * beta, W.shape[1])
    if x.shape != (W.shape[0],):
        raise ctx.error(f'input shape {x.shape} does not match B {W.shape}')
    return [ctx.emit(Op.CMVM, [x], {'weights': W, 'bias': bias})]


def _pads(ctx: _Ctx, node: onnx.NodeProto, in_sp: tuple[int, ...], k: tuple[int, ...], s, d) -> tuple[list[int], list[int]]:
    nd = len(in_sp)
    auto = _attr(node, 'auto_pad', b'NOTSET')
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ('NOTSET', ''):
        p = list(_attr(node, 'pads', [0] * (2 * nd)))
        return p[:nd], p[nd:]
    if auto == 'VALID':
        return [0] * nd, [0] * nd
    begin, end = [], []
    for a in range(nd):
        out = -(-in_sp[a] // s[a])
        total = max(0, (out - 1) * s[a] + (k[a] - 1) * d[a] + 1 - in_sp[a])
        small, big = total // 2, total - total // 2
        begin.append(small if auto == 'SAME_UPPER' else big)
        end.append(big if auto == 'SAME_UPPER' else small)
    return begin, end


def _windows(in_sp: tuple[int, ...], out_sp: tuple[int, ...], k, s, d, pb) -> tuple[np.ndarray, np.ndarray]:
    """Flat spatial input index (or -1 for padding) of every (output position, kernel offset)."""
    nd = len(in_sp)
    grids_o = np.meshgrid(*[np.arange(o) for o in out_sp], indexing='ij')
    grids_k = np.meshgrid(*[np.arange(kk) for kk in k], indexing='ij')
    coords, valid = [], np.ones(tuple(out_sp) + tuple(k), dtype=bool)
    for a in range(nd):
        o = grids_o[a].reshape(tuple(out_sp) + (1,) * nd)
        r = grids_k[a].reshape((1,) * nd + tuple(k))
        c = o * s[a] - pb[a] + r * d[a]
        valid &= (c >= 0) & (c < in_sp[a])
        coords.append(np.clip(c, 0, in_sp[a] - 1))
    flat = np.ravel_multi_index(tuple(coords), in_sp)
    return np.where(valid, flat, -1), valid


def _spatial(ctx: _Ctx, node: onnx.NodeProto, x_shape: tuple[int, ...], k: tuple[int, ...]):
    in_sp = x_shape[1:]
    nd = len(in_sp)
    if nd != len(k) or nd not in (1, 2, 3):
        raise ctx.error(f'input shape {x_shape} does not match a {len(k)}-D kernel')
    s = list(_attr(node, 'strides', [1] * nd))
    d = list(_attr(node, 'dilations', [1] * nd))
    pb, _ = _pads(ctx, node, in_sp, k, s, d)
    out_sp = ctx.out_shape()[1:]
    return in_sp, out_sp, s, d, pb


@register_onnx_op('Conv')
def _conv(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    x = ctx.require(_data(ctx, ins[0]))
    if not isinstance(ins[1], Const):
        raise ctx.error('the weights must be a constant')
    W = np.asarray(ins[1].value, dtype=np.float64)
    B = np.asarray(ins[2].value, dtype=np.float64) if len(ins) > 2 and isinstance(ins[2], Const) else None
    if len(ins) > 2 and ins[2] is not None and not isinstance(ins[2], Const):
        raise ctx.error('the bias must be a constant')
    g = int(_attr(node, 'group', 1))
    O, Cg = W.shape[:2]
    k = tuple(W.shape[2:])
    C = x.shape[0]
    if Cg * g != C or O % g:
        raise ctx.error(f'weights {W.shape} with group={g} do not fit {C} input channels')
    in_sp, out_sp, s, d, pb = _spatial(ctx, node, x.shape, k)
    win, _ = _windows(in_sp, out_sp, k, s, d, pb)  # out_sp + k
    n_sp = math.prod(in_sp)
    K = math.prod(k)
    # im2col: (out_sp..., C * K) with channel-major columns
    cols = win.reshape(tuple(out_sp) + (1, K))
    chan = (np.arange(C) * n_sp).reshape((1,) * len(out_sp) + (C, 1))
    index = np.where(cols >= 0, cols + chan, -1).reshape(tuple(out_sp) + (C * K,))
    xc = ctx.emit(Op.GATHER, [x], {'index': index})
    Wm = np.zeros((C, K, O))
    og = O // g
    for o in range(O):
        grp = o // og
        Wm[grp * Cg : (grp + 1) * Cg, :, o] = W[o].reshape(Cg, K)
    bias = None if B is None or not B.any() else B.reshape(O)
    y = ctx.emit(Op.CMVM, [xc], {'weights': Wm.reshape(C * K, O), 'bias': bias})
    nsp = len(out_sp)
    back = np.arange(y.type.size, dtype=np.int64).reshape(tuple(out_sp) + (O,)).transpose((nsp, *range(nsp)))
    return [ctx.emit(Op.GATHER, [y], {'index': np.ascontiguousarray(back)})]


def _pool_windows(ctx: _Ctx, node: onnx.NodeProto, x: Node) -> tuple[np.ndarray, np.ndarray]:
    """(C, out_sp..., K) flat input indices (-1 = padding) and validity of every pooling window element."""
    k = tuple(_attr(node, 'kernel_shape'))
    in_sp, out_sp, s, d, pb = _spatial(ctx, node, x.shape, k)
    win, valid = _windows(in_sp, out_sp, k, s, d, pb)
    K = math.prod(k)
    n_sp = math.prod(in_sp)
    C = x.shape[0]
    win = win.reshape(tuple(out_sp) + (K,))
    chan = (np.arange(C) * n_sp).reshape((C,) + (1,) * (len(out_sp) + 1))
    idx = np.where(win[None] >= 0, win[None] + chan, -1)
    return idx, np.broadcast_to(valid.reshape(tuple(out_sp) + (K,))[None], idx.shape)


def _max_tree(ctx: _Ctx, parts: list[Node]) -> Node:
    while len(parts) > 1:
        nxt = [ctx.emit(Op.MAX, [parts[j], parts[j + 1]]) for j in range(0, len(parts) - 1, 2)]
        if len(parts) % 2:
            nxt.append(parts[-1])
        parts = nxt
    return parts[0]


@register_onnx_op('MaxPool')
def _maxpool(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    if len(node.output) > 1 and node.output[1]:
        raise ctx.error('the Indices output of MaxPool is not supported')
    x = ctx.require(_data(ctx, ins[0]))
    idx, valid = _pool_windows(ctx, node, x)
    if not valid.any(axis=-1).all():
        raise ctx.error('a pooling window lies entirely in the padding')
    first = np.take_along_axis(idx, np.argmax(valid, axis=-1)[..., None], axis=-1)
    idx = np.where(valid, idx, first)  # padding never wins a max: repeat a real element instead
    parts = [ctx.emit(Op.GATHER, [x], {'index': np.ascontiguousarray(idx[..., r])}) for r in range(idx.shape[-1])]
    return [_max_tree(ctx, parts)]


def _mean(ctx: _Ctx, x: Node, idx: np.ndarray, divisor: np.ndarray) -> Node | Deferred:
    """sum over the last axis of gathered windows / divisor (per output position).

    A power-of-two divisor is a shift inside the cmvm; another one is the reference's float32
    division of the (exact) sum, deferred like any elementwise function (so a following
    ``Mul``/``Trunc``/``Quant`` fuses with it into one exact table or comparator bank).
    """
    K = idx.shape[-1]
    xw = ctx.emit(Op.GATHER, [x], {'index': idx})
    e = _pow2_exponent(divisor)
    if e is not None and np.all(e == e.flat[0]):
        y = ctx.emit(Op.CMVM, [xw], {'weights': np.full((K, 1), math.ldexp(1.0, -int(e.flat[0]))), 'bias': None})
        return ctx.wire(y, np.arange(y.type.size, dtype=np.int64).reshape(idx.shape[:-1]))
    s = ctx.emit(Op.CMVM, [xw], {'weights': np.ones((K, 1)), 'bias': None})
    s = ctx.wire(s, np.arange(s.type.size, dtype=np.int64).reshape(idx.shape[:-1]))
    if e is not None:
        return _per_channel_scale(ctx, s, np.ldexp(1.0, -e).astype(np.float64))
    return _defer(ctx, s, lambda xs, p: xs / np.float32(p[0]), [np.asarray(divisor, dtype=np.float32)])


@register_onnx_op('AveragePool')
def _avgpool(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    x = ctx.require(_data(ctx, ins[0]))
    idx, valid = _pool_windows(ctx, node, x)
    K = idx.shape[-1]
    if int(_attr(node, 'count_include_pad', 0)):
        div = np.full(idx.shape[:-1], float(K))
    else:
        div = valid.sum(axis=-1).astype(np.float64)
    return [_mean(ctx, x, idx, div)]


@register_onnx_op('GlobalAveragePool', 'GlobalMaxPool')
def _global_pool(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    x = ctx.require(_data(ctx, ins[0]))
    C, n = x.shape[0], math.prod(x.shape[1:])
    idx = np.arange(C * n, dtype=np.int64).reshape(C, n)
    out = ctx.out_shape()
    if node.op_type == 'GlobalMaxPool':
        parts = [ctx.emit(Op.GATHER, [x], {'index': idx[:, r].reshape(out)}) for r in range(n)]
        return [_max_tree(ctx, parts)]
    return [_mean(ctx, x, idx.reshape(*out, n), np.full(out, float(n)))]


# =========================================================================== ONNX ops: wiring


def _reshape_like(ctx: _Ctx, v: Value) -> Value:
    out = ctx.out_shape()
    if math.prod(out) != math.prod(v.shape):
        raise ctx.error(f'cannot reshape {v.shape} to {out}')
    return ctx.wire(v, np.arange(math.prod(out), dtype=np.int64).reshape(out))


@register_onnx_op('Flatten', 'Reshape', 'Squeeze', 'Unsqueeze')
def _reshape(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    return [_reshape_like(ctx, _data(ctx, ins[0]))]


@register_onnx_op('Identity', 'Dropout')
def _identity(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    if node.op_type == 'Dropout' and len(node.output) > 1 and node.output[1]:
        raise ctx.error('the mask output of Dropout is not supported')
    return [ins[0]]


@register_onnx_op('Transpose')
def _transpose(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    x = _data(ctx, ins[0])
    nd = len(x.shape) + 1
    perm = list(_attr(node, 'perm', list(range(nd))[::-1]))
    if perm[0] != 0:
        raise ctx.error(f'perm={perm} moves the batch axis')
    idx = np.arange(math.prod(x.shape), dtype=np.int64).reshape(x.shape).transpose([p - 1 for p in perm[1:]])
    return [ctx.wire(x, np.ascontiguousarray(idx))]


def _axis(ctx: _Ctx, axis: int, nd: int) -> int:
    """ONNX axis (batch included) -> batch-less axis."""
    a = axis + nd if axis < 0 else axis
    if a == 0 or not 0 <= a < nd:
        raise ctx.error(f'axis {axis} is the batch axis or out of range')
    return a - 1


@register_onnx_op('Concat')
def _concat(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    out = ctx.out_shape()
    ax = _axis(ctx, int(_attr(node, 'axis')), len(out) + 1)
    views = [v for v in ins if v is not None]
    if all(isinstance(v, InputView) for v in views) and len({v.input for v in views}) == 1:
        return [InputView(views[0].input, np.concatenate([v.index for v in views], axis=ax))]
    parts, offset, idx = [], 0, []
    for v in views:
        n = ctx.require(v, None if not isinstance(v, Const) else tuple(np.asarray(v.value).shape[1:]))
        parts.append(n)
        idx.append(np.arange(n.type.size, dtype=np.int64).reshape(n.shape) + offset)
        offset += n.type.size
    return [ctx.emit(Op.GATHER, parts, {'index': np.concatenate(idx, axis=ax)})]


@register_onnx_op('Split')
def _split(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    x = _data(ctx, ins[0])
    ax = _axis(ctx, int(_attr(node, 'axis', 0)), len(x.shape) + 1)
    sizes = [ctx.out_shape(k)[ax] for k in range(len(node.output))]
    idx = np.arange(math.prod(x.shape), dtype=np.int64).reshape(x.shape)
    outs, start = [], 0
    for n in sizes:
        outs.append(ctx.wire(x, np.ascontiguousarray(np.take(idx, range(start, start + n), axis=ax))))
        start += n
    return outs


@register_onnx_op('Slice')
def _slice(ctx: _Ctx, node: onnx.NodeProto, ins: list[Value | None]) -> list[Value]:
    x = _data(ctx, ins[0])
    nd = len(x.shape) + 1
    starts = _const_input(ctx, ins, 1, 'starts').astype(np.int64).tolist()
    ends = _const_input(ctx, ins, 2, 'ends').astype(np.int64).tolist()
    axes = (
        _const_input(ctx, ins, 3, 'axes').astype(np.int64).tolist()
        if len(ins) > 3 and ins[3] is not None
        else list(range(len(starts)))
    )
    steps = (
        _const_input(ctx, ins, 4, 'steps').astype(np.int64).tolist() if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    )
    idx = np.arange(math.prod(x.shape), dtype=np.int64).reshape((1, *x.shape))
    sl = [slice(None)] * nd
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        a = ax + nd if ax < 0 else ax
        big = 2**62
        sl[a] = slice(max(min(st, big), -big), max(min(en, big), -big), sp)
    out = idx[tuple(sl)]
    if out.shape[0] != 1:
        raise ctx.error('slicing removes the batch axis')
    return [ctx.wire(x, np.ascontiguousarray(out[0]))]


# =========================================================================== float32 exactness


def _check_float32(g: Graph, skip: set[Node]) -> None:
    """Warn where qonnx's float32 reference may round a sum or product that the IR keeps exact."""
    seen: set[str] = set()
    for n in g.nodes.values():
        if n.op not in (Op.CMVM, Op.ADD, Op.SUB, Op.MUL) or n.name in seen or n in skip:
            continue
        wide = n.type.max_width > F32_EXACT_BITS
        if n.op is Op.CMVM and not wide:
            wide = _cmvm_partial_bits(n) > F32_EXACT_BITS
        if wide:
            seen.add(n.name)
            warnings.warn(
                f"node '{n.name}': values need more than {F32_EXACT_BITS} significant bits, so the float32 reference "
                'may round here; hgqc computes exactly (outputs can differ from qonnx execution)',
                QonnxExactnessWarning,
                stacklevel=3,
            )


def _cmvm_partial_bits(n: Node) -> int:
    """Bits of the largest sum of |x_i w_ij| in units of the finest term (bounds every partial sum, any order)."""
    from ..ir.ops import weight_digits

    t = n.inputs[0].type
    W = np.asarray(n.attrs['weights'], dtype=np.float64)
    if not W.size:
        return 0
    m, fw = weight_digits(W)
    n_in = W.shape[0]
    fx = t.f.reshape(-1, n_in)
    mag = np.ldexp(np.maximum(np.abs(t.lo), np.abs(t.hi)).astype(np.float64).reshape(-1, n_in), -fx)
    F = int(fx.max()) + int(fw[m != 0].max()) if (m != 0).any() else 0
    worst = float((mag @ np.abs(W)).max()) if mag.size else 0.0
    return int(math.ceil(math.log2(worst))) + F + 1 if worst > 0 else 0

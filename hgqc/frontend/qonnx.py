"""QONNX / ONNX frontend: lower a quantized ONNX model (Brevitas, QONNX, hand-built) into the tensor-level IR.

Entry point: ``from_qonnx(model_or_path) -> Graph``. See ``docs/qonnx.md`` for the supported nodes
and the exactness conditions; the short version follows. This module loads the model, walks it and
holds the lowering context; the node handlers are in ``qonnx_ops`` and the exact compilation of
elementwise reference functions (tables, comparator banks) in ``qonnx_exact``.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ..ir.fixed import Overflow, Round, bounds
from ..ir.graph import Graph, Node
from ..ir.ops import Op
from ..ir.types import TensorType
from .claims import InputClaims
from .errors import FrontendError
from .float32_check import caller_stacklevel, float32_risks
from .qonnx_exact import (
    F32_EXACT_BITS,
    QonnxCostWarning,
    QonnxExactnessWarning,
    RefFn,
    _table,
)

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


def _show_modes(modes: tuple[Round, Overflow]) -> str:
    """A Quant's rounding and clamping in QONNX terms (``narrow`` makes a signed clamp symmetric)."""
    names = '/'.join(n for n, r in ROUND_MODES.items() if r is modes[0])
    return f'rounding_mode {names}, narrow={int(modes[1] is Overflow.SAT_SYM)}'


def _show_claim(v: dict[str, float]) -> str:
    """An input element's quantization as the fixed-point type it becomes (and the float32 prescale, if any)."""
    k, i, f = int(v['k']), int(v['i']), int(v['f'])
    out = f'{"signed" if k else "unsigned"} {k + i + f} bits at step 2^{-f}'
    if v['scale'] != 1 or v['zeropt'] != 0:
        out += f' after x / {v["scale"]:g} + {v["zeropt"]:g}'
    return f'({out})'


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
Handler = Callable[['_Ctx', onnx.NodeProto, list['Value | None']], list[Value]]
_HANDLERS: dict[str, Handler] = {}


def register_onnx_op(*op_types: str) -> Callable[[Handler], Handler]:
    """Register ``handler(ctx, node, inputs) -> outputs`` for ONNX/QONNX ``op_types``."""

    def deco(fn: Handler) -> Handler:
        for t in op_types:
            _HANDLERS[t] = fn
        return fn

    return deco


_CLAIM_FIELDS = ('k', 'i', 'f', 'scale', 'zeropt')  # per input element: kif and float32 prescale


def supported_ops() -> list[str]:
    return sorted(_HANDLERS)


# =========================================================================== context


class _Ctx:
    def __init__(self, name: str, shapes: dict[str, tuple[int, ...]]):
        self.graph = Graph(name)
        self.shapes = shapes
        self.node: onnx.NodeProto | None = None
        self.claims: dict[str, InputClaims] = {}
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
            warnings.warn(key, category, stacklevel=caller_stacklevel())

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
            try:
                node = _table(self, d.x, d.fn, list(d.params))
            except FrontendError:
                if d.fallback is None:
                    raise
                node = d.fallback()
        except FrontendError:
            raise
        except Exception as e:  # noqa: BLE001 - name the node whose lowering failed
            raise self.error(f'lowering failed: {type(e).__name__}: {e}') from e
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
        scale = np.ones(np.shape(k)) if scale is None else np.asarray(scale, dtype=np.float32)
        zeropt = np.zeros(np.shape(k)) if zeropt is None else np.asarray(zeropt, dtype=np.float32)
        params = np.stack([np.broadcast_to(a, np.shape(k)).ravel() for a in (k, i, f, scale, zeropt)], axis=1)
        self.claims[view.input].claim(view.index.ravel(), params, (rnd, ovf), self.node.name)
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
            k, i, f = (c.param(n) for n in 'kif')
            unclaimed = c.unclaimed()
            k, i = np.where(unclaimed, 0, k), np.where(unclaimed, -f, i)  # never read: width 0
            ports[name] = g.add_input(name, TensorType.from_arrays(c.shape, *_kif_bounds(k, i, f, ovf), f))
            g.input_quant[name] = {'k': k, 'i': i, 'f': f, 'round': rnd.value, 'overflow': ovf.value}
            scale, zeropt = c.param('scale', np.float64), c.param('zeropt', np.float64)
            scale[unclaimed] = 1.0
            if np.any(scale != 1) or np.any(zeropt != 0):  # float32 prescale (see Interpreter.to_fixed)
                g.input_quant[name]['scale'] = scale
                g.input_quant[name]['zeropt'] = zeropt
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
        if p.stat().st_size == 0:
            raise FrontendError(f"cannot read model '{model}': the file is empty")
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
        if vi.name in out or not vi.type.tensor_type.HasField('shape'):  # (an output without a shape says nothing)
            continue
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
    if not out_names:
        raise FrontendError(f"model '{gname}' has no graph outputs: nothing to compile")
    for tensor, port in zip(in_names, port_names):
        shape = ctx.shapes.get(tensor)
        if shape is None or not shape or shape[0] != 1 or 0 in shape:
            raise FrontendError(f"graph input '{port}' has shape {shape}; expected (batch, ...) with static, nonzero dims")
        fix = 'quantize the input once with a single Quant node'
        ctx.claims[port] = InputClaims(port, shape[1:], _CLAIM_FIELDS, 'node', fix, _show_modes, _show_claim)
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
    for t in out_names:
        if t not in values:  # (qonnx's cleanup also drops the nodes of an output it folds to a constant)
            raise FrontendError(
                f"graph output '{t}' is not produced by any node, or is a constant that qonnx's cleanup folded "
                'away; hgqc compiles outputs computed from the graph inputs: remove it from the graph outputs'
            )
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


# =========================================================================== float32 exactness


def _check_float32(g: Graph, skip: set[Node]) -> None:
    """Warn where qonnx's float32 reference may round a sum or product that the IR keeps exact."""
    for n in float32_risks(g, skip):
        warnings.warn(
            f"node '{n.name}': values need more than {F32_EXACT_BITS} significant bits, so the float32 reference "
            'may round here; hgqc computes exactly (outputs can differ from qonnx execution)',
            QonnxExactnessWarning,
            stacklevel=caller_stacklevel(),
        )


from . import qonnx_ops  # noqa: E402, F401 - registers the op handlers (they import this module's types)

"""Keras 3 / HGQ2 frontend: lower a quantized Keras model into the tensor-level hgqc IR.

Entry point: ``from_keras(model_or_path) -> Graph``.

How a model is lowered
----------------------
The functional graph (``Functional`` or a built ``Sequential``; nested models are inlined) is
walked in topological order. Each layer is lowered by the handler registered for its class
(``@register_layer(cls)``; a handler gets the ``LoweringContext``, the layer and its input
tensors and returns its output tensors). Lookup follows the class's MRO, most specific class
first; a subclass that overrides ``call`` does *not* inherit its parent's handler (hgq's
``QUnaryFunctionLUT`` subclasses ``keras.layers.Activation`` but means something else).

Quantizers (``quantizer_to_quantize``) reproduce what hgq2 computes at inference
(``training=False``): the float bit-width variables are rounded half-to-even, broadcast to
the tensor with the quantizer's ``bw_mapper``, ``i = max(i, -f)``, and every element whose
raw ``k + i + f <= 0`` is forced to 0 (canonicalised to ``k=0, i=-f``: width 0). Stochastic
round modes (``S_RND``...) round deterministically in hgq2 (the noise is commented out of
``FixedPointQuantizer.round``), so they map to their deterministic mode. A positive
power-of-two ``scaler`` is folded exactly into ``i``/``f``; ``WRAP_SM``, float/dummy
quantizers, ``affine``, other scalers, and a data quantizer that hgq2 leaves unbounded (a
``WRAP`` quantizer with ``is_weight=True``, which only rounds) are refused.

Kernels and biases are not emulated: ``layer.qkernel`` / ``layer.qbias`` are evaluated with
Keras and stored (float64, exact dyadics) in the ``cmvm`` node.

Graph inputs
------------
Hardware ports carry already-quantized values. A Keras input therefore stays *unlowered*
(an ``InputView``: flat element positions, moved around by pure wiring such as
``Flatten``/``Reshape``) until a quantizer reads it; that quantizer becomes the port's type
and is recorded in ``graph.input_quant`` so ``Interpreter.predict`` converts floats the way
hgq2 does. Input elements that no quantizer reads (or that only reach zero-width
quantizers) get width 0. Using an unquantized input in arithmetic is an error.

If one input element reaches two quantizers with *different* (k, i, f, round, overflow),
``from_keras`` raises: a port can hold only one quantization, and re-quantizing a finer
quantization is not exact in general (double rounding). Put one shared
``hgq.layers.Quantizer`` right after the input to express such a model. Likewise all live
elements of one input must share the round and overflow mode (``input_quant`` holds one of
each).

Exactness caveat (Keras side): hgq2 computes in float32, and the IR follows exact
fixed-point semantics, so the two agree only where float32 is exact. RND computes
``floor(x*2^f + 0.5)``: the addition rounds for ``x*2^f = 0.5 - 2^-25`` (Keras gives 1, the
exact result is 0; the mirrored value for RND_MIN_INF / RND_INF) and for odd integers
``x*2^f`` in ``[2^23, 2^24)`` (off by one; reachable in WRAP mode only, SAT clips first).
A dense layer's float32 sum is exact while every partial sum stays below 2^24 units of its
finest term. Bounds such as ``2^i - 2^-f`` are exact in float32 while ``i + f <= 24``.
"""

from __future__ import annotations

import math
import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import hgq  # noqa: F401  (registers the hgq layers with Keras' deserializer)
import keras
import numpy as np
from hgq.layers import QBatchNormDense, QDense, Quantizer
from hgq.quantizer.internal import FixedPointQuantizerKBI, FixedPointQuantizerKIF
from hgq.quantizer.internal.base import DefaultBitwidthMapper
from hgq.quantizer.internal.fixed_point_quantizer import FixedPointQuantizerBase

from ..ir.fixed import Overflow, Round, bounds
from ..ir.graph import Graph, Node
from ..ir.ops import Op
from ..ir.types import TensorType
from .claims import InputClaims
from .errors import FrontendError
from .float32_check import F32_EXACT_BITS, Float32ExactnessWarning, caller_stacklevel, float32_risks
from .keras_unsupported import OUT_OF_SCOPE, SUGGESTIONS, alternative

__all__ = [
    'FrontendError',
    'InputView',
    'LoweringContext',
    'QuantParams',
    'find_handler',
    'from_keras',
    'keras_eval',
    'load_keras_model',
    'quantizer_to_quantize',
    'register_layer',
    'supported_layers',
]


# =========================================================================== values


@dataclass(frozen=True, eq=False)
class InputView:
    """Elements of graph input ``input`` not yet quantized; ``index`` holds flat positions into it.

    Pure wiring (reshape, flatten...) only rearranges ``index``; a quantizer turns the view
    into a graph value whose type is the quantizer's output type.
    """

    input: str
    index: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.index.shape)


@dataclass(frozen=True, eq=False)
class PendingDivide:
    """``node / div`` elementwise (``div``: ints >= 1 of the node's shape), not yet rounded.

    An average over windows whose size is not a power of two is a rational, not a fixed-point
    value: hgq2's float32 quotient only becomes exact where a quantizer rounds it. Wiring moves
    it along; a quantizer absorbs the division (``quantize`` attr ``div``); anything else needs
    the value itself, which exists only when every ``div`` is a power of two.
    """

    node: Node
    div: np.ndarray
    origin: str  # the layer that averaged

    @property
    def shape(self) -> tuple[int, ...]:
        return self.node.shape


Tensor = Node | InputView | PendingDivide
DIVIDE_ROUND_MODES = (Round.TRN, Round.RND, Round.RND_MIN_INF)  # see hgqc.passes.lower.division_by_multiply
Handler = Callable[['LoweringContext', Any, list[Tensor]], list[Tensor]]


def shape_of(t: Tensor) -> tuple[int, ...]:
    return t.shape


# =========================================================================== quantizers


class QuantParams(NamedTuple):
    """Per-element ap_fixed<k, i, f> parameters (int64 arrays of the tensor shape) plus modes."""

    k: np.ndarray
    i: np.ndarray
    f: np.ndarray
    round: Round
    overflow: Overflow

    @property
    def live(self) -> np.ndarray:
        return (self.k + self.i + self.f) > 0

    def attrs(self) -> dict[str, Any]:
        return {'k': self.k, 'i': self.i, 'f': self.f, 'round': self.round.value, 'overflow': self.overflow.value}

    def type(self) -> TensorType:
        """Exact output type: every value the quantizer can produce (SAT_SYM is symmetric)."""
        like = np.zeros(self.k.shape, dtype=object)
        lo, hi = bounds(self.k, self.i, self.f, self.overflow, like)
        return TensorType.from_arrays(self.k.shape, lo, hi, self.f)


def keras_eval(fn: Callable[..., Any], *args: np.ndarray, variables: Sequence[Any] = ()) -> Any:
    """Evaluate ``fn(*args)``, a Keras expression of concrete variables, to numpy (float64 where floating).

    Under jax this is one compiled call: eager dispatch compiles every op separately for
    each new shape (~1 s per quantizer), which dominated lowering time. XLA folds an expression
    of constants while compiling, with its own math routines (tanh, exp, ``a / sqrt(b)``: one
    float32 ulp off on a third of the points), not with the kernels ``keras.predict`` runs; so
    the data goes in as arguments: ``args``, and the values of ``variables`` (every Keras
    variable ``fn`` reads; as in ``predict``, where the model's state is an argument).
    """
    if keras.backend.backend() == 'jax':
        import jax

        variables = list(variables)

        def run(values: list[Any], *xs: Any) -> Any:
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(*xs)

        out = jax.jit(run)([v.value for v in variables], *args)
    else:  # pragma: no cover - hgqc runs Keras on jax
        out = fn(*args)
    return keras.tree.map_structure(lambda v: np.asarray(keras.ops.convert_to_numpy(v)), out)


# layer properties the handlers read as exact arrays (quantized weights; QBatchNormalization's
# scale and offset; a quantizer's bit-widths, ``kif``, when its mapper only broadcasts them):
# ``prefetch`` evaluates them for the whole model in one compiled call, since every separate
# ``keras_eval`` compiles anew (~25 ms each, most of a small model's lowering)
PREFETCHED = ('qkernel', 'qbias', 'qscaler_and_qoffset')


def _prefetched_attrs(layer: Any) -> list[str]:
    if not layer.built:
        return []
    if isinstance(layer, FixedPointQuantizerBase):
        return ['kif'] if type(layer.bw_mapper) is DefaultBitwidthMapper else []
    return [a for a in PREFETCHED if isinstance(getattr(type(layer), a, None), property)]


def prefetch(model: keras.Model) -> dict[tuple[int, str], Any]:
    """``{(id(layer), attr): value}`` of the arrays above, for every built layer of the model.

    A property that fails to evaluate is left out (its handler evaluates it alone and reports the
    error in its own words); so is everything when the joint evaluation itself fails.
    """
    try:  # (a private Keras walk: a Keras without it just loses the speed-up)
        layers = list(model._flatten_layers(include_self=False, recursive=True))
    except AttributeError:
        return {}
    wanted = [(layer, attr) for layer in layers for attr in _prefetched_attrs(layer)]

    def values() -> dict[str, Any]:
        out = {}
        for n, (layer, attr) in enumerate(wanted):
            try:
                v = getattr(layer, attr)
            except Exception:  # noqa: BLE001,S112 - left to the handler (see above)
                continue
            if v is not None:
                out[f'{n:06d}'] = v
        return out

    try:
        got = keras_eval(values, variables=model.variables) if wanted else {}
    except Exception:  # noqa: BLE001 - every layer then evaluates on its own
        return {}
    return {(id(wanted[int(k)][0]), wanted[int(k)][1]): v for k, v in got.items()}


class QuantizerError(FrontendError):
    """A quantizer hgqc cannot reproduce (the layer using it is named when the error passes through it)."""


def _quantizer_error(q: Any, msg: str) -> FrontendError:
    return QuantizerError(f"quantizer '{getattr(q, 'name', q)}': {msg}")


def _scaler_exponent(q: Any) -> int:
    """e with scaler == 2**e (0 without a scaler): x/2^e quantized then * 2^e shifts i and f exactly."""
    scaler = getattr(q, 'scaler', None)
    if scaler is None:
        return 0
    s = float(scaler)
    mant, exp = math.frexp(s)
    if s <= 0 or mant != 0.5:
        raise _quantizer_error(q, f'scaler={s!r} is not a positive power of two; only those are supported exactly')
    return exp - 1


def _as_int_array(q: Any, what: str, v: Any, shape: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    if a.shape != (1, *shape):
        raise _quantizer_error(q, f'{what} bit-widths of shape {a.shape[1:]} do not map onto a tensor of shape {shape}')
    a = a[0]
    if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
        raise _quantizer_error(q, f'{what} bit-widths are not integers')
    return a.astype(np.int64)


def _unbounded_at_inference(inner: FixedPointQuantizerBase) -> bool:
    """hgq2 weight quantizers in WRAP mode only round at inference (no wrap, no zeroing)."""
    if inner.overflow_mode != 'WRAP' or not inner.trainable or not getattr(inner, '_is_weight', False):
        return False
    if isinstance(inner, FixedPointQuantizerKBI):
        return inner.stateless_quantizer.round_mode == 'RND'
    return isinstance(inner, FixedPointQuantizerKIF)


def quantizer_to_quantize(q: Any, shape: Sequence[int], kif: tuple[np.ndarray, ...] | None = None) -> QuantParams:
    """What hgq2 quantizer ``q`` (an ``hgq.layers.Quantizer``) does at inference on a tensor of ``shape``.

    ``shape`` excludes the batch axis; ``kif``: the quantizer's raw bit-widths when ``prefetch``
    has them (its mapper is hgq2's default, which broadcasts them to the tensor). Returns
    per-element (k, i, f) int64 arrays of that shape with zero-width elements canonicalised to
    ``k=0, i=-f``, and the round/overflow modes. Raises ``FrontendError`` for anything hgqc cannot reproduce exactly.
    """
    shape = tuple(int(d) for d in shape)
    inner = getattr(q, 'quantizer', q)
    if not isinstance(inner, FixedPointQuantizerBase):
        kind = getattr(getattr(q, 'config', None), 'q_type', type(inner).__name__)
        raise _quantizer_error(q, f"quantizer type '{kind}' is not supported (only fixed-point 'kif' / 'kbi')")
    if not inner.built:
        raise _quantizer_error(q, 'is not built (call the model on data first)')
    if getattr(q, 'affine', None) is not None:
        raise _quantizer_error(q, f'affine={q.affine!r} is not supported')
    shift = _scaler_exponent(q)
    ovf_name = inner.overflow_mode.upper()
    rnd_name = inner.round_mode.upper().removeprefix('S_')  # hgq2 rounds S_* deterministically
    if ovf_name not in Overflow.__members__:
        raise _quantizer_error(q, f"overflow mode '{ovf_name}' is not supported (WRAP, SAT, SAT_SYM)")
    if rnd_name not in Round.__members__ or rnd_name == 'CEIL':
        raise _quantizer_error(q, f"round mode '{inner.round_mode}' is not supported")
    if _unbounded_at_inference(inner):
        raise _quantizer_error(q, 'a WRAP quantizer with is_weight=True only rounds at inference, so its range is unbounded')

    target = (1, *shape)
    try:
        if kif is not None:
            k, i, f = (np.broadcast_to(v, target) for v in kif)
        else:
            k, i, f = keras_eval(lambda: tuple(inner.bw_mapper.bw_to_x(v, target) for v in inner.kif), variables=inner.variables)
    except Exception as e:  # noqa: BLE001 - any broadcast failure means per-batch bit-widths
        raise _quantizer_error(q, f'bit-widths cannot be broadcast to the tensor shape {shape}: {e}') from e
    k, i, f = (_as_int_array(q, name, v, shape) for name, v in zip('kif', (k, i, f)))
    if np.any((k != 0) & (k != 1)):
        raise _quantizer_error(q, 'keep_negative (k) must be 0 or 1')
    i, f = i + shift, f - shift
    live = (k + i + f) > 0  # hgq2 zeroes on the raw i, before i = max(i, -f)
    k = np.where(live, k, 0)
    i = np.where(live, np.maximum(i, -f), -f)
    return QuantParams(k.astype(np.int64), i.astype(np.int64), f.astype(np.int64), Round[rnd_name], Overflow[ovf_name])


# =========================================================================== context


_ONE_QUANTIZER = 'quantize it once with a shared hgq.layers.Quantizer'


class LoweringContext:
    """Builds the graph while layers are lowered; handlers use it instead of the graph directly.

    ``layer_name`` is the provenance name given to every node a handler emits;
    ``out_shapes`` are Keras' (batch-less) output shapes of the layer being lowered;
    ``call_args`` its call's ``(args, kwargs)`` with tensors filled in (Keras ops keep their
    non-tensor arguments, e.g. the key of ``x[1:3]``, there). A value is a ``Node``, an
    ``InputView`` (input not yet quantized) or a ``PendingDivide`` (average not yet rounded).
    """

    def __init__(self, name: str, prefetched: dict[tuple[int, str], Any] | None = None):
        self.graph = Graph(name)
        self.prefetched = prefetched or {}  # ``prefetch``: layer arrays evaluated up front
        self.layer_name = ''
        self.layer: Any = None  # the Keras layer being lowered
        self.out_shapes: list[tuple[int, ...]] = []
        self.call_args: tuple[tuple[Any, ...], dict[str, Any]] = ((), {})
        self._claims: dict[str, InputClaims] = {}
        self._views: dict[Node, tuple[str, np.ndarray, np.ndarray]] = {}  # placeholder -> (input, index, live)

    # ---------------------------------------------------------------- inputs
    def new_input(self, name: str, shape: tuple[int, ...]) -> InputView:
        self._claims[name] = InputClaims(name, shape, ('k', 'i', 'f'), 'layer', _ONE_QUANTIZER)
        return InputView(name, np.arange(math.prod(shape), dtype=np.int64).reshape(shape))

    def layer_array(self, layer: Any, attr: str, what: str, item: int | None = None) -> np.ndarray:
        """``getattr(layer, attr)`` (``[item]`` of it) as a finite float64 array, prefetched when it could be."""
        v = self.prefetched.get((id(layer), attr))
        if v is None:

            def get() -> Any:
                return getattr(layer, attr) if item is None else getattr(layer, attr)[item]

            return _exact_array(get, what, layer.variables)
        return _finite(v if item is None else v[item], what)

    # ---------------------------------------------------------------- emission
    def emit(self, op: Op, inputs: Sequence[Tensor], attrs: dict[str, Any] | None = None, name: str | None = None) -> Node:
        nodes = [self.require(x) for x in inputs]
        try:
            return self.graph.add(op, nodes, attrs, name=self.layer_name if name is None else name)
        except Exception as e:  # noqa: BLE001 - typing rule rejected the operands
            raise FrontendError(f"layer '{self.layer_name}': cannot build {op.value}: {e}") from e

    def require(self, x: Tensor) -> Node:
        """The graph value of ``x``; an unquantized input cannot be computed on."""
        if isinstance(x, PendingDivide):
            return self._exact_quotient(x)
        if isinstance(x, InputView):
            raise FrontendError(
                f"input '{x.input}' reaches layer '{self.layer_name}' without a quantizer; "
                'enable its input quantizer (enable_iq=True) or add an hgq.layers.Quantizer after the input'
            )
        return x

    def quantize(self, x: Tensor, q: Any, name: str | None = None) -> Node:
        """Apply hgq quantizer ``q``; on an input view this defines the input port's type instead."""
        p = quantizer_to_quantize(q, shape_of(x), self.prefetched.get((id(getattr(q, 'quantizer', q)), 'kif')))
        if isinstance(x, InputView):
            return self._quantize_input(x, p, self.layer_name if name is None else name)
        if isinstance(x, PendingDivide):
            if p.round not in DIVIDE_ROUND_MODES:
                whose = 'its own average' if x.origin == self.layer_name else f"the average of layer '{x.origin}'"
                raise FrontendError(
                    f"layer '{self.layer_name}': its quantizer rounds {whose} with {p.round.value}; "
                    f'a division is supported with {", ".join(m.value for m in DIVIDE_ROUND_MODES)}'
                )
            return self.emit(Op.QUANTIZE, [x.node], {**p.attrs(), 'div': x.div}, name)
        return self.emit(Op.QUANTIZE, [x], p.attrs(), name)

    def _quantize_input(self, view: InputView, p: QuantParams, name: str) -> Node:
        pad = view.index < 0  # padding zeros stay zero whatever the quantizer: zero-width
        if pad.any():
            p = p._replace(k=np.where(pad, 0, p.k), i=np.where(pad, -p.f, p.i))
        take = p.live.ravel() & (view.index.ravel() >= 0)  # -1: a padding zero, not an input element
        params = np.stack([a.ravel()[take] for a in (p.k, p.i, p.f)], axis=1)
        self._claims[view.input].claim(view.index.ravel()[take], params, (p.round, p.overflow), self.layer_name)
        # A placeholder input stands for "these input elements, quantized by p" until the
        # port types are known (after the walk); finalize() turns it into a gather.
        node = self.graph.add_input(name, p.type())
        self._views[node] = (view.input, view.index, p.live)
        return node

    def divide(self, x: Node, div: np.ndarray) -> Tensor:
        """``x / div`` elementwise (``div`` ints >= 1), rounded later by the quantizer that reads it."""
        div = np.broadcast_to(np.asarray(div, dtype=np.int64), x.shape).copy()
        if np.any(div < 1):
            raise FrontendError(f"layer '{self.layer_name}': internal error: division by {div.min()}")
        return x if np.all(div == 1) else PendingDivide(x, div, self.layer_name)

    def _exact_quotient(self, x: PendingDivide) -> Node:
        """A power-of-two division as an exact value: a quantize wide and fine enough to lose nothing."""
        e = np.log2(x.div).round().astype(np.int64)
        if np.any(x.div != (1 << e)):
            sizes = sorted({int(d) for d in x.div.ravel() if d & (d - 1)})
            reader = 'the model output' if self.layer_name == x.origin else f"layer '{self.layer_name}'"
            raise FrontendError(
                f"{reader} reads the average of layer '{x.origin}' over windows of {sizes} elements unquantized, "
                'which is not a fixed-point value; quantize it first (enable_oq=True on the pooling layer, or the '
                "next layer's input quantizer)"
            )
        t = x.node.type
        f = t.f + e
        k = t.signed.astype(np.int64)
        i = np.maximum(t.width - k - f, -f + 1 - k)  # value bits unchanged, binary point moved by e
        attrs = {'k': k, 'i': i, 'f': f, 'round': Round.TRN.value, 'overflow': Overflow.WRAP.value, 'div': x.div}
        return self.emit(Op.QUANTIZE, [x.node], attrs)

    def wire(self, x: Tensor, index: np.ndarray) -> Tensor:
        """Pure wiring: ``out.flat[n] = x.flat[index.flat[n]]`` (index has the output's shape)."""
        index = np.asarray(index, dtype=np.int64)
        if isinstance(x, PendingDivide):  # a padding zero divides by 1
            div = np.where(index >= 0, x.div.ravel()[np.maximum(index, 0)], 1)
            return PendingDivide(self.require(self.wire(x.node, index)), div, x.origin)
        if isinstance(x, InputView):  # -1 (a padding zero) stays -1
            return InputView(x.input, np.where(index >= 0, x.index.ravel()[np.maximum(index, 0)], -1))
        if index.shape == x.shape and np.array_equal(index.ravel(), np.arange(index.size)):
            return x
        return self.emit(Op.GATHER, [x], {'index': index})

    def reshape(self, x: Tensor, shape: Sequence[int]) -> Tensor:
        size = math.prod(shape_of(x))
        return self.wire(x, np.arange(size, dtype=np.int64).reshape(tuple(shape)))

    # ---------------------------------------------------------------- finish
    def finalize(self, inputs: list[str], outputs: list[tuple[str, Tensor]]) -> Graph:
        """Create the real ports (typed by their quantizers) and replace placeholders by gathers."""
        for j, (name, x) in enumerate(outputs):
            if isinstance(x, PendingDivide):
                self.layer_name = name
                outputs[j] = (name, self.require(x))
        old = self.graph
        g = Graph(old.name)
        ports: dict[str, Node] = {}
        for name in inputs:
            c = self._claims[name]
            rnd, ovf = c.modes or (Round.TRN, Overflow.WRAP)
            p = QuantParams(c.param('k'), c.param('i'), c.param('f'), rnd, ovf)
            ports[name] = g.add_input(name, p.type())
            g.input_quant[name] = {'k': p.k, 'i': p.i, 'f': p.f, 'round': p.round.value, 'overflow': p.overflow.value}
            g.input_quant[name]['subnormals'] = 'zero'  # XLA CPU flushes float32 subnormals to zero
        remap: dict[Node, Node] = {}
        for n in old.nodes.values():
            if n in self._views:
                src, index, live = self._views[n]
                remap[n] = self._port_view(g, ports[src], index, live, n)
            else:
                remap[n] = g.add(n.op, [remap[i] for i in n.inputs], n.attrs, n.type, n.name)
        for name, x in outputs:
            if isinstance(x, InputView):
                raise FrontendError(
                    f"input '{x.input}' reaches model output '{name}' without a quantizer; "
                    'add an hgq.layers.Quantizer after the input'
                )
            g.add_output(name, remap[x])
        return g

    @staticmethod
    def _port_view(g: Graph, port: Node, index: np.ndarray, live: np.ndarray, placeholder: Node) -> Node:
        # Elements the consumer's quantizer zeroes read constant 0 (index -1), unless the
        # port element is zero-width anyway: then plain wiring, often the identity.
        port_zero = (port.type.width == 0).ravel()
        index = np.where(live | port_zero[index], index, -1)
        if index.shape == port.shape and np.array_equal(index.ravel(), np.arange(index.size)):
            node = port
        else:
            node = g.add(Op.GATHER, [port], {'index': index}, name=placeholder.name)
        if node.type != placeholder.type:  # claims are consistent, so this cannot differ
            raise FrontendError(f"internal error: input view for layer '{placeholder.name}' changed type")
        return node


# =========================================================================== registry

_HANDLERS: dict[type, Handler] = {}


def register_layer(*classes: type) -> Callable[[Handler], Handler]:
    """Register ``handler(ctx, layer, inputs) -> outputs`` for layers of ``classes`` (and their subclasses)."""

    def deco(fn: Handler) -> Handler:
        for cls in classes:
            _HANDLERS[cls] = fn
        return fn

    return deco


def find_handler(cls: type) -> Handler | None:
    """Most specific registered class in the MRO, unless ``cls`` overrides that class's ``call``."""
    for base in cls.__mro__:
        handler = _HANDLERS.get(base)
        if handler is not None:
            same_call = getattr(cls, 'call', None) is getattr(base, 'call', None)
            return handler if base is cls or same_call else None
    return None


def _class_path(cls: type) -> str:
    """Public import path when there is one (keras.layers.Dense rather than keras.src...)."""
    for prefix, mod in (('hgq', hgq.layers), ('keras', keras.layers)):
        if cls.__module__.startswith(prefix) and getattr(mod, cls.__name__, None) is cls:
            return f'{mod.__name__}.{cls.__name__}'
    return f'{cls.__module__}.{cls.__qualname__}'


def supported_layers() -> list[str]:
    return sorted(_class_path(c) for c in _HANDLERS)


def _unsupported(op: Any, name: str) -> FrontendError:
    cls = type(op)
    what = f"layer '{name}' ({_class_path(cls)})"
    supported = f'{len(_HANDLERS)} layer classes, listed in docs/layers.md and by hgqc.frontend.keras.supported_layers()'
    if (
        cls.__module__.startswith('hgq')
        or cls.__name__ in SUGGESTIONS
        or any(cls.__name__ in v[0] for v in OUT_OF_SCOPE.values())
    ):
        reason, alt = alternative(cls.__name__, supported_layers())
        return FrontendError(f'{what} is {reason}: {alt}; supported layers: {supported}')
    if any(base in _HANDLERS for base in cls.__mro__):
        return FrontendError(
            f'{what} overrides call() of a supported layer, so its meaning is unknown; supported layers: {supported}'
        )
    for base in cls.__mro__:
        counterpart = getattr(hgq.layers, 'Q' + base.__name__, None)
        if isinstance(counterpart, type):
            return FrontendError(f'{what} is not an HGQ2 layer: use hgq.layers.{counterpart.__name__}')
    kind = 'layer' if isinstance(op, keras.layers.Layer) else 'operation'
    _, alt = alternative(cls.__name__, supported_layers())
    return FrontendError(f"{kind} '{name}' ({_class_path(cls)}) is not supported: {alt}; supported layers: {supported}")


# =========================================================================== graph walk


def _functional_of(model: Any) -> Any:
    """The Functional graph behind a Functional or built Sequential model."""
    if isinstance(model, keras.Sequential):
        fn = getattr(model, '_functional', None)
        if fn is None:
            raise FrontendError(f"Sequential model '{model.name}' is not built: start it with keras.Input(shape)")
        return fn
    if hasattr(model, '_nodes_by_depth') and hasattr(model, '_run_through_graph'):
        return model
    raise FrontendError(
        f"model '{getattr(model, 'name', model)}' ({type(model).__name__}) has no layer graph: "
        'subclassed models are not supported; use a functional or Sequential model'
    )


def _batchless_shape(x: Any, what: str) -> tuple[int, ...]:
    dims = tuple(x.shape[1:])
    if any(d is None for d in dims):
        raise FrontendError(f'{what} has an unknown dimension {tuple(x.shape)}; hgqc needs static shapes')
    return tuple(int(d) for d in dims)


def _collect_tensors(v: Any) -> list[Tensor]:
    if isinstance(v, (Node, InputView, PendingDivide)):
        return [v]
    if isinstance(v, (list, tuple)):
        return [t for e in v for t in _collect_tensors(e)]
    if isinstance(v, dict):
        return [t for e in v.values() for t in _collect_tensors(e)]
    return []


def _lower_graph(ctx: LoweringContext, fn: Any, inputs: list[Tensor], prefix: str) -> list[Tensor]:
    """Mirror of keras' Function._run_through_graph, calling our handlers instead of the layers."""
    values: dict[int, Tensor] = {id(x): v for x, v in zip(fn.inputs, inputs)}
    for depth in sorted(fn._nodes_by_depth, reverse=True):
        for node in fn._nodes_by_depth[depth]:
            op = node.operation
            if op is None or node.is_input or any(id(x) not in values for x in node.input_tensors):
                continue
            args, kwargs = node.arguments.fill_in(values)
            if _collect_tensors(kwargs):
                raise FrontendError(f"layer '{prefix}{op.name}': tensor keyword arguments (masks...) are not supported")
            ctx.call_args = (tuple(args), dict(kwargs))  # non-tensor arguments of Keras ops (x[1:3]...)
            outs = _lower_operation(ctx, op, _collect_tensors(args), list(node.outputs), prefix)
            for x, y in zip(node.outputs, outs):
                values[id(x)] = y
    return [values[id(x)] for x in fn.outputs]


def _lower_operation(ctx: LoweringContext, op: Any, inputs: list[Tensor], outputs: list[Any], prefix: str) -> list[Tensor]:
    name = prefix + op.name
    if isinstance(op, keras.Model):  # nested model: inline its graph
        return _lower_graph(ctx, _functional_of(op), inputs, f'{name}/')
    handler = find_handler(type(op))
    if handler is None:
        raise _unsupported(op, name)
    dtype = getattr(op, 'compute_dtype', 'float32')
    if dtype not in ('float32', 'float64'):
        raise FrontendError(f"layer '{name}' computes in {dtype}; hgqc reproduces float32/float64 models only")
    ctx.layer_name, ctx.layer = name, op
    ctx.out_shapes = [_batchless_shape(x, f"output of layer '{name}'") for x in outputs]
    try:
        outs = list(handler(ctx, op, inputs))
    except QuantizerError as e:  # hgq2 names per-input quantizers generically: say whose it is
        if str(e).startswith(f"quantizer '{name}'"):
            raise
        raise FrontendError(f"layer '{name}' ({_class_path(type(op))}): {e}") from e
    except FrontendError:
        raise
    except Exception as e:  # noqa: BLE001 - name the layer whose lowering failed
        raise FrontendError(f"layer '{name}' ({_class_path(type(op))}): lowering failed: {e}") from e
    got = [shape_of(t) for t in outs]
    if got != ctx.out_shapes:
        raise FrontendError(f"layer '{name}': lowered output shapes {got} differ from Keras' {ctx.out_shapes}")
    return outs


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            n = f'{n}_{seen[n]}'
        seen.setdefault(n, 0)
        out.append(n)
    return out


def _tensor_name(x: Any) -> str:
    hist = getattr(x, '_keras_history', None)
    if hist is None:
        return getattr(x, 'name', 'tensor')
    op = hist.operation
    return op.name if hist.tensor_index == 0 else f'{op.name}_{hist.tensor_index}'


def load_keras_model(path: str | os.PathLike) -> keras.Model:
    """Load a ``.keras`` archive (safe mode, not compiled) or raise one clear ``FrontendError``."""
    p = Path(path)
    where = f"cannot read model '{path}'"
    if not p.exists():
        raise FrontendError(f'{where}: file not found')
    if not p.is_file():
        raise FrontendError(f'{where}: not a file')
    if p.suffix != '.keras':
        raise FrontendError(f'{where}: expected a Keras v3 archive with the .keras suffix')
    try:
        with open(p, 'rb'):
            pass
        is_zip = zipfile.is_zipfile(p)
    except OSError as e:
        raise FrontendError(f'{where}: {e.strerror or e}') from e
    if not is_zip:
        raise FrontendError(f'{where}: not a Keras archive: not a zip file')
    try:
        model = keras.models.load_model(p, compile=False, safe_mode=True)
    except Exception as e:  # noqa: BLE001 - any loader failure becomes one message
        raise FrontendError(f'{where}: not a Keras archive: {type(e).__name__}: {e}') from e
    if not isinstance(model, keras.Model):
        raise FrontendError(f'{where}: the archive holds a {type(model).__name__}, not a model')
    return model


def from_keras(model_or_path: keras.Model | str | os.PathLike) -> Graph:
    """Lower a built HGQ2 Keras model (or a ``.keras`` file) into a tensor-level IR graph."""
    if isinstance(model_or_path, (str, os.PathLike)):
        model = load_keras_model(model_or_path)
    else:
        model = model_or_path
    if not isinstance(model, keras.Model):
        raise FrontendError(f'expected a keras.Model or a path to a .keras file, got {type(model).__name__}')
    fn = _functional_of(model)
    ctx = LoweringContext(model.name, prefetch(model))
    in_names = [x._keras_history.operation.name for x in fn.inputs]
    views: list[Tensor] = [ctx.new_input(n, _batchless_shape(x, f"input '{n}'")) for n, x in zip(in_names, fn.inputs)]
    outs = _lower_graph(ctx, fn, views, '')
    out_names = _unique([_tensor_name(x) for x in fn.outputs])
    graph = ctx.finalize(in_names, list(zip(out_names, outs)))
    _check_float32(graph)
    return graph


class KerasExactnessWarning(Float32ExactnessWarning):
    """Keras' float32 arithmetic may round where the compiled (exact) model does not."""


def _check_float32(g: Graph) -> None:
    """Warn where hgq2's float32 layers may round a sum or product the IR keeps exact (the
    exactness caveat above): there ``model.predict`` may differ from the hardware."""
    for n in float32_risks(g):
        warnings.warn(
            f"layer '{n.name}': values need more than {F32_EXACT_BITS} significant bits, so Keras' float32 "
            'arithmetic may round here while hgqc computes exactly (model.predict can differ from the hardware); '
            'narrow the quantizers feeding it to stay exact in both',
            KerasExactnessWarning,
            stacklevel=caller_stacklevel(),
        )
    for what, width in _wide_wraps(g):
        warnings.warn(
            f'{what}: a WRAP quantizer {width} bits wide; Keras wraps in float32, which is exact on a value '
            f'x only while |x| * 2^f + 2^({width}-1) < 2^{F32_EXACT_BITS}, so model.predict can differ from the '
            f'hardware on overflowing values here; use at most {F32_EXACT_BITS - 1} bits (exact up to 3x the range) or SAT',
            KerasExactnessWarning,
            stacklevel=caller_stacklevel(),
        )


def _wide_wraps(g: Graph) -> list[tuple[str, int]]:
    """Quantize nodes (first of each name) whose wrap-around Keras cannot compute exactly in float32
    on any overflowing value: a W-bit wrap shifts by 2^(W-1) first, so the sum reaches 2^24 once W >= 24."""
    out = []
    seen: set[str] = set()  # (an input port's wrap is reproduced as Keras computes it: hgqc.runtime.keras_wrap)
    for n in g.nodes.values():
        if n.op is Op.QUANTIZE and n.attrs['overflow'] == Overflow.WRAP.value and n.name not in seen:
            width = int(np.max(np.asarray(n.attrs['k']) + n.attrs['i'] + n.attrs['f'], initial=0))
            if width >= F32_EXACT_BITS:
                seen.add(n.name)
                out.append((f"layer '{n.name}'", width))
    return out


# =========================================================================== handlers


def _single(layer: Any, inputs: list[Tensor]) -> Tensor:
    if len(inputs) != 1:
        raise FrontendError(f"layer '{layer.name}' expects one input, got {len(inputs)}")
    return inputs[0]


def _activation_op(fn: Any, where: str) -> Op | None:
    """None for linear, Op.RELU for plain relu; anything else is refused."""
    if fn is None or fn is keras.activations.linear:
        return None
    if fn is keras.activations.relu:
        return Op.RELU
    name = getattr(fn, '__name__', repr(fn))
    raise FrontendError(
        f"{where}: activation '{name}' is not supported (only linear and relu); "
        'use hgq.layers.QUnaryFunctionLUT for other activations'
    )


@register_layer(keras.layers.InputLayer, keras.layers.Dropout, keras.layers.Identity)
def _identity(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    # Dropout is the identity at inference.
    return [_single(layer, inputs)]


@register_layer(keras.layers.Flatten)
def _flatten(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    x = _single(layer, inputs)
    shape = shape_of(x)
    index = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
    if getattr(layer, 'data_format', 'channels_last') == 'channels_first' and len(shape) > 1:
        index = index.transpose((*range(1, len(shape)), 0))  # Keras moves channels last first
    return [ctx.wire(x, index.reshape(-1))]


@register_layer(keras.layers.Reshape)
def _reshape(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    return [ctx.reshape(_single(layer, inputs), ctx.out_shapes[0])]


@register_layer(keras.layers.Activation)
def _activation(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    x = _single(layer, inputs)
    op = _activation_op(layer.activation, f"layer '{ctx.layer_name}' ({_class_path(type(layer))})")
    return [x if op is None else ctx.emit(op, [x])]


@register_layer(keras.layers.ReLU)
def _relu(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    x = _single(layer, inputs)
    if layer.max_value is not None or float(layer.negative_slope) != 0.0 or float(layer.threshold) != 0.0:
        raise FrontendError(
            f"layer '{ctx.layer_name}' (keras.layers.ReLU): only plain relu is supported "
            f'(max_value={layer.max_value}, negative_slope={layer.negative_slope}, threshold={layer.threshold})'
        )
    return [ctx.emit(Op.RELU, [x])]


@register_layer(Quantizer)
def _quantizer(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    return [ctx.quantize(_single(layer, inputs), layer)]


def _exact_array(fn: Callable[[], Any], what: str, variables: Sequence[Any] = ()) -> np.ndarray:
    return _finite(keras_eval(fn, variables=variables), what)


def _finite(v: Any, what: str) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise FrontendError(f'{what} contains NaN or infinity')
    return a


@register_layer(QDense, QBatchNormDense)
def _qdense(ctx: LoweringContext, layer: Any, inputs: list[Tensor]) -> list[Tensor]:
    # hgq2 QDense: iq -> x @ qkernel (+ qbias) -> activation -> oq (QBatchNormDense: fused qkernel/qbias)
    x = _single(layer, inputs)
    where = f"layer '{ctx.layer_name}' ({_class_path(type(layer))})"
    act = _activation_op(layer.activation, where)
    if layer.enable_iq:
        x = ctx.quantize(x, layer.iq)
    w = ctx.layer_array(layer, 'qkernel', f'{where}: quantized kernel')
    b = ctx.layer_array(layer, 'qbias', f'{where}: quantized bias') if layer.use_bias else None
    if w.ndim != 2 or (b is not None and b.shape != (w.shape[1],)):
        raise FrontendError(f'{where}: unexpected kernel/bias shapes {w.shape}, {None if b is None else b.shape}')
    y = ctx.emit(Op.CMVM, [x], {'weights': w, 'bias': None if b is None or not b.any() else b})
    if act is not None:
        y = ctx.emit(act, [y])
    if layer.enable_oq:
        y = ctx.quantize(y, layer.oq)
    return [y]


# Layer families in their own modules; importing them registers their handlers.
from . import keras_conv, keras_einsum, keras_merge, keras_pool, keras_table, keras_table_layers, keras_wiring  # noqa: E402, F401

"""Bit-exact interpreter: runs a graph at any IR stage on integer arrays, vectorised over the batch.

Values are integers in units of each element's step 2^-f (``Node.type``). Every op's meaning
comes from ``hgqc.ir.ops.OPS`` (the same rules constant folding uses), so the interpreter
has no semantics of its own beyond feeding inputs and converting floats at the boundary.

A value is an int64 array when its type fits ``INT64_SAFE_WIDTH`` bits, else an object array of
Python ints (any width, ~250x slower per op). A node is evaluated on Python ints when anything it
holds on the way may be wider (``_work_bits``: its operands moved to the finest step it works at,
a quantize's target range, a full product), so no int64 operation can overflow; a result that
fits goes back to int64.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import HgqcError
from ..ir.fixed import Overflow, Round, overflow, requantize, shift_round
from ..ir.graph import Graph, Node
from ..ir.ops import OPS, Op
from ..ir.types import TensorType
from .keras_wrap import KERAS_WRAP_ROUNDS, keras_wrap

INT64_SAFE_WIDTH = 62  # leaves headroom for one alignment shift/add in int64; wider values are Python ints


def batch_shape(shape: tuple[int, ...]) -> str:
    """``(N, 8, 8, 1)``: an input's expected array shape, N samples of ``shape``."""
    return '(' + ', '.join(['N', *map(str, shape)]) + ')'


class InterpreterError(HgqcError, ValueError):
    pass


def float_to_fixed(x: np.ndarray, k, i, f, rnd: Round, ovf: Overflow, subnormals: str = 'ieee') -> np.ndarray:
    """Exactly quantize float64 values (broadcast over a leading batch axis) to integers at 2^-f.

    Where the reference scales by ``2^f`` in float32 below its normal range, ``subnormals`` says
    what it computes: ``'ieee'`` gradual underflow (qonnx), ``'zero'`` flush to zero (Keras on
    XLA CPU, which also reads subnormal inputs as zero)."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise InterpreterError('inputs contain NaN or infinity')
    f = np.broadcast_to(np.asarray(f, dtype=np.int64), x.shape)
    x = _flush_to_zero(x, f) if subnormals == 'zero' else _float32_underflow(x, f)
    mant, exp = np.frexp(x)  # x = mant * 2^exp, |mant| in [0.5, 1)
    m = np.ldexp(mant, 53).astype(np.int64)  # exact
    shift = exp.astype(np.int64) - 53 + f  # x * 2^f == m * 2^shift
    if shift.max(initial=0) + 54 > 62:
        m, up = m.astype(object), np.maximum(shift, 0).astype(object)
    else:
        up = np.maximum(shift, 0)
    # |m| < 2^53, so shifting right by more than 60 already gives the final rounding result
    down = np.minimum(np.maximum(-shift, 0), 60)
    if m.dtype == object:
        down = down.astype(object)
    y = shift_round(m << up, down, rnd)
    y = overflow(y, np.broadcast_to(k, x.shape), np.broadcast_to(i, x.shape), f, ovf)
    wide = np.max(np.asarray(k) + np.asarray(i) + np.asarray(f), initial=0) > INT64_SAFE_WIDTH
    return np.asarray(y).astype(object if wide else np.int64)


def _float32_underflow(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``x`` as the references see it where a coarse step (f < 0) scales it into float32's
    subnormal range: Keras (``x * 2^f``) and qonnx (``x / scale``) scale in float32, which is
    exact except there, where it rounds to the subnormal grid (or to 0) before quantizing."""
    tiny = (f < 0) & (np.abs(x) < np.ldexp(1.0, -126 - np.minimum(f, 0)))
    if not tiny.any():
        return x
    scaled = (x[tiny].astype(np.float32) * np.ldexp(np.float32(1), f[tiny]).astype(np.float32)).astype(np.float64)
    out = x.copy()
    out[tiny] = np.ldexp(scaled, -f[tiny])
    return out


def _flush_to_zero(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``x``, or 0 where it or ``x * 2^f`` is below float32's normal range (denormals-are-zero
    and flush-to-zero)."""
    normal = np.ldexp(1.0, -126)
    return np.where((np.abs(x) < normal) | (np.abs(np.ldexp(x, f)) < normal), 0.0, x)


def fixed_to_float(v: np.ndarray, t: TensorType) -> np.ndarray:
    return np.ldexp(np.asarray(v, dtype=np.float64), -t.f)


class Interpreter:
    """Run ``graph`` on integer or float inputs.

    ``run_int`` takes/returns integers (exact); ``predict`` takes floats, applies the model's
    own float->fixed input quantization (or requires on-grid values), and returns float64.
    """

    def __init__(self, graph: Graph):
        self.graph = graph

    def run_int(self, feeds: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> list[np.ndarray]:
        g = self.graph
        if isinstance(feeds, Mapping):
            feeds = [feeds[n.name] for n in g.inputs]
        if len(feeds) != len(g.inputs):
            raise InterpreterError(f'expected {len(g.inputs)} inputs, got {len(feeds)}')
        env: dict[Node, np.ndarray] = {}
        batch = None
        for node, x in zip(g.inputs, feeds):
            x = np.asarray(x)
            if x.shape[1:] != node.shape:
                raise InterpreterError(f'input "{node.name}": expected shape {batch_shape(node.shape)}, got {x.shape}')
            batch = x.shape[0]
            if batch == 0:
                raise InterpreterError(f'input "{node.name}": no vectors to run (an empty batch, shape {x.shape})')
            env[node] = _as_ints(x, node)
        remaining = {n: len(n.users) for n in g.nodes.values()}
        keep = set(g.output_nodes())
        for n in g.nodes.values():
            if n.op is Op.INPUT:
                continue
            env[n] = self.eval_node(n, [env[i] for i in n.inputs], batch or 1)
            for i in dict.fromkeys(n.inputs):  # free values after their last use (users is a set)
                remaining[i] -= 1
                if remaining[i] == 0 and i not in keep:
                    env.pop(i, None)
        return [env[v] for _, v in g.outputs]

    @staticmethod
    def eval_node(n: Node, xs: list[np.ndarray], batch: int) -> np.ndarray:
        d = OPS[n.op]
        wide = _wide(n)
        if wide or _work_bits(n) > INT64_SAFE_WIDTH:  # Python ints throughout: no int64 step can overflow
            xs = [np.asarray(x).astype(object) for x in xs]
        try:
            y, fnat = d.evaluate(n.attrs, [i.type for i in n.inputs], xs)
        except Exception as e:  # noqa: BLE001 - name the node that failed
            raise InterpreterError(f'%{n.id} ({n.op.value} "{n.name}"): {e}') from e
        y = np.broadcast_to(y, (batch,) + n.shape) if y.shape[0] == 1 and batch != 1 else y
        fnat = np.broadcast_to(np.asarray(fnat), n.shape)
        if np.any(fnat != n.type.f):
            y = requantize(y, fnat, n.type.f, Round.TRN)  # exact: the stored type holds every value
        return np.asarray(y).astype(object if wide else np.int64, copy=False)

    def predict(self, *xs: np.ndarray) -> list[np.ndarray] | np.ndarray:
        feeds = [self.to_fixed(node, x) for node, x in zip(self.graph.inputs, xs)]
        outs = [fixed_to_float(y, v.type) for y, (_, v) in zip(self.run_int(feeds), self.graph.outputs)]
        return outs[0] if len(outs) == 1 else outs

    def to_fixed(self, node: Node, x: np.ndarray) -> np.ndarray:
        if np.iscomplexobj(x):
            raise InterpreterError(f'input "{node.name}": real numbers expected, got complex values')
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise InterpreterError(f'input "{node.name}": numbers expected ({e})') from e
        if x.shape[1:] != node.shape:
            raise InterpreterError(f'input "{node.name}": expected shape {batch_shape(node.shape)}, got {x.shape}')
        q: dict[str, Any] | None = self.graph.input_quant.get(node.name)
        if q is not None:
            if np.isnan(x).any():
                raise InterpreterError(f'input "{node.name}": inputs contain NaN')
            with np.errstate(over='ignore'):  # both references read float32 (a float64 input is rounded first)
                x32 = x.astype(np.float32)
                if 'scale' in q:  # QONNX input Quant with a non-power-of-two scale: x/scale + zeropt in float32
                    x32 = (x32 / np.float32(q['scale'])) + np.float32(q['zeropt'])
            x = x32.astype(np.float64)
            if Overflow(q['overflow']) is not Overflow.WRAP:  # ±inf saturates, as in both references
                x = np.where(np.isinf(x), np.copysign(2.0**128, x), x)
            elif np.isinf(x).any():
                raise InterpreterError(
                    f'input "{node.name}": ±inf (or a value beyond float32\'s range) reaches a WRAP quantizer, '
                    'where Keras computes NaN'
                )
            elif q.get('subnormals') == 'zero' and Round(q['round']) in KERAS_WRAP_ROUNDS:  # a Keras port: its float32 wrap
                x = keras_wrap(_flush_to_zero(x, q['f']), q['k'], q['i'], q['f'], Round(q['round']))
                if np.isnan(x).any():
                    raise InterpreterError(
                        f'input "{node.name}": Keras\' float32 wrap-around gives some of these inputs a value outside '
                        'the input type (a WRAP quantizer of more than 24 bits), which no port value equals'
                    )
            return float_to_fixed(
                x, q['k'], q['i'], q['f'], Round(q['round']), Overflow(q['overflow']), q.get('subnormals', 'ieee')
            )
        # no declared conversion: values must already be on the input's grid and in range
        t = node.type
        y = np.ldexp(x, t.f)
        if np.any(y != np.round(y)):
            raise InterpreterError(f'input "{node.name}": values are not on the fixed-point grid')
        yi = _float_ints(y) if _wide(node) else y.astype(np.int64)
        lo = t.lo.astype(yi.dtype) if t.size else 0
        hi = t.hi.astype(yi.dtype) if t.size else 0
        if np.any(yi < lo) or np.any(yi > hi):
            raise InterpreterError(f'input "{node.name}": values outside the input type range')
        return yi


def _wide(n: Node) -> bool:
    """Whether ``n``'s values need Python ints (wider than int64 holds with headroom)."""
    return n.type.max_width > INT64_SAFE_WIDTH


def _work_bits(n: Node) -> int:
    """An upper bound on the bits of any integer evaluating ``n`` holds (conservative: the highest
    top bit and the finest step over every operand, its result, a quantize's target range and a
    product's full width). Operands are aligned to the finest step, which can need far more bits
    than the result when it is narrow (a max, a wrap, a saturation)."""
    spans = [n.type.extent, *(i.type.extent for i in n.inputs)]
    if n.op is Op.SHIFT_ADD and spans[2] is not None:  # b * 2^shift
        shift = int(n.attrs['shift'])
        spans[2] = (spans[2][0] + shift, spans[2][1] - shift)
    elif n.op is Op.MUL and spans[1] is not None and spans[2] is not None:
        spans.append((spans[1][0] + spans[2][0], spans[1][1] + spans[2][1]))
    elif n.op is Op.QUANTIZE:
        k, i, f = (np.asarray(n.attrs[a], dtype=np.int64) for a in ('k', 'i', 'f'))
        live = (k + i + f) > 0
        if live.any():
            spans.append((int((k + i)[live].max()) + 1, int(f[live].max())))
    live_spans = [s for s in spans if s is not None]
    if not live_spans:
        return 0
    return max(top for top, _ in live_spans) + max(f for _, f in live_spans)


def _as_ints(x: np.ndarray, node: Node) -> np.ndarray:
    """Integer input values in the interpreter's representation for ``node``'s type."""
    if not _wide(node):
        return x.astype(np.int64)
    return _float_ints(x) if x.dtype.kind == 'f' else x.astype(object)


def _float_ints(x: np.ndarray) -> np.ndarray:
    """Integral floats as exact Python ints (``astype(int64)`` would overflow past 2^63)."""
    out = np.empty(x.shape, dtype=object)
    out.ravel()[:] = [int(v) for v in x.ravel()]  # (ravel of a fresh array is a view)
    return out


def run(graph: Graph, *xs: np.ndarray):
    return Interpreter(graph).predict(*xs)

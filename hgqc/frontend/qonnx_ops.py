"""Lowering of QONNX custom ops and standard ONNX nodes (registered with ``register_onnx_op``).

Imported by ``hgqc.frontend.qonnx`` once its context and value types exist.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ..ir.fixed import Overflow, Round
from ..ir.graph import Node
from ..ir.ops import Op
from ..ir.types import TensorType
from .qonnx import (
    ROUND_MODES,
    Const,
    Deferred,
    InputView,
    Value,
    _attr,
    _bit_len,
    _const_input,
    _Ctx,
    _custom_attr,
    _custom_op,
    _data,
    _defer,
    _elem_input,
    _int_range_quantize,
    _pow2_exponent,
    data_const,
    register_onnx_op,
)
from .qonnx_exact import F32_EXACT_BITS, RefFn, _channel_cmvm

MAX_BITS = 60  # widest Quant / Trunc output (the interpreter is int64)

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
    if bits > MAX_BITS:
        raise ctx.error(f'bit width {bits} is over the {MAX_BITS} bits hgqc supports')
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
        lo, hi = (np.full(shape, v, dtype=object) for v in _bounds(min_int, max_int, signed, narrow, bits))
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
        lo, hi = (np.full(shape, v, dtype=object) for v in _bounds(min_int, max_int, signed, narrow, bits))
        f0 = np.zeros(shape, dtype=np.int64)
        q = _int_range_quantize(ctx, x, f0, lo, hi, ROUND_MODES[mode], prescale=(s, z))
        return [_defer(ctx, q, lambda qs, p: (qs - np.float32(p[1])) * np.float32(p[0]), [s, z])]

    def ref(xs: np.ndarray, p: tuple[Any, ...]) -> np.ndarray:
        return quant(xs, np.float32(p[0]), np.float32(p[1]), np.float32(bits), signed, narrow, mode)

    return [_defer(ctx, x, ref, [s, z])]


def _bounds(min_int: Callable, max_int: Callable, signed: int, narrow: int, bits: int) -> tuple[int, int]:
    """qonnx's integer clamp bounds: computed from a float32 bit width, hence rounded to float32
    (a 26-bit signed Quant clamps at 2^25, not 2^25 - 1)."""
    return int(min_int(signed, narrow, np.float32(bits))), int(max_int(signed, narrow, np.float32(bits)))


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
    if not 1 <= ob <= MAX_BITS:
        raise ctx.error(f'output bit width {ob} is outside 1..{MAX_BITS}')
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
        lo, hi = (np.full(shape, v, dtype=object) for v in _bounds(min_int, max_int, signed, narrow, ob))
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

    def affine() -> Node:  # float32 coefficients: as precise as the reference, and narrow enough for int64
        a = (gamma / np.sqrt(var + eps)).astype(np.float64)
        b = (beta - mean * gamma / np.sqrt(var + eps)).astype(np.float64)
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
    if int(_attr(node, 'ceil_mode', 0)) and any((o - 1) * ss >= n + b for o, ss, n, b in zip(out_sp, s, in_sp, pb)):
        raise ctx.error(
            'ceil_mode=1 adds a last window that starts in the right padding; onnxruntime drops it while ONNX '
            'shape inference keeps it, so the output shape is ambiguous: export with ceil_mode=0, or pad the input '
            'explicitly'
        )
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
    if int(_attr(node, 'count_include_pad', 0)):
        div = np.broadcast_to(_padded_counts(ctx, node, x), idx.shape[:-1]).astype(np.float64)
    else:
        div = valid.sum(axis=-1).astype(np.float64)
    return [_mean(ctx, x, idx, div)]


def _padded_counts(ctx: _Ctx, node: onnx.NodeProto, x: Node) -> np.ndarray:
    """(out_sp...) window elements inside the padded input: onnxruntime's divisor with
    count_include_pad (a ceil_mode window hanging past the end padding counts only its part inside)."""
    k = tuple(_attr(node, 'kernel_shape'))
    in_sp, out_sp, s, d, pb = _spatial(ctx, node, x.shape, k)
    _, pe = _pads(ctx, node, in_sp, k, s, d)
    counts = np.ones((), dtype=np.int64)
    for a in range(len(in_sp)):
        start = np.arange(out_sp[a])[:, None] * s[a] - pb[a] + np.arange(k[a])[None, :] * d[a]
        counts = np.multiply.outer(counts, (start < in_sp[a] + pe[a]).sum(axis=1))
    return counts


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

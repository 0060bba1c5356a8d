"""QONNX frontend on hand-built graphs: interpreter == qonnx ``execute_onnx``, exactly, on grid inputs
that include out-of-range values (clamping) and values that land on rounding ties."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx import numpy_helper

from hgqc.frontend import FrontendError
from hgqc.frontend.qonnx import ROUND_MODES, QonnxCostWarning, QonnxExactnessWarning, from_qonnx
from hgqc.ir import Op
from hgqc.runtime.interpreter import Interpreter
from hgqc.testing.qonnx_graphs import GraphBuilder, grid_inputs, reference

N = 1000


def check(model, *xs, min_distinct: int = 2):
    """Compile, run both, demand array_equal on every output (and that outputs are not trivial)."""
    with warnings.catch_warnings():
        warnings.simplefilter('error', QonnxExactnessWarning)
        g = from_qonnx(model)
    want = reference(model, *xs)
    got = Interpreter(g).predict(*[x.astype(np.float64) for x in xs])
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(want)
    for k, (w, o) in enumerate(zip(want, got)):
        assert w.shape == o.shape, (k, w.shape, o.shape)
        bad = np.flatnonzero(w.ravel() != o.ravel())
        first = f'first at {bad[0]}: want {w.ravel()[bad[0]]} got {o.ravel()[bad[0]]}' if bad.size else ''
        assert bad.size == 0, f'output {k}: {bad.size} mismatches, {first}'
        assert len(np.unique(w)) >= min_distinct, f'output {k} is (nearly) constant: the test would prove little'
    return g


# ----------------------------------------------------------------------------- Quant


@pytest.mark.parametrize('mode', list(ROUND_MODES))
def test_quant_rounding_modes_ties_and_clamps(mode):
    b = GraphBuilder()
    x = b.quant('x', 0.25, 8)
    h = b.node('Mul', [x, b.const(0.125)])  # multiples of 1/32: ties at half of the 1/4 step below
    outs = [b.quant(h, 0.25, 3, signed=s, narrow=n, mode=mode) for s in (0, 1) for n in (0, 1)]
    outs.append(b.quant(h, 0.5, 4, mode=mode, zeropt=3.0))  # integer zero point: shifted clamp bounds
    m = b.model([('x', (6,))], outs)
    xs = grid_inputs((6,), 0.25, 8, N, seed=1)
    g = check(m, xs)
    assert g.count(Op.TABLE) == 0  # power-of-two scales map onto quantize ops, no tables


def test_quant_per_channel_scales_and_input_quant():
    b = GraphBuilder()
    x = b.quant('x', np.array([[0.5], [0.25], [0.125]]), 6, mode='FLOOR')  # per-channel input quant (C, 1)
    y = b.quant(x, np.array([[1.0], [0.5], [0.0625]]), 4, mode='HALF_UP')
    m = b.model([('x', (3, 4))], [y])
    xs = grid_inputs((3, 4), 0.0625, 10, N, seed=2)  # finer than the input grid: the input quant rounds
    g = check(m, xs)
    assert g.input_quant['x']['round'] == 'TRN'


def test_quant_on_weights_is_folded_and_non_pow2_activation_scale():
    b = GraphBuilder()
    rng = np.random.default_rng(3)
    x = b.quant('x', 0.125, 4)
    w = b.quant(b.const(rng.normal(size=(5, 4))), 0.75, 3, narrow=1)  # non-power-of-two weight scale
    h = b.node('MatMul', [x, w])
    y = b.quant(h, 0.3, 4, mode='ROUND')  # non-power-of-two activation scale: exact lookup table
    m = b.model([('x', (5,))], [y])
    g = check(m, grid_inputs((5,), 0.125, 4, N, seed=3))
    assert g.count(Op.TABLE) == 1


def test_wide_quants_clamp_at_qonnx_float32_bounds():
    """qonnx computes its clamp bounds from a float32 bit width: 2^25 - 1 becomes 2^25."""
    b = GraphBuilder()
    x = b.quant('x', 1.0, 26)
    a = b.quant('a', 4.0, 8)  # up to +-512: 2^26 steps of 2^-17, clamped below
    outs = [b.quant(a, 2.0**-17, bits, signed=sg, narrow=nr) for bits, sg, nr in ((26, 1, 0), (26, 1, 1), (25, 0, 0), (25, 0, 1))]
    m = b.model([('x', (3,)), ('a', (3,))], [x, *outs])
    rng = np.random.default_rng(5)
    xs = np.concatenate([rng.uniform(-1e9, 1e9, (N, 3)), rng.integers(-(2**25), 2**25, (N, 3))]).astype(np.float32)
    a_s = rng.uniform(-600, 600, (2 * N, 3)).astype(np.float32)
    check(m, xs, a_s)
    assert reference(m, xs, a_s)[0].max() == 2**25  # (a 26-bit signed integer stops at 2^25 - 1)


def test_input_prescale_overflowing_float32_saturates_like_qonnx():
    """x / 0.1 of a large finite float32 is inf in the reference's prescale, which then clamps."""
    b = GraphBuilder()
    m = b.model([('x', (2,))], [b.quant('x', 0.1, 4, mode='ROUND')])
    xs = np.r_[[[3e38, -3e38], [1e37, -3.3e38]], np.random.default_rng(6).uniform(-2, 2, (N, 2))].astype(np.float32)
    check(m, xs)


@pytest.mark.parametrize('mode', ['FLOOR', 'CEIL', 'UP'])
def test_input_quant_of_subnormals_underflows_like_qonnx(mode):
    """qonnx scales in float32 with gradual underflow: x / 4 of a subnormal rounds to the subnormal grid."""
    b = GraphBuilder()
    m = b.model([('x', (4,))], [b.quant('x', 4.0, 8, mode=mode)])
    rng = np.random.default_rng(4)
    x = (rng.choice([-1, 1], (N, 4)) * np.ldexp(rng.uniform(1, 2, (N, 4)), rng.integers(-150, -120, (N, 4)))).astype(np.float32)
    x[0] = [1e-45, -1e-45, 1e-40, -1e-40]
    check(m, x)


@pytest.mark.parametrize('mode', ['ROUND', 'HALF_UP', 'FLOOR'])
def test_input_quant_with_float_scale_and_zero_point(mode):
    """Brevitas' default quantizers: float scales. The port takes the integer code; qonnx's float32
    prescale (x / scale + zeropt) is part of the model's input conversion."""
    b = GraphBuilder()
    x = b.quant('x', np.array([0.3, 0.17, 0.3, 0.05]), 4, signed=0, narrow=1, mode=mode, zeropt=np.array([2.0, 0.0, 5.0, 1.0]))
    h = b.node('Relu', [b.node('Mul', [x, b.const(-0.7)])])  # fused with the dequantization and the Quant
    m = b.model([('x', (4,))], [b.quant(h, 0.11, 5, mode=mode), x])
    rng = np.random.default_rng(15)
    xs = np.concatenate([rng.uniform(-3, 6, (N // 2, 4)), np.round(rng.uniform(-3, 6, (N // 2, 4)) / 0.15) * 0.15])
    check(m, xs.astype(np.float32))


def test_bipolar_and_one_bit_quant():
    b = GraphBuilder()
    x = b.quant('x', 0.25, 5)
    y1 = b.node('BipolarQuant', [x, b.const(0.5)], domain='qonnx.custom_op.general')
    y2 = b.quant(x, 2.0, 1, signed=1)  # qonnx: 1-bit signed Quant is bipolar (x >= 0 -> +1)
    y3 = b.node('BipolarQuant', [b.node('Add', [x, b.const(0.75)]), b.const(0.3)], domain='qonnx.custom_op.general')
    m = b.model([('x', (4,))], [y1, y2, y3])
    check(m, grid_inputs((4,), 0.25, 5, N, seed=4))


@pytest.mark.parametrize('mode', ['FLOOR', 'ROUND', 'CEIL', 'HALF_UP'])
def test_trunc_v2(mode):
    b = GraphBuilder()
    x = b.quant('x', 0.25, 8)
    s = b.node('Mul', [b.node('Add', [x, x]), b.const(4.0)])  # sum on the 0.25 grid, wider range
    tr = [s, b.const(0.25), b.const(0.0), b.const(10.0), b.const(2.0), b.const(4.0)]
    y1 = b.node('Trunc', tr, domain='qonnx.custom_op.general', rounding_mode=mode, signed=1, narrow=0)
    tr2 = [x, b.const(0.25), b.const(0.0), b.const(8.0), b.const(0.6), b.const(3.0)]  # non-power-of-two output scale
    y2 = b.node('Trunc', tr2, domain='qonnx.custom_op.general', rounding_mode=mode, signed=1, narrow=1)
    m = b.model([('x', (4,))], [y1, y2])
    check(m, grid_inputs((4,), 0.25, 8, N, seed=5))


def test_multithreshold():
    b = GraphBuilder()
    x = b.quant('x', 0.25, 6)
    thr = np.sort(np.random.default_rng(6).integers(-30, 30, (3, 7)) / 4.0 + 0.125 * (np.arange(3)[:, None] == 1), axis=1)
    attrs = dict(domain='qonnx.custom_op.general', out_dtype='INT4', out_scale=0.5, out_bias=-1.5)
    y = b.node('MultiThreshold', [x, b.const(thr)], **attrs)
    m = b.model([('x', (3, 2, 2))], [y])
    check(m, grid_inputs((3, 2, 2), 0.25, 6, N, seed=6))


# ----------------------------------------------------------------------------- standard ONNX


def test_gemm_matmul_add_sub_relu_clip_div():
    rng = np.random.default_rng(7)
    b = GraphBuilder()
    x = b.quant('x', 0.125, 6)
    w = b.const(rng.integers(-8, 8, (4, 6)) / 8)
    h = b.node('Gemm', [x, w, b.const(rng.integers(-8, 8, 4) / 4)], transB=1, alpha=0.5, beta=2.0)
    h = b.node('Relu', [h])
    h2 = b.node('MatMul', [x, b.const(rng.integers(-4, 4, (6, 4)) / 4)])
    s = b.node('Sub', [h, h2])
    s = b.node('Clip', [s, b.const(-1.5), b.const(2.25)])
    d = b.node('Div', [b.node('Add', [s, h2]), b.const(4.0)])
    v = b.node('Mul', [d, h2])  # variable x variable
    m = b.model([('x', (6,))], [b.quant(d, 0.125, 6), b.quant(v, 0.0625, 8, mode='HALF_DOWN')])
    check(m, grid_inputs((6,), 0.125, 6, N, seed=7))


@pytest.mark.parametrize(
    'cfg',
    [
        dict(k=(3, 3), pads=[1, 1, 1, 1], strides=[1, 1], dil=[1, 1], group=1),
        dict(k=(3, 2), pads=[0, 1, 2, 0], strides=[2, 1], dil=[1, 2], group=1),
        dict(k=(3, 3), pads=[1, 1, 1, 1], strides=[1, 1], dil=[1, 1], group=3),  # depthwise
        dict(k=(3,), pads=[1, 2], strides=[2], dil=[1], group=1),  # 1-D
    ],
    ids=['2d-same', '2d-stride-dil', 'depthwise', '1d'],
)
def test_conv(cfg):
    rng = np.random.default_rng(8)
    k = cfg['k']
    sp = (5, 6) if len(k) == 2 else (9,)
    C, O = 3, 3 if cfg['group'] == 3 else 4
    b = GraphBuilder()
    x = b.quant('x', 0.25, 4)
    W = b.const(rng.integers(-4, 4, (O, C // cfg['group'], *k)) / 4)
    B = b.const(rng.integers(-4, 4, O) / 2)
    attrs = dict(kernel_shape=list(k), pads=cfg['pads'], strides=cfg['strides'], dilations=cfg['dil'], group=cfg['group'])
    y = b.node('Conv', [x, W, B], **attrs)
    m = b.model([('x', (C, *sp))], [b.quant(b.node('Relu', [y]), 0.5, 4, signed=0)])
    check(m, grid_inputs((C, *sp), 0.25, 4, N, seed=8))


def test_pooling_and_batchnorm():
    b = GraphBuilder()
    x = b.quant('x', 0.25, 5)
    mp = b.node('MaxPool', [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    ap = b.node('AveragePool', [x], kernel_shape=[2, 2], strides=[2, 2])
    gap = b.node('GlobalAveragePool', [x])
    gmp = b.node('GlobalMaxPool', [x])
    gamma, beta, mean, var = (b.const(v) for v in ([0.5, 2.0], [0.25, -1.0], [0.5, -0.25], [0.25, 4.0]))
    bn = b.node('BatchNormalization', [x, gamma, beta, mean, var], epsilon=0.0)
    bn2 = b.node('BatchNormalization', [x, gamma, beta, mean, b.const([0.3, 1.7])], epsilon=1e-3)  # float32 rounding
    m = b.model([('x', (2, 4, 4))], [mp, ap, gap, gmp, bn, bn2])
    check(m, grid_inputs((2, 4, 4), 0.25, 5, N, seed=9))


def test_batchnorm_too_wide_for_a_table_falls_back_within_int64():
    """14-bit inputs: no exact table, so a warned multiply-add with float32 coefficients (float64
    ones made a 67-bit cmvm the interpreter refused at predict time); a Quant after it is exact."""
    b = GraphBuilder()
    x = b.quant('x', 2.0**-4, 14)
    bn = b.node('BatchNormalization', [x, *(b.const([v]) for v in (0.7, 0.25, 0.5, 0.3))], epsilon=1e-5)
    m = b.model([('x', (1,))], [bn, b.quant(bn, 1.0, 1, signed=1), b.quant(bn, 0.25, 6)])
    xs = (np.arange(-(2**13), 2**13) / 16).astype(np.float32)[:, None]
    with pytest.warns(QonnxExactnessWarning, match=r"node 'BatchNormalization_\d+'.*float64 per-channel multiply-add"):
        g = from_qonnx(m)
    want, got = reference(m, xs), Interpreter(g).predict(xs.astype(np.float64))
    assert np.max(np.abs(got[0] - want[0])) < 1e-4  # warned: the float32 reference rounds, hgqc does not
    assert np.array_equal(got[1], want[1]) and np.array_equal(got[2], want[2])


def test_average_pool_over_nine_fuses_with_the_quant():
    b = GraphBuilder()
    x = b.quant('x', 0.25, 5)
    ap = b.node('AveragePool', [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])  # /9, /6, /4 at borders
    gap = b.node('GlobalAveragePool', [x])  # /20
    m = b.model([('x', (2, 4, 5))], [b.quant(ap, 0.125, 5), b.quant(b.node('Mul', [gap, b.const(3.0)]), 0.25, 6, mode='HALF_UP')])
    check(m, grid_inputs((2, 4, 5), 0.25, 5, N, seed=16))


def test_ceil_mode_pools_whose_last_window_hangs_past_the_padding():
    """onnxruntime divides such a window by its positions inside input + pads (count_include_pad),
    or by its positions inside the input; a max ignores the overhang."""
    b = GraphBuilder()
    x = b.quant('x', 0.25, 6)
    outs = [
        b.node('AveragePool', [x], kernel_shape=[2, 3], strides=[2, 2], pads=[0, 1, 0, 0], ceil_mode=1, count_include_pad=c)
        for c in (0, 1)
    ]
    outs.append(b.node('MaxPool', [x], kernel_shape=[2, 3], strides=[2, 2], pads=[0, 1, 0, 0], ceil_mode=1))
    m = b.model([('x', (2, 5, 6))], [b.quant(o, 0.125, 8) for o in outs])
    check(m, grid_inputs((2, 5, 6), 0.25, 6, N, seed=17))


@pytest.mark.parametrize('op', ['AveragePool', 'MaxPool'])
def test_ceil_mode_window_starting_in_the_padding_is_refused(op):
    b = GraphBuilder()
    x = b.quant('x', 0.25, 6)
    y = b.node(op, [x], kernel_shape=[2], strides=[2], pads=[1, 1], ceil_mode=1)  # shape inference: 4; onnxruntime: 3
    with pytest.raises(FrontendError, match=rf'node .{op}_\d+. \({op}\): ceil_mode=1 adds a last window that starts in the'):
        from_qonnx(b.model([('x', (1, 5))], [y]))


def test_wiring_ops():
    b = GraphBuilder()
    x = b.quant('x', 0.5, 5)  # (2, 3, 4)
    t = b.node('Transpose', [x], perm=[0, 3, 1, 2])  # (4, 2, 3)
    f = b.node('Flatten', [t], axis=1)  # (24,)
    r = b.node('Reshape', [f, b.const([-1, 6, 4], dtype=np.int64)])
    s1, s2 = b.node('Split', [r, b.const([2, 4], dtype=np.int64)], n_out=2, axis=1)
    sl = b.node('Slice', [x, *(b.const(v, dtype=np.int64) for v in ([0, 1], [2, 4], [1, 2], [1, 2]))])  # (2, 2, 2)
    u = b.node('Unsqueeze', [sl, b.const([1], dtype=np.int64)])
    q = b.node('Squeeze', [u, b.const([1], dtype=np.int64)])
    cst = b.node('Constant', [], value=numpy_helper.from_array(np.arange(4, dtype=np.float32) / 4))
    c = b.node('Concat', [s2, b.node('Identity', [s1])], axis=1)  # (6, 4)
    m = b.model([('x', (2, 3, 4))], [c, q, b.node('Add', [c, cst])])
    check(m, grid_inputs((2, 3, 4), 0.5, 5, N, seed=10))


def test_residual_add_of_two_branches():
    b = GraphBuilder()
    x = b.quant('x', 0.125, 6)
    a = b.quant(b.node('MatMul', [x, b.const(np.eye(4)[::-1] * 0.5)]), 0.0625, 6)
    y = b.quant(b.node('Add', [a, x]), 0.125, 6, mode='HALF_EVEN')
    check(b.model([('x', (4,))], [y]), grid_inputs((4,), 0.125, 6, N, seed=11))


# ----------------------------------------------------------------------------- errors and warnings


def test_errors_name_the_node():
    b = GraphBuilder()
    x = b.quant('x', 0.25, 4)
    y = b.node('Softmax', [x])
    with pytest.raises(FrontendError, match=r"node 'Softmax_\d+' \(Softmax\).*not supported"):
        from_qonnx(b.model([('x', (4,))], [y]))
    b = GraphBuilder()
    y = b.node('Relu', ['x'])
    with pytest.raises(FrontendError, match='without a Quant'):
        from_qonnx(b.model([('x', (4,))], [y]))
    b = GraphBuilder()
    x = b.quant('x', 0.5, 1)
    with pytest.raises(FrontendError, match=r'bipolar .* graph input is not supported'):
        from_qonnx(b.model([('x', (4,))], [x]))
    b = GraphBuilder()
    x = b.quant('x', 0.25, 16)
    y = b.node('Mul', [b.node('AveragePool', [x], kernel_shape=[9], strides=[9]), b.const(0.1)])
    with pytest.raises(FrontendError, match=r"node 'Mul_\d+' \(Mul\).*too wide for an exact table or comparator bank"):
        from_qonnx(b.model([('x', (2, 18))], [y]))


def test_outputs_not_computed_from_the_inputs_and_empty_inputs_are_refused():
    b = GraphBuilder()
    x = b.quant('x', 0.25, 4)
    ghost = b.node('Add', [b.const(np.ones(4)), b.const(np.ones(4))])  # qonnx's cleanup folds it away
    for outs in ([x, ghost], [x, 'nowhere']):
        with pytest.raises(FrontendError, match=rf"graph output '{outs[1]}' is not produced by any node"):
            from_qonnx(b.model([('x', (4,))], outs))
    b = GraphBuilder()
    y = b.node('Relu', [b.quant('x', 0.25, 4)])
    with pytest.raises(FrontendError, match=r"graph input 'x' has shape \(1, 0\).*nonzero dims"):
        from_qonnx(b.model([('x', (0,))], [y]))
    b = GraphBuilder()  # an input that is also an output (whose value info has no shape)
    x = b.quant('x', 0.25, 4)
    with pytest.raises(FrontendError, match="graph input 'z' reaches model output 'z' without a Quant"):
        from_qonnx(b.model([('x', (4,)), ('z', (4,))], [x, 'z']))
    with pytest.raises(FrontendError, match="model 'g' has no graph outputs"):
        from_qonnx(GraphBuilder().model([], []))


def test_empty_file_is_not_a_model(tmp_path):
    (tmp_path / 'm.onnx').write_bytes(b'')
    with pytest.raises(FrontendError, match=r"cannot read model .*m.onnx': the file is empty"):
        from_qonnx(tmp_path / 'm.onnx')


def test_input_read_by_two_quants_of_different_modes_is_refused_in_qonnx_terms():
    b = GraphBuilder()
    y1, y2 = b.quant('x', 0.25, 4, mode='HALF_UP', narrow=1), b.quant('x', 0.25, 4, mode='HALF_UP')
    with pytest.raises(
        FrontendError, match=r"rounding_mode HALF_UP, narrow=1 by node 'Quant_\d+' and with rounding_mode HALF_UP, narrow=0"
    ):
        from_qonnx(b.model([('x', (2,))], [y1, y2]))
    b = GraphBuilder()
    y1, y2 = b.quant('x', 0.25, 4), b.quant('x', 0.5, 4, signed=0)
    with pytest.raises(
        FrontendError,
        match=r"element \(0,\) is quantized as \(signed 4 bits at step 2\^-2\) by node 'Quant_\d+' "
        r'and as \(unsigned 4 bits at step 2\^-1\) by node',
    ):
        from_qonnx(b.model([('x', (2,))], [y1, y2]))
    b = GraphBuilder()
    y1, y2 = b.quant('x', 0.3, 4), b.quant('x', 0.25, 4)
    with pytest.raises(FrontendError, match=r'\(signed 4 bits at step 2\^0 after x / 0.3 \+ 0\)'):
        from_qonnx(b.model([('x', (2,))], [y1, y2]))


def test_wide_sums_warn_about_float32():
    b = GraphBuilder()
    x = b.quant('x', 2.0**-12, 16)
    y = b.node('MatMul', [x, b.const(np.full((8, 2), 1.0 + 2.0**-12))])
    with pytest.warns(QonnxExactnessWarning, match=r"node 'MatMul_\d+'.*float32 reference may round"):
        from_qonnx(b.model([('x', (8,))], [y]))


# ----------------------------------------------------------------------------- through the compiler


def test_compiled_graphs_stay_exact(tmp_path):
    """Tables, clamps, diagonal cmvms and pooling through every pass (check mode re-verifies each), then Verilator."""
    import hgqc

    b = GraphBuilder()
    x = b.quant('x', 0.25, 5)  # (2, 4, 4)
    c = b.node('Conv', [x, b.const(np.arange(-9, 9).reshape(2, 1, 3, 3) / 8)], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2)
    c = b.quant(c, 0.5, 4, mode='HALF_UP', zeropt=1.0)
    p = b.node('MaxPool', [c], kernel_shape=[2, 2], strides=[2, 2])
    m = b.node('Mul', [p, b.const(np.array([0.75, -1.5]).reshape(2, 1, 1))])
    t = b.quant(b.node('Flatten', [m]), 0.3, 3, mode='UP')  # table
    y = b.node('MultiThreshold', [x, b.const(np.array([[-1.0, 0.25, 1.5]]))], domain='qonnx.custom_op.general', out_dtype='UINT2')
    model = b.model([('x', (2, 4, 4))], [t, y])
    xs = grid_inputs((2, 4, 4), 0.25, 5, N, seed=12)
    project = hgqc.compile(model, check=True, latency_cutoff=3)
    want = reference(model, xs)
    got = project.predict(xs.astype(np.float64))
    for w, o in zip(want, got):
        assert np.array_equal(w, o)
        assert len(np.unique(w)) > 2
    result = project.verify(xs, simulator='verilator', workdir=tmp_path)
    assert result.total == N and result.mismatches == 0, result.first_mismatch_detail


def test_values_wider_than_int64_compile_and_simulate(tmp_path):
    """``(a + b) - b`` for a at step 2^-30 and b at 2^30: 69-bit adders, which hgqc computes
    exactly (its interpreter on Python ints), so the output is a, as qonnx computes ``Quant(x)``
    alone; the float32 reference of the whole graph loses a (hence the warning)."""
    import hgqc

    b = GraphBuilder()
    a, big = b.quant('x', 2.0**-30, 8), b.quant('y', 2.0**30, 8)
    diff = b.node('Sub', [b.node('Add', [a, big]), big])
    model = b.model([('x', (4,)), ('y', (4,))], [b.quant(diff, 2.0**-30, 9)])
    alone = GraphBuilder()
    only_a = alone.model([('x', (4,))], [alone.quant('x', 2.0**-30, 8)])
    xs, ys = grid_inputs((4,), 2.0**-30, 8, N, seed=3), grid_inputs((4,), 2.0**30, 8, N, seed=4)
    with pytest.warns(QonnxExactnessWarning, match='more than 24 significant bits'):
        project = hgqc.compile(model, tmp_path / 'p')
    assert max(n.type.max_width for n in project.graph.nodes.values()) == 69
    (want,) = reference(only_a, xs)
    got = project.predict(xs.astype(np.float64), ys.astype(np.float64))
    assert np.array_equal(got, want) and len(np.unique(want)) > 100
    result = project.verify(xs, ys, simulator='verilator', workdir=tmp_path / 'sim')
    assert result.total == N and result.mismatches == 0, result.first_mismatch_detail


def test_product_of_non_pow2_quants_into_a_matmul_beyond_int64():
    """The fuzzer's graph that hgqc used to refuse: a product of Quant(0.6) and Quant(0.17) into a
    MatMul gives 64-92-bit shift-adds after lowering; the design equals qonnx on every input."""
    import hgqc

    rng = np.random.default_rng(1)
    b = GraphBuilder()
    a = b.quant('x', 0.6, 8)
    prod = b.node('Mul', [a, b.quant(b.node('Sub', [a, b.const(np.float32(0.37))]), 0.17, 8)])
    y = b.node('MatMul', [prod, b.const((rng.normal(size=(6, 3)) * 7).astype(np.float32))])
    model = b.model([('x', (6,))], [b.quant(y, 0.5, 10)])
    project = hgqc.compile(model)
    assert max(n.type.max_width for n in project.graph.nodes.values()) > 62
    xs = grid_inputs((6,), 0.6, 5, 2 * N, seed=1)
    (want,) = reference(model, xs)
    assert np.array_equal(project.predict(xs.astype(np.float64)), want) and len(np.unique(want)) > 100


def test_comparator_bank_over_a_domain_beyond_int64(tmp_path):
    """A non-power-of-two Quant of a sum at steps 2^-60 and 2^-2 (2^67 input keys): a comparator
    bank whose thresholds have up to ~65 significant bits, each the sum of two float64 constants
    (its set-up sampled the domain in int64 and crashed before); exact against qonnx, and in Verilator."""
    import hgqc

    b = GraphBuilder()
    s = b.node('Add', [b.quant('x', 2.0**-60, 8), b.quant('y', 0.25, 8)])
    model = b.model([('x', (2,)), ('y', (2,))], [b.quant(s, 0.3, 6)])
    with pytest.warns(QonnxCostWarning, match='bank of up to 63 comparators'):
        project = hgqc.compile(model)
    assert sum(n.op is Op.ADD for n in project.tensor_graph.nodes.values()) == 3  # the sum, and two per threshold
    xs, ys = grid_inputs((2,), 2.0**-60, 8, N, seed=1), grid_inputs((2,), 0.25, 8, N, seed=2)
    (want,) = reference(model, xs, ys)
    assert np.array_equal(project.predict(xs.astype(np.float64), ys.astype(np.float64)), want)
    assert len(np.unique(want)) > 50
    result = project.verify(xs, ys, simulator='verilator', workdir=tmp_path)
    assert result.total == N and result.mismatches == 0, result.first_mismatch_detail


# ----------------------------------------------------------------------------- Keras (HGQ2) == QONNX


def _ir_to_qonnx(graph) -> object:
    """The QONNX model of a Keras-lowered graph made of per-tensor SAT/TRN quantizers, cmvm and relu."""
    b = GraphBuilder()
    names = {}

    def quant(src, k, i, f):
        (k,), (i,), (f,) = (np.unique(a) for a in (k, i, f))  # one quantizer per tensor
        return b.quant(src, 2.0 ** -int(f), int(k + i + f), signed=int(k), mode='FLOOR')

    for n in graph.nodes.values():
        if n.op is Op.INPUT:
            q = graph.input_quant[n.name]
            assert (q['round'], q['overflow']) == ('TRN', 'SAT')
            names[n] = quant(n.name, q['k'], q['i'], q['f'])
        elif n.op is Op.CMVM:
            y = b.node('MatMul', [names[n.inputs[0]], b.const(n.attrs['weights'])])
            bias = n.attrs.get('bias')
            names[n] = y if bias is None else b.node('Add', [y, b.const(bias)])
        elif n.op is Op.RELU:
            names[n] = b.node('Relu', [names[n.inputs[0]]])
        elif n.op is Op.QUANTIZE:
            assert (n.attrs['round'], n.attrs['overflow']) == ('TRN', 'SAT')
            names[n] = quant(names[n.inputs[0]], n.attrs['k'], n.attrs['i'], n.attrs['f'])
        else:
            raise AssertionError(f'no QONNX counterpart written for {n.op}')
    (port,) = graph.inputs
    return b.model([(port.name, port.shape)], [names[v] for _, v in graph.outputs])


def test_keras_and_qonnx_give_ir_of_equal_cost():
    import keras
    from hgq.config import QuantizerConfig
    from hgq.layers import QDense, Quantizer

    import hgqc
    from hgqc.frontend.keras import from_keras
    from hgqc.passes.lower import adder_depth, count_adders

    def qc(place, i, f, k=1):
        return QuantizerConfig('kif', place, overflow_mode='SAT', round_mode='TRN', heterogeneous_axis=(), i0=i, f0=f, k0=k)

    keras.utils.set_random_seed(13)
    inp = keras.Input((8,), name='x')
    d1 = QDense(6, activation='relu', iq_conf=qc('datalane', 2, 3), kq_conf=qc('weight', 0, 3), bq_conf=qc('bias', 1, 3))
    d2 = QDense(3, enable_iq=False, kq_conf=qc('weight', 0, 3), bq_conf=qc('bias', 1, 3))
    h = Quantizer(config=qc('datalane', 2, 2, 0))(d1(inp))
    model = keras.Model(inp, Quantizer(config=qc('datalane', 3, 2))(d2(h)))
    for d in (d1, d2):
        d.bias.assign(np.random.default_rng(13).integers(-8, 8, d.bias.shape) / 8)
    kg = from_keras(model)
    qmodel = _ir_to_qonnx(kg)
    qg = from_qonnx(qmodel)

    xs = grid_inputs((8,), 0.125, 6, N, seed=13)
    want = np.asarray(model.predict(xs, batch_size=N, verbose=0), dtype=np.float64)
    assert np.array_equal(Interpreter(qg).predict(xs.astype(np.float64)), want)
    assert np.array_equal(reference(qmodel, xs)[0], want)

    pk, pq = hgqc.compile(kg), hgqc.compile(qg)
    assert count_adders(pk.graph) == count_adders(pq.graph) > 0
    assert adder_depth(pk.graph) == adder_depth(pq.graph)
    summary = slice(1, 7)  # adders, adder bits, depth, LUTs, FFs, stages (layer names differ)
    assert pk.report().splitlines()[summary] == pq.report().splitlines()[summary]


def test_wide_input_non_pow2_quant_becomes_exact_comparator_bank():
    rng = np.random.default_rng(14)
    b = GraphBuilder()
    x = b.quant('x', 2.0**-4, 8)
    h = b.node('MatMul', [x, b.const(rng.integers(-8, 8, (6, 3)) / 4)])  # ~2^14 distinct values: too many for a table
    y = b.quant(h, 0.3, 4, mode='HALF_UP')
    bn = [b.const(np.full(3, v)) for v in (0.7, 0.1, 0.5, 1.3)]  # BN -> Relu -> Quant: one comparator bank
    z = b.node('Relu', [b.node('BatchNormalization', [b.node('Transpose', [h], perm=[0, 1]), *bn])])
    model = b.model([('x', (6,))], [y, b.quant(z, 0.25, 5, signed=0, mode='DOWN')])
    with pytest.warns(QonnxCostWarning, match='comparators'):
        g = from_qonnx(model)
    assert g.count(Op.TABLE) == 0
    xs = grid_inputs((6,), 2.0**-4, 8, N, seed=14, over=1)
    want = reference(model, xs)
    got = Interpreter(g).predict(xs.astype(np.float64))
    for w, o in zip(want, got):
        assert np.array_equal(w, o) and len(np.unique(w)) > 4

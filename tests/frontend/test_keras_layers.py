"""Convolution, pooling and wiring layers: the lowered graph, run by the interpreter, equals Keras
bit for bit over the quantizer matrix (kif/kbi, WRAP/SAT/SAT_SYM, RND/TRN, per-element/shared)."""

from __future__ import annotations

import keras
import pytest
from hgq.layers import QGRU, QAdd, QConv2D, QConv3D, QDense, QMaxPooling2D, QMaxPooling3D, Quantizer

from hgqc.frontend import FrontendError, from_keras
from hgqc.ir import Op

from .layer_models import IMG_SHAPE, MATRIX, SEQ_SHAPE, Confs, branchy_model, cfg_id, perturb
from .test_keras import assert_exact, mixed_inputs

N_INPUTS = 2000
AVG = True


# A pairwise covering subset runs in CI (every pair of factor values appears, 6 of the 24
# configs); the rest are marked slow (``pytest -m slow``) to keep CI within its time budget.
PAIRWISE = {
    ('kif', 'WRAP', 'RND', True),
    ('kbi', 'WRAP', 'TRN', False),
    ('kif', 'SAT', 'TRN', False),
    ('kbi', 'SAT', 'RND', True),
    ('kif', 'SAT_SYM', 'RND', False),
    ('kbi', 'SAT_SYM', 'TRN', True),
}
CASES = [pytest.param(c, id=cfg_id(c), marks=() if c in PAIRWISE else pytest.mark.slow) for c in MATRIX]


@pytest.mark.parametrize('cfg', CASES)
def test_layers_over_quantizer_matrix(cfg):
    seed = MATRIX.index(cfg)
    model = branchy_model(cfg, avg=AVG)
    perturb(model, seed)
    xs = [mixed_inputs(SEQ_SHAPE, seed, n=N_INPUTS), mixed_inputs(IMG_SHAPE, 1000 + seed, n=N_INPUTS)]
    g = assert_exact(model, xs)
    convs = {n.name for n in g if n.op is Op.CMVM}
    assert {'conv2d_same', 'conv2d_groups', 'conv1d_causal', 'conv_after_wiring1d'} <= convs
    assert len(g.outputs) == len(model.outputs)


def test_wiring_on_raw_input_and_padding_zeros():
    """Padding/cropping/upsampling an input before its first quantizer moves port positions only."""
    c = Confs(('kif', 'SAT', 'RND', True))
    inp = keras.Input((5, 6, 1), name='x')
    h = keras.layers.ZeroPadding2D(((1, 0), (2, 1)), name='zpad')(inp)
    h = keras.layers.UpSampling2D((1, 2), name='up')(h)
    h = keras.layers.Cropping2D(((0, 1), (3, 2)), name='crop')(h)
    out = QConv2D(2, 3, name='conv', **c.conv(shared_iq=True))(h)  # upsampled copies share one quantization
    model = keras.Model(inp, out)
    perturb(model, 5)
    g = assert_exact(model, mixed_inputs((5, 6, 1), 5, n=N_INPUTS))
    assert g.inputs[0].shape == (5, 6, 1)


def test_channels_first():
    c = Confs(('kbi', 'WRAP', 'TRN', True))
    inp = keras.Input((2, 6, 5), name='x')
    h = QConv2D(3, 2, padding='same', data_format='channels_first', name='conv', **c.conv())(inp)
    h = QMaxPooling2D(2, data_format='channels_first', name='pool', **c.pool())(h)
    h = keras.layers.Flatten(data_format='channels_first', name='flat')(h)
    model = keras.Model(inp, QDense(3, name='d')(h))
    perturb(model, 6)
    assert_exact(model, mixed_inputs((2, 6, 5), 6, n=N_INPUTS))


def test_keras_ops_slicing_transpose_reshape():
    c = Confs(('kif', 'WRAP', 'RND', True))
    inp = keras.Input((4, 6), name='x')
    h = QDense(5, name='d1', iq_conf=c.data(), kq_conf=c.weight(), bq_conf=c.bias())(inp)
    a = keras.ops.transpose(h[:, 1:, ::2], (0, 2, 1))
    b = keras.ops.reshape(h[:, -1], (-1, 5, 1))
    b = keras.ops.squeeze(keras.ops.expand_dims(b, 1), 1)
    model = keras.Model(inp, [a, b, h[:, 0, 1:4]])
    perturb(model, 7)
    g = assert_exact(model, mixed_inputs((4, 6), 7, n=N_INPUTS))
    assert g.count(Op.CMVM) == 1


def test_unsupported_padding_and_interpolation_are_refused():
    inp = keras.Input((4, 4, 1))
    h = QConv2D(2, 3, name='c')(inp)
    model = keras.Model(inp, keras.layers.UpSampling2D(2, interpolation='bilinear', name='up')(h))
    with pytest.raises(FrontendError, match=r"'up' .*interpolation 'bilinear' is not supported; use interpolation='nearest'"):
        from_keras(model)


@pytest.mark.parametrize(
    ('make', 'msg'),
    [
        (lambda: QConv3D(2, 2, name='bad'), r"'bad' \(hgq\.layers\.QConv3D\) is not supported: use hgq\.layers\.QConv2D"),
        (
            lambda: QMaxPooling3D(2, name='bad'),
            r"'bad' \(hgq\.layers\.QMaxPooling3D\) is not supported: use hgq\.layers\.QMaxPooling2D",
        ),
        (
            lambda: keras.layers.DepthwiseConv2D(2, name='bad'),
            r"'bad' \(keras\.layers\.DepthwiseConv2D\) is not supported: use hgq\.layers\.QConv2D with groups",
        ),
        (lambda: QGRU(2, name='bad'), r"'bad' \(hgq\.layers\.QGRU\) is out of scope \(recurrent layers"),
    ],
)
def test_unsupported_layers_name_the_nearest_alternative(make, msg):
    inp = keras.Input((4, 4, 4, 2) if 'QConv3D' in msg or '3D' in msg else (4, 4, 2) if 'Depthwise' in msg else (4, 2))
    model = keras.Model(inp, make()(inp))
    with pytest.raises(FrontendError, match=msg):
        from_keras(model)


def test_graph_shapes_skip_nested_sequential_shared():
    """A residual CNN (skip connection through QAdd), a nested Sequential CNN used twice (shared
    weights, two call sites), several inputs and outputs; the shared conv is lowered once per call."""
    c = Confs(('kif', 'SAT', 'RND', True))
    inner = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            QConv2D(2, 3, padding='same', name='inner_conv', **c.conv()),
            QMaxPooling2D(2, name='inner_pool', **c.pool()),
        ],
        name='inner',
    )
    a = keras.Input((6, 6, 2), name='a')
    b = keras.Input((6, 6, 2), name='b')
    qa = Quantizer(c.data(), name='qa')(a)
    h = QConv2D(2, 3, padding='same', name='res_conv', **c.conv())(qa)
    skip = QAdd(name='skip')([h, qa])  # residual: the quantized input joins the conv output
    ya = inner(skip)
    yb = inner(b)  # the same nested model on another input
    shared = keras.layers.Flatten(name='flat')(ya)
    out1 = QDense(3, name='head1', iq_conf=c.data(), kq_conf=c.weight(), bq_conf=c.bias())(shared)
    out2 = QDense(2, name='head2', iq_conf=c.data(), kq_conf=c.weight(), bq_conf=c.bias())(shared)
    model = keras.Model([a, b], [out1, out2, yb], name='shapes')
    perturb(model, 41)
    xs = [mixed_inputs((6, 6, 2), 41, n=N_INPUTS), mixed_inputs((6, 6, 2), 42, n=N_INPUTS)]
    g = assert_exact(model, xs)
    assert [n.name for n in g.inputs] == ['a', 'b'] and len(g.outputs) == 3
    assert sum(n.name == 'inner/inner_conv' and n.op is Op.CMVM for n in g) == 2
    assert sum(n.name == 'flat' for n in g) == 1  # the shared flatten feeds both heads


def test_refusal_in_a_softmax_table_names_the_softmax():
    import numpy as np
    from hgq.layers import QSoftmax
    from hgq.quantizer import QuantizerConfig

    inp = keras.Input((4,))
    h = QDense(4, iq_conf=QuantizerConfig('kif', 'datalane', heterogeneous_axis=()))(inp)
    model = keras.Model(inp, QSoftmax(name='post')(h))
    q = model.get_layer('post').exp_table.iq.quantizer
    q._i.assign(np.full(q._i.shape, 12, np.float32))  # a 2^20-value exp table input: refused
    q._f.assign(np.full(q._f.shape, 14, np.float32))
    with pytest.raises(FrontendError, match=r"layer 'post' \(QSoftmax, its post_exp_table\): an input element .*exp_iq_conf"):
        from_keras(model)


# ----------------------------------------------------------------------------- refusals found by fuzzing


def _refused(model: keras.Model, pattern: str) -> None:
    with pytest.raises(FrontendError, match=pattern):
        from_keras(model)


def test_einsum_dense_equations_hgqc_cannot_follow_are_refused():
    from hgq.layers import QEinsumDense

    x = keras.Input((3, 4, 2))  # Keras' symbolic shape of '...' over two axes is (4, 3, 5); predict gives (3, 4, 5)
    _refused(keras.Model(x, QEinsumDense('...j,jk->...k', (5,), name='ed')(x)), r"layer 'ed'.*symbolic output shape \(4, 3, 5\)")
    x = keras.Input((3, 3))
    _refused(keras.Model(x, QEinsumDense('bii,ik->bk', (2,), name='ed')(x)), r"layer 'ed'.*'bii,ik->bk' repeats a letter")


def test_channels_first_table_convolution_is_refused():
    from hgq.layers import QConvT1D
    from hgq.quantizer import QuantizerConfig

    conf = QuantizerConfig('kif', 'datalane', heterogeneous_axis=())
    x = keras.Input((3, 2))
    h = Quantizer(conf)(x)
    t = QConvT1D(1, 3, strides=2, padding='same', data_format='channels_first', iq_conf=conf, toq_conf=conf, name='t')(h)
    _refused(keras.Model(x, t), r"layer 't' \(QConvT1D\): data_format='channels_first' is not supported")


def test_a_refused_per_input_quantizer_names_its_layer():
    from hgq.layers import QMultiply
    from hgq.quantizer import QuantizerConfig

    def conf(**kw):
        return QuantizerConfig('kif', 'datalane', heterogeneous_axis=(), **kw)

    x = keras.Input((4,))
    xq = Quantizer(conf())(x)
    y = QMultiply(iq_confs=[conf(), conf(scaler=3.0)], name='my_mul')([xq, xq])
    _refused(
        keras.Model(x, y), r"layer 'my_mul' \(hgq.layers.QMultiply\): quantizer '\w+': scaler=3.0 is not a positive power of two"
    )

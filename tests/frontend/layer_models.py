"""Models exercising the convolution, pooling and wiring handlers under one quantizer config.

``branchy_model(cfg, seed)`` is ONE functional model with two inputs (a sequence and an image)
and many outputs: every supported conv / pool / wiring layer sits on its own branch, so one
``model.predict`` and one interpreter run per quantizer config check them all (the whole
quantizer matrix stays cheap in CI). Its quantizers get random per-element or shared bit-widths
(``perturb``), its kernels random values large enough to saturate and wrap.
"""

from __future__ import annotations

import keras
import numpy as np
from hgq.layers import (
    QAveragePooling1D,
    QAveragePooling2D,
    QConv1D,
    QConv2D,
    QDense,
    QGlobalAveragePooling1D,
    QGlobalAveragePooling2D,
    QGlobalMaxPooling1D,
    QGlobalMaxPooling2D,
    QMaxPooling1D,
    QMaxPooling2D,
    Quantizer,
)
from hgq.quantizer import QuantizerConfig
from hgq.quantizer.internal import FixedPointQuantizerKBI, FixedPointQuantizerKIF

SEQ_SHAPE = (12, 3)
IMG_SHAPE = (7, 7, 2)

MATRIX = [
    (q, ovf, rnd, het)
    for q in ('kif', 'kbi')
    for ovf in ('WRAP', 'SAT', 'SAT_SYM')
    for rnd in ('RND', 'TRN')
    for het in (True, False)
]


def cfg_id(cfg: tuple) -> str:
    return '-'.join([cfg[0], cfg[1], cfg[2], 'het' if cfg[3] else 'hom'])


class Confs:
    """Quantizer configs of one matrix entry, per role."""

    def __init__(self, cfg: tuple):
        q_type, ovf, rnd, het = cfg
        common = dict(overflow_mode=ovf, round_mode=rnd)
        dl = dict(homogeneous_axis=(0,)) if het else dict(heterogeneous_axis=())
        w = dict(homogeneous_axis=()) if het else dict(heterogeneous_axis=())
        self.data = lambda: QuantizerConfig(q_type, 'datalane', **common, **dl)
        self.data_shared = lambda: QuantizerConfig(q_type, 'datalane', **common, heterogeneous_axis=())
        self.weight = lambda: QuantizerConfig(q_type, 'weight', **common, **w)
        self.bias = lambda: QuantizerConfig(q_type, 'bias', **common, **w)

    def conv(self, shared_iq: bool = False) -> dict:
        iq = self.data_shared() if shared_iq else self.data()
        return dict(iq_conf=iq, kq_conf=self.weight(), bq_conf=self.bias())

    def pool(self, oq: bool = True) -> dict:
        return dict(iq_conf=self.data(), enable_oq=oq, oq_conf=self.data() if oq else None)


def branchy_model(cfg: tuple, avg: bool = True) -> keras.Model:
    """Every conv / pool / wiring layer on its own branch (see the module docstring)."""
    c = Confs(cfg)
    seq = keras.Input(SEQ_SHAPE, name='seq')
    img = keras.Input(IMG_SHAPE, name='img')
    qs = Quantizer(c.data(), name='q_seq')(seq)
    qi = Quantizer(c.data(), name='q_img')(img)
    outs = [
        QConv2D(3, 3, padding='same', strides=2, activation='relu', name='conv2d_same', **c.conv())(qi),
        QConv2D(4, (2, 3), dilation_rate=(2, 1), groups=2, name='conv2d_groups', **c.conv())(qi),
        QConv2D(2, 1, use_bias=False, name='conv2d_1x1', **c.conv())(qi),
        QMaxPooling2D(2, padding='same', name='maxpool2d', **c.pool())(qi),
        QMaxPooling2D((3, 2), strides=(2, 1), name='maxpool2d_noq', **c.pool(oq=False))(qi),
        QGlobalMaxPooling2D(name='gmaxpool2d', **c.pool())(qi),
        keras.layers.MaxPooling2D(3, strides=2, padding='same', name='keras_maxpool2d')(qi),
        keras.layers.GlobalMaxPooling2D(keepdims=True, name='keras_gmaxpool2d')(qi),
        QConv1D(3, 3, padding='causal', dilation_rate=2, name='conv1d_causal', **c.conv(shared_iq=True))(qs),
        QConv1D(2, 4, strides=3, padding='same', activation='relu', name='conv1d_same', **c.conv())(qs),
        QMaxPooling1D(3, strides=2, padding='same', name='maxpool1d', **c.pool())(qs),
        QGlobalMaxPooling1D(keepdims=True, name='gmaxpool1d', **c.pool())(qs),
        keras.layers.MaxPooling1D(2, name='keras_maxpool1d')(qs),
    ]
    # wiring chains, each ending in a layer that computes on the rearranged elements
    h = keras.layers.ZeroPadding2D(((1, 2), (0, 1)), name='zpad2d')(qi)
    h = keras.layers.Cropping2D(((2, 0), (1, 1)), name='crop2d')(h)
    h = keras.layers.UpSampling2D((2, 1), name='up2d')(h)
    outs.append(QConv2D(2, 3, strides=(3, 2), name='conv_after_wiring2d', **c.conv())(h))
    h = keras.layers.Permute((3, 1, 2), name='permute')(qi)
    h = keras.layers.Reshape((14, 7), name='reshape')(h)
    outs.append(QMaxPooling1D(2, name='pool_after_permute', **c.pool())(h))
    h = keras.layers.ZeroPadding1D((2, 1), name='zpad1d')(qs)
    h = keras.layers.Cropping1D((1, 3), name='crop1d')(h)
    h = keras.layers.UpSampling1D(2, name='up1d')(h)
    outs.append(QConv1D(2, 2, strides=2, name='conv_after_wiring1d', **c.conv())(h))
    h = keras.layers.Flatten(name='flat_seq')(qs[:, 2:9:3, ::-1])  # GetItem with a negative step
    outs.append(keras.layers.RepeatVector(2, name='repeat')(h))
    if avg:
        outs += [
            QAveragePooling2D(2, name='avgpool2d', **c.pool())(qi),
            QAveragePooling2D(3, strides=2, padding='same', name='avgpool2d_same', **c.pool())(qi),
            QGlobalAveragePooling2D(name='gavgpool2d', **c.pool())(qi),
            QAveragePooling1D(3, strides=2, padding='same', name='avgpool1d', **c.pool())(qs),
            QGlobalAveragePooling1D(keepdims=True, name='gavgpool1d', **c.pool())(qs),
            # no output quantizer: the next layer's iq rounds the (rational) average
            keras.layers.Flatten(name='flat_avg')(QAveragePooling2D(3, name='avgpool2d_noq', **c.pool(oq=False))(qi)),
        ]
        outs[-1] = QConv1D(2, 1, name='conv_after_avg', **c.conv())(keras.layers.Reshape((4, 2), name='re_avg')(outs[-1]))
        # plain Keras averages: a power-of-two window is exact as is; a 12-step mean needs the next iq
        outs.append(keras.layers.AveragePooling1D(4, name='keras_avgpool1d')(qs))
        h = keras.layers.GlobalAveragePooling1D(name='keras_gavgpool1d')(qs)
        outs.append(QDense(2, name='dense_after_avg', iq_conf=c.data(), kq_conf=c.weight(), bq_conf=c.bias())(h))
    # hgq2 pads a causal QConv1D's input before its iq, so only a shared-width iq broadcasts
    return keras.Model([seq, img], outs, name=f'branchy_{cfg_id(cfg)}')


def perturb(model: keras.Model, seed: int) -> None:
    """Random integer bit-widths (+ jitter hgq rounds away), some zero-width; random kernels/biases."""
    rng = np.random.default_rng(seed)
    for q in model._flatten_layers(include_self=False, recursive=True):
        if not isinstance(q, Quantizer):
            continue
        inner = q.quantizer
        shape = tuple(inner._k.shape)
        jitter = rng.uniform(-0.4, 0.4, shape)
        k = (rng.random(shape) < 0.75).astype(np.uint8)
        het = int(np.prod(shape)) > 1
        dead = (rng.random(shape) < 0.15) & het
        inner._k.assign(k)
        if isinstance(inner, FixedPointQuantizerKIF):
            i = rng.integers(-1, 4, shape)
            f = np.where(dead, -i - k, rng.integers(0, 6, shape))
            f = f if het else np.maximum(f, 1 - i)  # keep a shared width non-degenerate
            inner._i.assign((i + jitter).astype(np.float32))
            inner._f.assign((f - jitter).astype(np.float32))
        else:
            assert isinstance(inner, FixedPointQuantizerKBI)
            b = np.where(dead, 0, rng.integers(1, 8, shape))
            inner._i.assign((rng.integers(-1, 3, shape) + jitter).astype(np.float32))
            inner._b.assign((b - jitter).astype(np.float32))
    for layer in model._flatten_layers(include_self=False, recursive=True):
        kernel = getattr(layer, 'kernel', None)
        if kernel is not None and hasattr(layer, 'kq'):
            w = rng.standard_normal(kernel.shape) * 2.0 ** rng.uniform(-2, 1, kernel.shape)
            kernel.assign(w.astype(np.float32))
            if getattr(layer, 'bias', None) is not None:
                layer.bias.assign(rng.standard_normal(layer.bias.shape).astype(np.float32))

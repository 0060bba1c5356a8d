"""``keras_eval`` computes with the kernels ``keras.predict`` runs, not with XLA's compile-time
constant folding (which differs by one float32 ulp on many points of tanh, exp, ``a / sqrt(b)``)."""

from __future__ import annotations

import jax
import keras
import numpy as np
from hgq.layers import QBatchNormalization, QUnaryFunctionLUT
from hgq.quantizer import QuantizerConfig

import hgqc
from hgqc.frontend.keras import keras_eval


def _set(q, k: int, i: int, f: int) -> None:
    q = q.quantizer
    q._k.assign(np.full(q._k.shape, k, q._k.dtype))
    q._i.assign(np.full(q._i.shape, i, np.float32))
    q._f.assign(np.full(q._f.shape, f, np.float32))


def test_tanh_table_matches_predict_where_constant_folding_differs():
    conf = QuantizerConfig('kif', 'datalane', overflow_mode='WRAP', round_mode='TRN', heterogeneous_axis=())
    inp = keras.Input((1,))
    lut = QUnaryFunctionLUT('tanh', iq_conf=conf, oq_conf=conf, enable_oq=True)
    model = keras.Model(inp, lut(inp))
    _set(lut.iq, 1, 4, 6)
    _set(lut.oq, 0, 6, 9)  # TRN at 2^-9: tanh(8) = 1.0 at run time, 0.99999976 when folded
    x = (np.arange(-1024, 1024) / 64).astype(np.float32)[:, None]
    folded = np.asarray(jax.jit(lambda: keras.ops.tanh(x))())
    assert np.any(folded != np.asarray(jax.jit(keras.ops.tanh)(x)))  # the trap is really there
    want = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    assert np.array_equal(hgqc.compile(model).predict(x), want)


def test_batchnorm_scale_is_the_one_predict_uses():
    """Variables go in as arguments: folded, ``gamma / sqrt(var + eps)`` rounds differently and the
    quantized scale of one channel in 2048 differs from the one ``predict`` multiplies by."""
    n = 2048
    conf = lambda place: QuantizerConfig('kif', place, overflow_mode='SAT', round_mode='RND', heterogeneous_axis=())  # noqa: E731
    inp = keras.Input((n,))
    bn = QBatchNormalization(iq_conf=conf('datalane'), kq_conf=conf('weight'), bq_conf=conf('bias'))
    model = keras.Model(inp, bn(inp))
    rng = np.random.default_rng(0)
    bn.moving_variance.assign(rng.random(n).astype(np.float32) * 4)
    bn.bn_gamma.assign(rng.standard_normal(n).astype(np.float32))
    _set(bn.iq, 1, 3, 2)
    _set(bn.kq, 1, 3, 14)
    _set(bn.bq, 1, 3, 14)
    y0, y1 = (np.asarray(model.predict(np.full((1, n), v, np.float32), verbose=0))[0] for v in (0.0, 1.0))
    scale, offset = keras_eval(lambda: bn.qscaler_and_qoffset, variables=bn.variables)
    assert np.array_equal(scale.ravel(), y1 - y0) and np.array_equal(offset.ravel(), y0)
    folded = keras_eval(lambda: bn.qscaler_and_qoffset)[0]
    assert not np.array_equal(folded.ravel(), y1 - y0)  # the trap the arguments avoid

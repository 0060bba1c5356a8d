"""One multi-output HGQ2 model per quantizer configuration covering the einsum, normalization,
merge, reduction, table and softmax layers (seeded, bit-identical for equal arguments).

``make_layers_model(q_type, overflow, round_mode, heterogeneous, seed)`` builds it and then, as
hgq2's own tests do, overwrites every quantizer's bit-widths with random values (per element
when heterogeneous, some zero-width), and kernels, biases, batch-norm statistics and affine
parameters with random values. Output ``name`` -> layer: see ``LAYER_OUTPUTS``.
"""

from __future__ import annotations

import os

os.environ.setdefault('KERAS_BACKEND', 'jax')

from typing import Any  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
from hgq import layers as hl  # noqa: E402
from hgq.layers.core.base import MultipleQuantizers  # noqa: E402
from hgq.quantizer import QuantizerConfig  # noqa: E402

from .models import _perturb_quantizer  # noqa: E402

__all__ = ['INPUT_SHAPE', 'LAYER_OUTPUTS', 'make_layers_model', 'randomize_weights']

INPUT_SHAPE = (3, 4)

LAYER_OUTPUTS = (
    'einsum_bij_jk',
    'einsum_bij_ijk',
    'einsum_bij_jk_bk',
    'einsum_ellipsis',
    'einsum_bn',
    'batchnorm',
    'bn_dense',
    'add',
    'subtract',
    'multiply',
    'maximum',
    'minimum',
    'average',
    'keras_add',
    'keras_subtract',
    'concat',
    'sum',
    'mean',
    'einsum_vars',
    'dot',
    'tanh_lut',
    'sigmoid_lut',
    'affine_lut',
    'softmax',
    'softmax_unstable',
    'softmax_2d',
    'dot_pair',
    'dense_t',
    'einsum_dense_t',
    'conv_t1d',
    'conv_t2d',
)


def _confs(q_type: str, overflow: str, round_mode: str, het: bool) -> dict[str, QuantizerConfig]:
    dl = dict(homogeneous_axis=(0,)) if het else dict(heterogeneous_axis=())
    w = dict(homogeneous_axis=()) if het else dict(heterogeneous_axis=())
    common = dict(overflow_mode=overflow, round_mode=round_mode)
    return {
        'iq': QuantizerConfig(q_type, 'datalane', **common, **dl),
        'kq': QuantizerConfig(q_type, 'weight', **common, **w),
        'bq': QuantizerConfig(q_type, 'bias', **common, **w),
    }


def _quantizers(layer: Any) -> list[tuple[str, Any]]:
    """(role, hgq Quantizer) pairs of a layer, sub-tables of a softmax included."""
    out: list[tuple[str, Any]] = []
    if isinstance(layer, hl.Quantizer):
        return [('iq', layer)]
    for attr, role in (('iq', 'iq'), ('kq', 'kq'), ('bq', 'bq'), ('oq', 'iq'), ('toq', 'iq')):
        try:
            q = getattr(layer, attr)
        except AttributeError:
            continue
        if q is None:
            continue
        out += [(role, x) for x in q] if isinstance(q, MultipleQuantizers) else [(role, q)]
    for sub in ('exp_table', 'inv_table'):
        if hasattr(layer, sub):
            out += _quantizers(getattr(layer, sub))
    return out


def make_layers_model(q_type: str, overflow: str, round_mode: str, heterogeneous: bool, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    c = _confs(q_type.lower(), overflow.upper(), round_mode.upper(), heterogeneous)
    iq, kq, bq = c['iq'], c['kq'], c['bq']
    d = dict(iq_conf=iq, kq_conf=kq, bq_conf=bq)
    on = dict(enable_oq=True, oq_conf=iq)

    inp = keras.Input(INPUT_SHAPE, name='x')
    x = hl.Quantizer(iq, name='q_in')(inp)  # one port quantization shared by every branch
    r = hl.QEinsumDense('bij,jk->bik', (3, 4), bias_axes='k', name='r', **d, **on)(x)
    outs = {
        'einsum_bij_jk': hl.QEinsumDense('bij,jk->bik', (3, 5), bias_axes='k', activation='relu', **d)(x),
        'einsum_bij_ijk': hl.QEinsumDense('bij,ijk->bik', (3, 2), bias_axes='ik', **d, **on)(x),
        'einsum_bij_jk_bk': hl.QEinsumDense('bij,jk->bk', (5,), bias_axes='k', **d)(x),
        'einsum_ellipsis': hl.QEinsumDense('...j,jk->...k', 5, bias_axes='k', **d)(x),
        'einsum_bn': hl.QEinsumDenseBatchnorm('bij,jk->bik', (3, 5), bias_axes='k', **d)(x),
        'batchnorm': hl.QBatchNormalization(axis=1, **d, **on)(x),
        'bn_dense': hl.QBatchNormDense(3, **d)(x),
        'add': hl.QAdd(iq_confs=iq, **on)([x, r]),
        'subtract': hl.QSubtract(iq_confs=iq)([x, r]),
        'multiply': hl.QMultiply(iq_confs=iq, **on)([x, r, x]),
        'maximum': hl.QMaximum(iq_confs=iq)([x, r]),
        'minimum': hl.QMinimum(iq_confs=iq, **on)([x, r]),
        'average': hl.QAveragePow2(iq_confs=iq)([x, r, x]),
        'keras_add': keras.layers.Add()([x, r]),
        'keras_subtract': keras.layers.Subtract()([r, x]),
        'concat': keras.layers.Concatenate(axis=1)([x, r]),
        'sum': hl.QSum(iq_conf=iq, axes=(1, 2), scale=0.5)(x),
        'mean': hl.QMeanPow2(iq_conf=iq, axes=1, keepdims=True)(r),
        'einsum_vars': hl.QEinsum('bij,bkj->bik', iq_confs=iq)([x, r]),
        'dot': hl.QDot(axes=1, iq_confs=iq, **on)([x, r]),
        'tanh_lut': hl.QUnaryFunctionLUT('tanh', iq_conf=iq, oq_conf=iq)(x),
        'sigmoid_lut': hl.QUnaryFunctionLUT(keras.activations.sigmoid, iq_conf=iq, oq_conf=iq)(r),
        'affine_lut': hl.QAffinedUnaryFunctionLUT('tanh', iq_conf=iq, oq_conf=iq)(x),
        'softmax': hl.QSoftmax(axis=-1, exp_iq_conf=iq, inv_iq_conf=iq)(x),
        'softmax_unstable': hl.QSoftmax(axis=1, stable=False, inv_iq_conf=iq)(x),
        'softmax_2d': hl.QSoftmax(axis=(1, 2), exp_iq_conf=iq, inv_iq_conf=iq, allow_heterogeneous_table=True)(x),
        'dot_pair': hl.QDot(axes=(2, 2), iq_confs=iq)([x, r]),
        'dense_t': hl.QDenseT(2, iq_conf=iq, toq_conf=iq, batch_norm=True, activation='relu')(x),
        'einsum_dense_t': hl.QEinsumDenseT('bij,ijk->bk', (2,), bias_axes='k', iq_conf=iq, toq_conf=iq)(x),
        'conv_t1d': hl.QConvT1D(2, 2, padding='same', iq_conf=iq, toq_conf=iq)(x),
        'conv_t2d': hl.QConvT2D(2, (2, 2), iq_conf=iq, toq_conf=iq)(keras.layers.Reshape((2, 3, 2))(x)),
    }
    assert tuple(outs) == LAYER_OUTPUTS
    named = [keras.layers.Identity(name=f'out_{k}')(v) for k, v in outs.items()]
    het = 'het' if heterogeneous else 'hom'
    model = keras.Model(inp, named, name=f'layers_{q_type}_{overflow}_{round_mode}_{het}_{seed}')

    for layer in model.layers:
        for role, q in _quantizers(layer):
            _perturb_quantizer(q.quantizer, role, rng, heterogeneous)
        randomize_weights(layer, rng)
    return model


def randomize_weights(layer: Any, rng: np.random.Generator) -> None:
    """Random float32 kernels, biases and batch-norm statistics, spread over a few octaves."""
    for v in layer.weights:
        name = v.path.split('/')[-1]
        if name in ('kernel', 'bias', 'bn_gamma', 'bn_beta', 'moving_mean', 'gamma', 'beta'):
            v.assign((rng.standard_normal(v.shape) * 2.0 ** rng.uniform(-2, 1, v.shape)).astype(np.float32))
        elif name == 'moving_variance':
            v.assign(rng.uniform(0.25, 4.0, v.shape).astype(np.float32))
        elif name in ('scale',):  # QAffinedUnaryFunctionLUT
            v.assign(rng.uniform(0.5, 2.0, v.shape).astype(np.float32))

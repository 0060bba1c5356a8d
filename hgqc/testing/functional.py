"""The functional example model (batch-norm-fused dense, residual add, tanh table, 3-D einsum).

``make_functional_model(seed)`` trains it on the synthetic JSC-like data of
``hgqc.testing.models`` (deterministic for a seed); ``examples/functional_example.py`` saves it
as ``examples/functional_example.keras``, the fixture other backends verify against.
"""

from __future__ import annotations

import os

os.environ.setdefault('KERAS_BACKEND', 'jax')

import keras  # noqa: E402
from hgq.layers import QAdd, QBatchNormDense, QDense, QEinsumDense, QUnaryFunctionLUT  # noqa: E402

from .models import JSC_N_CLASSES, JSC_N_FEATURES, fit_with_ebops, make_jsc_data  # noqa: E402

__all__ = ['make_functional_model']


def make_functional_model(seed: int = 0, epochs: int = 40, n_samples: int = 4096, verbose: int = 0) -> keras.Model:
    """16 -> QBatchNormDense(16, relu) -> (+ QDense(16) residual via QAdd) -> tanh table
    -> Reshape(4, 4) -> QEinsumDense('bij,jk->bik', (4, 6), bias k) -> Flatten -> QDense(5).

    Trained briefly with an EBOPs penalty, then calibrated with ``trace_minmax``. The float test
    accuracy is ``model._hgqc_accuracy`` (a python attribute, not saved).
    """
    keras.utils.set_random_seed(seed)
    x, y = make_jsc_data(seed, n_samples)
    n_train = int(0.8 * len(x))
    inp = keras.Input((JSC_N_FEATURES,), name='inputs')
    h = QBatchNormDense(16, activation='relu', name='bn_dense')(inp)
    r = QDense(16, name='res_dense')(h)
    h = QAdd(name='residual')([h, r])
    h = QUnaryFunctionLUT('tanh', name='tanh_table')(h)
    h = keras.layers.Reshape((4, 4), name='to_3d')(h)
    h = QEinsumDense('bij,jk->bik', (4, 6), bias_axes='k', activation='relu', name='einsum_dense')(h)
    h = keras.layers.Flatten(name='flatten')(h)
    out = QDense(JSC_N_CLASSES, name='dense_out')(h)
    model = keras.Model(inp, out, name='functional_example')
    data = (x[:n_train], y[:n_train], x[n_train:], y[n_train:])
    fit_with_ebops(model, data, (5, epochs, 1e-5), 1e-2, epochs, 256, verbose)
    return model

"""Convolution / pooling models through the whole compiler and through Verilator, and the trained
digits CNN fixture (``examples/digits_cnn.keras``, made by ``examples/train_digits_cnn.py``):
keras == compiled interpreter == RTL, bit for bit."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from hgq.layers import QAveragePooling1D, QConv1D, QConv2D, QDense, QGlobalMaxPooling1D, QMaxPooling2D

import hgqc
from hgqc.testing.models import make_digits_data

from ..frontend.layer_models import Confs, perturb
from ..frontend.test_keras import mixed_inputs

DIGITS_CNN = Path(__file__).resolve().parents[2] / 'examples' / 'digits_cnn.keras'


@pytest.fixture(scope='module')
def digits_cnn():
    import hgq  # noqa: F401

    return keras.models.load_model(DIGITS_CNN, compile=False)


def digits_inputs(n_noise: int = 1000) -> np.ndarray:
    """The digits test set, part of the training set, and out-of-range noise (negative, > 1, far out)."""
    x_train, _, x_test, _ = make_digits_data(0)
    rng = np.random.default_rng(0)
    noise = rng.uniform(-3, 20, (n_noise, 8, 8, 1)) * np.where(rng.random((n_noise, 1, 1, 1)) < 0.2, 50, 1)
    return np.concatenate([x_test, x_train[:1000], noise]).astype(np.float32)


def test_digits_cnn_is_exact_and_accurate(digits_cnn, tmp_path):
    x = digits_inputs()
    want = np.asarray(digits_cnn.predict(x, verbose=0, batch_size=4096), dtype=np.float64)
    project = hgqc.compile(digits_cnn, latency_cutoff=3)
    assert np.array_equal(project.predict(x), want)
    _, _, x_test, y_test = make_digits_data(0)
    assert np.mean(np.argmax(project.predict(x_test), axis=1) == y_test) > 0.9  # the fixture is a trained model
    result = project.verify(x, simulator='verilator', workdir=tmp_path)
    assert result.total == len(x) >= 2000 and result.mismatches == 0, result.first_mismatch_detail


def test_conv_pool_model_verilator(tmp_path):
    c = Confs(('kbi', 'SAT', 'RND', True))
    img = keras.Input((6, 6, 2), name='img')
    seq = keras.Input((10, 2), name='seq')
    h = QConv2D(3, 3, padding='same', strides=2, activation='relu', name='conv2d', **c.conv())(img)
    h = QMaxPooling2D(2, padding='same', name='maxpool', **c.pool())(h)
    a = QDense(4, name='head', iq_conf=c.data(), kq_conf=c.weight(), bq_conf=c.bias())(keras.layers.Flatten()(h))
    s = QConv1D(2, 3, dilation_rate=2, name='conv1d', **c.conv())(seq)
    b = QGlobalMaxPooling1D(name='gmax', **c.pool())(s)
    avg = QAveragePooling1D(3, strides=2, padding='same', name='avgpool', **c.pool())(s)  # windows of 3, 3, 2
    model = keras.Model([img, seq], [a, b, avg], name='conv_pool')
    perturb(model, 31)
    xs = [mixed_inputs((6, 6, 2), 31, n=2000), mixed_inputs((10, 2), 32, n=2000)]
    want = [np.asarray(w, dtype=np.float64) for w in model.predict(xs, verbose=0, batch_size=4096)]
    project = hgqc.compile(model, latency_cutoff=2, check=True)
    for w, y in zip(want, project.predict(*xs)):
        assert np.array_equal(y, w)
    result = project.verify(*xs, simulator='verilator', workdir=tmp_path)
    assert result.total == 2000 and result.mismatches == 0, result.first_mismatch_detail

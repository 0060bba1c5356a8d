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


def _lint_wall(tmp_path: Path, files: dict[str, str]) -> str:
    """``verilator --lint-only -Wall`` on a project's Verilog; its warnings (empty when clean)."""
    import subprocess

    src = {Path(rel).name: text for rel, text in files.items() if rel.startswith('src/')}
    for name, text in src.items():
        (tmp_path / name).write_text(text)
    proc = subprocess.run(['verilator', '--lint-only', '-Wall', *src], cwd=tmp_path, capture_output=True, text=True)
    return proc.stderr.strip() if proc.returncode or proc.stderr.strip() else ''


def test_pool_window_with_a_pruned_element_needs_no_comparison(tmp_path):
    """A max over a 0-bit (pruned, constant 0) element and an unsigned one is that element
    (``prune``), not ``x < 0 ? 0 : x``: dead logic that failed ``verilator -Wall`` (UNSIGNED)."""
    from hgq.layers import QMaxPooling1D, Quantizer
    from hgq.quantizer import QuantizerConfig

    conf = QuantizerConfig('kif', 'datalane', overflow_mode='SAT', round_mode='RND', homogeneous_axis=(0,))
    x = keras.Input((4, 1), name='x')
    model = keras.Model(x, QMaxPooling1D(2, name='pool', enable_oq=False)(Quantizer(conf, name='q')(x)))
    q = model.get_layer('q').quantizer
    for var, v in ((q._k, [0, 0, 1, 1]), (q._i, [2, -5, 2, 2]), (q._f, [2, 0, 2, 2])):  # element 1: 0 bits
        var.assign(np.array(v, np.float32).reshape(var.shape))
    xs = mixed_inputs((4, 1), 5, n=2000)
    project = hgqc.compile(model, check=True)
    assert np.array_equal(project.predict(xs), np.asarray(model.predict(xs, verbose=0), dtype=np.float64))
    assert not any(n.op.value == 'max' for n in project.graph.nodes.values() if n.name.startswith('pool[0'))
    assert _lint_wall(tmp_path, project.files) == ''
    assert project.verify(xs, simulator='verilator', workdir=tmp_path / 'sim').mismatches == 0


def test_pipeline_registers_the_relu_parts_only_for_a_max(digits_cnn, tmp_path):
    """The sign / un-relu'd value of a registered ``quantize(relu(y))`` is registered only where a
    later max compares them (the JSC MLP has no max: it used to carry ~90 such registers unread)."""
    import re

    jsc = hgqc.compile(Path(__file__).resolve().parents[2] / 'examples' / 'jsc_example.keras', latency_cutoff=1)
    assert not re.search(r'\breg_\d+_[sv]\b', jsc.files['src/model.v'])
    cnn = hgqc.compile(digits_cnn, latency_cutoff=2).files['src/model.v']
    parts = set(re.findall(r'\b(reg_\d+_[sv])\b', cnn))
    assert parts, 'the CNN pools relu outputs across stages: its max trees read registered parts'
    for name in parts:  # each is read somewhere besides its declaration and its register assignment
        assert len(re.findall(rf'\b{name}\b', cnn)) > 2, name

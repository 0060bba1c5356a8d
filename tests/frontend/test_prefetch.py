"""``prefetch``: the quantized weights and bit-widths of a whole model come from one compiled call,
and the lowered graph is the one the per-layer evaluations give."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest
from hgq.layers import QDense

from hgqc.frontend import FrontendError
from hgqc.frontend import keras as fk
from hgqc.ir import print_graph
from hgqc.testing.layer_models import make_layers_model

EXAMPLES = Path(__file__).resolve().parents[2] / 'examples'


def _without_prefetch(monkeypatch: pytest.MonkeyPatch, model: keras.Model) -> str:
    with monkeypatch.context() as m:
        m.setattr(fk, 'prefetch', lambda model: {})
        return print_graph(fk.from_keras(model))


@pytest.mark.parametrize('name', ['jsc_example', 'digits_cnn', 'functional_example'])
def test_examples_lower_to_the_same_graph(monkeypatch, name):
    model = fk.load_keras_model(EXAMPLES / f'{name}.keras')
    assert print_graph(fk.from_keras(model)) == _without_prefetch(monkeypatch, model)


@pytest.mark.parametrize('cfg', [('kif', 'SAT', 'RND', True), ('kbi', 'WRAP', 'TRN', False)])
def test_einsum_batchnorm_and_merge_layers_lower_to_the_same_graph(monkeypatch, cfg):
    model = make_layers_model(*cfg, seed=3)
    assert print_graph(fk.from_keras(model)) == _without_prefetch(monkeypatch, model)


def test_a_dense_model_is_evaluated_in_one_call(monkeypatch):
    model = fk.load_keras_model(EXAMPLES / 'jsc_example.keras')
    calls = []
    real = fk.keras_eval
    monkeypatch.setattr(fk, 'keras_eval', lambda fn, *a, **kw: calls.append(fn) or real(fn, *a, **kw))
    fk.from_keras(model)
    assert len(calls) == 1  # kernels, biases and every quantizer's bit-widths at once


def test_a_failed_joint_evaluation_falls_back_to_each_layer(monkeypatch):
    model = fk.load_keras_model(EXAMPLES / 'jsc_example.keras')
    want = print_graph(fk.from_keras(model))
    real, calls = fk.keras_eval, []

    def failing_first(fn, *args, **kwargs):
        calls.append(fn)
        if len(calls) == 1:
            raise RuntimeError('joint evaluation failed')
        return real(fn, *args, **kwargs)

    monkeypatch.setattr(fk, 'keras_eval', failing_first)
    assert print_graph(fk.from_keras(model)) == want
    assert len(calls) > 1


def test_a_property_that_fails_is_reported_by_its_layer(monkeypatch):
    inp = keras.Input((4,))
    model = keras.Model(inp, QDense(3, name='broken')(QDense(4, name='fine')(inp)))

    def broken(layer):
        if layer.name == 'broken':
            raise RuntimeError('no quantized bias here')
        return real.fget(layer)

    real = QDense.qbias
    monkeypatch.setattr(QDense, 'qbias', property(broken))
    with pytest.raises(FrontendError, match=r"layer 'broken'.*no quantized bias here"):
        fk.from_keras(model)

"""Einsum, normalization, merge, reduction, table and softmax layers over the quantizer matrix:
the interpreter equals keras.predict exactly, per layer output, on 2,000 inputs (in range, 4x out
and far out). One multi-output model per configuration (``hgqc.testing.layer_models``) keeps the
Keras compile cost to one per configuration; a covering subset runs by default, the rest is slow.
A representative configuration also goes through the whole compiler and Verilator.
"""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pytest

import hgqc
from hgqc.frontend import from_keras
from hgqc.ir import Op, verify
from hgqc.runtime import Interpreter
from hgqc.testing.layer_models import INPUT_SHAPE, LAYER_OUTPUTS, make_layers_model

from .test_keras import mixed_inputs

MATRIX = list(itertools.product(['kif', 'kbi'], ['WRAP', 'SAT', 'SAT_SYM'], ['RND', 'TRN'], [True, False]))
# every value of every axis, every (overflow, round) pair, both q_types with both widths kinds
DEFAULT = {
    ('kif', 'WRAP', 'RND', True),
    ('kbi', 'WRAP', 'TRN', False),
    ('kbi', 'SAT', 'RND', True),
    ('kif', 'SAT', 'TRN', False),
    ('kif', 'SAT_SYM', 'RND', False),
    ('kbi', 'SAT_SYM', 'TRN', True),
}


def _id(c) -> str:
    return '-'.join([c[0], c[1], c[2], 'het' if c[3] else 'hom'])


def _params():
    for c in MATRIX:
        marks = () if c in DEFAULT else (pytest.mark.slow,)
        yield pytest.param(c, id=_id(c), marks=marks)


def _predict(model, x) -> list[np.ndarray]:
    return [np.asarray(w, dtype=np.float64) for w in model.predict(x, verbose=0, batch_size=len(x))]


@pytest.mark.parametrize('cfg', list(_params()))
def test_every_layer_equals_keras(cfg):
    seed = 1000 + MATRIX.index(cfg)
    model = make_layers_model(*cfg, seed=seed)
    x = mixed_inputs(INPUT_SHAPE, seed, n=2000)
    g = from_keras(model)
    verify(g)
    got = Interpreter(g).predict(x)
    bad = [name for name, w, y in zip(LAYER_OUTPUTS, _predict(model, x), got) if not np.array_equal(w, y)]
    assert not bad, f'outputs differing from keras: {bad}'


@pytest.mark.skipif(shutil.which('verilator') is None, reason='verilator not installed')
def test_compiled_and_verilator_equal_keras(tmp_path):
    cfg = ('kbi', 'SAT', 'RND', True)
    model = make_layers_model(*cfg, seed=7)
    x = mixed_inputs(INPUT_SHAPE, 7, n=2000)
    project = hgqc.compile(model, check=True, latency_cutoff=2)
    for w, y in zip(_predict(model, x), project.predict(x)):
        assert np.array_equal(w, y)
    ops = {n.op for n in project.graph.nodes.values()}
    assert {Op.TABLE, Op.MUL, Op.MAX, Op.REG} <= ops
    result = project.verify(x, simulator='verilator', workdir=tmp_path)
    assert result.total == len(x) and result.mismatches == 0, result.first_mismatch_detail


# --------------------------------------------------------------------------- refusals


def _lower_error(model) -> str:
    from hgqc.frontend import FrontendError

    with pytest.raises(FrontendError) as e:
        from_keras(model)
    return str(e.value)


def test_refusals_name_the_layer_and_the_fix():
    import keras
    from hgq import layers as hl

    inp = keras.Input((4,), name='x')
    x = hl.Quantizer(name='q')(inp)
    msg = _lower_error(keras.Model(inp, hl.QUnaryFunctionLUT('tanh', enable_oq=False, name='lut')(x)))
    assert "layer 'lut' (QUnaryFunctionLUT)" in msg and 'enable the output quantizer' in msg
    msg = _lower_error(keras.Model(inp, keras.layers.Concatenate(name='cat')([inp, inp])))
    assert "reaches layer 'cat' without a quantizer" in msg
    three = hl.QEinsum('bi,bi,bi->b', name='e3')([x, x, x])
    msg = _lower_error(keras.Model(inp, three))
    assert "layer 'e3' (QEinsum)" in msg and 'two-operand' in msg

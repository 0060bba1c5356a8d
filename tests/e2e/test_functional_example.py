"""The committed functional example (examples/functional_example.keras, made by
examples/functional_example.py): exact in the interpreter and in Verilator."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import hgqc
from hgqc.frontend.keras import load_keras_model
from hgqc.ir import Op

from ..frontend.test_keras import mixed_inputs

FIXTURE = Path(__file__).resolve().parents[2] / 'examples' / 'functional_example.keras'


@pytest.fixture(scope='module')
def compiled():
    model = load_keras_model(FIXTURE)
    x = mixed_inputs((16,), 7, n=3000)
    want = np.asarray(model.predict(x, verbose=0, batch_size=len(x)), dtype=np.float64)
    return hgqc.compile(model, check=True, latency_cutoff=2), x, want


def test_fixture_has_the_required_structure():
    model = load_keras_model(FIXTURE)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {'QBatchNormDense', 'QAdd', 'QUnaryFunctionLUT', 'Reshape', 'QEinsumDense'} <= kinds
    assert next(la for la in model.layers if type(la).__name__ == 'QEinsumDense').equation == 'bij,jk->bik'


def test_interpreter_equals_keras(compiled):
    project, x, want = compiled
    assert np.array_equal(project.predict(x), want)
    assert any(n.op is Op.TABLE for n in project.graph.nodes.values())


@pytest.mark.skipif(shutil.which('verilator') is None, reason='verilator not installed')
def test_verilator_equals_interpreter(compiled, tmp_path):
    project, x, _ = compiled
    result = project.verify(x, simulator='verilator', workdir=tmp_path)
    assert result.total == len(x) and result.mismatches == 0, result.first_mismatch_detail

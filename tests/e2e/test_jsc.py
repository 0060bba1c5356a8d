"""The acceptance chain on the JSC-shaped model: keras == interpreter == Verilator, at every stage."""

from __future__ import annotations

import numpy as np
import pytest

import hgqc

N = 10_000


@pytest.fixture(scope='module')
def inputs(jsc_model):
    from hgqc.testing.models import make_inputs

    x = make_inputs(jsc_model, N // 2, seed=3)
    x4 = make_inputs(jsc_model, N - N // 2, seed=4, scale=4.0)  # 4x beyond calibration: WRAP/SAT paths
    return np.concatenate([x, x4]).astype(np.float32)


@pytest.fixture(scope='module')
def keras_out(jsc_model, inputs):
    return np.asarray(jsc_model.predict(inputs, batch_size=4096, verbose=0), dtype=np.float64)


@pytest.fixture(scope='module')
def compiled(jsc_model):
    """Compiled once per latency setting, with the pass manager's check mode on."""
    return {c: hgqc.compile(jsc_model, latency_cutoff=c, check=True) for c in (0, 2, 5)}


def test_tensor_graph_equals_keras(jsc_model, inputs, keras_out):
    from hgqc.frontend.keras import from_keras
    from hgqc.runtime import Interpreter

    g = from_keras(jsc_model)
    assert np.array_equal(Interpreter(g).predict(inputs), keras_out)


@pytest.mark.parametrize('cutoff', [0, 2, 5])
def test_compiled_interpreter_equals_keras(compiled, cutoff, inputs, keras_out):
    assert np.array_equal(compiled[cutoff].predict(inputs), keras_out)


def test_pipelining_sets_latency(compiled):
    assert compiled[0].metadata['latency'] == 0
    assert compiled[2].metadata['latency'] > compiled[5].metadata['latency'] > 0


@pytest.mark.parametrize('cutoff', [0, 2, 5])
def test_verilator_equals_interpreter(compiled, cutoff, inputs, tmp_path):
    result = compiled[cutoff].verify(inputs, simulator='verilator', workdir=tmp_path)
    assert result.total == inputs.shape[0]
    assert result.mismatches == 0, result.first_mismatch_detail


def test_ir_round_trips(compiled):
    from hgqc.ir import parse_graph, print_graph

    for p in compiled.values():
        text = print_graph(p.graph)
        assert print_graph(parse_graph(text)) == text

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


# Other simulators and the VHDL target: every 4th vector (both input distributions), since
# Icarus and GHDL are event-driven and several times slower per vector than Verilator.
@pytest.fixture(scope='module')
def vhdl_compiled(jsc_model):
    return {c: hgqc.compile(jsc_model, target='vhdl', latency_cutoff=c) for c in (0, 2)}


@pytest.mark.parametrize('cutoff', [0, 2])
def test_iverilog_equals_interpreter(compiled, cutoff, inputs, tmp_path):
    x = inputs[::4]
    result = compiled[cutoff].verify(x, simulator='iverilog', workdir=tmp_path)
    assert result.total == x.shape[0] and result.mismatches == 0, result.first_mismatch_detail


@pytest.mark.parametrize('cutoff', [0, 2])
def test_vhdl_ghdl_equals_interpreter(compiled, vhdl_compiled, cutoff, inputs, tmp_path):
    from hgqc.ir import print_graph

    project = vhdl_compiled[cutoff]
    assert print_graph(project.graph) == print_graph(compiled[cutoff].graph)  # one IR, two spellings
    assert project.metadata['ports'] == compiled[cutoff].metadata['ports']
    x = inputs[::4]
    result = project.verify(x, workdir=tmp_path)  # default simulator for a vhdl project: GHDL
    assert (tmp_path / 'hgqc_tb.vhd').is_file()
    assert result.total == x.shape[0] and result.mismatches == 0, result.first_mismatch_detail

"""The digits CNN fixture in every RTL target and simulator, combinational and pipelined.

``test_conv_pool`` proves keras == interpreter == Verilator on the whole input set (pipelined).
Event-driven simulators (Icarus, GHDL) evaluate a ~5,000-signal combinational netlist slowly
(every input change ripples through delta cycles), so they get every 20th vector: test images,
training images and out-of-range noise alike. Verilator on the combinational design costs a
long C++ build but is kept in CI (issue 4's acceptance: every target, combinational and pipelined).
"""

from __future__ import annotations

import numpy as np
import pytest

import hgqc

from .test_conv_pool import digits_cnn, digits_inputs  # noqa: F401 - the fixture is used by name

CUTOFFS = (0, 3)  # combinational, pipelined


@pytest.fixture(scope='module')
def subset():
    return digits_inputs()[::20]


@pytest.fixture(scope='module')
def keras_out(digits_cnn, subset):  # noqa: F811
    return np.asarray(digits_cnn.predict(subset, verbose=0, batch_size=len(subset)), dtype=np.float64)


@pytest.fixture(scope='module')
def projects(digits_cnn):  # noqa: F811
    return {(t, c): hgqc.compile(digits_cnn, target=t, latency_cutoff=c) for t in ('verilog', 'vhdl') for c in CUTOFFS}


@pytest.mark.parametrize(('target', 'simulator'), [('verilog', 'iverilog'), ('vhdl', 'ghdl')])
@pytest.mark.parametrize('cutoff', CUTOFFS)
def test_digits_cnn_simulation_equals_interpreter_and_keras(projects, subset, keras_out, target, simulator, cutoff, tmp_path):
    project = projects[target, cutoff]
    assert (project.metadata['latency'] > 0) == (cutoff > 0)
    assert np.array_equal(project.predict(subset), keras_out)
    result = project.verify(subset, simulator=simulator, workdir=tmp_path)
    assert result.total == len(subset) >= 100 and result.mismatches == 0, result.first_mismatch_detail


def test_digits_cnn_combinational_verilator(projects, subset, tmp_path):
    result = projects['verilog', 0].verify(digits_inputs(), simulator='verilator', workdir=tmp_path)
    assert result.mismatches == 0, result.first_mismatch_detail

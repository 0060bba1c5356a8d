"""Acceptance for the hls4ml target on the JSC-shaped model: keras == interpreter == g++ C simulation.

Combinational through the Python API, pipelined through the ``hgqc`` command (compile with
``--target hls4ml``, then ``hgqc verify --simulator gxx --ap-types DIR``), on 10 000 inputs of
which half lie 4x beyond the calibration range (wrap/saturation paths).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import hgqc
from hgqc.cli import main
from hgqc.project import Project
from hgqc.runtime.csim import find_ap_types

N = 10_000

pytestmark = pytest.mark.skipif(shutil.which('g++') is None, reason='g++ not installed')


@pytest.fixture(scope='module')
def inputs(jsc_model):
    from hgqc.testing.models import make_inputs

    x = make_inputs(jsc_model, N // 2, seed=5)
    x4 = make_inputs(jsc_model, N - N // 2, seed=6, scale=4.0)
    return np.concatenate([x, x4]).astype(np.float32)


@pytest.fixture(scope='module')
def keras_out(jsc_model, inputs):
    return np.asarray(jsc_model.predict(inputs, batch_size=len(inputs), verbose=0), dtype=np.float64)


def test_combinational_csim_equals_interpreter_and_keras(jsc_model, inputs, keras_out, tmp_path):
    project = hgqc.compile(jsc_model, target='hls4ml', latency_cutoff=0)
    assert project.metadata['latency'] == 0
    assert np.array_equal(project.predict(inputs), keras_out)
    result = project.verify(inputs, simulator='gxx', workdir=tmp_path)
    assert result.total == N
    assert result.mismatches == 0, result.first_mismatch_detail


@pytest.fixture(scope='module')
def cli_project(jsc_model_path, tmp_path_factory):
    out = tmp_path_factory.mktemp('hls') / 'proj'
    assert main([str(jsc_model_path), '-o', str(out), '--target', 'hls4ml', '--latency-cutoff', '2']) == 0
    return out


def test_pipelined_cli_verify(cli_project, inputs, keras_out, tmp_path, capsys):
    out = cli_project
    for rel in ('firmware/model.cpp', 'firmware/defines.h', 'build_prj.tcl', 'hls4ml_config.yml', 'metadata.json'):
        assert (out / rel).is_file(), rel
    latency = Project.load(out).metadata['latency']
    assert latency > 0
    assert f'#pragma HLS LATENCY min={latency} max={latency}' in (out / 'firmware/model.cpp').read_text()
    x, y = tmp_path / 'x.npy', tmp_path / 'y.npy'
    np.save(x, inputs)
    np.save(y, keras_out)
    capsys.readouterr()
    args = ['verify', str(out), '--inputs', str(x), '--expect', str(y), '--simulator', 'gxx', '--ap-types', str(find_ap_types())]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert f'simulation (gxx) vs interpreter: mismatches: 0 / {N}' in text
    assert f'interpreter vs expected: mismatches: 0 / {N}' in text


def test_wrong_simulator_for_hls_project(cli_project, tmp_path, capsys):
    x = tmp_path / 'x.npy'
    np.save(x, np.zeros((2, 16), np.float32))
    assert main(['verify', str(cli_project), '--inputs', str(x), '--simulator', 'verilator']) == 1
    assert 'choose --simulator gxx' in capsys.readouterr().err

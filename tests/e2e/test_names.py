"""Hostile Keras names (HDL keywords, case twins, odd characters) still give a valid, exact design."""

from __future__ import annotations

import re
import shutil
import subprocess

import keras
import numpy as np
import pytest
from hgq.layers import QDense

import hgqc


def _model():
    x = keras.Input((6,), name='input')
    a = QDense(4, activation='relu', name='module')(x)
    b = QDense(4, name='Module')(a)
    c = QDense(3, name='always')(b)
    d = QDense(2, name='reg')(b)
    return keras.Model(x, [c, d], name='wire')


def test_hostile_names_compile_lint_and_simulate(tmp_path):
    keras.utils.set_random_seed(5)
    model = _model()
    x = np.random.default_rng(0).normal(0, 2, (500, 6)).astype(np.float32)
    project = hgqc.compile(model, tmp_path / 'p', latency_cutoff=2)
    text = (tmp_path / 'p' / 'src' / 'model.v').read_text()
    ports = re.findall(r'^\s*(?:input|output)\s+(?:wire\s+)?(?:\[[^\]]*\]\s*)?(\w+)', text, re.M)
    keywords = {'input', 'module', 'always', 'reg', 'wire', 'output'}
    assert ports and not keywords & set(ports)
    assert len({p.lower() for p in ports}) == len(ports)
    # deterministic: compiling again gives the same text
    assert hgqc.compile(model, latency_cutoff=2).files == project.files
    want = [np.asarray(w, np.float64) for w in model.predict(x, verbose=0)]
    got = project.predict(x)
    assert all(np.array_equal(g, w) for g, w in zip(got, want))
    if shutil.which('verilator') is None:
        pytest.fail('verilator is required (apt-get install verilator)')
    r = subprocess.run(
        ['verilator', '--lint-only', '-Wall', str(tmp_path / 'p' / 'src' / 'model.v')], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert project.verify(x, simulator='verilator', workdir=tmp_path / 'sim').mismatches == 0


# target -> simulator that verifies it; every target must give valid, unique port names
TARGET_SIMULATORS = {'verilog': 'iverilog', 'vhdl': 'ghdl', 'hls4ml': 'gxx'}  # Verilator: the test above
# target -> (file, regex) finding the interface identifiers as the emitted source spells them
PORT_DECLARATIONS = {
    'verilog': ('src/model.v', r'^\s*(?:input|output) wire \[\d+:0\] (\w+)'),
    'vhdl': ('src/model.vhd', r'^\s*(\w+) : (?:in|out) std_logic_vector'),
    'hls4ml': ('firmware/model.h', r'^\s+\w+ (\w+)\[\w+\][,\n]'),
}
HOSTILE_OUTPUTS = ['entity', 'always', '1st-out', 'Ünïcødé 层', 'x' * 150, 'Out', 'out', 'signal_', 'a__b', 'clk']


@pytest.fixture(scope='module')
def hostile_model():
    keras.utils.set_random_seed(6)
    x = keras.Input((5,), name='Signal')  # case twin of an output's name, and a VHDL keyword
    h = QDense(4, activation='relu', name='process')(x)
    outs = [QDense(2, name=n)(h) for n in HOSTILE_OUTPUTS]
    return keras.Model(x, outs, name='architecture')


@pytest.fixture(scope='module')
def hostile_io(hostile_model):
    x = np.random.default_rng(1).normal(0, 2, (400, 5)).astype(np.float32)
    return x, [np.asarray(w, np.float64) for w in hostile_model.predict(x, batch_size=len(x), verbose=0)]


@pytest.mark.parametrize('target', list(TARGET_SIMULATORS))
def test_hostile_names_in_every_target(hostile_model, hostile_io, target, tmp_path):
    from hgqc.backends.common import is_identifier

    project = hgqc.compile(hostile_model, latency_cutoff=1, target=target)
    file, pattern = PORT_DECLARATIONS[target]
    ports = re.findall(pattern, project.files[file], re.M)
    assert len(ports) == 1 + len(HOSTILE_OUTPUTS), ports
    assert all(is_identifier(p, max_len=48) for p in ports), ports  # no keyword of any language, no '__' or trailing '_'
    assert len({p.lower() for p in ports}) == len(ports)
    # every target's ports are what metadata.json describes; clk is the clock's
    assert ports == [p['port'] for kind in ('inputs', 'outputs') for p in project.metadata['ports'][kind]]
    assert 'clk' not in {p.lower() for p in ports}
    x, want = hostile_io
    assert all(np.array_equal(g, w) for g, w in zip(project.predict(x), want))
    sim = TARGET_SIMULATORS[target]
    if shutil.which(sim if sim != 'gxx' else 'g++') is None:
        pytest.fail(f'{sim} is required to verify the {target} target')
    res = project.verify(x, simulator=sim, workdir=tmp_path)
    assert res.mismatches == 0 and res.total == len(x), res.first_mismatch_detail

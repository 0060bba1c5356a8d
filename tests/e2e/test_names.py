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

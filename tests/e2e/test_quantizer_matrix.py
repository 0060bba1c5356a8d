"""The quantizer matrix through the whole compiler (check mode: every pass re-verified and re-run),
and a few of them through Verilator: keras == compiled interpreter == RTL."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import hgqc
from hgqc.testing.models import make_qdense_model

from ..frontend.test_keras import mixed_inputs

MATRIX = list(itertools.product(['kif', 'kbi'], ['WRAP', 'SAT', 'SAT_SYM'], ['RND', 'TRN'], [True, False]))


def _id(c):
    return '-'.join([c[0], c[1], c[2], 'het' if c[3] else 'hom'])


@pytest.mark.parametrize('cfg', MATRIX, ids=[_id(c) for c in MATRIX])
def test_compiled_equals_keras(cfg):
    q_type, ovf, rnd, het = cfg
    seed = MATRIX.index(cfg)
    model = make_qdense_model(q_type, ovf, rnd, het, seed=seed, activation='relu' if seed % 2 else None)
    x = mixed_inputs((8,), seed, n=2000)
    want = np.asarray(model.predict(x, verbose=0, batch_size=4096), dtype=np.float64)
    project = hgqc.compile(model, check=True, latency_cutoff=seed % 3)
    assert np.array_equal(project.predict(x), want)


@pytest.mark.parametrize('cfg', [MATRIX[0], MATRIX[9], MATRIX[22]], ids=[_id(MATRIX[i]) for i in (0, 9, 22)])
def test_verilator_equals_interpreter(cfg, tmp_path):
    q_type, ovf, rnd, het = cfg
    model = make_qdense_model(q_type, ovf, rnd, het, seed=100, activation='relu')
    x = mixed_inputs((8,), 100, n=3000)
    project = hgqc.compile(model, latency_cutoff=1)
    result = project.verify(x, simulator='verilator', workdir=tmp_path)
    assert result.total == 3000 and result.mismatches == 0, result.first_mismatch_detail

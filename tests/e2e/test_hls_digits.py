"""Acceptance for the hls4ml target on the trained digits CNN fixture (``examples/digits_cnn.keras``):
keras == compiled interpreter == g++ C simulation, combinational and pipelined, on the digits
test set, part of the training set and out-of-range noise.

The heaviest C++ builds of the suite (the top function has ~5000 statements; g++ needs about a
minute of CPU per build even at -O0), kept in CI because they are issue 4's acceptance."""

from __future__ import annotations

import numpy as np
import pytest

import hgqc

from .test_conv_pool import digits_cnn, digits_inputs  # noqa: F401 - module fixture reused


@pytest.fixture(scope='module')
def inputs_and_keras(digits_cnn):  # noqa: F811 - the imported fixture
    x = digits_inputs()
    return x, np.asarray(digits_cnn.predict(x, verbose=0, batch_size=len(x)), dtype=np.float64)


@pytest.mark.parametrize('cutoff', [0, 3])
def test_digits_cnn_csim(digits_cnn, inputs_and_keras, cutoff, tmp_path):  # noqa: F811
    x, want = inputs_and_keras
    project = hgqc.compile(digits_cnn, target='hls4ml', latency_cutoff=cutoff)
    assert (project.metadata['latency'] > 0) == (cutoff > 0)
    assert np.array_equal(project.predict(x), want)
    result = project.verify(x, simulator='gxx', workdir=tmp_path)
    assert result.total == len(x) >= 2000 and result.mismatches == 0, result.first_mismatch_detail

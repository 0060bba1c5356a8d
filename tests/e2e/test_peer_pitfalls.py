"""The models on which a peer's own emulation differs from Keras (``benchmarks/peer_exactness.py``,
docs/benchmarks.md "Exactness beside the peers"): hgqc's interpreter equals ``model.predict`` on
every one of them, on normal, 8x overflowing and rounding-tie inputs."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.peer_exactness import build, inputs, judge

PITFALLS = [
    'qdense_kif_WRAP_RND_CONV_het',  # da4ml: input RND_CONV traced as TRN
    'qdense_kif_WRAP_RND_ZERO_het',  # da4ml: as TRN; hls4ml: input port range
    'qdense_kbi_WRAP_RND_INF_het',
    'qdense_kif_SAT_SYM_RND_het',  # hls4ml: 1-bit signed SAT_SYM
    'conv1d_kif_WRAP_RND_het',  # da4ml's C++ emulation: max over a pruned element
    'conv2d_avg_kbi_SAT_RND_het',  # hls4ml: average-pool type too narrow
    'dense_bn_kif_WRAP_RND_het',  # hls4ml: keras ReLU threshold compare
]


@pytest.mark.parametrize('name', PITFALLS)
def test_hgqc_is_exact_where_a_peer_is_not(name):
    model = build(name)
    x = inputs(model, 3000)
    want = np.asarray(model.predict(x, batch_size=1024, verbose=0), dtype=np.float64).reshape(len(x), -1)
    assert judge('hgqc', model, x, want) == 'exact'

"""Hypothesis: random small graphs through every pass in check mode (bit-exact after each pass)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hgqc.ir import Op, parse_graph, print_graph
from hgqc.passes import DEFAULT_PIPELINE
from hgqc.passes.pipeline import is_lowered

from .graphs import random_graph, run_checked

PIPELINES = [
    list(DEFAULT_PIPELINE),
    ['prune', 'range', 'prune'],
    ['lower', 'prune', 'range', 'prune', 'pipeline'],
    ['csd', 'cse', 'prune', 'lower', 'pipeline', 'prune', 'pipeline'],
]


@settings(max_examples=150)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_ops=st.integers(1, 10),
    pipeline=st.sampled_from(PIPELINES),
    cutoff=st.integers(0, 3),
    depth=st.one_of(st.none(), st.integers(0, 4)),
)
def test_random_graphs_stay_bit_exact(seed, n_ops, pipeline, cutoff, depth):
    out = run_checked(random_graph(seed, n_ops), pipeline, samples=12, latency_cutoff=cutoff, max_adder_depth=depth)
    if 'lower' in pipeline:
        assert is_lowered(out)
        assert all(v.op is Op.GATHER for v in out.output_nodes())
        text = print_graph(out)
        assert print_graph(parse_graph(text)) == text

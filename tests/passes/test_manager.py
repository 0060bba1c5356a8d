"""Registry, pipeline helpers, check mode and error reporting of the pass manager."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hgqc.ir import OPS, Graph, Op, QInterval, TensorType
from hgqc.options import CompileOptions
from hgqc.passes import (
    DEFAULT_PIPELINE,
    PASSES,
    PassError,
    PassManager,
    get_pass,
    insert_after,
    insert_before,
    register_pass,
    remove_pass,
    replace_pass,
)
from hgqc.passes import manager as manager_mod

from .graphs import mlp, run_checked


def _tiny() -> Graph:
    g = Graph('tiny')
    x = g.add_input('x', TensorType.uniform((3,), QInterval(-8, 7, 1)))
    g.add_output('y', g.add(Op.CMVM, [x], {'weights': np.array([[1.0], [0.5], [-2.0]]), 'bias': None}, name='d'))
    return g


@register_pass('test_count_nodes')
def count_nodes(graph: Graph, options: CompileOptions) -> Graph:
    """A user pass defined outside hgqc: annotates the graph, changes nothing."""
    graph.meta['n_nodes'] = len(graph)
    graph.meta['tag'] = options.extra.get('tag')
    return graph


@register_pass('test_class_pass')
class CountingPass:
    """Class form: a fresh instance per run."""

    def __init__(self):
        self.calls = 0

    def run(self, graph: Graph, options: CompileOptions) -> Graph:
        self.calls += 1
        graph.meta['class_pass_calls'] = self.calls
        return graph


@register_pass('test_break_weights')
def break_weights(graph: Graph, options: CompileOptions) -> Graph:
    """Changes semantics (flips one weight) while keeping the IR valid."""
    for n in graph:
        if n.op is Op.CMVM:
            w = np.array(n.attrs['weights'])
            w[0, 0] = -w[0, 0] if w[0, 0] else 1.0
            n.attrs['weights'] = w
            n.attrs.pop('program', None)
            n.type = OPS[Op.CMVM].infer(n.attrs, [n.inputs[0].type])
    return graph


@register_pass('test_break_type')
def break_type(graph: Graph, options: CompileOptions) -> Graph:
    """Breaks an IR invariant: a type too narrow for its op."""
    for n in graph:
        if n.op is not Op.INPUT:
            n.type = TensorType.uniform(n.shape, QInterval(0, 0, 0))
    return graph


@register_pass('test_raise')
def raise_pass(graph: Graph, options: CompileOptions) -> Graph:
    raise RuntimeError('boom')


def test_builtin_passes_registered():
    for name in ('range', 'prune', 'csd', 'cse', 'lower', 'pipeline'):
        assert name in PASSES
    assert set(DEFAULT_PIPELINE) <= set(PASSES)


def test_custom_function_pass_in_pipeline():
    pipeline = insert_after(DEFAULT_PIPELINE, 'lower', 'test_count_nodes')
    assert pipeline.index('test_count_nodes') == pipeline.index('lower') + 1
    out = run_checked(mlp(), pipeline, extra={'tag': 'hello'})
    assert out.meta['tag'] == 'hello'
    assert out.meta['n_nodes'] > 10  # counted right after lowering


def test_class_pass_gets_fresh_instance():
    pm = PassManager(['test_class_pass', 'test_class_pass'])
    assert pm.run(_tiny()).meta['class_pass_calls'] == 1


def test_duplicate_registration_rejected():
    with pytest.raises(ValueError, match='already registered'):
        register_pass('range')(lambda g, o: g)
    register_pass('test_count_nodes')(count_nodes)  # same definition again (module re-import): fine


def test_unknown_pass_fails_before_running():
    with pytest.raises(KeyError, match='no_such_pass'):
        PassManager(['range', 'no_such_pass'])


def test_pipeline_helpers():
    p = ['a', 'b', 'a', 'c']
    assert insert_after(p, 'a', 'x') == ['a', 'x', 'b', 'a', 'c']
    assert insert_after(p, 'a', 'x', 'last') == ['a', 'b', 'a', 'x', 'c']
    assert insert_after(p, 'a', 'x', 'all') == ['a', 'x', 'b', 'a', 'x', 'c']
    assert insert_before(p, 'a', 'x', 'all') == ['x', 'a', 'b', 'x', 'a', 'c']
    assert insert_before(p, 'c', 'x') == ['a', 'b', 'a', 'x', 'c']
    assert replace_pass(p, 'a', 'z') == ['z', 'b', 'z', 'c']
    assert remove_pass(p, 'a', 'first') == ['b', 'a', 'c']
    with pytest.raises(ValueError, match='not in the pipeline'):
        insert_after(p, 'nope', 'x')
    pm = PassManager(['range', 'lower']).insert_before('lower', 'test_count_nodes')
    assert pm.pipeline == ['range', 'test_count_nodes', 'lower']


def test_semantic_change_names_pass_and_history():
    with pytest.raises(PassError) as ei:
        run_checked(_tiny(), ['range', 'prune', 'test_break_weights', 'lower'])
    e = ei.value
    assert e.pass_name == 'test_break_weights'
    assert e.before == ['range', 'prune']
    msg = str(e)
    assert "'test_break_weights'" in msg and "'range', 'prune'" in msg
    assert "output 'y' differs" in msg and 'expected' in msg


def test_verifier_failure_is_reported():
    with pytest.raises(PassError, match=r"pass 'test_break_type' failed \(passes run before it: 'range'\): verifier"):
        run_checked(_tiny(), ['range', 'test_break_type'])


def test_exception_in_pass_is_wrapped():
    with pytest.raises(PassError, match=r"pass 'test_raise' failed \(passes run before it: none\): RuntimeError: boom") as ei:
        PassManager(['test_raise']).run(_tiny())
    assert isinstance(ei.value.__cause__, RuntimeError)


def test_no_check_without_check_mode():
    # without options.check a semantics-changing pass goes unnoticed (checking costs time)
    PassManager(['test_break_weights']).run(_tiny())


def test_timings_and_report():
    pm = PassManager(DEFAULT_PIPELINE, CompileOptions(latency_cutoff=1))
    pm.run(mlp())
    assert [name for name, _ in pm.timings] == list(DEFAULT_PIPELINE)
    assert all(t >= 0 for _, t in pm.timings)
    report = pm.report()
    assert 'cse' in report and 'total' in report


def test_options_validation_and_replace():
    o = CompileOptions()
    assert o.max_adder_depth is None and o.latency_cutoff == 0 and o.top == 'model' and not o.check
    assert o.replace(latency_cutoff=3).latency_cutoff == 3
    with pytest.raises(ValueError):
        CompileOptions(latency_cutoff=-1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.seed = 3  # type: ignore[misc]


def test_entry_point_discovery(monkeypatch):
    class FakeEP:
        name = 'test_from_entry_point'

        @staticmethod
        def load():
            return lambda graph, options: graph

    monkeypatch.setattr(manager_mod, '_entry_points_loaded', False)
    monkeypatch.setattr(manager_mod.metadata, 'entry_points', lambda group: [FakeEP()] if group == 'hgqc.passes' else [])
    monkeypatch.delitem(PASSES, 'test_from_entry_point', raising=False)
    fn = get_pass('test_from_entry_point')
    g = _tiny()
    assert fn(g, CompileOptions()) is g
    PASSES.pop('test_from_entry_point')

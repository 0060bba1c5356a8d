"""The self-checking testbench every RTL project ships in ``tb/``: it passes in the simulators its
run scripts name, and it fails (exit status 1, mismatch lines) when one expected bit is wrong."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import hgqc
from hgqc.backends.common import port_layout, unpack_port
from hgqc.ir import Graph, Op, TensorType
from hgqc.runtime.interpreter import Interpreter

from ..passes.graphs import random_graph


def two_port_graph() -> Graph:
    """Two inputs (signed / unsigned), two outputs: a sum and a cmvm of it (pipelines at cutoff 1-2)."""
    g = Graph('two_ports')
    x = g.add_input('x', TensorType.from_kif((4,), 1, 3, 2))
    w = g.add_input('w', TensorType.from_kif((4,), 0, 4, 0))
    s = g.add(Op.ADD, [x, w], name='s')
    weights = np.array([[1.5, -2.0, 0.25], [3.0, 0.5, -1.0], [-0.75, 1.0, 2.0], [2.5, -3.5, 0.125]])
    y = g.add(Op.CMVM, [s], {'weights': weights, 'bias': np.array([0.5, -1.0, 0.0])}, name='y')
    g.add_output('y', y)
    g.add_output('s', s)
    return g


def _run(script: Path) -> subprocess.CompletedProcess:
    return subprocess.run(['sh', str(script)], capture_output=True, text=True, timeout=600)


def _corrupt_one_expected_bit(tb: Path) -> None:
    path = tb / 'expected0.hex'
    lines = path.read_text().splitlines()
    lines[3] = f'{int(lines[3], 16) ^ 1:0{len(lines[3])}x}'  # vector 3: flip the lowest bit of output port 0
    path.write_text('\n'.join(lines) + '\n')


CASES = [('verilog', 'iverilog', 0), ('verilog', 'iverilog', 2), ('vhdl', 'ghdl', 0), ('vhdl', 'ghdl', 2)]


@pytest.mark.parametrize('target, simulator, cutoff', CASES)
def test_shipped_testbench_passes_and_catches_a_wrong_bit(target, simulator, cutoff, tmp_path):
    assert shutil.which(simulator), f'{simulator} is required'
    project = hgqc.compile(two_port_graph(), tmp_path / 'p', target=target, latency_cutoff=cutoff)
    assert (project.metadata['latency'] > 0) == (cutoff > 0)
    tb = tmp_path / 'p' / 'tb'
    done = _run(tb / f'run_{simulator}.sh')
    assert done.returncode == 0 and 'hgqc testbench: PASS (256 vectors)' in done.stdout, done.stdout + done.stderr
    _corrupt_one_expected_bit(tb)
    done = _run(tb / f'run_{simulator}.sh')
    out = done.stdout + done.stderr
    assert done.returncode == 1 and 'hgqc testbench: FAIL (1 mismatching' in out, out
    assert 'mismatch: vector 3, output y' in out


def test_testbench_vectors_are_the_interpreters(tmp_path):
    graph = random_graph(7, 6)
    project = hgqc.compile(graph, target='verilog', latency_cutoff=1)
    layout = port_layout(project.graph, project.top)
    xs = [unpack_port(p, [int(v, 16) for v in project.files[f'tb/in{k}.hex'].split()]) for k, p in enumerate(layout['inputs'])]
    want = Interpreter(project.graph).run_int(xs)
    for k, p in enumerate(layout['outputs']):
        got = unpack_port(p, [int(v, 16) for v in project.files[f'tb/expected{k}.hex'].split()])
        np.testing.assert_array_equal(got, np.asarray(want[k]).reshape(got.shape))
    lo = np.asarray(project.graph.inputs[0].type.lo).reshape(-1)
    np.testing.assert_array_equal(xs[0][0].reshape(-1), lo)  # the extremes come first


def test_verilator_runs_the_shipped_testbench(tmp_path):
    assert shutil.which('verilator'), 'verilator is required'
    hgqc.compile(two_port_graph(), tmp_path / 'p', target='verilog', latency_cutoff=1)
    done = _run(tmp_path / 'p' / 'tb' / 'run_verilator.sh')
    assert done.returncode == 0 and 'hgqc testbench: PASS (256 vectors)' in done.stdout, done.stdout[-3000:] + done.stderr


@pytest.mark.parametrize('target, simulator', [('verilog', 'iverilog'), ('vhdl', 'ghdl')])
def test_testbench_vector_count_is_an_option(target, simulator, tmp_path):
    assert shutil.which(simulator), f'{simulator} is required'
    hgqc.compile(two_port_graph(), tmp_path / 'p', target=target, latency_cutoff=1, testbench_vectors=5)
    tb = tmp_path / 'p' / 'tb'
    assert len((tb / 'in0.hex').read_text().split()) == 5
    done = _run(tb / f'run_{simulator}.sh')
    assert done.returncode == 0 and 'hgqc testbench: PASS (5 vectors)' in done.stdout, done.stdout + done.stderr


def test_hls_tb_data_vector_count_is_an_option():
    project = hgqc.compile(two_port_graph(), target='hls4ml', testbench_vectors=3)
    assert len(project.files['tb_data/tb_input_features.dat'].splitlines()) == 3
    assert len(project.files['tb_data/tb_output_predictions.dat'].splitlines()) == 3


@pytest.mark.parametrize('bad', [0, -4, 2.5])
def test_testbench_vectors_must_be_positive(bad):
    with pytest.raises(ValueError, match='testbench_vectors must be an integer >= 1'):
        hgqc.compile(two_port_graph(), target='verilog', testbench_vectors=bad)

"""Brevitas exports (power-of-two scaled quantizers) through the QONNX frontend: interpreter == qonnx
``execute_onnx`` exactly, Verilator == interpreter on one of them, and the CLI on an .onnx file.

The models are committed as small fixtures (``fixtures/brevitas/*.onnx``, made by
``python -m hgqc.testing.brevitas_models tests/frontend/fixtures/brevitas``): exporting with torch
takes ~15 s per model on a shared CI core. ``test_fresh_export_is_exact`` (slow) re-exports them.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

import hgqc
from hgqc.frontend.qonnx import QonnxExactnessWarning, from_qonnx
from hgqc.ir import Graph, Op
from hgqc.runtime.interpreter import Interpreter
from hgqc.testing.qonnx_graphs import grid_inputs, reference

FIXTURES = Path(__file__).parent / 'fixtures' / 'brevitas'
MODELS = ['mlp', 'cnn', 'residual', 'bipolar_trunc']
EXPECTED_OPS = {  # each fixture exercises what it is named for
    'mlp': {'Quant', 'Gemm', 'Relu'},
    'cnn': {'Quant', 'Conv', 'MaxPool', 'Reshape', 'Gemm'},
    'residual': {'Quant', 'Gemm', 'Add'},
    'bipolar_trunc': {'Quant', 'Conv', 'AveragePool', 'Trunc', 'BipolarQuant', 'Gemm'},
}


def grid_for(graph: Graph, n: int, seed: int) -> np.ndarray:
    """Inputs on the input quantizer's grid spanning twice its range (clamping on both sides)."""
    (port,) = graph.inputs
    q = graph.input_quant[port.name]
    f = int(np.unique(q['f'])[0])
    bits = int(np.unique(q['k'] + q['i'] + q['f'])[0])
    return grid_inputs(port.shape, 2.0**-f, bits, n, seed=seed)


def assert_exact(model: onnx.ModelProto, graph: Graph, x: np.ndarray) -> None:
    (want,) = reference(model, x)
    got = Interpreter(graph).predict(x.astype(np.float64))
    assert want.shape == got.shape
    assert np.array_equal(want, got), f'{int((want != got).sum())} of {want.size} outputs differ'
    assert len(np.unique(want)) > 2, 'the reference output is nearly constant: the comparison would prove little'


@pytest.mark.parametrize('name', MODELS)
def test_brevitas_export_is_exact(name):
    model = onnx.load(FIXTURES / f'{name}.onnx')
    assert EXPECTED_OPS[name] <= {n.op_type for n in model.graph.node}
    with warnings.catch_warnings():
        warnings.simplefilter('error', QonnxExactnessWarning)
        graph = from_qonnx(model)
    assert graph.count(Op.CMVM) >= 1
    assert_exact(model, graph, grid_for(graph, 1000, seed=MODELS.index(name)))


def test_brevitas_verilator_equals_interpreter(tmp_path):
    if shutil.which('verilator') is None:
        pytest.fail('verilator is not installed (scripts/setup.sh installs it)')
    project = hgqc.compile(FIXTURES / 'bipolar_trunc.onnx', latency_cutoff=2)
    x = grid_for(project.tensor_graph, 1000, seed=7)
    result = project.verify(x, simulator='verilator', workdir=tmp_path)
    assert result.total == 1000 and result.mismatches == 0, result.first_mismatch_detail


def test_cli_compiles_onnx(tmp_path):
    from hgqc.cli import main

    out = tmp_path / 'proj'
    assert main([str(FIXTURES / 'residual.onnx'), '-o', str(out)]) == 0
    assert (out / 'model.hgqir').exists()


@pytest.mark.slow
@pytest.mark.parametrize('name', MODELS)
def test_fresh_export_is_exact(name, tmp_path):
    from hgqc.testing.brevitas_models import export

    export(name, tmp_path / 'm.onnx')
    model = onnx.load(tmp_path / 'm.onnx')
    graph = from_qonnx(model)
    assert_exact(model, graph, grid_for(graph, 1000, seed=1))


def test_float_scaled_brevitas_with_batchnorm():
    """Brevitas' default float scales and a BatchNorm1d: the input Quant's float32 prescale goes into
    ``input_quant``, BN -> ReLU -> Quant fuses into one comparator bank per element. The float32
    sums of the reference are not guaranteed exact (a warning names them), but agree here."""
    from hgqc.frontend.qonnx import QonnxCostWarning

    model = onnx.load(FIXTURES / 'float_bn.onnx')
    assert {'BatchNormalization', 'Gemm', 'Quant'} <= {n.op_type for n in model.graph.node}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        graph = from_qonnx(model)
    kinds = {type(w.message) for w in caught}
    assert QonnxCostWarning in kinds and QonnxExactnessWarning in kinds
    (port,) = graph.inputs
    scale = float(np.unique(graph.input_quant[port.name]['scale'])[0])
    rng = np.random.default_rng(5)
    on_grid = rng.integers(-16, 17, (500, 8)) * scale
    x = np.concatenate([on_grid, rng.uniform(-12 * scale, 12 * scale, (500, 8))]).astype(np.float32)
    assert_exact(model, graph, x)

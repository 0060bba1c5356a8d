"""Small Brevitas models with power-of-two scaled quantizers, exported to QONNX for the frontend tests.

Each factory returns ``(torch module, input shape without batch, input scale, input bits)``; the
module has been run once on random data (calibrating its runtime statistics) and is in eval mode.
``export(name, path)`` writes ``path`` with ``brevitas.export.export_qonnx``. Seeds are fixed.

Run as a script to regenerate the exports: ``python -m hgqc.testing.brevitas_models OUT_DIR``.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _modules() -> tuple[Any, Any, Any]:
    warnings.filterwarnings('ignore', module='brevitas')
    import brevitas.nn as qnn
    import brevitas.quant as bq
    import torch

    return torch, qnn, bq


def _w4(bq: Any) -> dict[str, Any]:
    """4-bit power-of-two scaled weights and a power-of-two scaled (internal) bias quantizer."""
    return dict(
        weight_quant=bq.Int8WeightPerTensorFixedPoint,
        weight_bit_width=4,
        bias_quant=bq.Int8BiasPerTensorFixedPointInternalScaling,
    )


def mlp() -> tuple[Any, tuple[int, ...], float, int]:
    """8 -> 16 -> 4 with 4-bit weights and activations (power-of-two scales), quantized biases."""
    torch, qnn, bq = _modules()
    torch.manual_seed(0)
    w4 = _w4(bq)
    model = torch.nn.Sequential(
        qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint, bit_width=4, return_quant_tensor=True),
        qnn.QuantLinear(8, 16, bias=True, **w4),
        qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFixedPoint, bit_width=4, return_quant_tensor=True),
        qnn.QuantLinear(16, 4, bias=True, **w4),
        qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint, bit_width=4),
    )
    return _calibrated(model, (8,))


def cnn() -> tuple[Any, tuple[int, ...], float, int]:
    """(1, 8, 8) -> conv 3x3 (pad 1) -> relu -> maxpool 2 -> conv 3x3 (valid) -> relu -> flatten -> dense 3."""
    torch, qnn, bq = _modules()
    torch.manual_seed(1)
    w4 = _w4(bq)
    act = dict(act_quant=bq.Uint8ActPerTensorFixedPoint, bit_width=4, return_quant_tensor=True)
    model = torch.nn.Sequential(
        qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint, bit_width=4, return_quant_tensor=True),
        qnn.QuantConv2d(1, 4, 3, padding=1, bias=True, **w4),
        qnn.QuantReLU(**act),
        torch.nn.MaxPool2d(2),
        qnn.QuantConv2d(4, 4, 3, bias=True, **w4),
        qnn.QuantReLU(**act),
        torch.nn.Flatten(),
        qnn.QuantLinear(16, 3, bias=True, **w4),
        qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint, bit_width=6),
    )
    return _calibrated(model, (1, 8, 8))


def residual() -> tuple[Any, tuple[int, ...], float, int]:
    """Per-channel power-of-two weight scales and a residual add: y = q(q(x) + relu(W q(x) + b))."""
    torch, qnn, bq = _modules()
    torch.manual_seed(2)

    class Residual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inp = qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint, bit_width=5)
            self.fc = qnn.QuantLinear(
                8,
                8,
                bias=True,
                weight_quant=bq.Int8WeightPerTensorFixedPoint,
                weight_scaling_per_output_channel=True,
                weight_bit_width=4,
                bias_quant=bq.Int8BiasPerTensorFixedPointInternalScaling,
            )
            self.act = qnn.QuantReLU(act_quant=bq.Uint8ActPerTensorFixedPoint, bit_width=4)
            self.out = qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint, bit_width=6)

        def forward(self, x: Any) -> Any:
            h = self.inp(x)
            return self.out(h + self.act(self.fc(h)))

    return _calibrated(Residual(), (8,))


def bipolar_trunc() -> tuple[Any, tuple[int, ...], float, int]:
    """conv -> 4-bit act -> TruncAvgPool2d (exports Trunc) -> binary act (BipolarQuant) -> binary-weight dense."""
    torch, qnn, bq = _modules()
    torch.manual_seed(3)
    model = torch.nn.Sequential(
        qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint, bit_width=4, return_quant_tensor=True),
        qnn.QuantConv2d(1, 2, 3, padding=1, bias=False, weight_quant=bq.Int8WeightPerTensorFixedPoint, weight_bit_width=3),
        qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint, bit_width=4, return_quant_tensor=True),
        qnn.TruncAvgPool2d(kernel_size=2, stride=2, trunc_quant=bq.TruncTo8bit, float_to_int_impl_type='FLOOR'),
        qnn.QuantIdentity(act_quant=bq.SignedBinaryActPerTensorConst, return_quant_tensor=True),
        torch.nn.Flatten(),
        qnn.QuantLinear(8, 3, bias=False, weight_quant=bq.SignedBinaryWeightPerTensorConst, weight_scaling_const=0.25),
        qnn.QuantIdentity(act_quant=bq.Int8ActPerTensorFixedPoint, bit_width=8),
    )
    return _calibrated(model, (1, 4, 4))


def float_bn() -> tuple[Any, tuple[int, ...], float, int]:
    """Brevitas' default (float-scaled) quantizers and a BatchNorm1d: linear -> BN -> ReLU -> linear."""
    torch, qnn, bq = _modules()
    torch.manual_seed(4)
    model = torch.nn.Sequential(
        qnn.QuantIdentity(bit_width=4, return_quant_tensor=True),
        qnn.QuantLinear(8, 8, bias=True, weight_bit_width=4),
        torch.nn.BatchNorm1d(8),
        qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
        qnn.QuantLinear(8, 3, bias=False, weight_bit_width=4),
        qnn.QuantIdentity(bit_width=6),
    )
    return _calibrated(model, (8,))


FACTORIES: dict[str, Callable[[], tuple[Any, tuple[int, ...], float, int]]] = {
    'mlp': mlp,
    'cnn': cnn,
    'residual': residual,
    'bipolar_trunc': bipolar_trunc,
    'float_bn': float_bn,
}


def _calibrated(model: Any, shape: tuple[int, ...]) -> tuple[Any, tuple[int, ...], float, int]:
    torch, _, _ = _modules()
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(32, *shape) * 2)
    model.eval()
    first = next(m for m in model.modules() if hasattr(m, 'act_quant'))
    scale = float(first.act_quant.scale())
    bits = int(first.act_quant.bit_width())
    return model, shape, scale, bits


def export(name: str, path: str | os.PathLike) -> tuple[tuple[int, ...], float, int]:
    """Export model ``name`` to QONNX at ``path``; returns (input shape, input scale, input bits)."""
    from brevitas.export import export_qonnx

    torch, _, _ = _modules()
    model, shape, scale, bits = FACTORIES[name]()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        export_qonnx(model, torch.zeros(1, *shape), export_path=str(path))
    _self_contained(Path(path))
    return shape, scale, bits


def _self_contained(path: Path) -> None:
    """Inline external weight data and drop the exporter's stack-trace metadata (machine-specific paths)."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
    onnx.save(model, str(path), save_as_external_data=False)
    data = path.with_name(path.name + '.data')
    if data.exists():
        data.unlink()


def grid_inputs_for(shape: tuple[int, ...], scale: float, bits: int, n: int, seed: int = 0) -> np.ndarray:
    """Inputs on the input quantizer's grid, spanning twice its range (so clamping is exercised)."""
    rng = np.random.default_rng(seed)
    top = 2**bits
    return (rng.integers(-top, top + 1, size=(n, *shape)) * scale).astype(np.float32)


if __name__ == '__main__':  # pragma: no cover - regeneration helper
    out = Path(sys.argv[1] if len(sys.argv) > 1 else '.')
    out.mkdir(parents=True, exist_ok=True)
    for key in FACTORIES:
        print(key, export(key, out / f'{key}.onnx'))

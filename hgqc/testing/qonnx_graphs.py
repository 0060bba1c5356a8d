"""Hand-built QONNX graphs (onnx.helper) and the qonnx reference executor, for tests and examples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

QONNX_DOMAIN = 'qonnx.custom_op.general'


class GraphBuilder:
    """Collects nodes and float32 initializers; ``model()`` returns an ONNX model with a symbolic batch."""

    def __init__(self, opset: int = 13):
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.opset = opset
        self._n = 0

    def const(self, value: Any, name: str | None = None, dtype: Any = np.float32) -> str:
        name = name or f'c{len(self.inits)}'
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op: str, inputs: Sequence[str], n_out: int = 1, domain: str = '', **attrs: Any) -> Any:
        self._n += 1
        outs = [f'{op.lower()}{self._n}_{k}' for k in range(n_out)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=f'{op}_{self._n}', domain=domain, **attrs))
        return outs[0] if n_out == 1 else outs

    def quant(
        self, x: str, scale: Any, bits: int, signed: int = 1, narrow: int = 0, mode: str = 'ROUND', zeropt: Any = 0.0
    ) -> str:
        s, z, b = self.const(scale), self.const(zeropt), self.const(float(bits))
        return self.node('Quant', [x, s, z, b], domain=QONNX_DOMAIN, signed=signed, narrow=narrow, rounding_mode=mode)

    def model(self, inputs: Sequence[tuple[str, Sequence[int]]], outputs: Sequence[str], name: str = 'g') -> onnx.ModelProto:
        ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ['N', *shape]) for n, shape in inputs]
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
        g = helper.make_graph(self.nodes, name, ins, outs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid('', self.opset), helper.make_opsetid(QONNX_DOMAIN, 2)])
        m.ir_version = 8
        return m


def reference(model: onnx.ModelProto, *xs: np.ndarray) -> list[np.ndarray]:
    """``qonnx.core.onnx_exec.execute_onnx`` on the whole batch (float32 inputs, as qonnx runs)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    p = onnx.ModelProto.FromString(model.SerializeToString())
    n = len(xs[0])
    inits = {t.name for t in p.graph.initializer}
    for vi in list(p.graph.input) + list(p.graph.output):
        if vi.name not in inits and vi.type.tensor_type.shape.dim:
            d = vi.type.tensor_type.shape.dim[0]
            d.Clear()
            d.dim_value = n
    del p.graph.value_info[:]
    mw = ModelWrapper(p)
    for node in mw.graph.node:  # exporters often hard-code batch 1 in Reshape targets
        if node.op_type == 'Reshape' and mw.get_initializer(node.input[1]) is not None:
            target = mw.get_initializer(node.input[1]).copy()
            if target.size and target[0] == 1:
                target[0] = n
                mw.set_initializer(node.input[1], target)
    mw = mw.transform(InferShapes())
    names = [v.name for v in mw.graph.input if mw.get_initializer(v.name) is None]
    out = execute_onnx(mw, {k: np.asarray(x, dtype=np.float32) for k, x in zip(names, xs)})
    return [np.asarray(out[o.name]) for o in mw.graph.output]


def grid_inputs(shape: Sequence[int], scale: float, bits: int, n: int, seed: int = 0, over: int = 2) -> np.ndarray:
    """``n`` float32 inputs on the grid ``k * scale``; |k| spans ``over`` times the signed ``bits`` range (clamping)."""
    rng = np.random.default_rng(seed)
    top = over * 2 ** (bits - 1)
    k = rng.integers(-top, top + 1, size=(n, *shape))
    return (k * scale).astype(np.float32)

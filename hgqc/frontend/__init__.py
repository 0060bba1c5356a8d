"""Frontends: turn a trained quantized model into a tensor-level hgqc IR graph.

``from_keras`` (HGQ2 / Keras 3) lives in ``hgqc.frontend.keras``. It is imported lazily so
that ``hgqc.frontend.FrontendError`` (and other frontends) do not pull in Keras and jax.
``from_qonnx`` (QONNX / ONNX, e.g. Brevitas exports) lives in ``hgqc.frontend.qonnx``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import FrontendError

if TYPE_CHECKING:
    from .keras import InputView, LoweringContext, QuantParams, from_keras, quantizer_to_quantize, register_layer

__all__ = [
    'FrontendError',
    'InputView',
    'LoweringContext',
    'QuantParams',
    'from_keras',
    'quantizer_to_quantize',
    'register_layer',
]

_KERAS_API = {'InputView', 'LoweringContext', 'QuantParams', 'from_keras', 'quantizer_to_quantize', 'register_layer'}


def __getattr__(name: str) -> Any:
    if name in _KERAS_API:
        from . import keras as _keras_frontend

        return getattr(_keras_frontend, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')

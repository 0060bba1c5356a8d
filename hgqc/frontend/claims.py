"""Input claims: which quantization each element of a graph input has been given.

Both frontends quantize graph inputs where a layer/node first reads them, possibly through
wiring (a slice, a padded conv window), so one input element can be reached by several
quantizers.  A port of the generated hardware has one fixed type per element, so every
quantizer reaching an element must agree with the first one; ``InputClaims`` records the first
claim per element and names both claimants when a later one differs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..ir.fixed import Overflow, Round
from .errors import FrontendError


class InputClaims:
    """Per element of one graph input: its quantization parameters and who set them.

    ``fields`` names the per-element parameters (``k, i, f`` and for QONNX the float32 prescale);
    ``noun`` ('layer' / 'node') and ``fix`` (what the user should do) word the errors.
    """

    def __init__(
        self,
        name: str,
        shape: tuple[int, ...],
        fields: tuple[str, ...],
        noun: str,
        fix: str,
        show_modes: Callable[[tuple[Round, Overflow]], str] | None = None,
        show_values: Callable[[dict[str, float]], str] | None = None,
    ):
        self.name, self.shape, self.fields, self.noun, self.fix = name, shape, fields, noun, fix
        self.show_modes = show_modes or (lambda m: f'{m[0].value}/{m[1].value}')  # in the frontend's own terms
        self.show_values = show_values
        size = math.prod(shape)
        self.values = np.zeros((size, len(fields)), dtype=np.float64)  # ints and float32s are exact in float64
        self.owner: list[str | None] = [None] * size
        self.modes: tuple[Round, Overflow] | None = None
        self.modes_owner = ''

    def claim(self, elements: np.ndarray, values: np.ndarray, modes: tuple[Round, Overflow], who: str) -> None:
        """Give input elements ``elements`` (flat indices) the parameters ``values[pos]`` (one row each)."""
        if len(elements) == 0:
            return
        if self.modes is None:
            self.modes, self.modes_owner = modes, who
        elif self.modes != modes:
            raise FrontendError(
                f"input '{self.name}' is quantized with {self.show_modes(self.modes)} by {self.noun} "
                f"'{self.modes_owner}' and with {self.show_modes(modes)} by {self.noun} '{who}'; one input "
                f'port takes one rounding/overflow mode: {self.fix}'
            )
        for e, row in zip(np.asarray(elements).tolist(), np.asarray(values, dtype=np.float64)):
            prev = self.owner[e]
            if prev is None:
                self.values[e], self.owner[e] = row, who
            elif not np.array_equal(self.values[e], row):
                where = tuple(int(w) for w in np.unravel_index(e, self.shape))
                by = (
                    f"by {self.noun} '{prev}' and as {self._show(row)} by {self.noun} '{who}'"
                    if prev != who
                    else f"and as {self._show(row)}, both by {self.noun} '{who}' (it reads the element more than once, "
                    'e.g. through a per-output quantizer)'
                )
                raise FrontendError(
                    f"input '{self.name}' element {where} is quantized as {self._show(self.values[e])} {by}; an input "
                    f'port holds one quantization: {self.fix}'
                )

    def _show(self, row: np.ndarray) -> str:
        if self.show_values is not None:
            return self.show_values(dict(zip(self.fields, row.tolist())))
        return '(' + ', '.join(f'{n}={float(v):g}' for n, v in zip(self.fields, row)) + ')'

    def param(self, field: str, dtype: type = np.int64) -> np.ndarray:
        """One parameter of every element, in the input's shape (0 where unclaimed)."""
        return self.values[:, self.fields.index(field)].astype(dtype).reshape(self.shape)

    def unclaimed(self) -> np.ndarray:
        return np.array([o is None for o in self.owner]).reshape(self.shape)

"""The fixed CMVM benchmark suite: seeded random dyadic matrices with 8-bit signed inputs.

``suite()`` returns 30 ``Case(name, matrix, input_kifs)``:

* ``dense``  -- square 8/16/32/64 x weight bits 4/6/8, no zeros (12 cases)
* ``sparse`` -- square 32/64 x weight bits 4/8 x zero fraction 0.5/0.8, plus 8x8 and 16x16 at
  8 bits / 0.8 (10 cases)
* ``rect``   -- 16x64, 64x16, 32x128 x 6 bits x zero fraction 0/0.5 (6 cases)
* ``large``  -- 128x128 at (6 bits, 0.5) and (4 bits, 0.8) (2 cases)

plus, only when asked for (``suite(groups=('heavy',))`` or ``include_heavy=True``):

* ``heavy``  -- 128x128 at 8 bits, no zeros.  da4ml needs ~160 s for it even with ``hard_dc=0``
  (single thread, this machine) and > 5 min unconstrained; alkaid > 5 min unconstrained.

Matrices are ``(n_in, n_out)`` (``y = x @ W``).  A ``b``-bit weight is a signed integer code drawn
uniformly from the *nonzero* codes in ``[-(2^(b-1) - 1), 2^(b-1) - 1]`` (symmetric, like HGQ's
``SAT_SYM`` weights) divided by ``2^(b-1)``, so every entry is an exact dyadic in ``(-1, 1)``; then
exactly ``round(zero_frac * n_in * n_out)`` entries, chosen at random, are set to zero.  Inputs are
``(k, i, f) = (1, 7, 0)`` for every row: 8-bit signed integers in ``[-128, 127]``.

Every case has its own RNG, seeded from a CRC32 of its name, so a case is identical whatever
subset or order is requested, and adding cases never changes existing ones.  Names look like
``r32x32_b8_z0.5`` (r = random).  ``Case.meta`` holds group / shape / bits / zero fraction / seed.
Real kernels from trained models can be added as ``Case(name, matrix, input_kifs)`` too.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ['Case', 'INPUT_KIF', 'random_case', 'suite', 'SUITE_SPEC']

INPUT_KIF = (1, 7, 0)  # 8-bit signed integer inputs


@dataclass(frozen=True)
class Case:
    name: str
    matrix: np.ndarray  # (n_in, n_out) float64, exact dyadics
    input_kifs: list[tuple[int, int, int]]  # one (k, i, f) per input row
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.matrix.shape)  # type: ignore[return-value]


# (group, n_in, n_out, weight bits, zero fraction)
SUITE_SPEC: list[tuple[str, int, int, int, float]] = (
    [('dense', n, n, b, 0.0) for n in (8, 16, 32, 64) for b in (4, 6, 8)]
    + [('sparse', n, n, b, z) for n in (32, 64) for b in (4, 8) for z in (0.5, 0.8)]
    + [('sparse', 8, 8, 8, 0.8), ('sparse', 16, 16, 8, 0.8)]
    + [('rect', a, c, 6, z) for a, c in ((16, 64), (64, 16), (32, 128)) for z in (0.0, 0.5)]
    + [('large', 128, 128, 6, 0.5), ('large', 128, 128, 4, 0.8)]
    + [('heavy', 128, 128, 8, 0.0)]
)


def case_name(n_in: int, n_out: int, bits: int, zero_frac: float) -> str:
    return f'r{n_in}x{n_out}_b{bits}_z{zero_frac:g}'


def random_case(n_in: int, n_out: int, bits: int, zero_frac: float, group: str = 'custom') -> Case:
    """One seeded random case (see module docstring for the distribution)."""
    name = case_name(n_in, n_out, bits, zero_frac)
    seed = zlib.crc32(name.encode())
    rng = np.random.default_rng(seed)
    top = 2 ** (bits - 1) - 1
    codes = rng.integers(1, top + 1, size=(n_in, n_out)) * rng.choice((-1, 1), size=(n_in, n_out))
    n_zero = int(round(zero_frac * n_in * n_out))
    if n_zero:
        flat = codes.reshape(-1)
        flat[rng.choice(flat.size, size=n_zero, replace=False)] = 0
    matrix = codes.astype(np.float64) / 2 ** (bits - 1)
    meta = dict(group=group, n_in=n_in, n_out=n_out, bits=bits, zero_frac=zero_frac, seed=seed)
    return Case(name, matrix, [INPUT_KIF] * n_in, meta)


def suite(groups: tuple[str, ...] | None = None, max_size: int | None = None, include_heavy: bool = False) -> list[Case]:
    """The fixed suite (30 cases), optionally restricted to ``groups`` and ``max(n_in, n_out) <= max_size``."""
    out = []
    for group, n_in, n_out, bits, z in SUITE_SPEC:
        if groups is not None and group not in groups:
            continue
        if groups is None and group == 'heavy' and not include_heavy:
            continue
        if max_size is not None and max(n_in, n_out) > max_size:
            continue
        out.append(random_case(n_in, n_out, bits, z, group))
    return out

"""Compiler options shared by every pass (and by user passes, through ``extra``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import OptionError

MAX_TESTBENCH_VECTORS = 100_000


@dataclass(frozen=True)
class CompileOptions:
    """Options of one compilation; frozen so a pass cannot change them for the passes after it.

    max_adder_depth
        Depth limit (adder levels) of every constant matrix-vector multiply, counted from the
        cmvm's inputs to each of its outputs (bias included). ``None`` means *minimal depth + 2*,
        where the minimal depth of a matrix is ``ceil(log2(t))`` for ``t`` the largest number of
        CSD terms (plus one for a nonzero bias) in any output column: a little slack lets common
        subexpressions be shared without making the circuit much deeper. A limit below the
        minimal depth is raised to it (no adder tree can be shallower).
    latency_cutoff
        Adder levels per pipeline stage; ``0`` builds a purely combinational circuit.
    top
        Name of the top-level module / function the backends emit.
    clock_period
        Target clock period in nanoseconds, written into the FPGA build constraints
        (``constraints.xdc`` / ``constraints.sdc``) and HLS configurations. It does not change the
        circuit: pipelining is set by ``latency_cutoff``.
    testbench_vectors
        Input vectors written with each project's self-checking testbench (``tb/`` of the RTL
        projects, ``tb_data/`` of the HLS one), with the interpreter's outputs for them: every
        input's extreme corners first, then uniform random values. At least 1.
    check
        Run ``hgqc.ir.verify`` and re-simulate the graph on random inputs after every pass,
        requiring bit-identical outputs (slow; for debugging and tests).
    check_samples
        Random input vectors per check (the extreme corners are added on top).
    seed
        Seed of every randomised decision (check inputs); compilation itself is deterministic.
    pipeline
        Pass names to run instead of ``hgqc.passes.DEFAULT_PIPELINE`` (``None``: the default);
        build it with ``insert_after(DEFAULT_PIPELINE, 'lower', 'my_pass')`` and friends.
    extra
        Free-form options for user passes (``options.extra['my_pass.threshold']``). Treat it as
        read-only: the options object is shared by all passes of a run.
    """

    max_adder_depth: int | None = None
    latency_cutoff: int = 0
    top: str = 'model'
    clock_period: float = 5.0
    testbench_vectors: int = 256
    check: bool = False
    check_samples: int = 64
    seed: int = 0
    pipeline: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_adder_depth is not None:
            _check_int('max_adder_depth', self.max_adder_depth, 0, ' or None (minimal depth + 2)')
        _check_int('latency_cutoff', self.latency_cutoff, 0, ' (0: combinational)')
        if not (isinstance(self.clock_period, (int, float)) and 0 < self.clock_period < 1e6):
            raise OptionError(f'clock_period must be a positive number of nanoseconds, got {self.clock_period!r}')
        _check_int('testbench_vectors', self.testbench_vectors, 1)
        if self.testbench_vectors > MAX_TESTBENCH_VECTORS:  # (each is a line of every port's hex file)
            raise OptionError(
                f'testbench_vectors must be at most {MAX_TESTBENCH_VECTORS:,}, got {self.testbench_vectors:,}; '
                'for more, run `hgqc verify` on your own inputs'
            )
        _check_int('check_samples', self.check_samples, 0)
        _check_int('seed', self.seed, 0)

        if self.pipeline is not None:
            object.__setattr__(self, 'pipeline', tuple(self.pipeline))

    def replace(self, **changes: Any) -> CompileOptions:
        """A copy with some fields changed (the object itself is immutable)."""
        return dataclasses.replace(self, **changes)


def _check_int(name: str, value: Any, least: int, also: str = '') -> None:
    """An option that must be an integer (not a bool or a float) of at least ``least``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise OptionError(f'{name} must be an integer >= {least}{also}, got {value!r}')

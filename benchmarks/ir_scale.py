"""How the IR and the stages after CSE scale with the number of adders (DESIGN.md: "fast enough
for graphs of a million adders").

    python -m benchmarks.ir_scale [--adders 100000] [--levels 20] [--cutoff 0] [--vectors 1000]

Builds a synthetic adder-level graph (what ``lower`` produces): ``--levels`` layers of scalar
``shift_add`` nodes, each reading two random values of the layer before (a wrapping quantize
keeps every value under 20 bits), from 1000 inputs to 1000 outputs, ``--adders`` in all. Then
times each stage on it and prints the time and the peak memory (RSS) after it: graph build,
``verify``, ``range`` + ``prune``, ``pipeline`` at ``--cutoff`` (its register-minimising LP
only when the cutoff is > 0), IR text print and parse, Verilog emission (with the shipped
testbench, whose vectors come from the interpreter), and the interpreter on ``--vectors`` inputs.
CSE is not part of it: ``benchmarks.cmvm_scale`` measures that.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np

os.environ.setdefault('KERAS_BACKEND', 'jax')

N_IN = 1000
N_OUT = 1000
MAX_BITS = 20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def adder_graph(adders: int, levels: int, seed: int = 0):
    """The synthetic lowered graph described in the module doc."""
    from hgqc.ir import Graph, Op, TensorType

    rng = np.random.default_rng(seed)
    g = Graph('scale')
    x = g.add_input('x', TensorType.from_kif((N_IN,), 1, 7, 0))
    prev = [g.add(Op.GATHER, [x], {'index': np.array(i)}, name=f'x[{i}]') for i in range(N_IN)]
    wrap = {'k': np.array(1), 'i': np.array(10), 'f': np.array(2), 'round': 'TRN', 'overflow': 'WRAP'}
    per_level = max(1, adders // levels)
    for lev in range(levels):
        cur = []
        for k in range(per_level):
            a, b = (prev[int(j)] for j in rng.integers(0, len(prev), 2))
            attrs = {'shift': int(rng.integers(-2, 3)), 'sub': bool(rng.integers(0, 2))}
            v = g.add(Op.SHIFT_ADD, [a, b], attrs, name=f'a{lev}_{k}')
            if v.type.max_width > MAX_BITS:
                v = g.add(Op.QUANTIZE, [v], wrap, name=f'q{lev}_{k}')
            cur.append(v)
        prev = cur
    outs = prev[-N_OUT:]
    g.add_output('y', g.add(Op.GATHER, outs, {'index': np.arange(len(outs))}, name='y'))
    return g


def _timed(rows: list[tuple[str, float, float]], name: str, fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    out = fn()
    rows.append((name, time.perf_counter() - t0, _peak_mb()))
    print(f'{name:28s} {rows[-1][1]:8.1f} s  {rows[-1][2]:8.0f} MB peak', flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    from hgqc.backends import emit
    from hgqc.ir import parse_graph, print_graph, verify
    from hgqc.options import CompileOptions
    from hgqc.passes import PassManager
    from hgqc.runtime.interpreter import Interpreter
    from hgqc.runtime.sim import random_int_inputs

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--adders', type=int, default=100_000)
    ap.add_argument('--levels', type=int, default=20)
    ap.add_argument('--cutoff', type=int, default=0)
    ap.add_argument('--vectors', type=int, default=1000)
    args = ap.parse_args(argv)
    opts = CompileOptions(latency_cutoff=args.cutoff)
    rows: list[tuple[str, float, float]] = []
    g = _timed(rows, 'build graph', lambda: adder_graph(args.adders, args.levels))
    print(f'  {len(g.nodes)} nodes', flush=True)
    _timed(rows, 'verify', lambda: verify(g))
    g = _timed(rows, 'range + prune', lambda: PassManager(['range', 'prune'], opts).run(g))
    g = _timed(rows, f'pipeline (cutoff {args.cutoff})', lambda: PassManager(['pipeline'], opts).run(g))
    print(f'  {len(g.nodes)} nodes after pipeline', flush=True)
    text = _timed(rows, 'print IR text', lambda: print_graph(g))
    _timed(rows, 'parse IR text', lambda: parse_graph(text))
    files = _timed(rows, 'emit Verilog + testbench', lambda: emit('verilog', g, opts))
    print(f'  IR text {len(text) / 1e6:.1f} MB, Verilog {sum(len(t) for t in files.values()) / 1e6:.1f} MB', flush=True)
    xs = random_int_inputs(g, args.vectors)
    _timed(rows, f'interpreter ({args.vectors} vectors)', lambda: Interpreter(g).run_int(xs))
    print(f'total {sum(r[1] for r in rows):.1f} s, peak {max(r[2] for r in rows):.0f} MB')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

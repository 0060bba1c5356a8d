"""Pipeline register bits: hgqc's register-minimal stage assignment beside ASAP, per model and cutoff.

    python -m benchmarks.registers [MODEL.keras ...] [--latency-cutoff 1 2 3 4 6]

Without model arguments: every ``examples/*.keras`` fixture. Per model and cutoff: the latency,
the register bits of the ``'asap'`` and ``'min_registers'`` schedules (``hgqc.passes.stages``:
the bits the built graph's ``reg`` nodes hold), their ratio, and the seconds the ``pipeline``
pass took. No synthesis (``benchmarks.resources --schedule`` gives yosys FF counts); every
pipelined graph is re-simulated against the unpipelined one on random inputs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _lowered(path: str):
    from hgqc.api import load_graph
    from hgqc.options import CompileOptions
    from hgqc.passes import DEFAULT_PIPELINE, PassManager

    passes = [p for p in DEFAULT_PIPELINE if p != 'pipeline']
    return PassManager(passes, CompileOptions()).run(load_graph(path).copy())


def _same_outputs(a, b, samples: int = 500) -> bool:
    from hgqc.runtime import Interpreter
    from hgqc.runtime.sim import random_int_inputs

    xs = random_int_inputs(a, samples)
    ya, yb = Interpreter(a).run_int(xs), Interpreter(b).run_int(xs)
    return all(np.array_equal(u, v) for u, v in zip(ya, yb, strict=True))


def run(path: str, cutoffs: list[int]) -> list[dict]:
    from hgqc.ir import Op
    from hgqc.options import CompileOptions
    from hgqc.passes.pipeline import pipeline_pass

    graph = _lowered(path)
    rows = []
    for c in cutoffs:
        row: dict = {'model': Path(path).stem, 'cutoff': c}
        for method in ('asap', 'min_registers'):
            t0 = time.perf_counter()
            out = pipeline_pass(graph, CompileOptions(latency_cutoff=c, extra={'pipeline.schedule': method}))
            row[f'{method}_s'] = time.perf_counter() - t0
            row[method] = sum(n.type.max_width for n in out if n.op is Op.REG)
            row['latency'] = out.meta['latency']
            if not _same_outputs(graph, out):
                raise AssertionError(f'{path} cutoff {c} {method}: pipelined outputs differ')
        rows.append(row)
        r = row['min_registers'] / row['asap'] if row['asap'] else 1.0
        print(
            f'{row["model"]:20s} cutoff {c}  latency {row["latency"]:3d}  register bits asap {row["asap"]:6d}'
            f'  min_registers {row["min_registers"]:6d}  ({r:.3f})  pass s {row["asap_s"]:.2f} / {row["min_registers_s"]:.2f}',
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))  # (Keras model loading of deep graphs)
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('models', nargs='*')
    ap.add_argument('--latency-cutoff', type=int, nargs='*', default=[1, 2, 3, 4, 6])
    args = ap.parse_args(argv)
    paths = args.models or [str(p) for p in sorted((ROOT / 'examples').glob('*.keras'))]
    rows = [r for p in paths for r in run(p, args.latency_cutoff)]
    asap, best = sum(r['asap'] for r in rows), sum(r['min_registers'] for r in rows)
    print(f'total register bits: asap {asap}, min_registers {best} ({best / max(asap, 1):.3f})')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

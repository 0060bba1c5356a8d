"""Fingerprint of the CMVM solver's output: a hash of every program it builds on the benchmark suite.

    python -m benchmarks.cmvm_hash [--quick] [--no-models]

A solver change that should not change the programs (speed, memory, refactoring) must leave the
printed total hash unchanged; run it before and after. Cases: the fixture models' kernels
(``benchmarks.cmvm.model_cases``) and the ``--max-size 64`` suite, in both objectives, plus (not with
``--quick``) the suite's cases wider than 64 in the default objective. Each program is re-checked
against its matrix. Per case: objective, name, program hash, adders, depth, solve seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time

from benchmarks.cmvm import _qint_types, hgqc_metrics, model_cases
from benchmarks.cmvm_suite import suite
from benchmarks.peers import input_qintervals, min_adder_depth

os.environ.setdefault('KERAS_BACKEND', 'jax')

__all__ = ['program_hash', 'run']

GROUPS = ('dense', 'sparse', 'rect', 'large')


def program_hash(program: dict) -> str:
    return hashlib.sha1(json.dumps(program, sort_keys=True).encode()).hexdigest()[:12]


def run(quick: bool = False, models: bool = True) -> str:
    """Print one line per (case, objective) and the total; returns the total hash."""
    from hgqc.passes.cse import program_matches, solve

    small = (model_cases() if models else []) + suite(groups=GROUPS, max_size=64)
    wide = [] if quick else [c for c in suite(groups=(*GROUPS, 'heavy'), max_size=128) if max(c.shape) > 64]
    runs = [(c, o) for o in ('bits', 'adders') for c in small] + [(c, 'bits') for c in wide]
    total, adders = hashlib.sha1(), {'bits': 0, 'adders': 0}
    for case, objective in runs:
        md = min_adder_depth(case.matrix, input_qintervals(case.input_kifs, case.shape[0])) + 2
        types = _qint_types(case)
        t0 = time.perf_counter()
        prog = solve(case.matrix, None, types, md, objective=objective)
        dt = time.perf_counter() - t0
        if not program_matches(case.matrix, prog):
            raise AssertionError(f'hgqc program for {case.name} does not compute its matrix')
        h = program_hash(prog)
        total.update(h.encode())
        m = hgqc_metrics(prog, types)
        adders[objective] += m['adders']
        print(f'{objective:6s} {case.name:34s} {h} {m["adders"]:6d} {m["depth"]:3d} {dt:7.2f}', flush=True)
    print(f'total adders {adders}  hash {total.hexdigest()}')
    return total.hexdigest()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='skip the cases wider than 64')
    ap.add_argument('--no-models', action='store_true', help='skip the fixture models (no Keras import)')
    args = ap.parse_args(argv)
    run(args.quick, not args.no_models)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

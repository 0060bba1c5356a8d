"""CMVM solver scaling: solve time and peak memory of large dense / sparse matrices, hgqc beside da4ml.

    python -m benchmarks.cmvm_scale [--sizes 64,128,256] [--kinds dense,sparse] [--bits 8]
                                    [--objective bits] [--peers da4ml] [--peer-max-size 64]

Cases: ``benchmarks.cmvm_suite.random_case(n, n, bits, z)`` (8-bit signed inputs), ``dense`` with no
zeros, ``sparse`` with 80 % zeros. Every (case, tool) runs in a fresh child process, so ``rss``
is that solve's own peak resident memory (``ru_maxrss``; ``base`` is the child's RSS after its
imports, before the solve). hgqc runs ``hgqc.passes.cse.solve`` with its default options (depth
limit min + 2; ``--objective``), the peer gets the same absolute depth budget
(``benchmarks.peers.solve_cmvm_peer``, single thread), only up to ``--peer-max-size`` (da4ml needs
~160 s for a dense 8-bit 128x128). Every hgqc program is re-checked against its matrix.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

__all__ = ['run_case']


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_case(tool: str, n: int, bits: int, zero: float, objective: str) -> dict:
    """Solve one case in this process; the figures of one row."""
    import numpy as np

    from benchmarks.cmvm import _qint_types, hgqc_metrics
    from benchmarks.cmvm_suite import random_case
    from benchmarks.peers import input_qintervals, min_adder_depth, solve_cmvm_peer
    from hgqc.passes.csd import csd_matrix
    from hgqc.passes.cse import program_matches, solve

    case = random_case(n, n, bits, zero)
    md = min_adder_depth(case.matrix, input_qintervals(case.input_kifs, n)) + 2
    digits = len(csd_matrix(case.matrix))
    if tool != 'hgqc':
        solve_cmvm_peer(tool, np.eye(4), (1, 7, 0))  # warm-up (module / OpenMP init)
    base = _rss_mb()
    if tool == 'hgqc':
        types = _qint_types(case)
        t0 = time.perf_counter()
        prog = solve(case.matrix, None, types, None, objective=objective)
        dt = time.perf_counter() - t0
        rss = _rss_mb()
        if not program_matches(case.matrix, prog):
            raise AssertionError(f'hgqc program for {case.name} does not compute its matrix')
        row = dict(hgqc_metrics(prog, types), seconds=dt)
    else:
        r = solve_cmvm_peer(tool, case.matrix, case.input_kifs, max_depth=md)
        rss = _rss_mb()
        row = dict(adders=r['adders'], depth=r['depth'], bits=r['adder_bits'], seconds=r['seconds'])
    return dict(row, case=case.name, tool=tool, digits=digits, max_depth=md, base_mb=round(base), rss_mb=round(rss))


def _child(tool: str, n: int, bits: int, zero: float, objective: str) -> dict:
    cmd = [sys.executable, '-m', 'benchmarks.cmvm_scale', '--child', json.dumps([tool, n, bits, zero, objective])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', default='64,128,256')
    ap.add_argument('--kinds', default='dense,sparse', help='dense (no zeros), sparse (80 %% zeros)')
    ap.add_argument('--bits', type=int, default=8, help='weight bits')
    ap.add_argument('--objective', default='bits', choices=('bits', 'adders'), help="hgqc's cse.objective")
    ap.add_argument('--peers', default='da4ml')
    ap.add_argument('--peer-max-size', type=int, default=64)
    ap.add_argument('--child', default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_case(*json.loads(args.child))))
        return 0
    from benchmarks.peers import peer_available

    peers = [p for p in args.peers.split(',') if p and peer_available(p)]
    zeros = {'dense': 0.0, 'sparse': 0.8}
    print('| case | digits | max depth | tool | adders / depth / bits | seconds | peak RSS MB (after imports) |')
    print('|---|---|---|---|---|---|---|')
    for kind in args.kinds.split(','):
        for n in (int(s) for s in args.sizes.split(',')):
            tools = ['hgqc'] + (peers if n <= args.peer_max_size else [])
            rows = [_child(t, n, args.bits, zeros[kind], args.objective) for t in tools]
            for r in rows:
                print(
                    f'| {r["case"]} | {r["digits"]} | {r["max_depth"]} | {r["tool"]} | '
                    f'{r["adders"]} / {r["depth"]} / {r["bits"]} | {r["seconds"]:.1f} | {r["rss_mb"]} ({r["base_mb"]}) |',
                    flush=True,
                )
            if len(rows) > 1:
                ratio = rows[0]['seconds'] / max(rows[1]['seconds'], 1e-9)
                print(f'|  |  |  | time hgqc / {rows[1]["tool"]} | | {ratio:.2f} | |')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

"""CMVM benchmark: hgqc's ``cse`` solver beside da4ml 0.6 and alkaid 0.8, one run, one table.

    python -m benchmarks.cmvm [--max-size 64] [--groups dense,sparse,rect,large,model] [--slack 2]
                              [--peers da4ml,alkaid] [--unconstrained] [--out cmvm.json] [--markdown]

Cases: ``benchmarks.cmvm_suite.suite()`` (seeded random matrices 8x8 ... 128x128, rectangular,
4/6/8-bit weights, 0-80 % zeros, 8-bit signed inputs) plus, in group ``model``, every dense kernel
of the trained fixture models under ``examples/`` (``model_cases()``: the weights HGQ2 quantized,
with the input types hgqc's range pass derives for that layer).

Per case and tool: ``adders`` (two-input add/sub/neg ops), ``depth`` (longest adder path),
``bits`` (summed carry-chain width, ``benchmarks.peers`` definition, computed by the same code for
every tool) and solve ``seconds``.  Every tool gets the same absolute depth budget
``max_depth = min_depth + slack`` (``--slack``, default 2 = hgqc's default limit); ``--unconstrained``
adds the peers' unconstrained runs; ``--objective`` is hgqc's ``cse.objective`` (``bits``, the
default, or ``adders``), ``--decompose-depth`` its ``cse.decompose_depth`` (default: hgqc's, 2), ``--lookahead``
its ``cse.lookahead`` (pilot search over the first greedy decisions; default 0: off).  Every
solution is re-checked against its matrix.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.cmvm_suite import Case, suite  # noqa: I001
from benchmarks.peers import PEERS, _carry_bits, input_qintervals, min_adder_depth, peer_available, solve_cmvm_peer

os.environ.setdefault('KERAS_BACKEND', 'jax')
ROOT = Path(__file__).resolve().parents[1]

__all__ = ['hgqc_metrics', 'model_cases', 'run', 'solve_hgqc']


def _qint_types(case: Case):
    from hgqc.ir.types import QInterval

    out = []
    for lo, hi, st in input_qintervals(case.input_kifs, case.shape[0]):
        if lo == 0 and hi == 0:
            out.append(QInterval(0, 0, 0))
            continue
        f = -int(math.log2(st))
        out.append(QInterval(int(round(lo / st)), int(round(hi / st)), f))
    return out


def hgqc_metrics(program: dict[str, Any], types: Sequence[Any]) -> dict[str, int]:
    """adders / depth / carry-chain bits of one program variant (``benchmarks.peers`` definitions)."""
    from hgqc.passes.cse import shift_add_interval

    vals = [(t.lo, t.hi, t.f) for t in types]
    for c in program['consts']:
        from hgqc.ir.types import QInterval

        q = QInterval.const(c)
        vals.append((q.lo, q.hi, q.f))
    bits = 0

    def q(v):
        lo, hi, f = v
        st = math.ldexp(1.0, -f)
        return (lo * st, hi * st, st) if (lo, hi) != (0, 0) else (0.0, 0.0, 1.0)

    for a, b, s, sub in program['ops']:
        va = vals[a] if a >= 0 else (0, 0, 0)
        bits += _carry_bits(q(va), q(vals[b]), s)
        vals.append(shift_add_interval(va, vals[b], s, bool(sub)))
    return {'adders': len(program['ops']), 'depth': int(program['depth']), 'bits': int(bits)}


def solve_hgqc(
    case: Case, max_depth: int | None, objective: str = 'bits', decompose_depth: int | None = None, lookahead: int = 0
) -> dict[str, Any]:
    from hgqc.passes.cse import program_matches, solve

    if decompose_depth is None:
        decompose_depth = -1  # hgqc's default (DECOMPOSE_DEPTH, none above LARGE_DIGITS)

    types = _qint_types(case)
    t0 = time.perf_counter()
    prog = solve(case.matrix, None, types, max_depth, objective=objective, decompose_depth=decompose_depth, lookahead=lookahead)
    dt = time.perf_counter() - t0
    if not program_matches(case.matrix, prog):
        raise AssertionError(f'hgqc program for {case.name} does not compute its matrix')
    return dict(hgqc_metrics(prog, types), seconds=dt)


def model_cases(paths: Sequence[Path] | None = None) -> list[Case]:
    """Every cmvm kernel of the fixture models (after hgqc's range/prune passes), as suite cases."""
    from hgqc.api import load_graph
    from hgqc.ir.ops import Op
    from hgqc.options import CompileOptions
    from hgqc.passes import PassManager

    paths = paths or sorted((ROOT / 'examples').glob('*.keras'))
    out = []
    for p in paths:
        g = PassManager(['range', 'prune'], CompileOptions()).run(load_graph(p))
        for n in g.nodes.values():
            if n.op is not Op.CMVM:
                continue
            from hgqc.passes.cse import _hull, position_types

            t = _hull(position_types(n))
            kifs = {'qintervals': [_qint(q) for q in t]}
            w = np.asarray(n.attrs['weights'], dtype=np.float64)
            out.append(Case(f'{p.stem}:{n.name}', w, kifs, dict(group='model', n_in=w.shape[0], n_out=w.shape[1])))
    return out


def _qint(q) -> tuple[float, float, float]:
    if (q.lo, q.hi) == (0, 0):
        return (0.0, 0.0, 1.0)
    return (q.lo * 2.0**-q.f, q.hi * 2.0**-q.f, 2.0**-q.f)


def _peer_row(r: dict) -> dict:
    return dict(adders=r['adders'], depth=r['depth'], bits=r['adder_bits'], seconds=r['seconds'], depth_ok=r['depth_ok'])


def _fmt(r: dict | None) -> str:
    if r is None:
        return '-'
    mark = '' if r.get('depth_ok', True) else '(!)'
    return f'{r["adders"]} / {r["depth"]}{mark} / {r["bits"]} / {r["seconds"]:.2f}'


def run(
    cases: list[Case],
    peers: Sequence[str],
    slack: int,
    unconstrained: bool,
    objective: str = 'bits',
    decompose_depth: int | None = None,
    lookahead: int = 0,
) -> list[dict]:
    rows = []
    for p in peers:  # warm-up: the first call pays module / OpenMP init
        solve_cmvm_peer(p, np.eye(4), (1, 7, 0))
    for case in cases:
        qint = input_qintervals(case.input_kifs, case.shape[0])
        md = min_adder_depth(case.matrix, qint) + slack
        row: dict[str, Any] = {'case': case.name, 'min_depth': md - slack, 'max_depth': md}
        row['hgqc'] = solve_hgqc(case, md, objective, decompose_depth, lookahead)
        for p in peers:
            r = solve_cmvm_peer(p, case.matrix, case.input_kifs, max_depth=md)
            row[p] = _peer_row(r)
            if unconstrained:
                r = solve_cmvm_peer(p, case.matrix, case.input_kifs)
                row[p + '_free'] = _peer_row(r)
        rows.append(row)
        print(f'{case.name:28s} md={md:2d} ' + '  '.join(f'{k}={_fmt(row.get(k))}' for k in ['hgqc', *peers]), flush=True)
    return rows


def summary(rows: list[dict], peers: Sequence[str]) -> list[str]:
    """Totals and the issue's targets: total adders <= 0.90 x da4ml, no case > 2 % worse, time ratio."""
    lines = []
    for p in peers:
        ok = [r for r in rows if p in r]
        if not ok:
            continue
        tot_h = sum(r['hgqc']['adders'] for r in ok)
        tot_p = sum(r[p]['adders'] for r in ok)
        bits_h = sum(r['hgqc']['bits'] for r in ok)
        bits_p = sum(r[p]['bits'] for r in ok)
        worst = max(ok, key=lambda r: r['hgqc']['adders'] / max(1, r[p]['adders']))
        deeper = sum(r['hgqc']['depth'] > r[p]['depth'] for r in ok)
        t_h = sum(r['hgqc']['seconds'] for r in ok)
        t_p = sum(r[p]['seconds'] for r in ok)
        lines.append(
            f'vs {p}: adders {tot_h} / {tot_p} = {tot_h / tot_p:.3f}; bits {bits_h} / {bits_p} = {bits_h / bits_p:.3f}; '
            f'worst case {worst["case"]} {worst["hgqc"]["adders"] / max(1, worst[p]["adders"]):.3f}; '
            f'cases deeper than {p}: {deeper}; time {t_h:.1f}s / {t_p:.1f}s = {t_h / max(t_p, 1e-9):.2f}'
        )
    return lines


def markdown(rows: list[dict], peers: Sequence[str], unconstrained: bool) -> str:
    cols = ['hgqc', *peers] + ([p + '_free' for p in peers] if unconstrained else [])
    head = '| case | max depth | ' + ' | '.join(cols) + ' |'
    lines = [head, '|' + '---|' * (2 + len(cols))]
    for r in rows:
        lines.append(f'| {r["case"]} | {r["max_depth"]} | ' + ' | '.join(_fmt(r.get(c)) for c in cols) + ' |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--max-size', type=int, default=None)
    ap.add_argument('--groups', default=None, help='comma list of dense,sparse,rect,large,heavy,model')
    ap.add_argument('--slack', type=int, default=2, help='max_depth = min_depth + slack for every tool')
    ap.add_argument('--peers', default=','.join(PEERS))
    ap.add_argument('--unconstrained', action='store_true', help='also run the peers without a depth limit')
    ap.add_argument('--out', default=None)
    ap.add_argument('--markdown', action='store_true')
    ap.add_argument('--objective', default='bits', choices=('bits', 'adders'), help="hgqc's cse.objective")
    ap.add_argument('--decompose-depth', type=int, default=None, help="hgqc's cse.decompose_depth (default: hgqc's)")
    ap.add_argument('--lookahead', type=int, default=0, help="hgqc's cse.lookahead (pilot decisions; 0: off)")
    args = ap.parse_args(argv)
    groups = tuple(args.groups.split(',')) if args.groups else ('dense', 'sparse', 'rect', 'large', 'model')
    cases = suite(groups=tuple(g for g in groups if g != 'model'), max_size=args.max_size)
    if 'model' in groups:
        cases = model_cases() + cases
    peers = [p for p in args.peers.split(',') if p and peer_available(p)]
    t0 = time.perf_counter()
    rows = run(cases, peers, args.slack, args.unconstrained, args.objective, args.decompose_depth, args.lookahead)
    print('\n'.join(summary(rows, peers)))
    if args.markdown:
        print(markdown(rows, peers, args.unconstrained))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    print(f'total {time.perf_counter() - t0:.1f}s', file=sys.stderr)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

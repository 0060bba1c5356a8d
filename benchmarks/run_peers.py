"""Run the peers (da4ml, alkaid) on the CMVM suite and on a small HGQ2 model, in one go.

    python -m benchmarks.run_peers cmvm  [--max-size 64] [--groups dense,rect] [--max-depth-slack 1]
                                         [--peers da4ml,alkaid] [--out peers_cmvm.json]
    python -m benchmarks.run_peers model [--out-dir /tmp/peer_rtl] [--latency-cutoff 5] [--no-yosys]

``cmvm`` prints one line per (case, peer) -- adders / depth / adder_bits / seconds, unconstrained and,
with ``--max-depth-slack s``, with ``max_depth = min_depth + s`` -- and writes them as JSON.
``model`` builds ``small_hgq_model()`` (QDense 16->32 relu -> 5, seeded, ``trace_minmax`` on random
data), converts it with each peer (combinational and pipelined), checks the peers' own bit-exact
interpreters against Keras, and runs ``yosys_stats`` on every output.

Keep it ``nice``.  Single-thread wall times seen on the shared 2-core box: ``--max-size 32`` ~6 s
(both peers, with a depth budget), ``--groups dense,sparse,rect`` ~3 min, the two ``large`` 128x128
cases ~1.5 min more per budget; ``heavy`` (dense 8-bit 128x128) is excluded by default (> 5 min).
``model`` ~3-4 min, almost all of it yosys (20-55 s per design).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from benchmarks.peers import PEERS, peer_available, peer_verilog, solve_cmvm_peer  # sets OMP_NUM_THREADS=1

os.environ.setdefault('KERAS_BACKEND', 'jax')


def small_hgq_model(seed: int = 0, n_in: int = 16, n_hidden: int = 32, n_out: int = 5):
    """QDense(n_in -> n_hidden, relu) -> QDense(n_out), HGQ2 defaults, calibrated on N(0, 1) data."""
    import keras
    import numpy as np
    from hgq.layers import QDense
    from hgq.utils import trace_minmax

    keras.utils.set_random_seed(seed)
    inp = keras.Input((n_in,))
    x = QDense(n_hidden, activation='relu')(inp)
    out = QDense(n_out)(x)
    model = keras.Model(inp, out)
    data = np.random.default_rng(seed).normal(size=(2048, n_in)).astype('float32')
    trace_minmax(model, data)
    return model


def run_cmvm(args) -> list[dict]:
    from benchmarks.cmvm_suite import suite

    groups = tuple(args.groups.split(',')) if args.groups else None
    cases = suite(groups=groups, max_size=args.max_size)
    peers = [p for p in args.peers.split(',') if peer_available(p)]
    rows = []
    for p in peers:  # warm-up (first call pays module / OpenMP init)
        solve_cmvm_peer(p, cases[0].matrix, cases[0].input_kifs)
    for case in cases:
        for p in peers:
            budgets = [None] if args.max_depth_slack is None else [None, 'slack']
            for b in budgets:
                md = None
                if b == 'slack':
                    from benchmarks.peers import input_qintervals, min_adder_depth

                    md = min_adder_depth(case.matrix, input_qintervals(case.input_kifs, case.shape[0])) + args.max_depth_slack
                r = solve_cmvm_peer(p, case.matrix, case.input_kifs, max_depth=md)
                row = dict(case=case.name, **case.meta, **r)
                rows.append(row)
                print(
                    f'{case.name:18s} {p:7s} max_depth={str(md):4s} adders={r["adders"]:6d} depth={r["depth"]:3d} '
                    f'(min {r["min_depth"]}) adder_bits={r["adder_bits"]:7d} t={r["seconds"]:.3f}s',
                    flush=True,
                )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1, default=str))
    return rows


def run_model(args) -> list[dict]:
    import hgq  # noqa: F401
    import numpy as np

    from benchmarks.yosys_stats import yosys_available, yosys_stats

    model = small_hgq_model(args.seed)
    x = np.random.default_rng(args.seed + 1).normal(size=(1024, 16)).astype('float32')
    ref = model.predict(x, verbose=0)
    root = Path(args.out_dir)
    rows = []
    for p in args.peers.split(','):
        if not peer_available(p):
            continue
        variants = [('comb', dict(latency_cutoff=None)), ('pipe', dict(latency_cutoff=args.latency_cutoff))]
        if p == 'alkaid':
            variants.append(('comb_noternary', dict(latency_cutoff=None, ternary_fuse=False)))
            da_stages = [r['n_stages'] for r in rows if r['peer'] == 'da4ml' and r['variant'] == 'pipe']
            if da_stages:  # like-for-like pipelining: as many stages as da4ml used
                variants.append((f'pipe_n{da_stages[0]}', dict(n_stages=da_stages[0])))
        for tag, kw in variants:
            rtl = peer_verilog(p, model, root / f'{p}_{tag}', prj_name=f'{p}_{tag}', **kw)
            comb = rtl.info.pop('comb')
            exact = bool(np.all(np.asarray(comb.predict(x)) == ref))
            row = dict(rtl.info, variant=tag, top=rtl.top, files=[str(f) for f in rtl.files], bit_exact=exact)
            if yosys_available() and not args.no_yosys:
                st = yosys_stats(rtl.files, rtl.top, timeout=args.yosys_timeout)
                row['yosys'] = {k: v for k, v in st.items() if k != 'cells'}
                row['yosys_cells'] = st['cells']
            rows.append(row)
            ys = row.get('yosys', {})
            print(
                f'{p:7s} {tag:15s} exact={exact} est_cost={rtl.info["native_cost"]:.0f} stages={rtl.info["n_stages"]} '
                f'LUT={ys.get("luts")} FF={ys.get("ffs")} CARRY={ys.get("carry")} INV={ys.get("inv")} '
                f'MUXF={ys.get("muxf")} SRL={ys.get("srl")} yosys_t={ys.get("seconds", 0):.1f}s '
                f'trace_t={rtl.info["trace_seconds"]:.2f}s',
                flush=True,
            )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1, default=str))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    c = sub.add_parser('cmvm')
    c.add_argument('--max-size', type=int, default=None)
    c.add_argument('--groups', default=None, help='comma list of dense,sparse,rect,large')
    c.add_argument('--max-depth-slack', type=int, default=None)
    c.add_argument('--peers', default=','.join(PEERS))
    c.add_argument('--out', default=None)
    m = sub.add_parser('model')
    m.add_argument('--out-dir', default='/tmp/hgqc_peer_rtl')
    m.add_argument('--latency-cutoff', type=float, default=5)
    m.add_argument('--seed', type=int, default=0)
    m.add_argument('--peers', default=','.join(PEERS))
    m.add_argument('--no-yosys', action='store_true')
    m.add_argument('--yosys-timeout', type=float, default=300)
    m.add_argument('--out', default=None)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    (run_cmvm if args.cmd == 'cmvm' else run_model)(args)
    print(f'total {time.perf_counter() - t0:.1f}s', file=sys.stderr)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

"""yosys LUTs beside the peers on more than the three fixtures: the seeded HGQ2 models of
``benchmarks.peer_exactness`` (Dense / Conv / pooling / BN / table layers over the quantizer
modes), combinational by default; ``--latency-cutoff C`` pipelines hgqc and da4ml every C adder
levels and gives alkaid hgqc's number of stages; the ratios then count only the peer designs with
as many stages as hgqc's (da4ml's levels are its own, so its stage count can differ).

    python -m benchmarks.lut_sweep [--models NAME,...] [--n 2000] [--latency-cutoff 0] [--no-yosys]

Per model: hgqc's Verilog and da4ml's and alkaid's through ``benchmarks.resources`` (same yosys
flow: ``synth_xilinx -family xcup -flatten``), adders and adder depth by one definition for all.
Both peers refuse a non-WRAP quantizer on a raw model input; they are then given an input port
typed like hgqc's (the first input quantizer's set of outputs per element, ``port typed``).
Every peer design is checked with its own bit-exact model (``CombLogic.predict``) against
``model.predict`` on ``--n`` inputs (``benchmarks.peer_exactness.inputs``); a design that
differs computes another function and is left out of the ratio (``differs``). The summary: hgqc
LUTs / min(exact peers) per model, median, worst, and how many models are at most 0.90, up to
1.0, and above.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .resources import _fmt, bench_hgqc, bench_peer  # (imports ``peers`` first: one OpenMP thread)

PEERS = ('da4ml', 'alkaid')
COLS = ['model', 'tool', 'adders', 'depth', 'stages', 'luts', 'ffs', 'carry', 'note']


def first_input_quantizer(model) -> Any:
    return next(layer.iq for layer in model.layers if getattr(layer, 'iq', None) is not None)


def input_range(model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low, high, step) per input element: the first input quantizer's set of outputs (hgqc's port
    type, before hgqc narrows the elements no output depends on)."""
    from hgqc.testing.models import quantizer_kif

    iq = first_input_quantizer(model)
    shape = tuple(model.input_shape[1:])
    k, i, f = (np.broadcast_to(a, (1, *shape))[0].astype(np.int64) for a in quantizer_kif(iq, (1, *shape)))
    zero = k + i + f <= 0
    step = np.where(zero, 1.0, 2.0 ** -f.astype(np.float64))
    high = np.where(zero, 0.0, 2.0 ** i.astype(np.float64) - step)
    sym = str(iq.quantizer.overflow_mode).upper().endswith('SAT_SYM')
    low = np.where(k > 0, -high if sym else -(2.0 ** i.astype(np.float64)), 0.0)
    return low, high, step


def peer_row(
    name: str, model, x: np.ndarray, want: np.ndarray, workdir: Path, synth: bool, cutoff: int = 0, stages: int = 0
) -> dict:
    """One peer's row: raw input first, then the typed port; ``note`` says which and whether it is exact."""
    try:
        row = bench_peer(name, model, cutoff, stages, 1, workdir, synth)
        feed, how = x, ''
    except AssertionError:  # both peers assert on a non-WRAP quantizer of the raw input
        port = input_range(model)
        row = bench_peer(name, model, cutoff, stages, 1, workdir, synth, input_range=port)
        feed, how = np.asarray(first_input_quantizer(model)(x, training=False)), 'port typed; '
    got = np.asarray(row.pop('comb').predict(feed.reshape(len(x), -1).astype(np.float64), n_threads=1))
    bad = int(np.sum(got.reshape(want.shape) != want))
    row['exact'] = bad == 0
    row['note'] = how + ('exact' if bad == 0 else f'differs: {bad}/{want.size} outputs')
    return row


def main(argv: list[str] | None = None) -> int:
    from .peer_exactness import SPECS, build, inputs
    from .peers import peer_available

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--models', default=','.join(n for n, s in SPECS.items() if s[0] != 'fixture'))
    ap.add_argument('--n', type=int, default=2000)
    ap.add_argument('--latency-cutoff', type=int, default=0, help='adder levels per stage (0: combinational)')
    ap.add_argument('--no-yosys', action='store_true')
    args = ap.parse_args(argv)
    synth = not args.no_yosys
    ratios: dict[str, float] = {}
    ff_ratios: dict[str, float] = {}
    table: list[dict] = []
    with tempfile.TemporaryDirectory(prefix='hgqc_lutsweep_') as tmp:
        for name in args.models.split(','):
            model = build(name)
            x = inputs(model, args.n)
            want = np.asarray(model.predict(x, batch_size=1024, verbose=0), np.float64).reshape(len(x), -1)
            rows = [bench_hgqc(model, args.latency_cutoff, 1, Path(tmp), synth)]
            for peer in PEERS:
                if not peer_available(peer):
                    continue
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter('ignore')
                        rows.append(peer_row(peer, model, x, want, Path(tmp), synth, args.latency_cutoff, rows[0]['stages']))
                except Exception as e:  # noqa: BLE001 - a peer that cannot convert a model is a result too
                    rows.append({'tool': peer, 'note': f'failed: {type(e).__name__}: {str(e)[:80]}'})
            for r in rows:
                r['model'] = name
                print(' | '.join(_fmt(r.get(c)) for c in COLS), flush=True)
            table += rows
            exact = [r for r in rows[1:] if r.get('exact') and 'luts' in r]
            if args.latency_cutoff:  # registers compare only at equal pipeline depth
                exact = [r for r in exact if r['stages'] == rows[0]['stages']]
            if synth and exact and min(r['luts'] for r in exact) > 0:
                ratios[name] = rows[0]['luts'] / min(r['luts'] for r in exact)
                if args.latency_cutoff and min(r['ffs'] for r in exact) > 0:
                    ff_ratios[name] = rows[0]['ffs'] / min(r['ffs'] for r in exact)
    print('\n| ' + ' | '.join(COLS) + ' | hgqc / min(exact peers) |\n|' + '---|' * (len(COLS) + 1))
    for r in table:
        ratio = f'{ratios[r["model"]]:.3f}' if r['tool'] == 'hgqc' and r['model'] in ratios else ''
        print('| ' + ' | '.join(_fmt(r.get(c)) for c in COLS) + f' | {ratio} |')
    for what, r in (('LUTs', ratios), ('FFs', ff_ratios)):
        if r:
            print(summary(what, r))
    return 0


def summary(what: str, ratios: dict[str, float]) -> str:
    """One line: how many models, the median and worst hgqc / min(exact peers) ratio, and the counts per band."""
    v = sorted(ratios.values())
    worst = max(ratios, key=ratios.get)
    return (
        f'{what}: {len(v)} models with an exact peer design: median {statistics.median(v):.3f}, '
        f'worst {v[-1]:.3f} ({worst}); <= 0.90: {sum(r <= 0.90 for r in v)}, '
        f'0.90-1.0: {sum(0.90 < r <= 1.0 for r in v)}, > 1.0: {sum(r > 1.0 for r in v)}'
    )


if __name__ == '__main__':
    raise SystemExit(main())

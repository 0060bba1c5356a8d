"""End-to-end figures for bundled/trained models: hgqc beside da4ml and alkaid, in one run.

Prints, per model and per tool: compile time (median of --repeat), adders, adder depth, yosys
LUT/FF/CARRY (synth_xilinx -family xcup -flatten), and hgqc's interpreter throughput.

    python -m benchmarks.e2e [MODEL.keras ...] [--latency-cutoff N] [--repeat 3] [--no-peers] [--no-yosys]

Without model arguments it uses examples/jsc_example.keras. Not run by CI.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault('KERAS_BACKEND', 'jax')

from . import peers  # noqa: F401 - sets OMP_NUM_THREADS before the peers load
from .peers import peer_available, peer_verilog
from .yosys_stats import yosys_available, yosys_stats

ROOT = Path(__file__).resolve().parents[1]


def _median_time(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_hgqc(model, cutoff: int, repeat: int, workdir: Path, synth: bool) -> dict:
    import hgqc
    from hgqc.passes import adder_depth, count_adders

    secs, project = _median_time(lambda: hgqc.compile(model, latency_cutoff=cutoff), repeat)
    row = {
        'tool': 'hgqc',
        'compile_s': secs,
        'adders': count_adders(project.graph),
        'depth': adder_depth(project.graph),
        'latency': project.metadata['latency'],
    }
    x = np.random.default_rng(0).normal(0, 1, (20000,) + tuple(model.inputs[0].shape[1:])).astype(np.float32)
    t, _ = _median_time(lambda: project.predict(x), 3)
    row['interp_samples_s'] = x.shape[0] / t
    if synth:
        out = project.write(workdir / f'hgqc_{cutoff}', force=True)
        row.update(_synth(sorted((out / 'src').glob('*.v')), project.top))
    return row


def bench_peer(name: str, model, cutoff: int, stages: int, repeat: int, workdir: Path, synth: bool) -> dict:
    """da4ml pipelines by adder levels like hgqc; alkaid's cutoff is in ns, so match stage counts."""

    def run():
        out = workdir / f'{name}_{cutoff}'
        if cutoff <= 0:
            return peer_verilog(name, model, out, None)
        if name == 'alkaid':
            return peer_verilog(name, model, out, None, n_stages=stages)
        return peer_verilog(name, model, out, cutoff)

    secs, rtl = _median_time(run, repeat)
    row = {'tool': f'{name} {rtl.info.get("version")}', 'compile_s': secs, 'latency': rtl.info.get('n_stages')}
    if synth:
        row.update(_synth(rtl.files, rtl.top))
    return row


def _synth(files, top) -> dict:
    s = yosys_stats(files, top)
    return {'luts': s['luts'], 'ffs': s['ffs'], 'carry': s['carry']}


def _fmt(v) -> str:
    if v is None:
        return '-'
    if isinstance(v, float):
        return f'{v:.3g}' if v < 1000 else f'{v:.0f}'
    return str(v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('models', nargs='*', default=[str(ROOT / 'examples' / 'jsc_example.keras')])
    ap.add_argument('--latency-cutoff', type=int, nargs='*', default=[0])
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--no-peers', action='store_true')
    ap.add_argument('--no-yosys', action='store_true')
    args = ap.parse_args(argv)

    import hgq  # noqa: F401
    import keras

    synth = not args.no_yosys and yosys_available()
    cols = ['tool', 'compile_s', 'adders', 'depth', 'latency', 'luts', 'ffs', 'carry', 'interp_samples_s']
    with tempfile.TemporaryDirectory(prefix='hgqc_bench_') as tmp:
        for path in args.models:
            model = keras.models.load_model(path, compile=False)
            for cutoff in args.latency_cutoff:
                print(f'\n## {Path(path).name}, latency cutoff {cutoff} ({"combinational" if cutoff == 0 else "pipelined"})')
                rows = [bench_hgqc(model, cutoff, args.repeat, Path(tmp), synth)]
                if not args.no_peers:
                    for name in ('da4ml', 'alkaid'):
                        if peer_available(name):
                            rows.append(bench_peer(name, model, cutoff, rows[0]['latency'], args.repeat, Path(tmp), synth))
                print(' | '.join(f'{c:>16}' for c in cols))
                for r in rows:
                    print(' | '.join(f'{_fmt(r.get(c)):>16}' for c in cols))
                if synth and len(rows) > 1:
                    best = min(r['luts'] for r in rows[1:])
                    print(f'hgqc LUTs / best peer LUTs = {rows[0]["luts"] / best:.3f}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

"""hgqc's hls4ml target vs hls4ml 1.3.0's own project for the same model: g++ build time and C-sim throughput.

    python -m benchmarks.hls [MODEL.keras] [--latency-cutoff N] [--n 10000] [--opt 1,2] [--no-hls4ml]

Without a model argument it uses examples/jsc_example.keras. Per tool it prints the project
generation time, the g++ build of the C-simulation library (hgqc: the command of its
``build_lib.sh``; hls4ml: ``hls_model.compile()``, i.e. hls4ml's ``build_lib.sh`` at its -O3)
and C-simulation throughput on ``--n`` inputs (hgqc: ``CSimulator.run`` on integer inputs,
through ctypes; hls4ml: ``hls_model.predict`` on floats, through its ctypes bridge), and
whether the outputs equal ``keras.predict`` exactly. hls4ml converts HGQ2 models itself (its
keras_v3 converter reads the HGQ quantizers), so both sides compile the same trained model.
Not run by CI; timings on a shared machine are noisy, so compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault('KERAS_BACKEND', 'jax')

ROOT = Path(__file__).resolve().parents[1]


def bench_hgqc(model, x: np.ndarray, cutoff: int, opt: str, workdir: Path) -> dict:
    import hgqc
    from hgqc.runtime.csim import CSimulator

    t0 = time.perf_counter()
    project = hgqc.compile(model, target='hls4ml', latency_cutoff=cutoff)
    gen = time.perf_counter() - t0
    xi = project.to_fixed(x)
    with CSimulator(project.files, project.graph, project.top, workdir=workdir / f'hgqc{opt}', opt=opt) as cs:
        cs.run([a[:10] for a in xi])  # warm-up (first call loads pages)
        t0 = time.perf_counter()
        outs = cs.run(xi)
        run = time.perf_counter() - t0
    (_name, node), out = project.graph.outputs[0], outs[0]
    y = np.ldexp(out.astype(np.float64), -node.type.f.reshape(node.shape)[None, ...].astype(np.int64))
    return {
        'tool': f'hgqc ({opt})',
        'generate_s': gen,
        'build_s': cs.build_seconds,
        'samples_per_s': len(x) / run,
        'y': y,
        'latency': project.metadata['latency'],
        'cpp_lines': project.files[f'firmware/{project.top}.cpp'].count('\n'),
    }


def bench_hls4ml(model, x: np.ndarray, workdir: Path) -> dict:
    import hls4ml

    cfg = {'Model': {'Precision': 'ap_fixed<16,6>', 'ReuseFactor': 1, 'Strategy': 'Latency'}}  # HGQ layers override it
    t0 = time.perf_counter()
    hm = hls4ml.converters.convert_from_keras_model(
        model, output_dir=str(workdir / 'hls4ml_prj'), backend='Vitis', io_type='io_parallel', hls_config=cfg
    )
    gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    hm.compile()
    build = time.perf_counter() - t0
    hm.predict(x[:10])
    t0 = time.perf_counter()
    y = hm.predict(x)
    run = time.perf_counter() - t0
    return {'tool': 'hls4ml 1.3.0', 'generate_s': gen, 'build_s': build, 'samples_per_s': len(x) / run, 'y': np.asarray(y)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('model', nargs='?', default=str(ROOT / 'examples' / 'jsc_example.keras'))
    ap.add_argument('--latency-cutoff', type=int, default=0)
    ap.add_argument('--n', type=int, default=10_000)
    ap.add_argument('--opt', default='1', help='comma-separated g++ -O levels to build hgqc with (default 1)')
    ap.add_argument('--no-hls4ml', action='store_true')
    args = ap.parse_args(argv)

    import hgq  # noqa: F401 - registers the HGQ2 layers for loading
    import keras

    from hgqc.testing.models import make_inputs

    model = keras.models.load_model(args.model, compile=False)
    x = make_inputs(model, args.n, seed=0).astype(np.float32)
    ref = np.asarray(model.predict(x, batch_size=len(x), verbose=0), dtype=np.float64)
    rows = []
    with tempfile.TemporaryDirectory(prefix='hgqc-bench-hls-') as tmp:
        for level in args.opt.split(','):
            opt = f'-O{level.strip()}'
            rows.append(bench_hgqc(model, x, args.latency_cutoff, opt, Path(tmp)))
        if not args.no_hls4ml:
            rows.append(bench_hls4ml(model, x, Path(tmp)))
    head = rows[0]
    print(f'model {Path(args.model).name}, {args.n} samples, hgqc latency {head["latency"]} ({head["cpp_lines"]} C++ lines)')
    print(f'{"tool":<16} {"generate s":>10} {"g++ build s":>12} {"C-sim samples/s":>16}  == keras')
    for r in rows:
        same = np.array_equal(r['y'].reshape(ref.shape), ref)
        print(f'{r["tool"]:<16} {r["generate_s"]:>10.2f} {r["build_s"]:>12.2f} {r["samples_per_s"]:>16.0f}  {same}')
    if not args.no_hls4ml:
        ours, theirs = rows[0], rows[-1]
        print(
            f'ratios hgqc/hls4ml: build {ours["build_s"] / theirs["build_s"]:.2f}x, '
            f'throughput {ours["samples_per_s"] / theirs["samples_per_s"]:.2f}x'
        )
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

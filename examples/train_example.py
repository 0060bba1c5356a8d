"""Train the JSC-shaped HGQ2 example model and save it as examples/jsc_example.keras.

Usage:  python examples/train_example.py [--seed 0] [--out path.keras]

The model is built by ``hgqc.testing.models.make_jsc_model`` (synthetic data, no
downloads, ~15-30 s on 2 CPU cores) and is fully deterministic for a given seed.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault('KERAS_BACKEND', 'jax')

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # make `hgqc` importable when run from anywhere

import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from hgqc.testing.models import make_jsc_model, save_model  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', type=Path, default=HERE / 'jsc_example.keras')
    args = parser.parse_args()

    t0 = time.time()
    model = make_jsc_model(seed=args.seed)
    dt = time.time() - t0

    total = nonzero = zero_bits = 0
    print(f'{"layer":10s} {"nonzero":>9s} {"b=0":>6s}  kernel bits (min/mean/max of nonzero-width)')
    for layer in model.layers:
        if not hasattr(layer, 'kq'):
            continue
        qk = np.asarray(ops.convert_to_numpy(layer.qkernel))
        bits = np.asarray(ops.convert_to_numpy(layer.kq.bits))  # SAT_SYM kbi: bits = round(b)
        nz = int(np.count_nonzero(qk))
        b0 = int(np.sum(bits <= 0))
        total += qk.size
        nonzero += nz
        zero_bits += b0
        live = bits[bits > 0]
        stats = f'{live.min():.0f}/{live.mean():.2f}/{live.max():.0f}' if live.size else '-'
        print(f'{layer.name:10s} {nz:5d}/{qk.size:<4d} {b0:6d}  {stats}')

    print(f'test accuracy (quantized, after trace_minmax): {model._hgqc_accuracy:.4f}')
    print(
        f'nonzero kernel weights: {nonzero}/{total} ({nonzero / total:.1%}); '
        f'0-bit kernel weights: {zero_bits}/{total} ({zero_bits / total:.1%})'
    )
    print(f'training time: {dt:.1f} s')

    save_model(model, args.out)
    print(f'saved to {args.out}')


if __name__ == '__main__':
    main()

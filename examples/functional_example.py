"""Train the functional example model and save it as examples/functional_example.keras.

Usage:  python examples/functional_example.py [--seed 0] [--out path.keras]

A functional (non-sequential) HGQ2 model exercising batch-norm-fused dense, a residual add, a
tanh lookup table, a reshape to 3-D and an einsum dense ``bij,jk->bik``; built by
``hgqc.testing.functional.make_functional_model`` on synthetic data (deterministic per seed).
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault('KERAS_BACKEND', 'jax')

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # make `hgqc` importable when run from anywhere

from hgqc.testing.functional import make_functional_model  # noqa: E402
from hgqc.testing.models import save_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', type=Path, default=HERE / 'functional_example.keras')
    args = parser.parse_args()
    t0 = time.time()
    model = make_functional_model(seed=args.seed)
    print(f'test accuracy (quantized, after trace_minmax): {model._hgqc_accuracy:.4f}')
    print(f'training time: {time.time() - t0:.1f} s')
    save_model(model, args.out)
    print(f'saved to {args.out}')


if __name__ == '__main__':
    main()

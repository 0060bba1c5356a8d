"""Train the digits CNN example (sklearn's 8x8 digits) and save it as examples/digits_cnn.keras.

Usage:  python examples/train_digits_cnn.py [--seed 0] [--epochs 20] [--out path.keras]

The model is built by ``hgqc.testing.models.make_digits_cnn``: conv -> max-pool -> conv ->
flatten -> dense with hgq2's default quantizers, trained for a few seconds on 2 CPU cores
(the data ships with scikit-learn; nothing is downloaded) and fully deterministic per seed.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault('KERAS_BACKEND', 'jax')

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # make `hgqc` importable when run from anywhere

from hgqc.testing.models import make_digits_cnn, save_model  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--epochs', type=int, default=20)
    parser.add_argument('--out', type=Path, default=HERE / 'digits_cnn.keras')
    args = parser.parse_args()

    t0 = time.time()
    model = make_digits_cnn(seed=args.seed, epochs=args.epochs)
    print(f'training time: {time.time() - t0:.1f} s')
    print(f'test accuracy (quantized, after trace_minmax): {model._hgqc_accuracy:.4f}')
    save_model(model, args.out)
    print(f'saved to {args.out}')


if __name__ == '__main__':
    main()

"""Make test vectors for a .keras model: inputs (in and 4x beyond the data range) and keras' outputs.

usage: python examples/make_inputs.py MODEL.keras INPUTS.npy EXPECTED.npy [N]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault('KERAS_BACKEND', 'jax')

import numpy as np  # noqa: E402


def main(argv: list[str]) -> int:
    model_path, x_path, y_path = argv[:3]
    n = int(argv[3]) if len(argv) > 3 else 10000
    import hgq  # noqa: F401 - registers the HGQ2 layers
    import keras

    model = keras.models.load_model(model_path, compile=False)
    shape = tuple(model.inputs[0].shape[1:])
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (n,) + shape).astype(np.float32)
    x[n // 2 :] *= 4  # half of the vectors 4x beyond the training range: exercises WRAP/SAT paths
    y = np.asarray(model.predict(x, batch_size=4096, verbose=0), dtype=np.float64)
    for p in (x_path, y_path):
        Path(p).parent.mkdir(parents=True, exist_ok=True)
    np.save(x_path, x)
    np.save(y_path, y)
    print(f'{n} input vectors -> {x_path}; keras outputs -> {y_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

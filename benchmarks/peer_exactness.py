"""Bit-exactness against ``model.predict``: hgqc beside da4ml, alkaid and hls4ml, on the same models.

    python -m benchmarks.peer_exactness [--models NAME,...] [--tools hgqc,da4ml,alkaid,hls4ml] [--n 5000]

Models: the three fixtures under ``examples/`` and ~30 seeded HGQ2 models sweeping kif/kbi, WRAP /
SAT / SAT_SYM, RND / TRN / RND_CONV / RND_ZERO / RND_INF / TRN_ZERO, heterogeneous and homogeneous
bits, over Dense, Conv1D/2D, max/average pooling, BatchNormalization + ReLU, table activations
and global pooling (``SPECS``). Inputs per model: 40 % N(0, 1) (half on the 2^-8 grid), 30 % at
8x that scale (overflow), 30 % exact rounding ties of the first input quantizer.

Each tool is judged by its own bit-accurate software model of the hardware it writes: hgqc's
interpreter (``Project.predict``), da4ml's and alkaid's ``CombLogic.predict`` (C++), hls4ml's C
simulation (``compile()`` + ``predict()``, strategy Latency). A cell says ``exact``, ``N/M`` (outputs
differing from ``model.predict``, of all outputs) or ``unsupported`` (the tool's error). da4ml and
alkaid refuse a non-WRAP quantizer on a raw model input; they are then retried with an explicit
28-bit input port (``inputs_kif=(1, 7, 20)``), marked ``*``. Mismatches found this way (2026-11-29)
are described in docs/benchmarks.md ("Exactness beside the peers").
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault('KERAS_BACKEND', 'jax')
ROOT = Path(__file__).resolve().parents[1]
TOOLS = ('hgqc', 'da4ml', 'alkaid', 'hls4ml')

# every keras float32 sum of these models stays exact (well under 2^24 steps)
KIF = {'iq': {'i': (-1, 3), 'f': (0, 4)}, 'kq': {'i': (-2, 1), 'f': (0, 4)}, 'bq': {'i': (-2, 3), 'f': (0, 5)}}
KBI = {'iq': {'i': (-1, 3), 'b': (1, 7)}, 'kq': {'i': (-2, 1), 'b': (0, 5)}, 'bq': {'i': (-2, 3), 'b': (1, 8)}}


def _specs() -> dict[str, tuple]:
    specs: dict[str, tuple] = {}
    for qt in ('kif', 'kbi'):
        for ov in ('WRAP', 'SAT', 'SAT_SYM'):
            for het in (True, False):
                specs[f'qdense_{qt}_{ov}_RND_{"het" if het else "hom"}'] = ('qdense', qt, ov, 'RND', het, 1)
    modes = [
        ('kif', 'WRAP', 'TRN', True),
        ('kbi', 'SAT', 'TRN', True),
        ('kif', 'SAT_SYM', 'TRN', False),
        ('kif', 'WRAP', 'RND_CONV', True),
        ('kbi', 'SAT', 'RND_CONV', False),
        ('kif', 'SAT', 'RND_CONV', True),
        ('kif', 'WRAP', 'RND_ZERO', True),
        ('kbi', 'WRAP', 'RND_INF', True),
        ('kif', 'SAT', 'TRN_ZERO', True),
    ]
    for qt, ov, rnd, het in modes:
        specs[f'qdense_{qt}_{ov}_{rnd}_{"het" if het else "hom"}'] = ('qdense', qt, ov, rnd, het, 2)
    layers = [
        ('conv1d', 'kif', 'WRAP', 'RND', True),
        ('conv2d_avg', 'kbi', 'SAT', 'RND', True),
        ('conv2d_max', 'kif', 'SAT_SYM', 'TRN', False),
        ('dense_bn', 'kif', 'WRAP', 'RND', True),
        ('dense_tanh_lut', 'kif', 'SAT', 'RND', True),
        ('dense_sigmoid_lut', 'kbi', 'WRAP', 'TRN', True),
        ('dense_oq', 'kif', 'SAT', 'RND', True),
        ('gap1d', 'kbi', 'WRAP', 'RND', False),
        ('conv1d', 'kbi', 'SAT', 'RND_CONV', False),
    ]
    for kind, qt, ov, rnd, het in layers:
        specs[f'{kind}_{qt}_{ov}_{rnd}_{"het" if het else "hom"}'] = ('layers', kind, qt, ov, rnd, het, 3)
    for fx in ('jsc_example', 'digits_cnn', 'functional_example'):
        specs[fx] = ('fixture', fx)
    return specs


SPECS = _specs()


def _randomize_quantizer(q: Any, role: str, rng: np.random.Generator, het: bool) -> None:
    """Bit-widths drawn per element (``het``: ~10 % of them pruned to zero bits), small ranges."""
    from hgq.quantizer.internal import FixedPointQuantizerKBI, FixedPointQuantizerKIF

    shape = tuple(q._k.shape)
    k = (rng.random(shape) < 0.75).astype(np.uint8)

    def jitter() -> np.ndarray:
        return rng.uniform(-0.4, 0.4, shape)

    if isinstance(q, FixedPointQuantizerKIF):
        (ilo, ihi), (flo, fhi) = KIF[role]['i'], KIF[role]['f']
        i = rng.integers(ilo, ihi + 1, shape)
        f = np.maximum(rng.integers(flo, fhi + 1, shape), 1 - i)
        if het:
            f = np.where(rng.random(shape) < 0.1, -i - k, f)
        q._k.assign(k)
        q._i.assign((i + jitter()).astype(np.float32))
        q._f.assign((f + jitter()).astype(np.float32))
    elif isinstance(q, FixedPointQuantizerKBI):
        (ilo, ihi), (blo, bhi) = KBI[role]['i'], KBI[role]['b']
        i = rng.integers(ilo, ihi + 1, shape)
        b = rng.integers(blo, bhi + 1, shape)
        if het:
            b = np.where(rng.random(shape) < 0.1, 0, b)
        q._k.assign(k)
        q._i.assign((i + jitter()).astype(np.float32))
        q._b.assign((b + jitter()).astype(np.float32))
    else:
        raise TypeError(f'unexpected quantizer {type(q).__name__}')


def _layer_model(kind: str, qt: str, ov: str, rnd: str, het: bool, seed: int):
    import keras
    from hgq import layers as hl
    from hgq.quantizer import QuantizerConfig

    from hgqc.testing.layer_models import _quantizers, randomize_weights

    keras.utils.set_random_seed(seed)
    data = dict(homogeneous_axis=(0,)) if het else dict(heterogeneous_axis=())
    param = dict(homogeneous_axis=()) if het else dict(heterogeneous_axis=())
    mode = dict(overflow_mode=ov, round_mode=rnd)
    iq = QuantizerConfig(qt, 'datalane', **mode, **data)
    kq, bq = QuantizerConfig(qt, 'weight', **mode, **param), QuantizerConfig(qt, 'bias', **mode, **param)
    d = dict(iq_conf=iq, kq_conf=kq, bq_conf=bq)
    if kind.startswith('conv1d') or kind == 'gap1d':
        inp = keras.Input((10, 2) if kind == 'conv1d' else (8, 3))
        h = hl.QConv1D(3 if kind == 'conv1d' else 4, 3 if kind == 'conv1d' else 2, activation='relu', **d)(inp)
        h = hl.QMaxPooling1D(2, iq_conf=iq)(h) if kind == 'conv1d' else hl.QGlobalAveragePooling1D(iq_conf=iq)(h)
    elif kind.startswith('conv2d'):
        inp = keras.Input((6, 6, 1) if kind == 'conv2d_avg' else (6, 6, 2))
        if kind == 'conv2d_avg':
            h = hl.QAveragePooling2D(2, iq_conf=iq)(hl.QConv2D(3, 3, activation='relu', **d)(inp))
        else:
            h = hl.QMaxPooling2D(2, iq_conf=iq)(hl.QConv2D(3, 2, **d)(inp))
    else:
        inp = keras.Input((6,))
        oq = {'activation': 'relu', 'enable_oq': True, 'oq_conf': iq} if kind == 'dense_oq' else {}
        h = hl.QDense(6, **d, **oq)(inp)
        if kind == 'dense_bn':
            h = keras.layers.ReLU()(hl.QBatchNormalization(**d)(h))
        elif kind in ('dense_tanh_lut', 'dense_sigmoid_lut'):
            fn = 'tanh' if kind == 'dense_tanh_lut' else keras.activations.sigmoid
            h = hl.QUnaryFunctionLUT(fn, iq_conf=iq, oq_conf=iq)(h)
    if len(h.shape) > 2:
        h = keras.layers.Flatten()(h)
    out = hl.QDense(4 if kind in ('conv1d', 'conv2d_avg') else 3, **d)(h)
    model = keras.Model(inp, out, name=f'{kind}_{qt}_{ov}_{rnd}')
    model(np.zeros((1, *inp.shape[1:]), np.float32))
    rng = np.random.default_rng(seed + 1000)
    for layer in model.layers:
        for role, q in _quantizers(layer):
            _randomize_quantizer(q.quantizer, role, rng, het)
        randomize_weights(layer, rng)
    return model


def build(name: str):
    import keras

    from hgqc.testing.models import make_qdense_model

    spec = SPECS[name]
    if spec[0] == 'fixture':
        return keras.models.load_model(ROOT / 'examples' / f'{spec[1]}.keras')
    if spec[0] == 'qdense':
        _, qt, ov, rnd, het, seed = spec
        model = make_qdense_model(qt, ov, rnd, het, seed=seed, activation='relu' if (ov == 'SAT' and rnd == 'RND') else None)
        model(np.zeros((1, 8), np.float32))
        return model
    return _layer_model(*spec[1:])


def inputs(model, n: int, seed: int = 0) -> np.ndarray:
    """The three input groups of the module doc."""
    from hgqc.testing.models import make_inputs, quantizer_kif

    n_a, n_b = 2 * n // 5, 3 * n // 10
    a = make_inputs(model, n_a, seed, scale=1.0)
    b = make_inputs(model, n_b, seed + 1, scale=8.0)
    shape = (n - n_a - n_b, *tuple(model.input_shape[1:]))
    iq = next(layer.iq for layer in model.layers if getattr(layer, 'iq', None) is not None)
    _, i, f = quantizer_kif(iq, (1, *shape[1:]))
    i, f = np.broadcast_to(i, shape), np.broadcast_to(f, shape)
    bits = 2 ** np.clip(i + f + 1, 0, 12)
    m = np.random.default_rng(seed + 2).integers(-bits, bits + 1, shape)
    ties = ((m + 0.5) * 2.0 ** (-f.astype(np.float64))).astype(np.float32)
    return np.concatenate([a, b, ties]).astype(np.float32)


def _peer_trace(tool: str, model, x: np.ndarray) -> tuple[np.ndarray, bool]:
    if tool == 'da4ml':
        from da4ml.converter import trace_model
        from da4ml.trace import HWConfig
        from da4ml.trace import comb_trace as combine

        hw = HWConfig(1, -1, -1)
    else:
        from alkaid.converter import trace_model
        from alkaid.trace import HWConfig
        from alkaid.trace import trace as combine

        hw = HWConfig(1, 1, -1)
    retried = False
    try:
        inp, out = trace_model(model, hw, None)
    except AssertionError:  # a non-WRAP quantizer on the raw input: give it an explicit wide port
        inp, out = trace_model(model, hw, None, inputs_kif=(1, 7, 20))
        retried = True
    comb = combine(inp, out)
    return np.asarray(comb.predict(x.reshape(len(x), -1).astype(np.float64), n_threads=1)), retried


def _hls4ml(model, x: np.ndarray) -> np.ndarray:
    import hls4ml

    cfg = {'Model': {'Precision': 'ap_fixed<16,6>', 'ReuseFactor': 1, 'Strategy': 'Latency'}}
    with tempfile.TemporaryDirectory(prefix='hgqc-peerx-') as tmp:
        convert = hls4ml.converters.convert_from_keras_model
        hm = convert(model, output_dir=tmp, backend='Vitis', io_type='io_parallel', hls_config=cfg)
        hm.compile()
        return np.asarray(hm.predict(x))


def judge(tool: str, model, x: np.ndarray, want: np.ndarray) -> str:
    """One table cell (see the module doc)."""
    mark = ''
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            if tool == 'hgqc':
                import hgqc

                got = np.asarray(hgqc.compile(model).predict(x))
            elif tool in ('da4ml', 'alkaid'):
                got, retried = _peer_trace(tool, model, x)
                mark = '*' if retried else ''
            else:
                got = _hls4ml(model, x)
    except Exception as e:  # noqa: BLE001 - a peer's refusal is a result
        why = (str(e).strip().splitlines() or [''])[0][:60]
        return f'unsupported{mark} ({type(e).__name__}{": " + why if why else ""})'
    got = got.astype(np.float64).reshape(want.shape)
    bad = int(np.sum(got != want))
    return f'exact{mark}' if bad == 0 else f'{bad}/{want.size}{mark}'


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--models', default=','.join(SPECS))
    ap.add_argument('--tools', default=','.join(TOOLS))
    ap.add_argument('--n', type=int, default=5000)
    args = ap.parse_args(argv)
    tools = [t for t in args.tools.split(',') if t]
    unknown = [t for t in tools if t not in TOOLS] + [m for m in args.models.split(',') if m not in SPECS]
    if unknown:
        raise SystemExit(f'unknown tool or model: {", ".join(unknown)}')
    print('| model | ' + ' | '.join(tools) + ' |\n|---|' + '---|' * len(tools), flush=True)
    for name in args.models.split(','):
        model = build(name)
        x = inputs(model, args.n)
        want = np.asarray(model.predict(x, batch_size=1024, verbose=0), dtype=np.float64).reshape(len(x), -1)
        print(f'| {name} | ' + ' | '.join(judge(t, model, x, want) for t in tools) + ' |', flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

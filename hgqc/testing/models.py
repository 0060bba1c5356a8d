"""Deterministic HGQ2 model builders for tests and examples.

Everything here is seeded: calling a builder twice with the same arguments
gives bit-identical models (same weights, same quantizer bit-widths).

Note: the builders call ``keras.utils.set_random_seed(seed)``, which reseeds the
global python / numpy / keras RNGs as a side effect.

Functions
---------
make_jsc_model(seed=0, epochs=200, ...)          -> keras.Model  (trained + calibrated)
make_qdense_model(q_type, overflow, round_mode,
                  heterogeneous, seed, n_in=8, n_out=6, activation=None) -> keras.Model
make_digits_data(seed=0)                         -> (x_train, y_train, x_test, y_test)
make_digits_cnn(seed=0, epochs=20, ...)          -> keras.Model  (trained + calibrated CNN)
make_inputs(model, n, seed, scale=1.0)           -> np.ndarray (float32)
save_model(model, path)
"""

from __future__ import annotations

import os

os.environ.setdefault('KERAS_BACKEND', 'jax')

import keras  # noqa: E402
import numpy as np  # noqa: E402
from hgq.layers import QDense  # noqa: E402
from hgq.quantizer import QuantizerConfig  # noqa: E402
from hgq.quantizer.internal import FixedPointQuantizerKBI, FixedPointQuantizerKIF  # noqa: E402
from hgq.utils import trace_minmax  # noqa: E402
from hgq.utils.sugar import BetaScheduler, PieceWiseSchedule  # noqa: E402

__all__ = [
    'make_digits_cnn',
    'make_digits_data',
    'make_jsc_data',
    'make_jsc_model',
    'make_qdense_model',
    'make_inputs',
    'save_model',
    'quantizer_kif',
]

JSC_N_FEATURES = 16
JSC_N_CLASSES = 5


# ---------------------------------------------------------------------------
# JSC-like model
# ---------------------------------------------------------------------------


def make_jsc_data(seed: int = 0, n: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic 16-feature / 5-class data set (gaussian mixture, 3 clusters per class).

    Features have heterogeneous spreads (per-feature scale 2**U(-2, 1)) and the last
    4 features carry no class information, so the trained input quantizer gets
    heterogeneous bit-widths.  Values are O(1) like standardised JSC features.
    Returns ``(x float32 [n, 16], y int32 [n])``.
    """
    rng = np.random.default_rng(10_000 + seed)
    n_clusters = 3
    n_inf = JSC_N_FEATURES - 4
    centers = rng.normal(0.0, 1.3, (JSC_N_CLASSES, n_clusters, JSC_N_FEATURES))
    centers[:, :, n_inf:] = 0.0  # uninformative features
    y = rng.integers(0, JSC_N_CLASSES, n)
    c = rng.integers(0, n_clusters, n)
    x = centers[y, c] + rng.normal(0.0, 0.8, (n, JSC_N_FEATURES))
    feat_scale = 2.0 ** rng.uniform(-2, 1, JSC_N_FEATURES)
    x = x * feat_scale
    return x.astype(np.float32), y.astype(np.int32)


def fit_with_ebops(
    model: keras.Model,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    ramp: tuple[int, int, float],
    learning_rate: float,
    epochs: int,
    batch_size: int,
    verbose: int = 0,
) -> None:
    """Train a classifier with an EBOPs penalty, calibrate it, and record its test accuracy.

    ``ramp = (start, end, beta_final)``: beta is 1e-7 until epoch ``start``, ramps
    logarithmically to ``beta_final`` at epoch ``end`` and holds. Then ``trace_minmax`` on the
    training set; the quantized test accuracy is stored as ``model._hgqc_accuracy``.
    """
    x_train, y_train, x_test, y_test = data
    start, end, beta_final = ramp
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=['accuracy'],
    )
    schedule = PieceWiseSchedule([(0, 1e-7, 'constant'), (start, 1e-7, 'log'), (end, beta_final, 'constant')])
    callbacks = [BetaScheduler(schedule)]
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, shuffle=True, callbacks=callbacks, verbose=verbose)
    trace_minmax(model, x_train, batch_size=4096)
    pred = np.asarray(model.predict(x_test, batch_size=4096, verbose=0))
    model._hgqc_accuracy = float(np.mean(np.argmax(pred, axis=1) == y_test))


def make_jsc_model(
    seed: int = 0,
    epochs: int = 200,
    n_samples: int = 4096,
    batch_size: int = 256,
    learning_rate: float = 1e-2,
    beta_final: float = 2e-4,
    warmup: int = 10,
    verbose: int = 0,
) -> keras.Model:
    """JSC-shaped HGQ2 model 16->64->32->32->5, trained on synthetic data.

    Three ``QDense(..., activation='relu')`` + ``QDense(5)``, all with hgq2's default
    quantizer configs (iq: kif/WRAP/RND per-feature, kernel: kbi/SAT_SYM/RND
    per-element, bias: kbi/WRAP/RND per-element).  Trained with an EBOPs beta
    ramp (log 1e-6 -> ``beta_final``) so that most kernel weights end up with
    0 bits (pruned) and the surviving bit-widths are heterogeneous, then
    calibrated with ``hgq.utils.trace_minmax`` on the training set.

    The training data is available as ``model._hgqc_train_data`` (x, y) and the
    float test accuracy as ``model._hgqc_accuracy`` (python attributes; not saved).
    """
    keras.utils.set_random_seed(seed)
    x, y = make_jsc_data(seed, n_samples)
    n_train = int(0.8 * len(x))
    x_train, y_train = x[:n_train], y[:n_train]
    x_test, y_test = x[n_train:], y[n_train:]

    inp = keras.Input((JSC_N_FEATURES,), name='inputs')
    h = QDense(64, activation='relu', name='dense1')(inp)
    h = QDense(32, activation='relu', name='dense2')(h)
    h = QDense(32, activation='relu', name='dense3')(h)
    out = QDense(JSC_N_CLASSES, name='dense_out')(h)
    model = keras.Model(inp, out, name='jsc_hgq')

    # beta: 1e-7 for `warmup` epochs, log ramp to beta_final, hold for the last ~1/6 epochs
    e1 = max(warmup + 1, epochs - max(1, epochs // 6))
    ramp = (warmup, e1, beta_final)
    fit_with_ebops(model, (x_train, y_train, x_test, y_test), ramp, learning_rate, epochs, batch_size, verbose)
    model._hgqc_train_data = (x_train, y_train)
    return model


# ---------------------------------------------------------------------------
# Digits CNN (sklearn's 8x8 digits)
# ---------------------------------------------------------------------------


def make_digits_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """sklearn's digits (1797 images 8x8, values 0..16, shipped with scikit-learn) scaled to [0, 1].

    Returns ``(x_train, y_train, x_test, y_test)`` with x float32 of shape (n, 8, 8, 1), a seeded
    80/20 split.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(x))
    n_train = int(0.8 * len(x))
    tr, te = order[:n_train], order[n_train:]
    return x[tr], y[tr], x[te], y[te]


def make_digits_cnn(
    seed: int = 0,
    epochs: int = 20,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    beta_final: float = 1e-5,
    verbose: int = 0,
) -> keras.Model:
    """A small HGQ2 CNN on sklearn's digits: conv -> max-pool -> conv -> flatten -> dense.

    ``(8, 8, 1) -> QConv2D(6, 3x3, relu) -> QMaxPooling2D(2) -> QConv2D(8, 2x2, relu) -> Flatten
    -> QDense(10)``, hgq2's default quantizer configs (per-element input quantizers, per-element
    kbi kernels), trained for a few seconds with an EBOPs beta ramp and calibrated with
    ``hgq.utils.trace_minmax``. The float test accuracy is ``model._hgqc_accuracy`` and the
    data ``model._hgqc_data`` (python attributes; not saved).
    """
    from hgq.layers import QConv2D, QMaxPooling2D

    keras.utils.set_random_seed(seed)
    x_train, y_train, x_test, y_test = make_digits_data(seed)
    inp = keras.Input((8, 8, 1), name='image')
    h = QConv2D(6, 3, activation='relu', name='conv1')(inp)
    h = QMaxPooling2D(2, name='pool1')(h)
    h = QConv2D(8, 2, activation='relu', name='conv2')(h)
    h = keras.layers.Flatten(name='flatten')(h)
    out = QDense(10, name='dense_out')(h)
    model = keras.Model(inp, out, name='digits_cnn')
    data = (x_train, y_train, x_test, y_test)
    fit_with_ebops(model, data, (max(1, epochs // 4), epochs, beta_final), learning_rate, epochs, batch_size, verbose)
    model._hgqc_data = data
    return model


# ---------------------------------------------------------------------------
# Single QDense with randomised quantizers
# ---------------------------------------------------------------------------

# (lo, hi) inclusive integer ranges for the bit-width variables, per quantizer role.
# Chosen so that every product / accumulation stays < 2**23 ulps (float32 exact).
_KIF_RANGES = {
    'iq': {'i': (-2, 3), 'f': (-1, 6)},
    'kq': {'i': (-2, 2), 'f': (-1, 6)},
    'bq': {'i': (-2, 3), 'f': (-1, 6)},
}
_KBI_RANGES = {
    'iq': {'i': (-2, 3), 'b': (0, 8)},
    'kq': {'i': (-2, 2), 'b': (0, 7)},
    'bq': {'i': (-2, 3), 'b': (0, 8)},
}


def _jitter(rng, shape):
    """Non-integer offset in (-0.4, 0.4): hgq rounds bit-width variables (half-to-even)."""
    return rng.uniform(-0.4, 0.4, shape)


def _perturb_quantizer(q, role: str, rng: np.random.Generator, heterogeneous: bool, p_degenerate: float = 0.15):
    """Assign random k / i / f (or b) to an internal fixed-point quantizer."""
    shape = tuple(q._k.shape)
    k = (rng.random(shape) < 0.75).astype(np.uint8)
    if isinstance(q, FixedPointQuantizerKIF):
        (ilo, ihi), (flo, fhi) = _KIF_RANGES[role]['i'], _KIF_RANGES[role]['f']
        i = rng.integers(ilo, ihi + 1, shape)
        f = rng.integers(flo, fhi + 1, shape)
        if heterogeneous:
            # some zero / negative total width elements (k+i+f <= 0 -> output forced to 0)
            deg = rng.random(shape) < p_degenerate
            f = np.where(deg, -i - k - rng.integers(0, 2, shape), f)
        else:
            f = np.maximum(f, 1 - i)  # keep the single shared width non-degenerate
        q._k.assign(k)
        q._i.assign((i + _jitter(rng, shape)).astype(np.float32))
        q._f.assign((f + _jitter(rng, shape)).astype(np.float32))
    elif isinstance(q, FixedPointQuantizerKBI):
        (ilo, ihi), (blo, bhi) = _KBI_RANGES[role]['i'], _KBI_RANGES[role]['b']
        i = rng.integers(ilo, ihi + 1, shape)
        b = rng.integers(blo, bhi + 1, shape)
        if heterogeneous:
            # b=0 (sign-only if k=1, zero if k=0) and a few b=-1 (always zero)
            r = rng.random(shape)
            b = np.where(r < p_degenerate, 0, b)
            b = np.where(r < p_degenerate / 4, -1, b)
        else:
            b = np.maximum(b, 1)
        q._k.assign(k)
        q._i.assign((i + _jitter(rng, shape)).astype(np.float32))
        q._b.assign((b + _jitter(rng, shape)).astype(np.float32))
    else:  # pragma: no cover
        raise TypeError(f'Unsupported quantizer {type(q)}')


def make_qdense_model(
    q_type: str,
    overflow: str,
    round_mode: str,
    heterogeneous: bool,
    seed: int,
    n_in: int = 8,
    n_out: int = 6,
    activation: str | None = None,
) -> keras.Model:
    """A single ``QDense(n_out)`` on an ``(n_in,)`` input with randomised quantizers.

    iq ('datalane'), kq ('weight') and bq ('bias') all use ``q_type`` ('kif' | 'kbi'),
    ``overflow`` ('WRAP' | 'SAT' | 'SAT_SYM') and ``round_mode`` ('RND' | 'TRN' | ...).
    ``heterogeneous=True``: per-element bit-widths (iq: one per feature, shape (1, n_in);
    kq: (n_in, n_out); bq: (n_out,)).  ``heterogeneous=False``: one scalar bit-width per
    quantizer (``heterogeneous_axis=()``, variable shape (1, 1) / (1,)).

    After building, the quantizers' k / i / f (or b) variables are overwritten with
    seeded random values (integers + jitter in (-0.4, 0.4), some zero/negative widths,
    some k=0 elements) and kernel / bias get random values, some large enough to
    saturate / wrap.  No calibration (trace_minmax) is done: WRAP ``i`` stays random.
    The layer is named 'qdense'.
    """
    q_type = q_type.lower()
    overflow = overflow.upper()
    round_mode = round_mode.upper()
    assert q_type in ('kif', 'kbi'), q_type
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)

    if heterogeneous:
        dl_axis = dict(homogeneous_axis=(0,))  # per feature (batch axis shared)
        w_axis = dict(homogeneous_axis=())  # per element
    else:
        dl_axis = dict(heterogeneous_axis=())  # single scalar bit-width
        w_axis = dict(heterogeneous_axis=())
    common = dict(overflow_mode=overflow, round_mode=round_mode)
    iq_conf = QuantizerConfig(q_type, 'datalane', **common, **dl_axis)
    kq_conf = QuantizerConfig(q_type, 'weight', **common, **w_axis)
    bq_conf = QuantizerConfig(q_type, 'bias', **common, **w_axis)

    inp = keras.Input((n_in,), name='inputs')
    layer = QDense(
        n_out,
        activation=activation,
        iq_conf=iq_conf,
        kq_conf=kq_conf,
        bq_conf=bq_conf,
        name='qdense',
    )
    het = 'het' if heterogeneous else 'hom'
    model = keras.Model(inp, layer(inp), name=f'qdense_{q_type}_{overflow}_{round_mode}_{het}_{seed}')

    for role, q in (('iq', layer.iq), ('kq', layer.kq), ('bq', layer.bq)):
        _perturb_quantizer(q.quantizer, role, rng, heterogeneous)

    kernel = rng.standard_normal((n_in, n_out)) * 2.0 ** rng.uniform(-2, 1, (n_in, n_out))
    bias = rng.standard_normal(n_out) * 2.0 ** rng.uniform(-1, 1.5, n_out)
    layer.kernel.assign(kernel.astype(np.float32))
    layer.bias.assign(bias.astype(np.float32))
    return model


# ---------------------------------------------------------------------------
# Inputs / saving / helpers
# ---------------------------------------------------------------------------


def make_inputs(model: keras.Model, n: int, seed: int, scale: float = 1.0) -> np.ndarray:
    """Random float32 inputs of shape ``(n, *model.input_shape[1:])``.

    Standard normal * ``scale``; half of the entries are snapped to the 2**-8 grid
    (exercises rounding ties); a few exact zeros.  If ``scale > 1`` ~10% of entries are
    replaced by uniform values in ``(-8*scale, 8*scale)`` (far outside the calibration
    range, exercises WRAP / SAT).
    """
    rng = np.random.default_rng(seed)
    shape = (n, *tuple(model.input_shape[1:]))
    x = rng.standard_normal(shape) * scale
    snap = rng.random(shape) < 0.5
    x = np.where(snap, np.round(x * 256) / 256, x)
    x = np.where(rng.random(shape) < 0.02, 0.0, x)
    if scale > 1:
        far = rng.random(shape) < 0.1
        x = np.where(far, rng.uniform(-8 * scale, 8 * scale, shape), x)
    return x.astype(np.float32)


def save_model(model: keras.Model, path) -> None:
    """``model.save(path)`` (use a ``.keras`` suffix)."""
    model.save(path)


def quantizer_kif(quantizer, shape=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Effective integer (k, i, f) arrays of an hgq ``Quantizer`` (or internal fixed-point quantizer).

    Returns what hgq uses at inference: k as stored, i/f after round-half-to-even of the
    float variables (kbi: f = round(b) - round(i)); ``i = max(i, -f)`` is NOT applied.
    If ``shape`` is given the arrays are broadcast to it (for 'datalane' quantizers pass
    ``(1, *feature_shape)`` or the full batch shape).
    """
    from keras import ops

    q = getattr(quantizer, 'quantizer', quantizer)
    k, i, f = (np.asarray(ops.convert_to_numpy(t), dtype=np.float64) for t in q.kif)
    if shape is not None:
        k, i, f = (np.broadcast_to(a, shape) for a in (k, i, f))
    return k.astype(np.int64), i.astype(np.int64), f.astype(np.int64)

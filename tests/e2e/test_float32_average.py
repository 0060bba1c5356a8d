"""Averages over windows whose float32 reciprocal is inexact (7, 13, 15, 30, ...): Keras computes
``fl32(sum) * fl32(1/n)``, which rounds differently from the exact quotient at some of the
quantizer's rounding boundaries. The interpreter, the lowered circuit and the RTL must follow
Keras there, bit for bit (``hgqc.ir.fixed.float32_average_round``, ``hgqc.passes.average``)."""

from __future__ import annotations

import math
from fractions import Fraction

import keras
import numpy as np
import pytest
from hgq.layers import QAveragePooling1D, QAveragePooling2D, QDense, QGlobalAveragePooling1D, QGlobalAveragePooling2D, Quantizer
from hgq.quantizer import QuantizerConfig

import hgqc
from hgqc.ir.fixed import Round, divide_round, float32_average_round
from hgqc.passes.average import average_correction

from ..frontend.layer_models import MATRIX, Confs, cfg_id, perturb
from ..frontend.test_keras import mixed_inputs

ROUND = {
    Round.TRN: math.floor,
    Round.CEIL: math.ceil,
    Round.RND: lambda v: math.floor(v + Fraction(1, 2)),
    Round.RND_MIN_INF: lambda v: math.ceil(v - Fraction(1, 2)),
}


@pytest.mark.parametrize('mode', list(ROUND), ids=lambda m: m.value)
def test_float32_average_round_is_the_float32_product(mode):
    rng = np.random.default_rng(list(ROUND).index(mode))
    for _ in range(40):
        x = rng.integers(-(2**20), 2**20, 300)
        fx, f, d = int(rng.integers(-2, 8)), int(rng.integers(-2, 8)), int(rng.integers(1, 64))
        prod = np.float32(np.ldexp(x, -fx).astype(np.float32) * (np.float32(1) / np.float32(d)))
        want = [ROUND[mode](Fraction(float(p)) * Fraction(2) ** f) for p in prod]
        args = (np.array(fx), np.array(d), np.array(f), mode)
        assert float32_average_round(x, *args).tolist() == want
        assert float32_average_round(x.astype(object), *args).tolist() == want


@pytest.mark.parametrize('mode', list(ROUND), ids=lambda m: m.value)
def test_correction_makes_the_exact_quotient_keras_average(mode):
    rng = np.random.default_rng(10 + list(ROUND).index(mode))
    corrected = 0
    for d in (7, 13, 14, 15, 30, 60, 63, 9, 25):
        for _ in range(6):
            lo = int(rng.integers(-(2**13), 2**6))
            hi = lo + int(rng.integers(0, 2**14))
            fx, f = int(rng.integers(0, 6)), int(rng.integers(-1, 6))
            fix = average_correction(lo, hi, fx, d, f, mode)
            x = np.arange(lo, hi + 1, dtype=np.int64)
            want = float32_average_round(x, np.int64(fx), np.int64(d), np.int64(f), mode)
            nudged = (x << fix.m) + fix(x)  # at step 2^-(fx + m)
            assert np.array_equal(divide_round(nudged, np.int64(fx + fix.m), np.int64(d), np.int64(f), mode), want)
            corrected += fix.needed
    assert corrected >= 10  # the float32 product really differs from the exact quotient here


def _pool_model(cfg: tuple) -> keras.Model:
    c = Confs(cfg)
    seq_in, img_in = keras.Input((14, 2), name='seq'), keras.Input((5, 6, 2), name='img')
    seq, img = Quantizer(c.data(), name='q_seq')(seq_in), Quantizer(c.data(), name='q_img')(img_in)
    outs = [
        QAveragePooling1D(7, name='avg7', **c.pool())(seq),
        QAveragePooling1D(7, strides=1, padding='same', name='avg7_same', **c.pool())(seq),  # 4 ... 7 valid
        QGlobalAveragePooling1D(name='gavg14', **c.pool())(seq),
        QGlobalAveragePooling2D(name='gavg30', **c.pool())(img),
        QAveragePooling2D((3, 5), name='avg15', **c.pool())(img),
    ]
    h = keras.layers.Flatten()(QAveragePooling1D(7, name='avg7_noq', **c.pool(oq=False))(seq))
    outs.append(QDense(2, name='dense_after_avg', iq_conf=c.data(), kq_conf=c.weight(), bq_conf=c.bias())(h))
    return keras.Model([seq_in, img_in], outs, name=f'avg_{cfg_id(cfg)}')


def _boundary_inputs(shape: tuple[int, ...], seed: int, n: int) -> np.ndarray:
    """Windows of equal values on the 2^-7 grid: their average is exactly a rounding boundary."""
    rng = np.random.default_rng(seed)
    v = rng.integers(-(2**10), 2**10, (n, 1) + (1,) * (len(shape) - 2) + shape[-1:]) / 128
    return np.broadcast_to(v, (n, *shape)).astype(np.float32)


@pytest.mark.parametrize('cfg', MATRIX, ids=cfg_id)
def test_float32_averages_match_keras(cfg):
    model = _pool_model(cfg)
    perturb(model, MATRIX.index(cfg) + 50)
    xs = [
        np.concatenate([_boundary_inputs(s, i, 1500), mixed_inputs(s, 7 + i, n=1500)]) for i, s in enumerate(((14, 2), (5, 6, 2)))
    ]
    want = [np.asarray(w, dtype=np.float64) for w in model.predict(xs, verbose=0, batch_size=4096)]
    got = hgqc.compile(model, check=True).predict(*xs)
    for name, w, y in zip(model.output_names, want, got):
        assert np.array_equal(y, w), f'{name}: {np.count_nonzero(y != w)} mismatches'


def _tie_model(round_mode: str, n: int = 7, i: int = 6, f_in: int = 4, f_out: int = 3) -> keras.Model:
    """The average of ``n`` signed inputs with ``i`` integer and ``f_in`` fractional bits, rounded to ``f_out``."""
    conf = QuantizerConfig('kif', 'datalane', overflow_mode='SAT', round_mode=round_mode, heterogeneous_axis=())
    inp = keras.Input((n, 1))
    pool = QGlobalAveragePooling1D(iq_conf=conf, enable_oq=True, oq_conf=conf, name=f'gavg{n}')
    model = keras.Model(inp, pool(inp))
    for q, f in ((pool.iq, f_in), (pool.oq, f_out)):
        q.quantizer._k.assign(np.ones(q.quantizer._k.shape, q.quantizer._k.dtype))
        q.quantizer._i.assign(np.full(q.quantizer._i.shape, i, np.float32))
        q.quantizer._f.assign(np.full(q.quantizer._f.shape, f, np.float32))
    return model


@pytest.mark.parametrize('simulator', ['verilator', 'ghdl', 'gxx'])
@pytest.mark.parametrize('round_mode', ['RND', 'TRN'])
def test_corrected_average_in_rtl(round_mode, simulator, tmp_path):
    """Seven equal inputs sit on a rounding boundary: the RTL / HLS C++ (with its correction table) follows Keras."""
    model = _tie_model(round_mode)
    rng = np.random.default_rng(3)
    v = (np.arange(-520, 520) + (0.5 if round_mode == 'RND' else 0.0)) / 8
    x = np.concatenate([np.repeat(v[:, None, None], 7, axis=1), rng.uniform(-90, 90, (1000, 7, 1))]).astype(np.float32)
    want = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    target = {'verilator': 'verilog', 'ghdl': 'vhdl', 'gxx': 'hls4ml'}[simulator]
    project = hgqc.compile(model, target=target, latency_cutoff=1 if simulator == 'ghdl' else 0)
    got = project.predict(x)
    assert np.array_equal(got, want)
    exact = np.floor(v * 8 + (0.5 if round_mode == 'RND' else 0.0)) / 8  # the exactly rounded mean of the ties
    assert np.count_nonzero(want[: len(v), 0] != np.clip(exact, -64, 64 - 1 / 8)) > 100  # Keras really differs there
    result = project.verify(x, simulator=simulator, workdir=tmp_path)
    assert result.total == len(x) and result.mismatches == 0, result.first_mismatch_detail


@pytest.mark.parametrize('simulator', ['verilator', 'ghdl', 'gxx'])
def test_wide_average_with_a_long_correction_table_in_rtl(simulator, tmp_path):
    """14 sums of 16-bit inputs: a correction table of 28k keys (refused up to stop 15), written as
    a select tree (Verilog/VHDL) or compares (HLS C++); boundary sums follow Keras."""
    model = _tie_model('RND', n=14, i=7, f_in=8, f_out=6)
    fix = average_correction(-(2**15) * 14, (2**15 - 1) * 14, 8, 14, 6, Round.RND)
    assert len(fix.values) > 8192 and fix.needed
    rng = np.random.default_rng(5)
    v = (2 * rng.integers(-(2**13), 2**13, 2000) + 1) / 128  # ties at 2^-7: the mean sits on a boundary
    x = np.concatenate([np.repeat(v[:, None, None], 14, axis=1), rng.uniform(-130, 130, (1000, 14, 1))]).astype(np.float32)
    want = np.asarray(model.predict(x, verbose=0), dtype=np.float64)
    assert np.count_nonzero(want[: len(v), 0] != np.clip(np.floor(v * 64 + 0.5) / 64, -128, 128 - 1 / 64)) > 100
    target = {'verilator': 'verilog', 'ghdl': 'vhdl', 'gxx': 'hls4ml'}[simulator]
    project = hgqc.compile(model, target=target)
    assert np.array_equal(project.predict(x), want)
    result = project.verify(x, simulator=simulator, workdir=tmp_path)
    assert result.total == len(x) and result.mismatches == 0, result.first_mismatch_detail


def test_too_wide_average_is_refused_naming_the_layer():
    model = _tie_model('RND')
    iq = model.get_layer('gavg7').iq.quantizer
    iq._i.assign(np.full(iq._i.shape, 14, np.float32))  # 7 sums of 19-bit inputs: too many values to check
    with pytest.raises(Exception, match=r'gavg7.*float32\(1/7\).*Narrow the quantizer of the averaged values'):
        hgqc.compile(model)


def test_unsupported_rounding_of_an_average_is_refused_once_named():
    conf = QuantizerConfig('kif', 'datalane', overflow_mode='SAT', round_mode='RND_CONV', heterogeneous_axis=())
    inp = keras.Input((7, 1))
    model = keras.Model(inp, QGlobalAveragePooling1D(enable_oq=True, oq_conf=conf, name='gavg7')(inp))
    with pytest.raises(Exception, match=r"layer 'gavg7': its quantizer rounds its own average with RND_CONV"):
        hgqc.compile(model)

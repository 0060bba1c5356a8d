"""Peer compilers for the hgqc benchmarks: da4ml 0.6.0 and alkaid 0.8.2.

Two entry points, one per comparison level:

* ``solve_cmvm_peer(name, matrix, input_kifs, max_depth)`` -- one CMVM (``y = x @ W``) through
  the peer's solver only, returning ``dict(adders, depth, adder_bits, seconds, ...)``.
* ``peer_verilog(name, keras_model, out_dir, latency_cutoff)`` -- a whole HGQ2 model through the
  peer's own Keras tracer and Verilog backend, returning ``PeerRTL(files, top)``.

We only *call* the peers (installed wheels); nothing of them is copied here.

Peer CMVM APIs
==============

da4ml 0.6.0
    ``da4ml.cmvm.solve(kernel: float32[n_in, n_out], method0='wmc', method1='auto', hard_dc=-1,
    decompose_dc=-2, qintervals=[(min, max, step)] * n_in, latencies=[0.0] * n_in, adder_size=-1,
    carry_size=-1, search_all_decompose_dc=True) -> da4ml.types.Pipeline`` (C++/nanobind,
    ``da4ml._binary.cmvm_bin.solve``).  The result is two cascaded ``CombLogic`` stages
    (``pipeline.solutions``): the kernel is first split ``W = W1 @ W2`` (column-MST
    "decompose", ``decompose_dc`` levels allowed for stage 1; ``search_all_decompose_dc`` tries every
    level 0..ceil(log2 n_in) -- in parallel with OpenMP -- and keeps the cheapest), then each part
    gets greedy two-term CSE.  ``method0``/``method1`` pick the CSE heuristic of stage 1/2:
    ``mc`` (most common pair), ``wmc`` (bit-width-weighted most common), ``*-dc`` (delay
    constrained: never grows the latency beyond the constraint), ``*-pdc`` (partial dc), ``dummy``
    (no CSE, plain adder trees); ``'auto'`` = ``method0`` or ``method0 + '-dc'``.
    Each ``Op(id0, id1, opcode, data, qint, latency, cost)``: opcode -1 = input ``id0`` (times
    ``2**inp_shifts[id0]``), 0/1 = ``buf[id0] +/- buf[id1] * 2**data``; outputs are
    ``buf[out_idxs[j]] * 2**out_shifts[j] * (-1 if out_negs[j])`` (``out_idxs[j] == -1`` = 0).
    Per adder, ``(dlat, cost) = (ceil(n/carry_size), ceil(n/adder_size))`` with
    ``n = k + i + f`` of the aligned operands (``f`` = LSB of the *coarser* operand, ``i`` = MSB of
    the larger operand, ``k`` = any signed) and a size of -1 meaning "infinite": with the defaults
    (-1, -1) cost == 1 and dlat == 1 per adder (cost = #adders, latency = adder depth).  We pass
    ``adder_size=1, carry_size=-1`` by default, i.e. da4ml's own tracer default ``HWConfig(1, -1, -1)``:
    cost = carry-chain bits, latency still = adder depth.
    ``hard_dc`` (>= 0) is the *delay constraint*: max latency = minimal latency (balanced trees, no
    sharing) + ``hard_dc``; -1 = unconstrained (python API default; the ``da4ml convert`` CLI uses 2).

alkaid 0.8.2
    ``alkaid.cmvm.cmvm_solve(kernel, method0='wmc', method1='auto', hard_dc=-1, decompose_dc=-2,
    qintervals=None, latencies=None, search_all_decompose_dc=True, partial=False)
    -> (CombLogic, CombLogic)``: the same two-stage algorithm family but with *no* adder/carry size
    arguments: its cost model is fixed.  Ops are ``Op(addr=(id0, id1), opcode, data=(shift,), qint,
    latency, cost)``; inputs are ``opcode -1`` with ``data=(input_index,)``.  Native per-adder cost
    = number of overlapping + higher bits (``left + overlap``; a non-overlapping add is a bit
    concatenation costing 0), native latency = ``1.09 + 0.025 * bits`` (a Vivado-fitted delay in ~ns),
    so alkaid's ``hard_dc`` / latency are *not* adder levels.  The ``alkaid convert`` CLI default
    delay constraint is 5.

Common metrics we report (computed by *us* from the returned op graph, same code for both peers)
-------------------------------------------------------------------------------------------------
* ``adders``: number of two-input add/sub ops (opcodes 0/1) over both stages.  Free wiring (input
  shifts, output shifts/negations) is not counted; alkaid's 0-cost "bit concatenation" adds *are*
  counted (they are real ops in its graph; its RTL emits them as adders too).
* ``depth``: longest path in adders (inputs at 0, +1 per add/sub, through both stages).
* ``adder_bits``: sum over adders of the carry-chain width ``k + i + f`` defined exactly as da4ml's
  ``adder_size=1`` cost above (bits below the coarser operand's LSB are wires, i.e. free).  For da4ml
  with the default options this equals its native ``cost``.  This is *our* like-for-like LUT proxy.
* ``out_bits``: sum over adders of the result width (two's complement bits of the result interval).
* ``seconds``: wall time of the solver call(s) (``time.perf_counter``), including depth retries.
  Threads: we set ``OMP_NUM_THREADS=1`` at import (before the peers' libgomp initialises) so times
  are single-threaded and comparable with ours; import this module before da4ml/alkaid for that.
* ``native_cost`` / ``native_latency``: the peer's own numbers, for reference only.
* ``verified``: the op graph re-evaluated by us (numpy, exact in float64) reproduces ``matrix``
  (rows of constant-zero inputs excepted: both peers drop them).

``max_depth`` (absolute adder depth) is mapped to the peers' relative ``hard_dc``:
``min_depth = max_j ceil(log2(#nonzero CSD digits of column j))`` (what both peers call the minimal
latency for unit-latency adders); da4ml gets ``hard_dc = max_depth - min_depth`` (exact, since its
latency is in adder levels); alkaid starts at ``ceil(1.5 * (max_depth - min_depth))`` native units
and lowers ``hard_dc`` until the measured depth fits.  If ``max_depth < min_depth`` we use
``hard_dc = 0`` and report ``depth_ok = False``.

Model -> Verilog
================

da4ml
    ``da4ml.converter.trace_model(model, HWConfig(1, -1, -1), solver_options)`` (HGQ2 registers the
    ``keras`` plugin ``hgq._dais_tracer.main:HGQ2DAISTracer`` in entry-point group ``dais_tracer.plugins``)
    -> ``(inp, out)`` FixedVariableArrays; ``da4ml.trace.comb_trace(inp, out) -> CombLogic``;
    ``da4ml.codegen.VerilogModel(comb, prj_name, path, latency_cutoff=L).write()``.
    ``L`` is in da4ml latency units = adder levels (``HWConfig`` carry_size=-1): ops are assigned to
    stage ``floor(latency / L)``; -1 = combinational.  Files: ``path/src/<prj>.v`` (top,
    ``input [..] model_inp, output [..] model_out``, plus ``clk`` when pipelined),
    ``path/src/<prj>_stage<i>.v`` (pipelined), ``path/src/<prj>_wrapper.v`` (uniform-width IO
    wrapper, not returned), ``path/src/static/*.v`` (``shift_adder``, ``negative``, ``mux``, ...).

alkaid
    ``alkaid.converter.trace_model(model, HWConfig(1, 1, -1), solver_options)`` (alkaid's own
    ``keras`` plugin, ``alir_tracer.plugins``; HGQ2 layer handlers come from ``hgq._alkaid_keras_plugin``
    via group ``alkaid_keras``); ``alkaid.trace.trace(inp, out, optimize=True) -> CombLogic``;
    ``alkaid.codegen.RTLModel(comb, path, prj_name, flavor='verilog', latency_cutoff=L | n_stages=N,
    ternary_fuse=True).write()``.  ``L`` is in alkaid's delay units (~ns, see above), ``n_stages``
    splits the estimated delay evenly; ``ternary_fuse`` fuses adder pairs into 3-input adders (good for
    Vivado, but yosys 0.23 maps a ternary add to ~2 carry chains, so compare with care).
    Files: ``path/src/<prj>.v`` (top), ``path/src/logic<i>.v`` (one comb block per stage),
    ``path/src/<prj>_wrapper.v`` (not returned), ``path/src/static/*.v``.

Neither peer needs a C++ compiler or Verilator for ``write()``; only their ``compile()`` / ``predict()``
emulators do (``make`` + ``verilator`` + ``g++``).  Their CMVM solvers and bit-exact interpreters
(``CombLogic.predict``) are precompiled wheels.

Quirks seen: the kernel is passed as float32 (mantissas > 24 bits would be rounded);
``keras.models.load_model`` of an HGQ2 model needs ``import hgq`` first; the static
``lookup_table.v`` has ``$readmemh("whatever.mem")`` in its body, so we only return static files whose
module is instantiated (and ``yosys_stats`` reads with ``-defer``).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

os.environ.setdefault('OMP_NUM_THREADS', '1')

import numpy as np  # noqa: E402

__all__ = [
    'PEERS',
    'PeerRTL',
    'peer_available',
    'peer_version',
    'input_qintervals',
    'csd_weight',
    'min_adder_depth',
    'solve_cmvm_peer',
    'peer_verilog',
]

PEERS = ('da4ml', 'alkaid')
_EXPECTED = {'da4ml': '0.6.0', 'alkaid': '0.8.2'}


# ---------------------------------------------------------------------------------------------
# availability
# ---------------------------------------------------------------------------------------------


def peer_version(name: str) -> str | None:
    """Installed version of peer ``name`` or None."""
    if name not in PEERS:
        raise ValueError(f'unknown peer {name!r}; expected one of {PEERS}')
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def peer_available(name: str) -> bool:
    """True if peer ``name`` imports and has its compiled CMVM solver."""
    if peer_version(name) is None:
        return False
    try:
        if name == 'da4ml':
            from da4ml.cmvm import solve  # noqa: F401
        else:
            from alkaid.cmvm import cmvm_solve  # noqa: F401
    except Exception:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# input quantization
# ---------------------------------------------------------------------------------------------


def _kif_to_qint(k: int, i: int, f: int) -> tuple[float, float, float]:
    """ap_fixed<k + i + f, k + i> full range (i excludes the sign bit, HGQ/da4ml convention)."""
    k, i, f = int(k), int(i), int(f)
    if k + i + f <= 0:
        return (0.0, 0.0, 1.0)
    step = math.ldexp(1.0, -f)
    hi = math.ldexp(1.0, i) - step
    lo = -math.ldexp(1.0, i) if k else 0.0
    return (lo, hi, step)


def input_qintervals(input_kifs: Any, n_in: int) -> list[tuple[float, float, float]]:
    """Normalise an input quantization description to ``[(min, max, step)] * n_in``.

    Accepted: one ``(k, i, f)`` (broadcast) or a list of ``n_in`` of them; ``{'qintervals': [...]}``
    of ``(min, max, step)``; a list of objects with ``.lo/.hi/.f`` (``hgqc.ir.types.QInterval``)
    or with ``.min/.max/.step`` (da4ml/alkaid ``QInterval``).  A zero interval is ``(0, 0, 1)``.
    """
    if isinstance(input_kifs, dict):
        q = [tuple(float(v) for v in t) for t in input_kifs['qintervals']]
    elif len(input_kifs) == 3 and all(isinstance(v, (int, np.integer)) for v in input_kifs):
        q = [_kif_to_qint(*input_kifs)] * n_in
    else:
        q = []
        for t in input_kifs:
            if hasattr(t, 'lo') and hasattr(t, 'hi') and hasattr(t, 'f'):
                if t.lo == 0 and t.hi == 0:
                    q.append((0.0, 0.0, 1.0))
                else:
                    q.append((math.ldexp(t.lo, -t.f), math.ldexp(t.hi, -t.f), math.ldexp(1.0, -t.f)))
            elif hasattr(t, 'step'):
                q.append((float(t.min), float(t.max), float(t.step)))
            else:
                q.append(_kif_to_qint(*t))
    if len(q) != n_in:
        raise ValueError(f'{len(q)} input quantizations for {n_in} inputs')
    return [(lo, hi, st) if not (lo == 0 and hi == 0) else (0.0, 0.0, 1.0) for lo, hi, st in q]


# ---------------------------------------------------------------------------------------------
# minimal depth (for max_depth -> hard_dc)
# ---------------------------------------------------------------------------------------------


def csd_weight(x: float) -> int:
    """Number of nonzero digits of the canonical signed digit (NAF) form of dyadic ``x``."""
    v = abs(float(x))
    if v == 0:
        return 0
    while v != math.floor(v):  # exact integer mantissa: scale by powers of two until integral
        v *= 2.0
    n = int(v)
    w = 0
    while n:
        if n & 1:
            w += 1
            n -= 2 - (n & 3)  # digit +1 if n % 4 == 1 else -1
        n >>= 1
    return w


def min_adder_depth(matrix: np.ndarray, qintervals: Sequence[tuple[float, float, float]] | None = None) -> int:
    """``max_j ceil(log2(sum_i csd_weight(W[i, j])))`` over inputs that are not constant zero."""
    w = np.asarray(matrix, dtype=np.float64)
    live = np.ones(w.shape[0], dtype=bool)
    if qintervals is not None:
        live = np.array([not (lo == 0 and hi == 0) for lo, hi, _ in qintervals])
    best = 0
    for j in range(w.shape[1]):
        n = sum(csd_weight(v) for v in w[live, j])
        if n > 1:
            best = max(best, math.ceil(math.log2(n)))
    return best


# ---------------------------------------------------------------------------------------------
# op-graph analysis (shared by both peers)
# ---------------------------------------------------------------------------------------------


class _Stage(NamedTuple):
    inputs: list[tuple[int, int]]  # (buffer index, input index)
    adds: list[tuple[int, int, int, int, bool]]  # (buffer index, a, b, shift, sub)
    qint: list[tuple[float, float, float]]  # per buffer entry
    native_lat: list[float]
    inp_shifts: list[int]
    out_idxs: list[int]
    out_shifts: list[int]
    out_negs: list[bool]
    native_cost: float


def _stage_from_comb(comb, tool: str, operands, shift_of, input_of) -> _Stage:
    """One peer solution as a ``_Stage``; the peers differ only in where an op keeps its operands."""
    inputs, adds = [], []
    for n, op in enumerate(comb.ops):
        if op.opcode == -1:
            inputs.append((n, int(input_of(op))))
        elif op.opcode in (0, 1):
            a, b = operands(op)
            adds.append((n, int(a), int(b), int(shift_of(op)), op.opcode == 1))
        else:
            raise NotImplementedError(f'{tool} opcode {op.opcode} in a CMVM solution')
    return _Stage(
        inputs,
        adds,
        [tuple(op.qint) for op in comb.ops],
        [float(op.latency) for op in comb.ops],
        [int(s) for s in comb.inp_shifts],
        [int(i) for i in comb.out_idxs],
        [int(s) for s in comb.out_shifts],
        [bool(s) for s in comb.out_negs],
        float(comb.cost),
    )


def _stage_from_da4ml(comb) -> _Stage:
    return _stage_from_comb(comb, 'da4ml', lambda op: (op.id0, op.id1), lambda op: op.data, lambda op: op.id0)


def _stage_from_alkaid(comb) -> _Stage:
    return _stage_from_comb(comb, 'alkaid', lambda op: op.addr[:2], lambda op: op.data[0], lambda op: op.data[0])


def _carry_bits(q0, q1, shift: int) -> int:
    """Carry-chain width of ``a + (b << shift)``: ``k + i + f`` as in da4ml's adder_size=1 cost."""
    lo0, hi0, st0 = q0
    s = math.ldexp(1.0, shift)
    lo1, hi1, st1 = q1[0] * s, q1[1] * s, q1[2] * s
    f = -math.log2(max(st0, st1))
    mag = max(abs(lo0), abs(hi0 + st0), abs(lo1), abs(hi1 + st1))
    i = math.ceil(math.log2(mag))
    k = 1 if (q0[0] < 0 or q1[0] < 0) else 0
    return int(k + i + f)


def _width(q) -> int:
    lo, hi, st = q
    if lo == 0 and hi == 0:
        return 0
    a, b = round(lo / st), round(hi / st)
    mag = max(b.bit_length(), (-a - 1).bit_length() if a < 0 else 0)
    return mag + (1 if a < 0 else 0)


def _analyze(stages: list[_Stage], n_in: int) -> dict:
    """Adders, depth, bit costs and the implemented kernel of cascaded stages."""
    # values: implemented kernel columns, evaluated on all one-hot inputs at once
    cur_val = [np.eye(n_in)[i] for i in range(n_in)]
    cur_depth = [0] * n_in
    adders = adder_bits = out_bits = 0
    stage_adders = []
    for st in stages:
        nbuf = len(st.qint)
        val: list[np.ndarray | None] = [None] * nbuf
        depth = [0] * nbuf
        for n, i in st.inputs:
            val[n] = cur_val[i] * math.ldexp(1.0, st.inp_shifts[i])
            depth[n] = cur_depth[i]
        for n, a, b, s, sub in st.adds:
            vb = val[b] * math.ldexp(1.0, s)
            val[n] = val[a] - vb if sub else val[a] + vb
            depth[n] = max(depth[a], depth[b]) + 1
            adder_bits += _carry_bits(st.qint[a], st.qint[b], s)
            out_bits += _width(st.qint[n])
        adders += len(st.adds)
        stage_adders.append(len(st.adds))
        nxt_val, nxt_depth = [], []
        for idx, sh, neg in zip(st.out_idxs, st.out_shifts, st.out_negs):
            if idx < 0:
                nxt_val.append(np.zeros(n_in))
                nxt_depth.append(0)
            else:
                nxt_val.append(val[idx] * math.ldexp(-1.0 if neg else 1.0, sh))
                nxt_depth.append(depth[idx])
        cur_val, cur_depth = nxt_val, nxt_depth
    last = stages[-1]
    native_lat = max([last.native_lat[i] for i in last.out_idxs if i >= 0], default=0.0)
    return dict(
        adders=adders,
        depth=max(cur_depth, default=0),
        adder_bits=adder_bits,
        out_bits=out_bits,
        stage_adders=stage_adders,
        native_cost=sum(st.native_cost for st in stages),
        native_latency=native_lat,
        kernel=np.stack(cur_val, axis=1) if cur_val else np.zeros((n_in, 0)),
    )


# ---------------------------------------------------------------------------------------------
# CMVM
# ---------------------------------------------------------------------------------------------


def _run_da4ml(w32, qint, hard_dc, options):
    from da4ml.cmvm import solve

    opts = dict(adder_size=1, carry_size=-1)
    opts.update(options)
    t0 = time.perf_counter()
    pipe = solve(w32, qintervals=qint, latencies=[0.0] * len(qint), hard_dc=hard_dc, **opts)
    dt = time.perf_counter() - t0
    return [_stage_from_da4ml(s) for s in pipe.solutions], dt


def _run_alkaid(w32, qint, hard_dc, options):
    from alkaid.cmvm import cmvm_solve

    t0 = time.perf_counter()
    c0, c1 = cmvm_solve(w32, qintervals=qint, latencies=[0.0] * len(qint), hard_dc=hard_dc, **options)
    dt = time.perf_counter() - t0
    return [_stage_from_alkaid(c0), _stage_from_alkaid(c1)], dt


def solve_cmvm_peer(
    name: str,
    matrix: np.ndarray,
    input_kifs: Any,
    max_depth: int | None = None,
    *,
    hard_dc: int | None = None,
    verify: bool = True,
    **options: Any,
) -> dict:
    """Optimise ``y = x @ matrix`` with peer ``name`` and measure the result.

    Parameters
    ----------
    name: 'da4ml' or 'alkaid'.
    matrix: (n_in, n_out) dyadic floats (exactly representable in float32).
    input_kifs: see ``input_qintervals``; e.g. ``(1, 7, 0)`` for 8-bit signed integers.
    max_depth: absolute adder-depth budget (None = unconstrained, ``hard_dc=-1``).
    hard_dc: pass the peer's native delay constraint directly instead of ``max_depth``.
    verify: check that the returned graph implements ``matrix`` exactly (cheap).
    options: forwarded to the peer solver (``method0``, ``method1``, ``decompose_dc``,
        ``search_all_decompose_dc``; da4ml also ``adder_size`` / ``carry_size``).

    Returns ``dict(adders, depth, adder_bits, seconds, out_bits, native_cost, native_latency,
    min_depth, max_depth, depth_ok, hard_dc, n_solves, stage_adders, verified, peer, version)``;
    see the module docstring for the definitions.
    """
    if name not in PEERS:
        raise ValueError(f'unknown peer {name!r}; expected one of {PEERS}')
    w = np.asarray(matrix, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f'matrix must be 2-D (n_in, n_out), got {w.shape}')
    w32 = np.ascontiguousarray(w.astype(np.float32))
    if not np.array_equal(w32.astype(np.float64), w):
        raise ValueError('matrix is not exactly representable in float32 (peers take float32 kernels)')
    n_in = w.shape[0]
    qint = input_qintervals(input_kifs, n_in)
    run = _run_da4ml if name == 'da4ml' else _run_alkaid
    min_depth = min_adder_depth(w, qint)

    if hard_dc is not None and max_depth is not None:
        raise ValueError('give max_depth or hard_dc, not both')
    if max_depth is None:
        h = -1 if hard_dc is None else int(hard_dc)
        stages, seconds = run(w32, qint, h, options)
        res = _analyze(stages, n_in)
        n_solves = 1
    else:
        slack = max(int(max_depth) - min_depth, 0)
        # da4ml (default options): latency == adder depth, so hard_dc == slack is exact.
        # alkaid: ~1.1-1.5 native units per adder; start generous and tighten.
        unit_latency = name == 'da4ml' and options.get('carry_size', -1) < 0
        h = slack if unit_latency else math.ceil(1.5 * slack)
        seconds, n_solves = 0.0, 0
        while True:
            stages, dt = run(w32, qint, h, options)
            seconds += dt
            n_solves += 1
            res = _analyze(stages, n_in)
            if res['depth'] <= max_depth or h == 0:
                break
            h = max(0, h - max(1, math.ceil(1.2 * (res['depth'] - max_depth))))
    kernel = res.pop('kernel')
    live = np.array([not (lo == 0 and hi == 0) for lo, hi, _ in qint])  # rows of constant-0 inputs are dropped
    verified = bool(np.array_equal(kernel[live], w[live])) if verify else None
    if verify and not verified:
        err = np.max(np.abs(kernel[live] - w[live]))
        raise AssertionError(f'{name} solution does not reproduce the matrix (max err {err})')
    res.update(
        seconds=seconds,
        min_depth=min_depth,
        max_depth=max_depth,
        depth_ok=max_depth is None or res['depth'] <= max_depth,
        hard_dc=h,
        n_solves=n_solves,
        verified=verified,
        peer=name,
        version=peer_version(name),
        threads=os.environ.get('OMP_NUM_THREADS'),
    )
    return res


# ---------------------------------------------------------------------------------------------
# model -> Verilog
# ---------------------------------------------------------------------------------------------


class PeerRTL(NamedTuple):
    """Verilog sources needed to synthesise ``top`` (IO wrapper excluded), plus peer facts."""

    files: list[Path]
    top: str
    info: dict


_MODULE_RE = re.compile(r'^\s*module\s+(\w+)', re.M)


def _needed_files(src: Path, top: str) -> list[Path]:
    """``top``'s file plus every ``src``/``src/static`` module it (transitively) instantiates."""
    cands = sorted(src.glob('*.v')) + sorted((src / 'static').glob('*.v'))
    mods: dict[str, Path] = {}
    text: dict[Path, str] = {}
    for p in cands:
        text[p] = p.read_text()
        for m in _MODULE_RE.findall(text[p]):
            mods.setdefault(m, p)
    if top not in mods:
        raise FileNotFoundError(f'module {top} not found under {src}')
    need, todo = {mods[top]}, [mods[top]]
    while todo:
        body = text[todo.pop()]
        for m, p in mods.items():
            if p not in need and re.search(rf'(^|[^\w$]){re.escape(m)}\s*(#|\w)', body, re.M):
                need.add(p)
                todo.append(p)
    return [p for p in cands if p in need]


def peer_verilog(
    name: str,
    keras_model: Any,
    out_dir: str | Path,
    latency_cutoff: float | None = None,
    *,
    n_stages: int | None = None,
    solver_options: dict | None = None,
    hwconf: tuple[int, int, int] | None = None,
    prj_name: str | None = None,
    ternary_fuse: bool = True,
    input_range: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> PeerRTL:
    """Convert an HGQ2 Keras model to Verilog with peer ``name``; write it under ``out_dir``.

    ``latency_cutoff``: None/<=0 = combinational.  da4ml: adder levels per pipeline stage.
    alkaid: its estimated delay (~ns) per stage; or give ``n_stages`` (alkaid only) instead.
    ``solver_options`` go to every CMVM (e.g. ``{'hard_dc': 2}``; both CLIs use a delay constraint,
    the python APIs default to none).  ``hwconf`` defaults to each peer's own tracer default:
    da4ml (1, -1, -1), alkaid (1, 1, -1).  ``ternary_fuse``: alkaid's 3-input adder fusion.

    Returns ``PeerRTL(files, top, info)``: ``files`` = the top's file, its stage/logic files and the
    static library files it instantiates (IO wrapper excluded), in an order yosys accepts;
    ``input_range = (low, high, step)`` (arrays of the input's shape without the batch axis) types
    the input port exactly (the peers' ``FixedVariableArray.from_lhs``) instead of tracing the
    model's first quantizer on a raw input, which both refuse for a non-WRAP quantizer;
    ``info`` = the peer's estimates (native cost / latency, stages, register bits), trace / write
    times, and ``info['comb']`` = the peer's CombLogic (``comb.predict(x)`` is its bit-exact
    interpreter, handy to check the peer against Keras).
    """
    if name not in PEERS:
        raise ValueError(f'unknown peer {name!r}; expected one of {PEERS}')
    import hgq  # noqa: F401  (registers the HGQ2 plugins / layers)

    out = Path(out_dir).resolve()
    top = prj_name or f'{name}_top'
    lc = float(latency_cutoff) if latency_cutoff is not None and latency_cutoff > 0 else -1.0
    so = dict(solver_options or {})
    info: dict[str, Any] = dict(peer=name, version=peer_version(name), latency_cutoff=lc, solver_options=so)
    t0 = time.perf_counter()
    if name == 'da4ml':
        from da4ml.codegen import VerilogModel
        from da4ml.converter import trace_model
        from da4ml.trace import HWConfig, comb_trace

        if n_stages is not None:
            raise ValueError('da4ml has no n_stages; use latency_cutoff (adder levels per stage)')
        from da4ml.trace import FixedVariableArray

        hw = HWConfig(*(hwconf or (1, -1, -1)))
        port = None if input_range is None else (FixedVariableArray.from_lhs(*input_range, hw, 0.0, so),)
        inp, outp = trace_model(keras_model, hw, so, inputs=port)
        comb = comb_trace(inp, outp)
        t1 = time.perf_counter()
        rtl = VerilogModel(comb, top, out, latency_cutoff=lc, print_latency=True)
        rtl.write()
        pipe = rtl._pipe
        info.update(
            native_cost=float(comb.cost),
            native_latency=tuple(comb.latency),
            n_stages=len(pipe.solutions) if pipe is not None else 0,
            effective_latency_cutoff=rtl._latency_cutoff,
            reg_bits=int(pipe.reg_bits) if pipe is not None else 0,
        )
    else:
        from alkaid.codegen import RTLModel
        from alkaid.converter import trace_model
        from alkaid.trace import FVArray, HWConfig, trace

        hw = HWConfig(*(hwconf or (1, 1, -1)))
        port = None if input_range is None else (FVArray.from_lhs(*input_range, hw, 0.0, so),)
        inp, outp = trace_model(keras_model, hw, so, inputs=port)
        comb = trace(inp, outp)
        t1 = time.perf_counter()
        kw: dict[str, Any] = dict(latency_cutoff=-1, n_stages=-1)
        if n_stages is not None and n_stages > 0:
            kw['n_stages'] = int(n_stages)
        else:
            kw['latency_cutoff'] = lc
        rtl = RTLModel(comb, out, prj_name=top, flavor='verilog', print_latency=True, ternary_fuse=ternary_fuse, **kw)
        rtl.write()
        info.update(
            native_cost=float(comb.cost),
            native_latency=tuple(comb.latency),
            fused_cost=float(rtl._comb.cost) if rtl._comb is not None else None,
            n_stages=len(rtl.fsm.logic) if lc > 0 or kw['n_stages'] > 0 else 0,
            reg_bits=int(rtl.reg_bits),
            ternary_fuse=ternary_fuse,
        )
    t2 = time.perf_counter()
    info.update(trace_seconds=t1 - t0, write_seconds=t2 - t1, out_dir=str(out), comb=comb)
    return PeerRTL(_needed_files(out / 'src', top), top, info)

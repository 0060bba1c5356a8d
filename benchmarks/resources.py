"""End-to-end resources: hgqc's Verilog beside da4ml's and alkaid's for the same trained models.

    python -m benchmarks.resources [MODEL.keras ...] [--latency-cutoff 0 2] [--repeat 1] [--no-peers] [--no-yosys]

Without model arguments: every ``examples/*.keras`` fixture.  Per model, cutoff and tool: compile
seconds (median of ``--repeat``), adders, adder depth, pipeline stages, hgqc's own LUT estimate
(``est_luts``: ``hgqc report``'s logic figure; ROMs' upper bound in ``note``), and yosys 0.23
``synth_xilinx -family xcup -flatten`` LUT (LUT1..LUT6) / FF / CARRY counts; then the ratio
hgqc LUTs / min(peer LUTs) and whether hgqc's depth is at most each peer's.

Depth is measured like for like: one delay model (``hgqc.passes.pipeline.node_delay``: every
two-operand add/sub, constant add, rounding add and min/max is one level; relu, wrapping, shifts,
constants are wires) applied to hgqc's lowered graph and to each peer's own op graph
(``peer_depth``).  The peers' native latencies count a constant add (bias, rounding half) as 0
levels, so their native figure is lower than the same circuit measured this way.

Pipelined rows: hgqc and da4ml both cut by adder levels (``latency_cutoff``); alkaid's cutoff is
an ~ns estimate, so it gets ``n_stages`` = hgqc's stage count.  Not run by CI.

A design yosys 0.23 cannot map as written (da4ml's ``rom_style = "distributed"`` lookup-table ROMs)
is synthesised with its ROMs built from logic (``benchmarks.yosys_stats``); its row says so in
``note``, with its MUXF7/8/9 count (LUT counts exclude MUXFs for every tool).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault('KERAS_BACKEND', 'jax')

from . import peers  # noqa: F401,E402 - sets OMP_NUM_THREADS before the peers load
from .peers import peer_available, peer_verilog  # noqa: E402
from .yosys_stats import yosys_available, yosys_stats  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LUT_TARGET = 0.90  # the target: hgqc LUTs <= 0.90 x min(peers), combinational

# peer opcodes (da4ml 0.6 / alkaid 0.8 ``Op.opcode``) that cost one adder level in our model:
# 0/1 add/sub, 4 constant add, +-6 msb mux, 7 multiply (counted 1 here; hgqc counts 2)
_PEER_UNIT = frozenset({0, 1, 4, 6, -6, 7})


def peer_depth(comb: Any) -> int:
    """Adder depth of a peer's ``CombLogic`` under hgqc's delay model (see module docstring)."""
    depth: list[int] = []
    for op in comb.ops:
        ids = (op.id0, op.id1) if hasattr(op, 'id0') else tuple(op.addr)
        if op.opcode in (-1, 5):  # input, constant
            depth.append(0)
            continue
        base = max((depth[i] for i in ids if 0 <= i < len(depth)), default=0)
        depth.append(base + (op.opcode in _PEER_UNIT))
    return max((depth[i] for i in comb.out_idxs if i >= 0), default=0)


def peer_adders(comb: Any) -> int:
    return sum(op.opcode in _PEER_UNIT for op in comb.ops)


def _median_time(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_hgqc(model, cutoff: int, repeat: int, workdir: Path, synth: bool, extra: dict | None = None) -> dict:
    import hgqc
    from hgqc.backends.report import graph_stats
    from hgqc.passes import adder_depth, count_adders

    secs, project = _median_time(lambda: hgqc.compile(model, latency_cutoff=cutoff, extra=dict(extra or {})), repeat)
    row = {
        'tool': 'hgqc',
        'compile_s': secs,
        'adders': count_adders(project.graph),
        'depth': adder_depth(project.graph),
        'stages': project.metadata['latency'],
    }
    stats = graph_stats(project.graph).values()  # ``hgqc report``'s estimate, beside yosys' count
    row['est_luts'] = sum(s.luts for s in stats)
    rom = sum(s.rom_luts for s in stats)
    if rom:
        row['note'] = f'est. + ROMs <= {rom}'
    if synth:
        out = project.write(workdir / f'hgqc_{cutoff}', force=True)
        syn = _synth(sorted((out / 'src').glob('*.v')), project.top)
        if 'note' in syn and 'note' in row:
            syn['note'] = f'{row["note"]}; {syn["note"]}'
        row.update(syn)
    return row


def bench_peer(
    name: str, model, cutoff: int, stages: int, repeat: int, workdir: Path, synth: bool, input_range: tuple | None = None
) -> dict:
    def run():
        out = workdir / f'{name}_{cutoff}'
        if cutoff <= 0:
            return peer_verilog(name, model, out, None, input_range=input_range)
        if name == 'alkaid':
            return peer_verilog(name, model, out, None, n_stages=stages, input_range=input_range)
        return peer_verilog(name, model, out, cutoff, input_range=input_range)

    secs, rtl = _median_time(run, repeat)
    comb = rtl.info['comb']
    row = {
        'tool': f'{name} {rtl.info.get("version")}',
        'compile_s': secs,
        'adders': peer_adders(comb),
        'depth': peer_depth(comb),
        'stages': rtl.info.get('n_stages'),
        'comb': comb,  # the peer's own bit-exact model of this design (``comb.predict``)
    }
    if synth:
        mem = Path(rtl.info['out_dir']) / 'src' / 'memfiles'  # da4ml's lookup-table ROM images ($readmemh)
        row.update(_synth(rtl.files, rtl.top, mem if mem.is_dir() else None))
    return row


YOSYS_TIMEOUT = 1800.0


TIMING = False  # ``--timing``: also the mapped netlist's slowest path (``benchmarks.timing_model``)


def _synth(files, top, cwd: Path | None = None) -> dict:
    s = yosys_stats([Path(f).resolve() for f in files], top, timeout=YOSYS_TIMEOUT, cwd=cwd, timing=TIMING)
    row = {'luts': s['luts'], 'ffs': s['ffs'], 'carry': s['carry']}
    if TIMING:
        t = s['timing']
        row['path_ns'], row['path_cells'] = t['ns'], f'{t["luts"]} LUT + {t["carry"]} CARRY'
    if s['rom_style_unset'] or s['roms_from_bram']:  # (yosys_stats' fallbacks: ROMs become LUTs and MUXF7/8/9)
        why = f'yosys chose {s["roms_from_bram"]} BRAM' if s['roms_from_bram'] else 'rom_style unset'
        row['note'] = f'ROMs as logic ({why}), {s["muxf"]} MUXF'
    return row


def _fmt(v) -> str:
    if v is None:
        return ''
    if isinstance(v, float):
        return f'{v:.3g}' if v < 1000 else f'{v:.0f}'
    return str(v)


COLS = ['model', 'cutoff', 'tool', 'compile_s', 'adders', 'depth', 'stages', 'est_luts', 'luts', 'ffs', 'carry', 'note']
TIMING_COLS = ['path_ns', 'path_cells']


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('models', nargs='*', default=None)
    ap.add_argument('--latency-cutoff', type=int, nargs='*', default=[0, 2])
    ap.add_argument('--repeat', type=int, default=1)
    ap.add_argument('--no-peers', action='store_true')
    ap.add_argument('--no-yosys', action='store_true')
    ap.add_argument('--cse', action='append', default=[], metavar='KEY=VALUE', help='hgqc option, e.g. decompose_depth=0')
    ap.add_argument('--schedule', default=None, help="hgqc's pipeline.schedule: min_registers (default) or asap")
    ap.add_argument('--yosys-timeout', type=float, default=YOSYS_TIMEOUT, help='seconds per synthesis')
    ap.add_argument('--timing', action='store_true', help='also the slowest path of each mapped netlist (a proxy)')
    args = ap.parse_args(argv)
    globals()['YOSYS_TIMEOUT'] = args.yosys_timeout
    globals()['TIMING'] = args.timing
    cols = COLS[:-1] + TIMING_COLS + COLS[-1:] if args.timing else COLS

    import hgq  # noqa: F401
    import keras

    extra: dict[str, Any] = {}
    for kv in args.cse:
        k, v = kv.split('=', 1)
        extra[f'cse.{k}'] = int(v) if v.lstrip('-').isdigit() else v
    if args.schedule:
        extra['pipeline.schedule'] = args.schedule
    paths = args.models or [str(p) for p in sorted((ROOT / 'examples').glob('*.keras'))]
    synth = not args.no_yosys and yosys_available()
    table, verdicts = [], []
    with tempfile.TemporaryDirectory(prefix='hgqc_bench_') as tmp:
        for path in paths:
            model = keras.models.load_model(path, compile=False)
            for cutoff in args.latency_cutoff:
                rows = [bench_hgqc(model, cutoff, args.repeat, Path(tmp), synth, extra)]
                if not args.no_peers:
                    for name in ('da4ml', 'alkaid'):
                        if not peer_available(name):
                            continue
                        try:
                            rows.append(bench_peer(name, model, cutoff, rows[0]['stages'], args.repeat, Path(tmp), synth))
                        except Exception as e:  # noqa: BLE001 - a peer that cannot convert a model is a result too
                            print(f'{name} failed on {Path(path).stem}: {type(e).__name__}: {str(e)[:200]}', flush=True)
                            rows.append({'tool': f'{name} (failed: {type(e).__name__})'})
                for r in rows:
                    r.update(model=Path(path).stem, cutoff=cutoff)
                    print(' | '.join(_fmt(r.get(c)) for c in cols), flush=True)
                table += rows
                peers_ok = [r for r in rows[1:] if 'luts' in r]
                if synth and peers_ok:
                    best = min(r['luts'] for r in peers_ok)
                    ratio = rows[0]['luts'] / best
                    shallow = all(rows[0]['depth'] <= r['depth'] for r in peers_ok)
                    ok = ratio <= LUT_TARGET and shallow
                    verdicts.append(
                        f'{Path(path).stem} cutoff {cutoff}: hgqc LUTs / min(peers) = {ratio:.3f}, '
                        f'depth {rows[0]["depth"]} vs {[r["depth"] for r in peers_ok]}'
                        + (f' -> target {"met" if ok else "NOT met"}' if cutoff == 0 else '')
                    )
    print('\n| ' + ' | '.join(cols) + ' |\n|' + '---|' * len(cols))
    for r in table:
        print('| ' + ' | '.join(_fmt(r.get(c)) for c in cols) + ' |')
    print('\n' + '\n'.join(verdicts))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

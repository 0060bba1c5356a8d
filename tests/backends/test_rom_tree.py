"""Long ROMs with few runs (the float32-average corrections) are written as select trees on the key
bits (``common.rom_tree``): the same function on every key that can occur, in all three HDL
simulators, and a small or busy ROM stays a ``case``."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from hgqc.backends.common import TREE_ROM_MIN, Rom, Val, rom_tree
from hgqc.backends.verilog import emit_verilog
from hgqc.backends.vhdl import emit_vhdl
from hgqc.ir import Graph, Op, QInterval, TensorType, verify
from hgqc.runtime.sim import verify as hw_verify

# (input interval, runs): a signed input over every code, an input reaching part of its codes
# (the others are don't-cares), and a short table that stays a case
CASES = [(QInterval(-8192, 8191, 3), 24), (QInterval(-3000, 9000, 0), 9), (QInterval(-40, 50, 0), 3)]


def _runs(n: int, runs: int, seed: int) -> np.ndarray:
    """``n`` values in {-1, 0, 1} forming ``runs`` runs."""
    rng = np.random.default_rng(seed)
    ends = np.sort(rng.choice(np.arange(1, n), runs - 1, replace=False))
    vals = [int(rng.integers(-1, 2))]
    while len(vals) < runs:
        vals.append(int(rng.choice([v for v in (-1, 0, 1) if v != vals[-1]])))
    return np.repeat(vals, np.diff(np.r_[0, ends, n]))


def _tree_value(tree, key: int) -> int:
    while not isinstance(tree, int):
        bit, low, high = tree
        tree = high if key >> bit & 1 else low
    return tree


def rom_graph() -> Graph:
    g = Graph('roms')
    x = g.add_input('x', TensorType((len(CASES),), tuple(q for q, _ in CASES)))
    outs = []
    for i, (q, runs) in enumerate(CASES):
        v = g.add(Op.GATHER, [x], {'index': np.array(i)})
        table = {'lo': q.lo, 'f_in': q.f, 'f': 0, 'values': _runs(q.hi - q.lo + 1, runs, i)}
        outs.append(g.add(Op.TABLE, [v], {'tables': [table], 'select': np.int64(0)}, name=f'rom{i}'))
    g.add_output('y', g.add(Op.GATHER, outs, {'index': np.arange(len(outs))}))
    verify(g)
    return g


def _every_key(g: Graph) -> list[np.ndarray]:
    """Each element sweeps its whole interval (the shorter ones cycle)."""
    q = g.inputs[0].type.elems
    n = max(t.hi - t.lo + 1 for t in q)
    return [np.stack([t.lo + np.arange(n) % (t.hi - t.lo + 1) for t in q], axis=1).astype(np.int64)]


@pytest.mark.parametrize('seed', range(20))
def test_tree_equals_the_rom_on_every_key(seed):
    rng = np.random.default_rng(seed)
    width = int(rng.integers(12, 18))
    keys = np.sort(rng.choice(1 << width, int(rng.integers(TREE_ROM_MIN, 1 << (width - 1))), replace=False))
    values = _runs(len(keys), int(rng.integers(1, 40)), seed) & 3
    rom = Rom('r', 2, False, Val('k', width, False, True, None, ('k', 0)), width, tuple(zip(keys.tolist(), values.tolist())))
    tree = rom_tree(rom)
    assert tree is not None
    assert [_tree_value(tree, k) for k in keys.tolist()] == values.tolist()


def test_short_or_busy_roms_stay_entry_by_entry():
    sel = Val('k', 12, False, True, None, ('k', 0))
    short = Rom('r', 1, False, sel, 12, tuple((k, k >> 9 & 1) for k in range(TREE_ROM_MIN - 1)))
    busy = Rom('r', 1, False, sel, 12, tuple((k, k >> 3 & 1) for k in range(4096)))  # 512 runs
    assert rom_tree(short) is None and rom_tree(busy) is None


def test_emitted_forms():
    g = rom_graph()
    v, vhd = emit_verilog(g)['model.v'], emit_vhdl(g)['model.vhd']
    assert v.count('case (') == 1 and v.count('h1fff: ') == 0  # only the short table is a case
    assert len(v) < 80_000 and len(vhd) < 80_000  # (the 16384-entry case alone would be ~600 kB)
    assert vhd.count('process (all)') == 2


@pytest.mark.parametrize('simulator', ['verilator', 'iverilog', 'ghdl'])
def test_select_trees_match_the_interpreter_on_every_key(simulator, tmp_path):
    if shutil.which(simulator) is None:
        pytest.skip(f'{simulator} not installed')
    g = rom_graph()
    xs = _every_key(g)
    res = hw_verify(g, xs, simulator=simulator, workdir=tmp_path)
    assert res.ok and res.total == len(xs[0]) == 16384, res.first_mismatch_detail

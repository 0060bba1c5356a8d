"""Resource counts of a Verilog design with yosys' Xilinx flow (``synth_xilinx -family xcup -flatten``).

``yosys_stats(verilog_files, top) -> dict(luts, ffs, carry, ...)``:

* ``luts``  = LUT1 + ... + LUT6 cells
* ``ffs``   = FD* cells (FDRE, FDSE, FDCE, FDPE, ...)
* ``carry`` = CARRY4 + CARRY8 cells (yosys 0.23 maps ``-family xcup`` arithmetic to CARRY4)
* also ``inv`` (INV cells: yosys keeps inverters as INV, Vivado would absorb them or use a LUT1),
  ``muxf`` (MUXF7/8/9), ``srl`` (SRL16E/SRLC32E, shift-register FFs), ``dsp``, ``bram``,
  ``cells`` (the full ``num_cells_by_type``) and ``seconds`` (yosys wall time).

Uses ``stat -json`` (supported by yosys 0.23) written via ``tee -q -o``; files are read with
``read_verilog -defer`` so unused parameterised library modules (e.g. a ``$readmemh`` LUT ROM) are never
elaborated.  Runs under ``nice`` with a timeout (default 300 s).  For designs with ``$readmemh``
tables, pass ``cwd`` = the directory holding the ``.mem`` files.

yosys 0.23 cannot map a ``(* rom_style = "distributed" *)`` ROM of 9-10 address bits (da4ml's lookup
tables: "no valid mapping found for memory"). When it fails that way the design is synthesised again
with the memories' ``rom_style`` attributes removed first (``hierarchy; proc; setattr -unset``), so
yosys builds the ROMs from LUTs and MUXF7/8/9, which is what hgqc's ROMs (``case`` statements, no
memory) become too; the result then has ``rom_style_unset = True``. Only on that failure: the extra
passes alone move LUT counts by a few (digits CNN, no memories: hgqc +6, alkaid +25 of ~30k).

A ROM whose output is registered (a pipelined design with a register right after a lookup table)
is put in block RAM by yosys (``RAMB18E2``), which the LUT count does not see. So that every
tool's ROMs are counted alike, such a design is synthesised again with every memory's
``rom_style`` set to ``"logic"`` (``roms_as_logic``, default on); ``roms_from_bram`` says how many
BRAMs the first mapping used (0: none, the counts are the first run's).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from .timing_model import critical_path, top_module

__all__ = ['yosys_available', 'yosys_stats', 'summarize_cells']


def yosys_available() -> bool:
    return shutil.which('yosys') is not None


def summarize_cells(cells: dict[str, int]) -> dict:
    """LUT / FF / CARRY / ... totals from a yosys ``num_cells_by_type`` dict."""

    def total(pred) -> int:
        return int(sum(n for c, n in cells.items() if pred(c)))

    return dict(
        luts=total(lambda c: re.fullmatch(r'LUT[1-6]', c) is not None),
        ffs=total(lambda c: c.startswith('FD')),
        carry=total(lambda c: c in ('CARRY4', 'CARRY8')),
        inv=total(lambda c: c == 'INV'),
        muxf=total(lambda c: c.startswith('MUXF')),
        srl=total(lambda c: c.startswith('SRL')),
        dsp=total(lambda c: c.startswith('DSP')),
        bram=total(lambda c: c.startswith('RAMB')),
    )


def _parse_text_stat(text: str) -> dict[str, int]:
    """Fallback: the ``Number of cells`` table of the last plain-text ``stat`` block."""
    block = text.rsplit('Number of cells:', 1)[-1]
    cells: dict[str, int] = {}
    for line in block.splitlines()[1:]:
        m = re.fullmatch(r'\s+(\S+)\s+(\d+)\s*', line)
        if not m:
            if cells:
                break
            continue
        cells[m.group(1)] = int(m.group(2))
    return cells


def yosys_stats(
    verilog_files: Sequence[str | Path],
    top: str,
    *,
    family: str = 'xcup',
    timeout: float = 300,
    cwd: str | Path | None = None,
    extra_synth_args: str = '',
    keep_log: str | Path | None = None,
    timing: bool = False,
    roms_as_logic: bool = True,
) -> dict:
    """Synthesise ``top`` from ``verilog_files`` with yosys and count Xilinx cells (see module doc);
    ``timing``: also the mapped netlist's slowest path (``benchmarks.timing_model``) as ``timing``;
    ``roms_as_logic``: when yosys put ROMs in block RAM, synthesise again with them as logic."""
    if not yosys_available():
        raise FileNotFoundError('yosys not found on PATH')
    files = [str(Path(f).resolve()) for f in verilog_files]
    for f in files:
        if '"' in f:
            raise ValueError(f'unsupported file name {f!r}')
    try:
        cells, seconds, path = _run(files, top, family, timeout, cwd, extra_synth_args, keep_log, '', timing)
        unset = False
    except RuntimeError as e:
        if 'no valid mapping found for memory' not in str(e):
            raise
        prep = f'hierarchy -top {top}\nproc\nsetattr -unset rom_style m:*\n'
        cells, seconds, path = _run(files, top, family, timeout, cwd, extra_synth_args, keep_log, prep, timing)
        unset = True
    brams = summarize_cells(cells)['bram']
    if roms_as_logic and brams:  # (a registered ROM: yosys merges the register into a BRAM read port)
        prep = f'hierarchy -top {top}\nproc\nsetattr -set rom_style "logic" m:*\n'
        cells, seconds, path = _run(files, top, family, timeout, cwd, extra_synth_args, keep_log, prep, timing)
    res = summarize_cells(cells)
    res.update(cells=dict(cells), seconds=seconds, top=top, family=family, rom_style_unset=unset)
    res['roms_from_bram'] = brams if roms_as_logic else 0
    if timing:
        res['timing'] = path
    return res


def _run(
    files: list[str],
    top: str,
    family: str,
    timeout: float,
    cwd: str | Path | None,
    extra_synth_args: str,
    keep_log: str | Path | None,
    prep: str,
    timing: bool = False,
) -> tuple[dict[str, int], float, dict | None]:
    """One yosys run (``prep``: passes before ``synth_xilinx``): the cell counts, wall seconds and,
    with ``timing``, the critical path of the mapped netlist."""
    with tempfile.TemporaryDirectory(prefix='hgqc_yosys_') as tmp:
        js, txt, net = Path(tmp) / 'stat.json', Path(tmp) / 'stat.txt', Path(tmp) / 'net.json'
        script = Path(tmp) / 'run.ys'
        reads = '\n'.join(f'read_verilog -defer "{f}"' for f in files)
        script.write_text(
            f'{reads}\n{prep}'
            f'synth_xilinx -family {family} -flatten -top {top} {extra_synth_args}\n'
            f'tee -q -o {js} stat -json\ntee -q -o {txt} stat\n' + (f'write_json {net}\n' if timing else '')
        )
        cmd = ['nice', '-n', '10', 'yosys', '-q', '-s', str(script)]
        if shutil.which('nice') is None:
            cmd = cmd[3:]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
        seconds = time.perf_counter() - t0
        if keep_log is not None:
            Path(keep_log).write_text(r.stdout + r.stderr)
        if r.returncode != 0:
            raise RuntimeError(f'yosys failed ({r.returncode}):\n{(r.stdout + r.stderr)[-3000:]}')
        cells: dict[str, int] | None = None
        if js.exists():
            data = json.loads(js.read_text())
            if 'design' in data:
                cells = data['design'].get('num_cells_by_type', {})
            else:  # single module: the flattened top
                mods = list(data.get('modules', {}).values())
                cells = mods[0].get('num_cells_by_type', {}) if mods else {}
        if cells is None and txt.exists():
            cells = _parse_text_stat(txt.read_text())
        if cells is None:
            raise RuntimeError('yosys wrote no statistics')
        path = critical_path(top_module(json.loads(net.read_text()), top)) if timing else None
    return cells, seconds, path

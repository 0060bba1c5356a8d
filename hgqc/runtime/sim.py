"""Simulation of emitted HDL (Verilator or Icarus for Verilog, GHDL for VHDL) and bit-exact verification.

Integer input arrays are packed per ``port_layout`` into hex files (one vector per line, one
file per port), a generated driver streams them into the design and writes the packed outputs
back, which are unpacked to integer arrays. The driver feeds **one vector per clock cycle**
and reads the outputs of vector ``t`` in cycle ``t + latency`` (before that cycle's rising
edge), so a passing run also proves the pipeline accepts a new input every cycle (II=1).
Combinational designs (no clock) are evaluated once per vector.

``Simulator`` compiles once and can ``run`` many batches; ``simulate`` and ``verify`` are
one-call conveniences. Nothing is cached outside the work directory.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends.common import pack_port, port_layout, to_hex_lines, unpack_port
from ..backends.testbench import verilog_dut, vhdl_dut
from ..errors import HgqcError
from ..ir.graph import Graph
from .interpreter import INT64_SAFE_WIDTH, Interpreter, batch_shape

if TYPE_CHECKING:
    from ..project import Project

__all__ = [
    'SimulationError',
    'Simulator',
    'VerifyResult',
    'check_inputs',
    'compare',
    'default_simulator',
    'emit_for',
    'random_int_inputs',
    'open_simulator',
    'simulate',
    'simulators_for',
    'verify',
    'verify_project',
]

# simulator -> the project target whose sources it builds; the first installed simulator of a
# target is its default (``default_simulator``).
SIMULATORS: dict[str, str] = {'verilator': 'verilog', 'iverilog': 'verilog', 'ghdl': 'vhdl', 'gxx': 'hls4ml'}
SOURCE_SUFFIXES: dict[str, tuple[str, ...]] = {'verilog': ('.v', '.sv'), 'vhdl': ('.vhd', '.vhdl')}
_INSTALL = {
    'verilator': 'verilator not found on PATH; install it (apt-get install verilator) or choose --simulator iverilog',
    'iverilog': 'iverilog not found on PATH; install it (apt-get install iverilog) or choose --simulator verilator',
    'ghdl': 'ghdl not found on PATH; install it (apt-get install ghdl)',
    'gxx': 'g++ not found on PATH; install it (apt-get install g++)',
}
_TIMEOUT = 1800  # seconds for one build or run; generous, only guards against hangs


class SimulationError(HgqcError, RuntimeError):
    """The simulator is missing, the design does not build, or the run failed."""


Source = str | os.PathLike | Mapping[str, str]


# =========================================================================== helpers


def _run(cmd: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise SimulationError(f'{what} timed out after {_TIMEOUT} s') from e
    if proc.returncode != 0:
        raise SimulationError(f'{what} failed (exit {proc.returncode}):\n{_first_errors(proc.stdout + proc.stderr)}')
    return proc


def _first_errors(log: str, n: int = 20) -> str:
    """The first error lines of a tool log (all of its tail when no line looks like an error)."""
    lines = log.splitlines()
    err = [i for i, line in enumerate(lines) if re.search(r'error', line, re.IGNORECASE)]
    if not err:
        return '\n'.join(lines[-n:])
    return '\n'.join(lines[err[0] : err[0] + n])


def _source_files(src: Source, dest: Path, suffixes: tuple[str, ...] = ('.v', '.sv')) -> list[Path]:
    """Sources to compile: an emitted ``{name: text}`` dict (written to ``dest``), a file, or a directory."""
    if isinstance(src, Mapping):
        dest.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, text in src.items():
            p = dest / name
            p.write_text(text)
            paths.append(p)
        files = paths
    else:
        p = Path(src)
        files = sorted(q for q in p.iterdir() if q.suffix in suffixes) if p.is_dir() else [p]
    files = [f.resolve() for f in files if f.suffix in suffixes]
    if not files:
        what = src if not isinstance(src, Mapping) else list(src)
        raise SimulationError(f'no sources ({", ".join("*" + x for x in suffixes)}) in {what}')
    return files


def check_inputs(graph: Graph, int_inputs: Sequence[np.ndarray]) -> int:
    """Validate shapes and ranges (the hardware relies on values lying in their types); returns N."""
    if len(int_inputs) != len(graph.inputs):
        raise ValueError(f'expected {len(graph.inputs)} input arrays, got {len(int_inputs)}')
    n = None
    for node, x in zip(graph.inputs, int_inputs):
        x = np.asarray(x)
        if x.shape[1:] != node.shape or (n is not None and x.shape[0] != n):
            raise ValueError(f'input "{node.name}": expected shape {batch_shape(node.shape)} with one N, got {x.shape}')
        n = x.shape[0]
        if x.size and x.dtype.kind not in 'iuO':
            raise ValueError(f'input "{node.name}": integer array expected, got {x.dtype}')
        flat = x.reshape(n, node.type.size).astype(object)
        lo, hi = node.type.lo.ravel(), node.type.hi.ravel()
        bad = (flat < lo) | (flat > hi)
        if bad.any():
            r, c = (int(v[0]) for v in np.nonzero(bad))
            raise ValueError(f'input "{node.name}" vector {r} element {c}: {flat[r, c]} outside its type [{lo[c]}, {hi[c]}]')
    return n or 0


# =========================================================================== drivers


def _verilator_harness(top: str, layout: dict[str, Any]) -> str:
    nw = {p['port']: (p['port_width'] + 31) // 32 for p in layout['inputs'] + layout['outputs']}
    maxw = max(nw.values(), default=1)
    lat, clk = layout['latency'], layout['clock']
    decl, setin, getout = [], [], []
    for k, p in enumerate(layout['inputs']):
        name, w = p['port'], p['port_width']
        decl.append(f'  std::ifstream in{k}("in{k}.hex");')
        if w <= 32:
            assign = f'dut.{name} = buf[0];'
        elif w <= 64:
            assign = f'dut.{name} = (static_cast<uint64_t>(buf[1]) << 32) | buf[0];'
        else:
            assign = f'for (int i = 0; i < {nw[name]}; ++i) dut.{name}[i] = buf[i];'
        setin.append(f'      if (!read_hex(in{k}, buf, {nw[name]})) return fail("in{k}.hex");\n      {assign}')
    for k, p in enumerate(layout['outputs']):
        name, w = p['port'], p['port_width']
        decl.append(f'  FILE* out{k} = std::fopen("out{k}.hex", "w");')
        if w <= 32:
            get = f'buf[0] = dut.{name};'
        elif w <= 64:
            get = f'buf[0] = static_cast<uint32_t>(dut.{name}); buf[1] = static_cast<uint32_t>(dut.{name} >> 32);'
        else:
            get = f'for (int i = 0; i < {nw[name]}; ++i) buf[i] = dut.{name}[i];'
        getout.append(f'      {get}\n      write_hex(out{k}, buf, {nw[name]});')
    closes = ''.join(f'  std::fclose(out{k});\n' for k in range(len(layout['outputs'])))
    clk_lo = f'    dut.{clk} = 0;\n' if clk else ''
    clk_hi = f'    dut.{clk} = 1;\n    dut.eval();\n' if clk else ''
    return f"""// Generated by hgqc: streams one packed input vector per clock cycle into V{top} and
// writes the outputs of vector t at cycle t + {lat} (read before that cycle's rising edge).
#include "V{top}.h"
#include "verilated.h"
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

static bool read_hex(std::ifstream& in, uint32_t* w, int nw) {{
  std::string s;
  if (!(in >> s)) return false;
  for (int i = 0; i < nw; ++i) w[i] = 0;
  int bit = 0;
  for (auto it = s.rbegin(); it != s.rend(); ++it, bit += 4) {{
    const char c = *it;
    const uint32_t d = (c >= '0' && c <= '9') ? uint32_t(c - '0') : uint32_t((c | 0x20) - 'a' + 10);
    if (bit / 32 < nw) w[bit / 32] |= d << (bit % 32);
  }}
  return true;
}}

static void write_hex(FILE* f, const uint32_t* w, int nw) {{
  for (int i = nw - 1; i >= 0; --i) std::fprintf(f, "%08x", w[i]);
  std::fputc('\\n', f);
}}

static int fail(const char* file) {{
  std::fprintf(stderr, "hgqc harness: %s has fewer vectors than requested\\n", file);
  return 2;
}}

int main(int argc, char** argv) {{
  if (argc < 2) return 3;
  const long n = std::atol(argv[1]);
  VerilatedContext ctx;
  V{top} dut{{&ctx}};
  uint32_t buf[{maxw}] = {{0}};
{chr(10).join(decl)}
  for (long t = 0; t < n + {lat}; ++t) {{
    if (t < n) {{
{chr(10).join(setin)}
    }}
{clk_lo}    dut.eval();
    if (t >= {lat}) {{
{chr(10).join(getout)}
    }}
{clk_hi}  }}
  dut.final();
{closes}  return 0;
}}
"""


def _iverilog_testbench(top: str, tb: str, layout: dict[str, Any]) -> str:
    lat, clk = layout['latency'], layout['clock']
    lines = [f'// Generated by hgqc: streams one vector per cycle into {top}; outputs of vector t at cycle t + {lat}.']
    lines += [f'module {tb};', '  integer t, n, rc;']
    signals, dut = verilog_dut(top, layout)
    lines += signals
    lines += [f'  integer fi_{k};' for k in range(len(layout['inputs']))]
    lines += [f'  integer fo_{k};' for k in range(len(layout['outputs']))]
    lines.append(dut)
    lines += ['  initial begin', '    if (!$value$plusargs("n=%d", n)) n = 0;']
    if clk:
        lines.append("    clk = 1'b0;")
    for k in range(len(layout['inputs'])):
        lines.append(f'    fi_{k} = $fopen("in{k}.hex", "r");\n    in_{k} = 0;')
    for k in range(len(layout['outputs'])):
        lines.append(f'    fo_{k} = $fopen("out{k}.hex", "w");')
    lines.append(f'    for (t = 0; t < n + {lat}; t = t + 1) begin')
    for k in range(len(layout['inputs'])):
        lines.append(f'      if (t < n) rc = $fscanf(fi_{k}, "%h\\n", in_{k});')
    lines.append('      #1;')
    for k in range(len(layout['outputs'])):
        lines.append(f'      if (t >= {lat}) $fwrite(fo_{k}, "%h\\n", out_{k});')
    if clk:
        lines.append("      clk = 1'b1;\n      #1;\n      clk = 1'b0;")
    lines.append('    end')
    lines += [f'    $fclose(fo_{k});' for k in range(len(layout['outputs']))]
    lines += ['    $finish;', '  end', 'endmodule', '']
    return '\n'.join(lines)


def _ghdl_testbench(top: str, tb: str, layout: dict[str, Any]) -> str:
    """VHDL-2008 testbench: the same streaming protocol as the Verilog harnesses (std.textio hread/hwrite)."""
    lat, clk = layout['latency'], layout['clock']
    ins, outs = layout['inputs'], layout['outputs']
    lines = [
        f'-- Generated by hgqc: streams one vector per cycle into {top}; outputs of vector t at cycle t + {lat}.',
        'library ieee;',
        'use ieee.std_logic_1164.all;',
        'use std.textio.all;',
        '',
        f'entity {tb} is',
        '    generic (n : natural := 0);',
        f'end entity {tb};',
        '',
        f'architecture sim of {tb} is',
    ]
    signals, dut = vhdl_dut(top, layout)
    lines += [*signals, 'begin', dut, '    process']
    lines += [f'        file fi_{k} : text open read_mode is "in{k}.hex";' for k in range(len(ins))]
    lines += [f'        file fo_{k} : text open write_mode is "out{k}.hex";' for k in range(len(outs))]
    lines.append('        variable li, lo : line;')
    lines += [f'        variable v_{k} : std_logic_vector({p["port_width"] - 1} downto 0);' for k, p in enumerate(ins)]
    lines += ['    begin', f'        for t in 0 to n + {lat} - 1 loop', '            if t < n then']
    for k in range(len(ins)):
        ind = ' ' * 16
        lines += [f'{ind}readline(fi_{k}, li);', f'{ind}hread(li, v_{k});', f'{ind}in_{k} <= v_{k};']
    lines += ['            end if;', '            wait for 1 ns;', f'            if t >= {lat} then']
    for k in range(len(outs)):
        lines.append(f'                hwrite(lo, out_{k});\n                writeline(fo_{k}, lo);')
    lines.append('            end if;')
    if clk:
        lines += ["            clk <= '1';", '            wait for 1 ns;', "            clk <= '0';"]
    lines += ['        end loop;']
    lines += [f'        file_close(fo_{k});' for k in range(len(outs))]
    lines += ['        wait;', '    end process;', 'end architecture sim;', '']
    return '\n'.join(lines)


class Simulator:
    """A compiled design in a work directory; ``run`` streams integer batches through it."""

    _cmd: Callable[[int], list[str]]  # the command running the built design on n vectors

    def __init__(
        self,
        src: Source,
        graph: Graph,
        simulator: str = 'verilator',
        top: str = 'model',
        workdir: str | os.PathLike | None = None,
    ):
        if simulator not in SIMULATORS:
            raise ValueError(f'unknown simulator {simulator!r}; choose one of {tuple(SIMULATORS)}')
        if SIMULATORS[simulator] not in SOURCE_SUFFIXES:
            raise ValueError(f'{simulator} is not an HDL simulator; use open_simulator() or hgqc.runtime.csim.CSimulator')
        self.graph, self.simulator, self.top = graph, simulator, top
        self.layout = port_layout(graph, top)
        self._tmp = tempfile.TemporaryDirectory(prefix='hgqc-sim-') if workdir is None else None
        self.workdir = Path(self._tmp.name if self._tmp else workdir).resolve()  # type: ignore[arg-type]
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.sources = _source_files(src, self.workdir / 'hdl', SOURCE_SUFFIXES[SIMULATORS[simulator]])
            self._build()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ build
    def _tool(self, name: str) -> str:
        path = shutil.which(name)
        if path is None:
            raise SimulationError(_INSTALL[self.simulator])
        return path

    def _testbench_name(self) -> str:
        return 'hgqc_tb' if self.top != 'hgqc_tb' else 'hgqc_tb_1'

    def _build(self) -> None:
        getattr(self, f'_build_{self.simulator}')()

    def _build_verilator(self) -> None:
        exe = self._tool('verilator')
        harness = self.workdir / 'hgqc_harness.cpp'
        harness.write_text(_verilator_harness(self.top, self.layout))
        cmd = [exe, '--cc', '--exe', '--build', '-O1', '-j', '2', '-Wno-fatal', '--top-module', self.top]
        cmd += ['-Mdir', 'obj_dir', '-o', 'hgqc_sim', *map(str, self.sources), str(harness)]
        _run(cmd, self.workdir, 'verilator build')
        exe_path = str(self.workdir / 'obj_dir' / 'hgqc_sim')
        self._cmd = lambda n: [exe_path, str(n)]

    def _build_iverilog(self) -> None:
        exe = self._tool('iverilog')
        vvp = self._tool('vvp')
        tb = self._testbench_name()
        (self.workdir / 'hgqc_tb.v').write_text(_iverilog_testbench(self.top, tb, self.layout))
        cmd = [exe, '-g2001', '-s', tb, '-o', 'hgqc_sim.vvp', 'hgqc_tb.v', *map(str, self.sources)]
        _run(cmd, self.workdir, 'iverilog compile')
        self._cmd = lambda n: [vvp, '-n', 'hgqc_sim.vvp', f'+n={n}']

    def _build_ghdl(self) -> None:
        exe = self._tool('ghdl')
        tb = self._testbench_name()
        (self.workdir / 'hgqc_tb.vhd').write_text(_ghdl_testbench(self.top, tb, self.layout))
        (self.workdir / 'ghdl_work').mkdir(exist_ok=True)
        opts = ['--std=08', '--workdir=ghdl_work']
        _run([exe, '-a', *opts, *map(str, self.sources), 'hgqc_tb.vhd'], self.workdir, 'ghdl analysis')
        _run([exe, '-e', *opts, tb], self.workdir, 'ghdl elaboration')
        # numeric_std warns about the 'U' bits of unfilled pipeline registers; those cycles are not read
        self._cmd = lambda n: [exe, '-r', *opts, tb, f'-gn={n}', '--ieee-asserts=disable']

    # ------------------------------------------------------------------ run
    def run(self, int_inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Integer outputs (graph output order) for integer inputs of shape (N, *shape) each."""
        n = check_inputs(self.graph, int_inputs)
        for k, (port, x) in enumerate(zip(self.layout['inputs'], int_inputs)):
            (self.workdir / f'in{k}.hex').write_text(to_hex_lines(pack_port(port, np.asarray(x)), port['port_width']))
        for k in range(len(self.layout['outputs'])):
            (self.workdir / f'out{k}.hex').unlink(missing_ok=True)
        _run(self._cmd(n), self.workdir, f'{self.simulator} simulation')
        return [self._read_output(k, port, n) for k, port in enumerate(self.layout['outputs'])]

    def _read_output(self, k: int, port: dict[str, Any], n: int) -> np.ndarray:
        path = self.workdir / f'out{k}.hex'
        lines = path.read_text().split() if path.exists() else []
        if len(lines) != n:
            raise SimulationError(f'output "{port["name"]}": expected {n} vectors from the simulator, got {len(lines)}')
        try:
            words = [int(s, 16) for s in lines]
        except ValueError as e:
            raise SimulationError(f'output "{port["name"]}" has undefined (X/Z) bits: {e}') from e
        return unpack_port(port, words)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def simulate(
    src: Source,
    graph: Graph,
    int_inputs: Sequence[np.ndarray],
    simulator: str = 'verilator',
    top: str = 'model',
    workdir: str | os.PathLike | None = None,
) -> list[np.ndarray]:
    """Build ``src`` (a project's HDL directory, a file, or ``emit_verilog`` output) and run it.

    For ``gxx``, ``src`` is the ``{path: text}`` files of an hls4ml-target project."""
    with open_simulator(src, graph, simulator, top, workdir) as sim:
        return sim.run(int_inputs)


def open_simulator(
    src: Source,
    graph: Graph,
    simulator: str = 'verilator',
    top: str = 'model',
    workdir: str | os.PathLike | None = None,
) -> Simulator:
    """A built ``Simulator``, or for ``gxx`` a ``csim.CSimulator`` (same ``run``/``close`` interface)."""
    if simulator == 'gxx':
        from .csim import CSimulator

        if not isinstance(src, Mapping):
            raise ValueError('gxx simulates an emitted hls4ml project: pass its {path: text} files')
        return CSimulator(src, graph, top, workdir)  # type: ignore[return-value]
    return Simulator(src, graph, simulator, top, workdir)


# =========================================================================== verification


@dataclass(frozen=True)
class VerifyResult:
    mismatches: int  # input vectors whose outputs differ anywhere
    total: int
    first_mismatch_detail: str | None

    @property
    def ok(self) -> bool:
        return self.mismatches == 0

    def __str__(self) -> str:
        first = f' (first: {self.first_mismatch_detail})' if self.first_mismatch_detail else ''
        return f'mismatches: {self.mismatches} / {self.total}{first}'


def compare(graph: Graph, expected: Sequence[np.ndarray], got: Sequence[np.ndarray]) -> VerifyResult:
    """Count input vectors whose outputs differ anywhere; describe the first difference."""
    n = expected[0].shape[0] if expected else 0
    bad = np.zeros(n, dtype=bool)
    detail, first = None, n
    for (name, node), e, g in zip(graph.outputs, expected, got):
        ef = np.asarray(e, dtype=object).reshape(n, node.type.size)
        gf = np.asarray(g, dtype=object).reshape(n, node.type.size)
        rows = (ef != gf).any(axis=1)
        bad |= rows
        if rows.any() and int(np.argmax(rows)) < first:
            first = int(np.argmax(rows))
            col = int(np.argmax(ef[first] != gf[first]))
            idx = tuple(int(i) for i in np.unravel_index(col, node.shape)) if node.shape else ()
            detail = f'vector {first}, output "{name}" element {idx}: hardware {gf[first, col]}, interpreter {ef[first, col]}'
    return VerifyResult(int(bad.sum()), n, detail)


def verify(
    graph: Graph,
    int_inputs: Sequence[np.ndarray],
    src: Source | None = None,
    simulator: str = 'verilator',
    top: str = 'model',
    workdir: str | os.PathLike | None = None,
    sim: Simulator | None = None,
) -> VerifyResult:
    """Simulate (``sim``, or ``src``, or freshly emitted sources for ``simulator``) and compare with the interpreter."""
    expected = Interpreter(graph).run_int(list(int_inputs))
    if sim is not None:
        got = sim.run(int_inputs)
    else:
        if src is None:
            src = emit_for(simulator, graph, top)
        got = simulate(src, graph, int_inputs, simulator, top, workdir)
    return compare(graph, expected, got)


def emit_for(simulator: str, graph: Graph, top: str = 'model') -> dict[str, str]:
    """The sources ``simulator`` builds, freshly emitted from an adder-level graph."""
    if simulator not in SIMULATORS:
        raise ValueError(f'unknown simulator {simulator!r}; choose one of {tuple(SIMULATORS)}')
    if SIMULATORS[simulator] == 'vhdl':
        from ..backends.vhdl import emit_vhdl

        return emit_vhdl(graph, top)
    if SIMULATORS[simulator] == 'hls4ml':
        from ..backends.hls import emit_hls

        return emit_hls(graph, top)
    from ..backends.verilog import emit_verilog

    return emit_verilog(graph, top)


def simulators_for(target: str) -> tuple[str, ...]:
    """The simulators that can build a ``target`` project, the preferred one first."""
    return tuple(name for name, t in SIMULATORS.items() if t == target)


def default_simulator(target: str = 'verilog') -> str:
    """The first installed simulator for ``target`` (Verilator, then Icarus, for Verilog; GHDL for
    VHDL); the first one when none is installed, so the error says how to install it."""
    names = simulators_for(target)
    if not names:
        raise SimulationError(f'no simulator can build {target} projects')
    for name in names:
        if shutil.which(name):
            return name
    return names[0]


def verify_project(
    project: Project,
    int_inputs: Sequence[np.ndarray],
    simulator: str | None = None,
    workdir: str | os.PathLike | None = None,
    ap_types: str | os.PathLike | None = None,
) -> VerifyResult:
    """``verify`` on a project's own emitted sources (``project.files``) and top module.

    ``simulator`` defaults to the first installed one for the project's target; one that cannot
    build the target is refused. hls4ml-target projects run as a g++ C simulation (``gxx``)
    against the ap_types headers at ``ap_types`` (default: ``$AP_TYPES``, else hls4ml's copy).
    """
    sim = simulator or default_simulator(project.target)
    if sim not in SIMULATORS:
        raise SimulationError(f'unknown simulator {sim!r}; choose one of {tuple(SIMULATORS)}')
    if SIMULATORS[sim] != project.target:
        choices = simulators_for(project.target)
        hint = f'choose --simulator {" or ".join(choices)}' if choices else 'no simulator supports it yet'
        raise SimulationError(f'{sim} cannot simulate a {project.target} project; {hint}')
    if project.target == 'hls4ml':
        from .csim import CSimulator

        with CSimulator(project.files, project.graph, project.top, workdir, ap_types) as csim:
            return verify(project.graph, int_inputs, sim=csim)  # type: ignore[arg-type]
    suffixes = SOURCE_SUFFIXES[project.target]
    files = {Path(rel).name: text for rel, text in project.files.items() if Path(rel).suffix in suffixes}
    return verify(project.graph, int_inputs, src=files, simulator=sim, top=project.top, workdir=workdir)


def random_int_inputs(graph: Graph, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` vectors per input drawn uniformly from each element's interval; the first rows
    are the extremes (all lo, all hi, alternating lo/hi, and -1/0/1 clipped into range)."""
    rng = np.random.default_rng(seed)
    out = []
    for node in graph.inputs:
        wide = node.type.max_width > INT64_SAFE_WIDTH
        lo = node.type.lo.ravel().astype(object if wide else np.int64)
        hi = node.type.hi.ravel().astype(object if wide else np.int64)
        x = _uniform_ints(rng, lo, hi, n)
        special = [lo, hi, np.where(np.arange(lo.size) % 2, lo, hi), np.where(np.arange(lo.size) % 2, hi, lo)]
        special += [np.clip(np.full_like(lo, v), lo, hi) for v in (-1, 0, 1)]
        for r, row in enumerate(special[:n]):
            x[r] = row
        out.append(x.reshape((n, *node.shape)))
    return out


def _uniform_ints(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    """``n`` rows of integers uniform in ``[lo, hi]`` per column: int64, or Python ints when
    ``lo``/``hi`` are (wider than int64: 62 random bits at a time, then reduced, which is
    uniform up to a bias below 2^-62 per draw)."""
    if lo.dtype != object:
        return rng.integers(lo, hi + 1, size=(n, lo.size)) if lo.size else np.zeros((n, 0), np.int64)
    span = hi - lo + 1
    words = max((int(s).bit_length() for s in span), default=0) // 62 + 2
    r = np.zeros((n, lo.size), dtype=object)
    for _ in range(words):
        r = (r << 62) + rng.integers(0, 1 << 62, size=(n, lo.size)).astype(object)
    return lo + r % span

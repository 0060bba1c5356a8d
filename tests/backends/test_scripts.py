"""Vivado/Quartus build scripts and constraints, run in plain tclsh with the vendor commands stubbed.

CI has neither tool, so the scripts are executed as Tcl with every vendor command replaced by a
recorder: this proves they parse, find the project's files from their own location wherever the
folder is, and issue the expected flow (sources, top, constraints, synth/opt/place/route,
reports) with the clock period asked for.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hgqc.backends import emit
from hgqc.backends.common import port_layout
from hgqc.options import CompileOptions

from .test_verilog import kitchen_sink_graph, pipelined_graph

needs_tclsh = pytest.mark.skipif(shutil.which('tclsh') is None, reason='tclsh not installed')

_VENDOR = """
read_verilog read_vhdl read_xdc synth_design opt_design place_design route_design report_utilization
report_timing_summary write_checkpoint load_package project_new set_global_assignment set_instance_assignment
execute_flow project_close create_clock set_input_delay set_output_delay derive_clock_uncertainty
""".split()

_PRELUDE = (
    'set ::calls {}\n'
    + ''.join(f'proc {c} args {{lappend ::calls [join [list {c} {{*}}$args] \\t]}}\n' for c in _VENDOR)
    + 'proc get_ports args {return "PORTS:[join [join $args] ,]"}\n'
    + 'set argv {}\nset argc 0\n'
    + 'source [lindex $::scripts 0]\n'
    + 'foreach c $::calls {puts $c}\n'
)


def _write_project(tmp_path: Path, target: str, graph, period: float) -> Path:
    out = tmp_path / f'{target}_project'
    for rel, text in emit(target, graph, CompileOptions(clock_period=period, top='net')).items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    return out


def _run_tcl(script: Path, cwd: Path) -> list[list[str]]:
    prelude = cwd / 'stubs.tcl'
    prelude.write_text(f'set ::scripts [list {{{script}}}]\n' + _PRELUDE)
    proc = subprocess.run(['tclsh', str(prelude)], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [line.split('\t') for line in proc.stdout.splitlines()]  # one recorded call per line


@needs_tclsh
@pytest.mark.parametrize('target', ['verilog', 'vhdl'])
def test_vivado_script_flow(tmp_path, target):
    proj = _write_project(tmp_path, target, pipelined_graph(), 2.5)
    calls = _run_tcl(proj / 'build_vivado_prj.tcl', tmp_path)  # run from elsewhere: paths are its own
    names = [c[0] for c in calls]
    flow = ['synth_design', 'opt_design', 'place_design', 'route_design', 'report_utilization', 'report_timing_summary']
    assert [n for n in names if n in flow] == flow
    read = [c for c in calls if c[0] in ('read_verilog', 'read_vhdl')]
    suffix = '.vhd' if target == 'vhdl' else '.v'
    assert len(read) == 1 and Path(read[0][-1]).is_file() and read[0][-1].endswith('src/net' + suffix)
    assert (read[0][1] == '-vhdl2008') == (target == 'vhdl')
    synth = calls[names.index('synth_design')]
    assert synth[synth.index('-top') + 1] == 'net' and synth[synth.index('-part') + 1] == 'xcvu13p-flga2577-2-e'
    assert '-mode' in synth and 'out_of_context' in synth
    xdc = calls[names.index('read_xdc')][-1]
    assert Path(xdc).is_file()
    constraints = _run_tcl(Path(xdc), tmp_path)
    assert constraints[0] == ['create_clock', '-name', 'clk', '-period', '2.500', 'PORTS:clk']
    lay = port_layout(pipelined_graph(), 'net')
    delays = {c[0]: c for c in constraints[1:]}
    assert delays['set_input_delay'] == [
        'set_input_delay',
        '-clock',
        'clk',
        '0.000',
        'PORTS:' + ','.join(f'{p["port"]}[*]' for p in lay['inputs']),
    ]
    assert delays['set_output_delay'][-1] == 'PORTS:' + ','.join(f'{p["port"]}[*]' for p in lay['outputs'])


@needs_tclsh
@pytest.mark.parametrize('target', ['verilog', 'vhdl'])
def test_quartus_script_flow(tmp_path, target):
    graph = kitchen_sink_graph()
    proj = _write_project(tmp_path, target, graph, 4.0)
    calls = _run_tcl(proj / 'build_quartus_prj.tcl', tmp_path)
    assignments = {tuple(c[2:4]) for c in calls if c[0] == 'set_global_assignment'}
    kind = 'VHDL_FILE' if target == 'vhdl' else 'VERILOG_FILE'
    files = [v for k, v in assignments if k == kind]
    assert len(files) == 1 and Path(files[0]).is_file()
    assert ('TOP_LEVEL_ENTITY', 'net') in assignments
    assert (('VHDL_INPUT_VERSION', 'VHDL_2008') in assignments) == (target == 'vhdl')
    sdc = [v for k, v in assignments if k == 'SDC_FILE']
    assert len(sdc) == 1 and Path(sdc[0]).is_file()
    virtual = [c[-1] for c in calls if c[0] == 'set_instance_assignment']
    lay = port_layout(graph, 'net')
    assert virtual == [f'{p["port"]}[*]' for p in lay['inputs'] + lay['outputs']]
    assert ['execute_flow', '-compile'] in calls
    assert (proj / 'quartus').is_dir()  # the script builds in its own folder, not in the caller's
    constraints = _run_tcl(Path(sdc[0]), tmp_path)
    assert constraints[0] == ['create_clock', '-name', 'vclk', '-period', '4.000']  # combinational: virtual clock
    assert constraints[-1] == ['derive_clock_uncertainty']

"""VHDL backend: text, naming, and bit-exactness against the interpreter in GHDL.

The hand-built adder-level graphs of ``test_verilog`` (every op, every round x overflow mode,
wide and zero-width ports; a 4-stage pipeline; hostile port names) are emitted as VHDL-2008,
built with GHDL and streamed one vector per cycle, like the Verilog harnesses.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from hgqc.backends.common import RESERVED, is_identifier
from hgqc.backends.vhdl import HELPER_NAMES, emit_vhdl
from hgqc.runtime.sim import Simulator, random_int_inputs
from hgqc.runtime.sim import verify as hw_verify

from .test_verilog import (
    N_VECTORS,
    hostile_names_graph,
    kitchen_sink_graph,
    pipelined_graph,
    relu_pool_graph,
    relu_pool_pipelined_graph,
)

needs_ghdl = pytest.mark.skipif(shutil.which('ghdl') is None, reason='ghdl not installed')

VHDL_KEYWORDS = {'entity', 'signal', 'architecture', 'port', 'in', 'out', 'process', 'begin', 'end', 'is', 'of', 'downto'}


def _ports(src: str) -> list[str]:
    return re.findall(r'^\s+(\w+) : (?:in|out) std_logic', src, re.M)


def test_header_and_structure():
    src = emit_vhdl(pipelined_graph(), top='net')['net.vhd']
    assert 'VHDL-2008' in src.splitlines()[1]
    libs = re.findall(r'^use ([\w.]+)\.all;', src, re.M)
    assert libs == ['ieee.std_logic_1164', 'ieee.numeric_std']
    assert 'entity net is' in src and 'architecture rtl of net is' in src
    assert src.count('rising_edge(clk)') == 1  # one clocked process holds every register
    assert _ports(src) == ['clk', 'a', 'y']


def test_combinational_has_no_clock_and_names_are_unique():
    src = emit_vhdl(kitchen_sink_graph())['model.vhd']
    assert 'clk' not in src and 'process' not in src
    signals = re.findall(r'^\s+signal (\w+) : unsigned\((\d+) downto 0\);', src, re.M)
    names = [n for n, _ in signals]
    assert len(signals) > 100 and len({n.lower() for n in names}) == len(names)
    assert all(is_identifier(n) for n in names)


def test_helper_names_are_reserved():
    assert set(HELPER_NAMES) <= RESERVED


def test_hostile_names_are_valid_vhdl_identifiers():
    src = emit_vhdl(hostile_names_graph())['model.vhd']
    ports = _ports(src)
    assert len(ports) == 26
    assert all(is_identifier(p) and not p.endswith('_') and '__' not in p for p in ports)
    assert len({p.lower() for p in ports}) == len(ports)  # VHDL is case-insensitive
    assert not VHDL_KEYWORDS & {p.lower() for p in ports}


def test_emission_is_deterministic():
    assert emit_vhdl(kitchen_sink_graph()) == emit_vhdl(kitchen_sink_graph())


@needs_ghdl
@pytest.mark.parametrize('builder', [kitchen_sink_graph, pipelined_graph, hostile_names_graph])
def test_ghdl_analyzes_without_warnings(tmp_path, builder):
    files = emit_vhdl(builder())
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    # -Wunused: helper functions a design does not call are not declared
    proc = subprocess.run(['ghdl', '-a', '--std=08', '-Wunused', *files], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0 and not (proc.stdout + proc.stderr).strip(), proc.stdout + proc.stderr


@needs_ghdl
@pytest.mark.parametrize(
    ('builder', 'seed'),
    [
        (kitchen_sink_graph, 1),
        (pipelined_graph, 4),
        (hostile_names_graph, 5),
        (relu_pool_graph, 6),
        (relu_pool_pipelined_graph, 7),
    ],
)
def test_ghdl_matches_interpreter(tmp_path, builder, seed):
    g = builder()
    with Simulator(emit_vhdl(g), g, 'ghdl', workdir=tmp_path) as sim:
        res = hw_verify(g, random_int_inputs(g, N_VECTORS, seed=seed), sim=sim)
    assert res.ok and res.total == N_VECTORS, res.first_mismatch_detail


@needs_ghdl
def test_ghdl_catches_a_wrong_design():
    """The diff is real: one flipped operator in the VHDL gives mismatches."""
    g = kitchen_sink_graph()
    src = emit_vhdl(g)['model.vhd']
    body = src.index('\nbegin\n')
    k = src.index(' + ', body)
    broken = {'model.vhd': src[:k] + ' - ' + src[k + 3 :]}
    res = hw_verify(g, random_int_inputs(g, 200, seed=1), src=broken, simulator='ghdl')
    assert res.mismatches > 0 and res.first_mismatch_detail


def _tables_graph():
    from hgqc.options import CompileOptions
    from hgqc.passes import DEFAULT_PIPELINE, PassManager

    from ..ir.test_table import table_graph

    return PassManager(list(DEFAULT_PIPELINE), CompileOptions(latency_cutoff=1)).run(table_graph()[0])


@needs_ghdl
@pytest.mark.skipif(shutil.which('iverilog') is None, reason='iverilog not installed')
@pytest.mark.parametrize(('builder', 'n'), [(kitchen_sink_graph, 80), (pipelined_graph, 1000), (_tables_graph, 1000)])
def test_ghdl_synthesis_equals_interpreter(tmp_path, builder, n):
    """Synthesizable, and synthesized right: GHDL's own synthesizer turns the VHDL into a
    gate-level Verilog netlist, which Icarus then simulates against the interpreter (slowly: the
    kitchen sink's netlist is bit-level, so it gets fewer vectors; the extremes come first)."""
    g = builder()
    (tmp_path / 'model.vhd').write_text(emit_vhdl(g)['model.vhd'])
    proc = subprocess.run(
        ['ghdl', '--synth', '--std=08', '--out=verilog', 'model.vhd', '-e', 'model'], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0 and 'module model' in proc.stdout, proc.stderr
    res = hw_verify(g, random_int_inputs(g, n, seed=7), src={'model.v': proc.stdout}, simulator='iverilog')
    assert res.ok and res.total == n, res.first_mismatch_detail

"""Backends: text emitters from an adder-level graph. ``emit(target, graph, options)`` -> {path: text}.

Paths are relative to the project folder: HDL sources go to ``src/``; the RTL targets add FPGA
build scripts (``build_vivado_prj.tcl``, ``build_quartus_prj.tcl``), their constraints, and a
self-checking testbench with its vectors in ``tb/`` (``testbench.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from ..ir import Graph
from ..options import CompileOptions

Emitter = Callable[[Graph, CompileOptions], dict[str, str]]


def _verilog(graph: Graph, options: CompileOptions) -> dict[str, str]:
    from .scripts import rtl_build_scripts
    from .testbench import rtl_testbench
    from .verilog import emit_verilog

    files = {f'src/{name}': text for name, text in emit_verilog(graph, top=options.top).items()}
    tb = rtl_testbench('verilog', graph, options.top, list(files), options.testbench_vectors)
    return files | rtl_build_scripts('verilog', graph, options, files) | tb


def _vhdl(graph: Graph, options: CompileOptions) -> dict[str, str]:
    from .scripts import rtl_build_scripts
    from .testbench import rtl_testbench
    from .vhdl import emit_vhdl

    files = {f'src/{name}': text for name, text in emit_vhdl(graph, top=options.top).items()}
    tb = rtl_testbench('vhdl', graph, options.top, list(files), options.testbench_vectors)
    return files | rtl_build_scripts('vhdl', graph, options, files) | tb


def _hls4ml(graph: Graph, options: CompileOptions) -> dict[str, str]:
    from .hls import emit_hls

    return emit_hls(graph, top=options.top, clock_period=options.clock_period, vectors=options.testbench_vectors)


EMITTERS: dict[str, Emitter] = {'verilog': _verilog, 'vhdl': _vhdl, 'hls4ml': _hls4ml}


def emit(target: str, graph: Graph, options: CompileOptions | None = None) -> dict[str, str]:
    try:
        fn = EMITTERS[target]
    except KeyError:
        raise ValueError(f"unknown target '{target}'; choose one of: {', '.join(EMITTERS)}") from None
    return fn(graph, options or CompileOptions())

"""Backends: text emitters from an adder-level graph. ``emit(target, graph, top)`` -> {path: text}."""

from __future__ import annotations

from collections.abc import Callable

from ..ir import Graph

Emitter = Callable[[Graph, str], dict[str, str]]


def _verilog(graph: Graph, top: str) -> dict[str, str]:
    from .verilog import emit_verilog

    return {f'src/{name}': text for name, text in emit_verilog(graph, top=top).items()}


EMITTERS: dict[str, Emitter] = {'verilog': _verilog}


def emit(target: str, graph: Graph, top: str) -> dict[str, str]:
    try:
        fn = EMITTERS[target]
    except KeyError:
        raise ValueError(f"unknown target '{target}'; choose one of: {', '.join(EMITTERS)}") from None
    return fn(graph, top)

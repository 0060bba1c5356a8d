"""Python API: ``hgqc.compile`` does what the ``hgqc`` command does, for notebooks and scripts."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .backends.common import CLOCK, identifier_problem
from .errors import HgqcError
from .ir import Graph
from .project import Project, base_metadata, check_output_dir

TARGETS = ('verilog', 'vhdl', 'hls4ml')


class CompileError(HgqcError, ValueError):
    pass


def load_graph(model: Any) -> Graph:
    """Run the frontend that fits ``model``: a keras.Model, a ``.keras`` path, an ``.onnx`` path or ModelProto."""
    if isinstance(model, Graph):
        return model
    if isinstance(model, (str, os.PathLike)):
        suffix = Path(model).suffix.lower()
        if suffix == '.onnx':
            from .frontend.qonnx import from_qonnx

            return from_qonnx(model)
        if suffix not in ('.keras',):
            raise CompileError(f"'{model}': unknown model format '{suffix}'; expected a .keras or .onnx file")
    if type(model).__module__.startswith(('onnx', 'qonnx')):  # ModelProto / qonnx ModelWrapper
        from .frontend.qonnx import from_qonnx

        return from_qonnx(model)
    try:
        from .frontend.keras import from_keras
    except ModuleNotFoundError as e:  # e.g. KERAS_BACKEND=tensorflow without TensorFlow installed
        backend = os.environ.get('KERAS_BACKEND')
        raise CompileError(
            f'cannot load Keras with KERAS_BACKEND={backend!r}: {e}; hgqc needs Keras on jax (its default): '
            'unset KERAS_BACKEND or set it to jax'
        ) from e
    return from_keras(model)


def compile(  # noqa: A001 - the natural name for a compiler's entry point
    model: Any,
    output_dir: str | os.PathLike | None = None,
    target: str = 'verilog',
    force: bool = False,
    **options: Any,
) -> Project:
    """Compile ``model`` (keras.Model, .keras path, or an IR Graph) to ``target``.

    ``target`` is ``'verilog'`` (Verilog-2001) or ``'vhdl'`` (VHDL-2008). ``options`` are fields
    of ``hgqc.options.CompileOptions`` (``latency_cutoff``, ``top``, ``clock_period``,
    ``max_adder_depth``, ``check``, ...). With ``output_dir`` the project is also written there
    (atomically; an existing non-empty folder needs ``force=True``).
    """
    from .backends import emit
    from .options import CompileOptions
    from .passes import DEFAULT_PIPELINE, PassManager

    if target not in TARGETS:
        raise CompileError(f"unknown target '{target}'; choose one of: {', '.join(TARGETS)}")
    try:
        opts = CompileOptions(**options)
    except TypeError as e:
        raise CompileError(f'bad option: {e}') from e
    why = identifier_problem(opts.top)
    if why:
        raise CompileError(f"top name '{opts.top}' is not a legal HDL identifier: {why}")
    if opts.top.lower() == CLOCK:
        raise CompileError(f"top name '{opts.top}' is the clock port's name; choose another")
    if output_dir is not None:
        check_output_dir(Path(output_dir), force, Path(model) if isinstance(model, (str, os.PathLike)) else None)
    tensor_graph = load_graph(model)
    pm = PassManager(list(opts.pipeline or DEFAULT_PIPELINE), opts)
    graph = pm.run(tensor_graph.copy())
    files = emit(target, graph, opts)
    meta = base_metadata(graph, target, opts.top, files, _jsonable(asdict(opts)))
    project = Project(graph, target, opts.top, files, meta, tensor_graph=tensor_graph, pass_times=list(pm.timings))
    if output_dir is not None:
        project.write(output_dir, force=force)
    return project


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, (str, int, float, bool, type(None))):
            out[k] = v
        elif isinstance(v, (list, tuple)) and all(isinstance(x, (str, int, float, bool)) for x in v):
            out[k] = list(v)
        else:
            out[k] = repr(v)
    return out

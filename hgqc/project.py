"""The compiled project: graph + emitted sources + metadata, in memory and on disk.

On disk (``OUT/``)::

    src/<top>.v            emitted sources (per target)
    model.hgqir            the final adder-level IR (text form, versioned): `hgqc run` needs no Keras
    metadata.json          ports (packing of every element), latency, target, options, versions
    report.txt             resource summary and per-layer table

Writing is atomic: the project is built in a temporary sibling folder and renamed into place,
so a failure never leaves half a project, and an existing non-empty folder is only replaced
with ``force``, and only when it is an earlier hgqc project (``check_output_dir``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import ProjectError
from .ir import Graph, parse_graph, print_graph
from .runtime.interpreter import Interpreter

IR_FILE = 'model.hgqir'
META_FILE = 'metadata.json'
REPORT_FILE = 'report.txt'


@dataclass
class Project:
    """What ``hgqc.compile`` returns: the IR, the emitted files, and ways to run them."""

    graph: Graph
    target: str
    top: str
    files: dict[str, str]
    metadata: dict[str, Any]
    tensor_graph: Graph | None = None
    path: Path | None = None
    pass_times: list[tuple[str, float]] = field(default_factory=list)

    # ------------------------------------------------------------------ running
    def predict(self, *xs: np.ndarray):
        """Bit-exact interpreter on float inputs (the model's own input quantization applies)."""
        return Interpreter(self.graph).predict(*xs)

    def to_fixed(self, *xs: np.ndarray) -> list[np.ndarray]:
        interp = Interpreter(self.graph)
        return [interp.to_fixed(node, x) for node, x in zip(self.graph.inputs, xs)]

    def verify(
        self,
        *xs: np.ndarray,
        simulator: str | None = None,
        workdir: str | os.PathLike | None = None,
        ap_types: str | os.PathLike | None = None,
    ):
        """Simulate the emitted sources on ``xs`` and diff every output bit with the interpreter.

        ``ap_types``: the ap_types include folder for hls4ml-target C simulation (g++).
        """
        from .runtime.sim import verify_project

        return verify_project(self, self.to_fixed(*xs), simulator=simulator, workdir=workdir, ap_types=ap_types)

    def report(self) -> str:
        from .backends.report import format_report

        return format_report(self)

    # ------------------------------------------------------------------ disk
    def write(self, output_dir: str | os.PathLike, force: bool = False) -> Path:
        out = Path(output_dir)
        check_output_dir(out, force)
        parent = out.resolve().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f'.{out.name}.tmp-', dir=parent))
        except OSError as e:
            raise ProjectError(f"cannot write output folder '{out}': {_reason(e, parent)}") from e
        try:
            for rel, text in self.files.items():
                p = tmp / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text)
            (tmp / IR_FILE).write_text(print_graph(self.graph))
            (tmp / META_FILE).write_text(json.dumps(self.metadata, indent=1) + '\n')
            (tmp / REPORT_FILE).write_text(self.report() + '\n')
            _replace_dir(tmp, out)
        except BaseException as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, OSError):  # (the temporary folder's name would only confuse)
                raise ProjectError(f"cannot write output folder '{out}': {_reason(e, parent)}") from e
            raise
        self.path = out
        return out

    @classmethod
    def load(cls, path: str | os.PathLike) -> Project:
        p = Path(path)
        if not p.is_dir():
            raise ProjectError(f"'{p}' is not a project folder (run `hgqc MODEL -o {p}` first)")
        for name in (IR_FILE, META_FILE):
            if not (p / name).is_file():
                raise ProjectError(f"'{p}' is not an hgqc project: {name} is missing")
        try:
            graph = parse_graph((p / IR_FILE).read_text())
            meta = json.loads((p / META_FILE).read_text())
        except (ValueError, OSError) as e:
            raise ProjectError(f"'{p}': cannot read project: {e}") from e
        files = {}
        for rel in meta.get('files', []):
            fp = p / rel
            if fp.is_file():
                files[rel] = fp.read_text()
        return cls(graph, meta['target'], meta['top'], files, meta, path=p)


def check_output_dir(out: Path, force: bool, keep: Path | None = None) -> None:
    """Refuse an output folder hgqc must not write (before any work is done).

    ``force`` replaces only an earlier hgqc project (a folder with hgqc's ``metadata.json``), never
    a folder holding ``keep`` (the model being compiled), the current folder or one above it:
    replacing deletes the old folder, so anything else in it would be lost."""
    here, target = Path.cwd().resolve(), out.resolve()
    if target == here or target in here.parents:
        raise ProjectError(
            f"output folder '{out}' is the current folder or contains it; name a new folder for the project, e.g. -o out/"
        )
    if out.exists() and not out.is_dir():
        raise ProjectError(f"output '{out}' exists and is not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise ProjectError(f"output folder '{out}' exists and is not empty; pass --force (force=True) to replace it")
    if not _is_project(out):
        raise ProjectError(
            f"output folder '{out}' is not an hgqc project (no hgqc metadata.json), so --force will not delete "
            'it; choose another folder, or empty this one yourself'
        )
    if keep is not None and target in keep.resolve().parents:
        raise ProjectError(f"output folder '{out}' holds the model being compiled ('{keep}'); --force would delete it")


def _is_project(folder: Path) -> bool:
    """Whether ``folder`` holds a project hgqc wrote (its metadata names an hgqc version)."""
    try:
        return 'hgqc_version' in json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError, TypeError):
        return False


def _reason(e: OSError, parent: Path) -> str:
    """An OS error in user terms: the folder that failed, not hgqc's temporary one."""
    if isinstance(e, (FileExistsError, NotADirectoryError)) and e.filename:
        return f"'{e.filename}' is a file, not a folder"
    return f"{e.strerror or e} (in '{parent}')"


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` folder to ``out``; an old ``out`` is removed only afterwards."""
    old = None
    if out.exists():
        old = out.with_name(f'.{out.name}.old-{os.getpid()}')
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def base_metadata(graph: Graph, target: str, top: str, files: dict[str, str], options: dict[str, Any]) -> dict[str, Any]:
    from .backends.common import port_layout

    layout = port_layout(graph, top)
    return {
        'hgqc_version': __version__,
        'target': target,
        'top': top,
        'latency': int(layout['latency']),
        'clock': layout['clock'],
        'ports': {'inputs': layout['inputs'], 'outputs': layout['outputs']},
        'files': sorted(files),
        'options': options,
        'packing': 'row-major elements, element 0 at the least significant bits, each element its own width '
        "(two's complement when signed); value = integer * 2^-f",
    }

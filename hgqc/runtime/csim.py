"""C simulation of an hls4ml-target project with g++ (the ``gxx`` simulator).

The project's own sources (``firmware/<top>.cpp`` and ``<top>_bridge.cpp``) are compiled with
``g++ -std=c++17 -fPIC -shared -I<ap_types>`` into a shared library, exactly as the project's
``build_lib.sh`` does, and its ``<top>_raw`` batch function is called through ctypes with
integer arrays (values in units of each element's step), so the comparison with the
interpreter is exact. The ap_types headers are found at ``ap_types`` (``--ap-types DIR``),
else ``$AP_TYPES``, else in the installed hls4ml package; they are never copied anywhere.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..backends.hls_project import CXX_OPT, CXX_STD, bridge_words, cxx_opt
from ..ir.graph import Graph
from .sim import SimulationError, _run, check_inputs

__all__ = ['CSimulator', 'find_ap_types']

_MASK64 = (1 << 64) - 1


def _to_words(x: np.ndarray, words: int) -> np.ndarray:
    """(n, m) integers as (n, m * words) int64: each one's two's complement, 64 bits per word,
    least significant first (the bridge's raw layout)."""
    if words == 1:
        return np.ascontiguousarray(x, dtype=np.int64)
    big = x.astype(object)
    parts = [((big >> (64 * i)) & _MASK64).astype(np.uint64) for i in range(words)]
    return np.ascontiguousarray(np.stack(parts, axis=-1).reshape(x.shape[0], -1).view(np.int64))


def _from_words(raw: np.ndarray, words: int) -> np.ndarray:
    """The inverse of ``_to_words``: Python ints (an object array) when ``words`` > 1."""
    if words == 1:
        return raw
    limbs = raw.view(np.uint64).reshape(raw.shape[0], -1, words).astype(object)
    value = sum((limbs[..., i] << (64 * i) for i in range(words)), np.zeros(limbs.shape[:2], dtype=object))
    top = 1 << (64 * words - 1)
    return np.where(value >= top, value - 2 * top, value)


def find_ap_types(ap_types: str | os.PathLike | None = None) -> Path:
    """The folder holding ``ap_fixed.h``: the argument, else ``$AP_TYPES``, else hls4ml's copy."""
    if ap_types is not None:
        p = Path(ap_types)
        if not (p / 'ap_fixed.h').is_file():
            raise SimulationError(f"--ap-types '{p}' does not contain ap_fixed.h (point it at the ap_types include folder)")
        return p.resolve()
    env = os.environ.get('AP_TYPES')
    if env and (Path(env) / 'ap_fixed.h').is_file():
        return Path(env).resolve()
    spec = importlib.util.find_spec('hls4ml')
    if spec is not None and spec.submodule_search_locations:
        p = Path(next(iter(spec.submodule_search_locations))) / 'templates' / 'vivado' / 'ap_types'
        if (p / 'ap_fixed.h').is_file():
            return p.resolve()
    raise SimulationError('ap_types headers not found: pip install hls4ml, set AP_TYPES, or pass --ap-types DIR')


def gxx_command(top: str, ap_types: Path, opt: str = CXX_OPT) -> list[str]:
    """The g++ command of ``build_lib.sh`` (run in the project folder)."""
    cxx = os.environ.get('CXX', 'g++')
    return [cxx, opt, f'-std={CXX_STD}', '-fPIC', '-shared', f'-I{ap_types}', '-Ifirmware'] + [
        f'firmware/{top}.cpp',
        f'{top}_bridge.cpp',
        '-o',
        f'lib{top}.so',
    ]


class CSimulator:
    """A project's C++ built into a shared library; ``run`` streams integer batches through it."""

    def __init__(
        self,
        files: Mapping[str, str],
        graph: Graph,
        top: str = 'model',
        workdir: str | os.PathLike | None = None,
        ap_types: str | os.PathLike | None = None,
        opt: str | None = None,
    ):
        """``opt``: g++ optimization flag; default -O1, or -O0 for a very long top function."""
        self.graph, self.top = graph, top
        self.words = bridge_words(graph)  # int64 words per element (more than one past 63 bits)
        self._tmp = tempfile.TemporaryDirectory(prefix='hgqc-csim-') if workdir is None else None
        self.workdir = Path(self._tmp.name if self._tmp else workdir).resolve()  # type: ignore[arg-type]
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.ap_types = find_ap_types(ap_types)
            if shutil.which(os.environ.get('CXX', 'g++')) is None:
                raise SimulationError('g++ not found on PATH; install it (apt-get install g++)')
            for rel, text in files.items():
                p = self.workdir / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text)
            for rel in (f'firmware/{top}.cpp', f'{top}_bridge.cpp'):
                if rel not in files:
                    raise SimulationError(f'{rel} missing: not an hls4ml-target project for top "{top}"')
            if opt is None:
                body = files[f'firmware/{top}.cpp']
                opt = cxx_opt(body.count(';'))  # about one statement per ';'
            self.opt = opt
            t0 = time.perf_counter()
            _run(gxx_command(top, self.ap_types, opt), self.workdir, 'g++ build')
            self.build_seconds = time.perf_counter() - t0
            self._lib = ctypes.CDLL(str(self.workdir / f'lib{top}.so'))
            self._fn = getattr(self._lib, f'{top}_raw')
            n_ptr = len(graph.inputs) + len(graph.outputs)
            self._fn.argtypes = [ctypes.POINTER(ctypes.c_int64)] * n_ptr + [ctypes.c_long]
            self._fn.restype = ctypes.c_int
        except BaseException:
            self.close()
            raise

    def run(self, int_inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Integer outputs (graph output order) for integer inputs of shape (N, *shape) each."""
        n = check_inputs(self.graph, int_inputs)
        ins = [_to_words(np.asarray(x).reshape(n, -1), self.words) for x in int_inputs]
        outs = [np.zeros((n, max(node.type.size, 1) * self.words), dtype=np.int64) for _, node in self.graph.outputs]
        ptrs = [a.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)) for a in ins + outs]
        self._fn(*ptrs, n)
        ys = [_from_words(o, self.words)[:, : node.type.size] for o, (_, node) in zip(outs, self.graph.outputs)]
        return [y.reshape((n, *node.shape)) for y, (_, node) in zip(ys, self.graph.outputs)]

    def close(self) -> None:
        self._lib = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> CSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

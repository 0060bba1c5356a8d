"""Pass registry and pass manager.

A pass is a function ``(graph, options) -> Graph`` (it may mutate and return its argument or
return a new graph) or a small class whose instances have ``run(graph, options) -> Graph``
(a fresh instance per run, so state never leaks between compilations). Register one with
``@register_pass('name')``; packages can also expose passes through the entry-point group
``hgqc.passes`` (an entry point may name a pass function/class, registered under the entry
point's name, or a module whose import registers passes with the decorator).

In check mode (``options.check``) the manager verifies the graph and re-simulates it after
every pass on seeded random integer inputs plus the extreme corners, and requires exactly the
same output values as the graph it started from; a failure raises ``PassError`` naming the
pass, every pass that ran before it, and why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any, Literal, Protocol

import numpy as np

from ..errors import HgqcError
from ..ir.graph import Graph
from ..ir.types import TensorType
from ..ir.verifier import VerificationError, verify
from ..options import CompileOptions

ENTRY_POINT_GROUP = 'hgqc.passes'

PassFn = Callable[[Graph, CompileOptions], Graph]


class PassClass(Protocol):
    """The class form of a pass: instantiated without arguments once per run."""

    def run(self, graph: Graph, options: CompileOptions) -> Graph: ...


class PassError(RuntimeError):
    """A pass failed, broke an IR invariant or changed the simulated outputs."""

    def __init__(self, pass_name: str, before: Sequence[str], why: str):
        self.pass_name = pass_name
        self.before = list(before)
        self.why = why
        ran = ', '.join(repr(p) for p in before) if before else 'none'
        super().__init__(f'pass {pass_name!r} failed (passes run before it: {ran}): {why}')


# --------------------------------------------------------------------------- registry

PASSES: dict[str, PassFn | type[PassClass]] = {}  # name -> pass function or pass class
_entry_points_loaded = False


def register_pass(name: str, *, replace: bool = False) -> Callable[[Any], Any]:
    """Decorator registering a pass function or class under ``name``.

    Registering a different object under a taken name is an error unless ``replace=True``;
    re-registering the same definition (a module imported twice) is allowed.
    """

    def deco(obj: Any) -> Any:
        old = PASSES.get(name)
        if old is not None and not replace and _qualname(old) != _qualname(obj):
            raise ValueError(f'a pass named {name!r} is already registered ({_qualname(old)})')
        if not callable(obj) or (isinstance(obj, type) and not hasattr(obj, 'run')):
            raise TypeError(f'pass {name!r} must be a function or a class with run(graph, options)')
        PASSES[name] = obj
        return obj

    return deco


def _qualname(obj: Any) -> str:
    return f'{getattr(obj, "__module__", "?")}.{getattr(obj, "__qualname__", repr(obj))}'


def load_entry_points() -> None:
    """Import the passes other packages expose in the ``hgqc.passes`` entry-point group (once)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        if not isinstance(obj, ModuleType):  # a module registers its passes when imported
            register_pass(ep.name)(obj)


class UnknownPassError(HgqcError, KeyError):
    """A pipeline names a pass nobody registered."""

    def __str__(self) -> str:  # (KeyError would quote the message)
        return str(self.args[0]) if self.args else ''


def get_pass(name: str) -> PassFn:
    """The registered pass as a plain ``(graph, options) -> Graph`` callable."""
    if name not in PASSES:
        load_entry_points()
    obj = PASSES.get(name)
    if obj is None:
        raise UnknownPassError(f'unknown pass {name!r}; registered: {sorted(PASSES)}')
    if isinstance(obj, type):
        return lambda graph, options: obj().run(graph, options)
    return obj


# --------------------------------------------------------------------------- pipelines

DEFAULT_PIPELINE: tuple[str, ...] = (
    'range',
    'prune',
    'fold_round',
    'merge_positions',
    'csd',
    'cse',
    'lower',
    'range',
    'prune',
    'pipeline',
)

Which = Literal['first', 'last', 'all']


def _positions(pipeline: Sequence[str], anchor: str, which: Which) -> list[int]:
    pos = [i for i, p in enumerate(pipeline) if p == anchor]
    if not pos:
        raise ValueError(f'pass {anchor!r} is not in the pipeline {list(pipeline)}')
    return {'first': pos[:1], 'last': pos[-1:], 'all': pos}[which]


def insert_after(pipeline: Sequence[str], anchor: str, name: str, which: Which = 'first') -> list[str]:
    """A new pipeline with ``name`` after the first / last / every occurrence of ``anchor``."""
    out = list(pipeline)
    for i in reversed(_positions(pipeline, anchor, which)):
        out.insert(i + 1, name)
    return out


def insert_before(pipeline: Sequence[str], anchor: str, name: str, which: Which = 'first') -> list[str]:
    """A new pipeline with ``name`` before the first / last / every occurrence of ``anchor``."""
    out = list(pipeline)
    for i in reversed(_positions(pipeline, anchor, which)):
        out.insert(i, name)
    return out


def replace_pass(pipeline: Sequence[str], old: str, new: str, which: Which = 'all') -> list[str]:
    out = list(pipeline)
    for i in _positions(pipeline, old, which):
        out[i] = new
    return out


def remove_pass(pipeline: Sequence[str], name: str, which: Which = 'all') -> list[str]:
    drop = set(_positions(pipeline, name, which))
    return [p for i, p in enumerate(pipeline) if i not in drop]


# --------------------------------------------------------------------------- manager


@dataclass
class PassRecord:
    name: str
    seconds: float
    nodes: int  # graph size after the pass


class PassManager:
    """Runs a pipeline of registered passes; ``records`` holds per-pass wall time of the last run."""

    def __init__(self, pipeline: Sequence[str] = DEFAULT_PIPELINE, options: CompileOptions | None = None):
        self.pipeline = list(pipeline)
        self.options = options or CompileOptions()
        self.records = []
        for name in self.pipeline:  # fail before doing any work on a typo
            get_pass(name)

    def insert_after(self, anchor: str, name: str, which: Which = 'first') -> PassManager:
        self.pipeline = insert_after(self.pipeline, anchor, name, which)
        get_pass(name)
        return self

    def insert_before(self, anchor: str, name: str, which: Which = 'first') -> PassManager:
        self.pipeline = insert_before(self.pipeline, anchor, name, which)
        get_pass(name)
        return self

    @property
    def timings(self) -> list[tuple[str, float]]:
        """(pass name, wall seconds) of the last run, in order."""
        return [(r.name, r.seconds) for r in self.records]

    def report(self) -> str:
        lines = [f'{"pass":<16}{"seconds":>10}{"nodes":>10}']
        lines += [f'{r.name:<16}{r.seconds:>10.4f}{r.nodes:>10}' for r in self.records]
        lines.append(f'{"total":<16}{sum(r.seconds for r in self.records):>10.4f}')
        return '\n'.join(lines)

    def run(self, graph: Graph) -> Graph:
        self.records = []
        checker = _Checker(graph, self.options) if self.options.check else None
        for k, name in enumerate(self.pipeline):
            before = self.pipeline[:k]
            fn = get_pass(name)
            t0 = time.perf_counter()
            try:
                out = fn(graph, self.options)
            except (PassError, HgqcError):  # (a refusal names its node and what to change)
                raise
            except Exception as e:  # noqa: BLE001 - any failure is reported with the pass history
                raise PassError(name, before, f'{type(e).__name__}: {e}') from e
            if not isinstance(out, Graph):
                raise PassError(name, before, f'returned {type(out).__name__}, expected a Graph')
            graph = out
            self.records.append(PassRecord(name, time.perf_counter() - t0, len(graph)))
            if checker is not None:
                why = checker.check(graph)
                if why is not None:
                    raise PassError(name, before, why)
        return graph


def run_passes(graph: Graph, options: CompileOptions | None = None, pipeline: Sequence[str] = DEFAULT_PIPELINE) -> Graph:
    return PassManager(pipeline, options).run(graph)


# --------------------------------------------------------------------------- check mode


def sample_inputs(t: TensorType, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform integer vectors inside ``t`` plus corners (all-lo, all-hi, alternating)."""
    lo = np.array([e.lo for e in t.elems], dtype=np.int64)
    hi = np.array([e.hi for e in t.elems], dtype=np.int64)
    alt = np.arange(t.size) % 2 == 0
    corners = [lo, hi, np.where(alt, lo, hi), np.where(alt, hi, lo)]
    rand = rng.integers(lo, hi, size=(n, t.size), endpoint=True) if t.size else np.zeros((n, 0), np.int64)
    return np.concatenate([np.stack(corners), rand]).reshape((len(corners) + n,) + t.shape)


def exact_values(x: np.ndarray, t: TensorType, f: int) -> np.ndarray:
    """Integers of ``x`` (step 2^-t.f per element) re-expressed at the common step 2^-f (Python ints)."""
    return np.asarray(x, dtype=object) << (f - t.f).astype(object)


class _Checker:
    """Reference outputs of the graph before the first pass, compared after every pass.

    Outputs are compared as exact values (integer times 2^-f of the output's type): a pass may
    change an output's stored type (``range`` tightens it), never a value.
    """

    def __init__(self, graph: Graph, options: CompileOptions):
        from ..runtime.interpreter import Interpreter

        rng = np.random.default_rng(options.seed)
        self.feeds = [sample_inputs(n.type, options.check_samples, rng) for n in graph.inputs]
        self.names = [n.name for n in graph.inputs]
        self.ref = Interpreter(graph).run_int(self.feeds)
        self.ref_types = [v.type for v in graph.output_nodes()]
        self.out_names = [name for name, _ in graph.outputs]

    def check(self, graph: Graph) -> str | None:
        from ..runtime.interpreter import Interpreter

        try:
            verify(graph)
        except VerificationError as e:
            return f'verifier: {e}'
        if [n.name for n in graph.inputs] != self.names:
            return f'graph inputs changed from {self.names} to {[n.name for n in graph.inputs]}'
        if [name for name, _ in graph.outputs] != self.out_names:
            return f'graph outputs changed from {self.out_names} to {[name for name, _ in graph.outputs]}'
        try:
            outs = Interpreter(graph).run_int(self.feeds)
        except Exception as e:  # noqa: BLE001
            return f'interpreter: {type(e).__name__}: {e}'
        for name, node, y, ref, rt in zip(self.out_names, graph.output_nodes(), outs, self.ref, self.ref_types):
            why = _compare(name, ref, rt, y, node.type)
            if why:
                return why
        return None


def _compare(name: str, ref: np.ndarray, rt: TensorType, y: np.ndarray, yt: TensorType) -> str | None:
    """Exact value comparison (a pass may change an output's fraction bits, never its values)."""
    if rt.shape != yt.shape:
        return f'output {name!r}: shape changed from {rt.shape} to {yt.shape}'
    f = int(max(rt.f.max(initial=0), yt.f.max(initial=0)))
    a, b = exact_values(ref, rt, f), exact_values(y, yt, f)
    bad = np.argwhere(a != b)
    if bad.size == 0:
        return None
    s, *idx = (int(v) for v in bad[0])
    flat = int(np.ravel_multi_index(idx, rt.shape)) if rt.shape else 0
    want, got = np.ldexp(float(ref[(s, *idx)]), -int(rt.f.flat[flat])), np.ldexp(float(y[(s, *idx)]), -int(yt.f.flat[flat]))
    return (
        f'output {name!r} differs at sample {s}, element {tuple(idx)}: expected {want!r}, got {got!r} '
        f'({len(bad)} mismatching elements)'
    )

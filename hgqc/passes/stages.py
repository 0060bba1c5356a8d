"""Stage assignment for ``pipeline``: which register stage computes each node.

A schedule maps every node of a lowered graph to a stage (``None``: a constant, available in
every stage) and is *valid* for a cutoff of ``c`` adder levels when

* a node's stage is at least each operand's stage (values only flow forward through registers);
* inside one stage no chain of nodes is longer than ``c`` levels (``pipeline.node_delay``); a
  node slower than that (a multiplier or a wide ROM at a small cutoff) may only share its stage
  with zero-delay wiring;
* every output is computed before the final register stage ``latency``.

A value computed in stage ``s`` and last used in stage ``t`` costs ``width * (t - s)`` register
bits (one chain per producer, shared by its consumers; outputs are used in stage ``latency``).

``asap_stages`` puts each node as early as possible (the latency is then minimal).
``min_register_stages`` keeps that latency and minimises the register bits: it is min-area
retiming on a DAG, a linear program whose constraints are all differences of two variables
(totally unimodular, so an optimal vertex is integral):

    minimise   sum_u  w_u * (m_u - s_u)
    subject to s_v >= s_u                  for every edge u -> v
               m_u >= s_v, m_u >= s_u      for every consumer v of u (m_u: u's last stage)
               m_u >= latency              for every output
               s_w >= s_u + 1              when the longest path u ... w is longer than c levels
               asap_u <= s_u <= latency - 1

The path rows are only needed for the first node ``w`` on each path out of ``u`` that exceeds
``c`` (later ones follow by the edge rows), so they are found by a walk of at most ``c`` levels
from each node.
"""

from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Node
from ..ir.ops import Op

Schedule = dict[Node, int | None]

# HiGHS' interior point with crossover (a vertex, so integral): 4x faster than its dual simplex
# on a 19k-node graph (8 s vs 33 s), the same optimum
LP_METHOD = 'highs-ipm'

# above this many path rows the LP is not built (its set-up is Python-speed): ASAP is kept
MAX_PATH_ROWS = 2_000_000


def _live_inputs(n: Node, stage: Schedule) -> list[Node]:
    return [i for i in n.inputs if stage[i] is not None]


def _output_sources(graph: Graph) -> list[Node]:
    """The values the outputs carry (an output gather packs several)."""
    out: list[Node] = []
    for _, v in graph.outputs:
        out.extend(v.inputs if v.op is Op.GATHER and v.shape != () else (v,))
    return out


def latency_of(graph: Graph, stage: Schedule) -> int:
    """Register stages of a schedule: outputs are registered once after their last stage."""
    stages = [s for s in (stage[v] for v in _output_sources(graph)) if s is not None]
    return max(stages) + 1 if stages else 0


def asap_stages(graph: Graph, cutoff: int, delays: dict[Node, int]) -> Schedule:
    """Every node as early as possible; an op that would straddle a stage boundary starts at
    the boundary instead (``delays``: ``pipeline.node_delay`` of every node)."""
    ready: dict[Node, int] = {}
    stage: Schedule = {}
    for n in graph:
        if n.op is Op.INPUT:
            ready[n], stage[n] = 0, 0
            continue
        live = _live_inputs(n, stage)
        start = max((ready[i] for i in live), default=0)
        d = delays[n]
        if d == 0:
            ready[n] = start
            stage[n] = None if n.op is Op.CONST else max((stage[i] for i in live), default=0)  # type: ignore[type-var]
            continue
        if start % cutoff and start // cutoff != (start + d - 1) // cutoff:
            start = (start // cutoff + 1) * cutoff  # would straddle a boundary: wait for it
        ready[n], stage[n] = start + d, start // cutoff
    return stage


def register_bits(graph: Graph, stage: Schedule, latency: int) -> int:
    """Register bits a schedule needs."""
    outs = _output_gathers(graph)
    last: dict[Node, int] = {}
    for n in graph:
        if n in outs:
            continue
        for i in _live_inputs(n, stage):
            last[i] = max(last.get(i, 0), stage[n])  # type: ignore[type-var]
    for v in _output_sources(graph):
        if stage[v] is not None:
            last[v] = latency
    return sum(v.type.max_width * (t - stage[v]) for v, t in last.items())  # type: ignore[operator]


def _output_gathers(graph: Graph) -> set[Node]:
    """Output nodes that pack several values (``pipeline`` registers their elements)."""
    return {v for _, v in graph.outputs if v.op is Op.GATHER and v.shape != ()}


def is_valid(graph: Graph, stage: Schedule, cutoff: int, latency: int, delays: dict[Node, int]) -> bool:
    """Whether a schedule is valid (see the module docstring)."""
    arrival: dict[Node, tuple[int, int]] = {}  # (longest same-stage path ending here, its limit)
    outs = _output_gathers(graph)
    for n in graph:
        if n in outs:
            continue
        s, live = stage[n], _live_inputs(n, stage)
        if s is None:
            if live:
                return False
            continue
        if any(stage[i] > s for i in live):  # type: ignore[operator]
            return False
        same = [arrival[i] for i in live if stage[i] == s]
        arr, lim = max((a for a, _ in same), default=0), max((m for _, m in same), default=cutoff)
        arrival[n] = (arr + delays[n], max(lim, delays[n]))
        if arrival[n][0] > arrival[n][1]:
            return False
    return all(stage[v] is None or stage[v] < latency for v in _output_sources(graph))  # type: ignore[operator]


def _path_rows(n: Node, var: dict[Node, int], cutoff: int, delays: dict[Node, int]) -> list[Node]:
    """The first nodes on paths out of ``n`` whose path from ``n`` is too long for one stage."""
    reach = {n: (delays[n], max(cutoff, delays[n]))}  # (longest path, its limit)
    stack, over = [n], set()
    while stack:
        x = stack.pop()
        arr_x, lim_x = reach[x]
        for w in x.users:
            if w not in var:
                continue
            arr, lim = arr_x + delays[w], max(lim_x, delays[w])
            if arr > lim:
                over.add(w)
            elif w not in reach or reach[w] < (arr, lim):
                reach[w] = (arr, lim)
                stack.append(w)
    return sorted(over, key=lambda w: w.id)


def min_register_stages(graph: Graph, cutoff: int, asap: Schedule, latency: int, delays: dict[Node, int]) -> Schedule | None:
    """The valid schedule of ``latency`` stages with the fewest register bits (``None``: nothing
    to place, the LP is too large to build, or its answer is not a valid integral schedule; the
    caller keeps ASAP then)."""
    import scipy.sparse as sp  # (imported here: ~0.3 s, only pipelined builds need it)
    from scipy.optimize import linprog

    nodes = list(graph)
    if latency == 0:
        return None
    outs = _output_gathers(graph)
    var_nodes = [n for n in nodes if asap[n] is not None and n not in outs]
    var = {n: k for k, n in enumerate(var_nodes)}
    n_var = len(var_nodes)
    rows: list[int] = []
    cols: list[int] = []
    rhs: list[int] = []

    def row(a: int, b: int, k: int) -> None:  # x_a - x_b <= k
        rows.extend((len(rhs), len(rhs)))
        cols.extend((a, b))
        rhs.append(k)

    for u, k in var.items():
        row(k, n_var + k, 0)  # m_u >= s_u
        for v in u.users:
            if v in var:
                row(k, var[v], 0)  # s_v >= s_u
                row(var[v], n_var + k, 0)  # m_u >= s_v
        for w in _path_rows(u, var, cutoff, delays):
            row(k, var[w], -1)
        if len(rhs) > MAX_PATH_ROWS:
            return None
    width = np.array([n.type.max_width for n in var_nodes], dtype=np.float64)
    lower = [asap[n] for n in var_nodes] + [0] * n_var
    upper = [latency - 1] * n_var + [latency] * n_var
    for n, k in var.items():
        if n.op is Op.GATHER and n.inputs[0].op is Op.INPUT:
            upper[k] = 0  # an input element: registering it later would register the whole port
    for v in _output_sources(graph):
        if v in var:
            lower[n_var + var[v]] = latency
    a = sp.csr_matrix((np.tile([1.0, -1.0], len(rhs)), (rows, cols)), shape=(len(rhs), 2 * n_var))
    res = linprog(
        np.concatenate([-width, width]),
        A_ub=a,
        b_ub=np.array(rhs, dtype=np.float64),
        bounds=list(zip(lower, upper, strict=True)),
        method=LP_METHOD,
    )
    if res.status != 0:
        return None
    s = np.round(res.x[:n_var])
    if not np.allclose(s, res.x[:n_var], atol=1e-6):
        return None
    stage: Schedule = {n: None for n in nodes if asap[n] is None}
    stage.update({n: int(v) for n, v in zip(var_nodes, s.tolist(), strict=True)})
    for n in outs:  # (wiring: its elements are registered into the last stage one by one)
        stage[n] = max((stage[i] for i in _live_inputs(n, stage)), default=0)  # type: ignore[type-var]
    if not is_valid(graph, stage, cutoff, latency, delays):
        return None
    return stage

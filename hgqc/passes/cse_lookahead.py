"""``cse_lookahead``: the pilot method over the greedy CSE's first decisions (opt-in, slow).

The greedy of ``hgqc.passes.cse`` takes, at every step, the pattern with the largest saving. Its
early decisions shape everything after them (restarts from a mid-run snapshot gained nothing), so
this search revisits the first ``steps`` of them: at decision ``t`` (the decisions before it fixed)
it tries the ``width`` best patterns in the greedy's own order, completes each with the plain
greedy, and fixes the pattern whose completion scored best (fewest adders, then adder bits, then
depth). The best completion seen anywhere is returned, so the result is never worse than the plain
greedy's (the first completion *is* the plain greedy).

Candidates come from the greedy itself: a run with ``forced`` = the fixed decisions and ``skip`` =
the patterns already tried at decision ``t`` substitutes the forced ones, sets the skipped ones
aside for that one decision and records every pattern it takes (``_Solver.taken``); its pattern at
position ``t`` is the next candidate and its program that candidate's completion. The winner's run
is also the next decision's first candidate, so a search costs ``1 + steps * (width - 1)`` greedy
runs. Every run honours the depth limit (forced patterns were taken under the same limit), and the
search is deterministic (each run is, and ties go to the earlier candidate).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

WIDTH = 4  # patterns tried per decision


class _Greedy(Protocol):
    forced: Any
    skip: frozenset[int]
    taken: list[int]

    def run_cse(self, limit: int) -> None: ...


Program = dict[str, Any]


def pilot(
    make: Callable[[], _Greedy],
    finish: Callable[[Any], Program],
    limit: int,
    score: Callable[[Program], tuple[int, ...]],
    steps: int,
    width: int = WIDTH,
) -> Program:
    """The best program of a pilot search over the first ``steps`` greedy decisions.

    ``make`` builds a fresh solver (``hgqc.passes.cse._Solver``), ``finish`` turns a solved one into
    its program, ``score`` ranks programs (smaller is better)."""
    if steps < 0 or width < 1:
        raise ValueError(f'lookahead needs steps >= 0 and width >= 1, got {steps}, {width}')

    def run(forced: list[int], skip: list[int]) -> tuple[tuple[int, ...], Program, list[int]]:
        s = make()
        s.forced, s.skip = tuple(forced), frozenset(skip)
        s.run_cse(limit)
        prog = finish(s)
        return score(prog), prog, list(s.taken)

    first = run([], [])  # the plain greedy
    best_score, best = first[0], first[1]
    prefix: list[int] = []
    for t in range(steps):
        tried: list[tuple[tuple[int, ...], Program, list[int]]] = []  # (score, program, taken) per candidate
        for _ in range(width):
            sc, prog, taken = first if not tried else run(prefix, [r[2][t] for r in tried])
            if len(taken) <= t:
                break  # no pattern left to take at this decision
            tried.append((sc, prog, taken))
            if sc < best_score:
                best_score, best = sc, prog
        if not tried:
            break
        first = min(tried, key=lambda r: r[0])  # the earliest of equal scores; its run starts the next decision
        prefix = first[2][: t + 1]
    return best

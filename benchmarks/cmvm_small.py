"""One greedy CSE run per suite case with both solvers: the vectorised ``_Solver`` and the
plain-Python ``SmallSolver`` (``hgqc.passes.cse_small``), side by side.

    python -m benchmarks.cmvm_small [--max-digits 6000] [--repeat 3]

Per case: signed digits, digits per output column, the median time of one run (solver set-up,
greedy, program) with each solver, their ratio, and which one ``solve`` uses
(``cse_small.fits``). Every pair of programs is compared and must be identical (the two solvers
make the same decisions). This is how ``SMALL_COLUMN`` / ``SMALL_DIGITS`` were chosen.
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.cmvm import _qint_types
from benchmarks.cmvm_suite import suite


def _run(cls, case, digits, types, repeat: int) -> tuple[float, dict]:
    times, prog = [], {}
    n_in, n_out = case.matrix.shape
    for _ in range(repeat):
        t0 = time.perf_counter()
        s = cls(n_in, digits, n_out, None, types)
        s.run_cse(s.min_depth() + 2)
        prog = s.program()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), prog


def main(argv=None) -> int:
    from hgqc.passes.csd import csd_matrix
    from hgqc.passes.cse import _Solver
    from hgqc.passes.cse_small import SmallSolver, fits

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--max-digits', type=int, default=6000)
    ap.add_argument('--max-size', type=int, default=64)
    ap.add_argument('--repeat', type=int, default=3)
    args = ap.parse_args(argv)
    print(f'{"case":18s} {"digits":>6s} {"per col":>7s} {"numpy ms":>9s} {"python ms":>9s} {"ratio":>6s}  solve uses')
    for case in suite(max_size=args.max_size):
        digits = csd_matrix(case.matrix)
        if len(digits) > args.max_digits:
            continue
        types = _qint_types(case)
        t_np, p_np = _run(_Solver, case, digits, types, args.repeat)
        t_py, p_py = _run(SmallSolver, case, digits, types, args.repeat)
        if p_np != p_py:
            raise AssertionError(f'{case.name}: the two solvers built different programs')
        n_out = case.matrix.shape[1]
        uses = 'python' if fits(digits, n_out) else 'numpy'
        print(
            f'{case.name:18s} {len(digits):6d} {len(digits) / n_out:7.1f} {t_np * 1e3:9.1f} {t_py * 1e3:9.1f} '
            f'{t_py / t_np:6.2f}  {uses}',
            flush=True,
        )
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

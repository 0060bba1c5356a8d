"""How hls4ml's ap_types headers compare two ap_fixed values of different types (why the HLS
backend casts a signed and an unsigned ``max``/``min`` operand to one signed type first).

    python -m benchmarks.ap_compare [--pairs 60] [--seed 1] [--ap-types DIR]

Draws ``--pairs`` random pairs of types (widths 3..100 bits, integer bits -10..W+10) per kind:
``same`` (equal signedness), ``mixed`` (one signed, one unsigned) and ``cast`` (the mixed pairs,
both cast to the signed hull type before comparing). For each pair it compares the range ends, 0,
±1 and two random values of each type both ways (``<`` and ``>``) in a g++ program and counts the
results that differ from exact rational comparison. Not run by CI (each program takes a few
minutes of g++ at -O0).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

WIDTHS = (3, 8, 16, 31, 32, 33, 40, 50, 63, 64, 65, 80, 100)


def _type(signed: bool, w: int, i: int) -> str:
    return f'ap_{"" if signed else "u"}fixed<{w},{i}>'


def _values(rng: random.Random, signed: bool, w: int) -> list[int]:
    lo, hi = _ends(signed, w)
    vals = {lo, hi, 0, 1, lo + 1, hi - 1, rng.randint(lo, hi), rng.randint(lo, hi)}
    if signed:
        vals.add(-1)
    return sorted(vals)


def _literal(v: int, t: str, w: int) -> str:
    """A value of type ``t`` from its raw bits (exact at any width)."""
    return f'[]() {{ {t} r; ap_uint<{w}> b("{v % (1 << w):x}", 16); r.range({w - 1}, 0) = b; return r; }}()'


def _ends(signed: bool, w: int) -> tuple[int, int]:
    return (-(1 << (w - 1)), (1 << (w - 1)) - 1) if signed else (0, (1 << w) - 1)


def _hull(sa: bool, wa: int, fa: int, sb: bool, wb: int, fb: int) -> str:
    """The signed type holding every value of both (what the HLS backend casts to)."""
    f = max(fa, fb)
    ends = [(*_ends(s, w), fx) for s, w, fx in ((sa, wa, fa), (sb, wb, fb))]
    lo = min(a << (f - fx) for a, _, fx in ends)
    hi = max(b << (f - fx) for _, b, fx in ends)
    w = max(hi.bit_length(), (-lo - 1).bit_length()) + 1
    return _type(True, w, w - f)


def program(kind: str, pairs: int, seed: int) -> tuple[str, int]:
    """The C++ source for one kind, and how many comparisons (each both ways) it makes."""
    rng = random.Random(seed)
    lines = ['#include "ap_fixed.h"', '#include <cstdio>', 'int main() {', '    int bad = 0;']
    n = 0
    for _ in range(pairs):
        sa = rng.random() < 0.5
        sb = sa if kind == 'same' else not sa
        wa, wb = rng.choice(WIDTHS), rng.choice(WIDTHS)
        ia, ib = rng.randint(-10, wa + 10), rng.randint(-10, wb + 10)
        fa, fb = wa - ia, wb - ib
        ta, tb = _type(sa, wa, ia), _type(sb, wb, ib)
        cast = _hull(sa, wa, fa, sb, wb, fb) if kind == 'cast' else ''
        x, y = (f'{cast}(a)', f'{cast}(b)') if cast else ('a', 'b')
        for va in _values(rng, sa, wa):
            for vb in _values(rng, sb, wb):
                ra, rb = Fraction(va, 1) / Fraction(2) ** fa, Fraction(vb, 1) / Fraction(2) ** fb
                lt, gt = int(ra < rb), int(ra > rb)
                lines.append(
                    f'    {{ {ta} a = {_literal(va, ta, wa)}; {tb} b = {_literal(vb, tb, wb)}; '
                    f'if ((int)({x} < {y}) != {lt} || (int)({x} > {y}) != {gt}) ++bad; }}'
                )
                n += 1
    lines += ['    printf("%d\\n", bad);', '    return 0;', '}']
    return '\n'.join(lines), n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--pairs', type=int, default=60)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--ap-types', default=None, help="ap_types include folder (default: hls4ml's copy)")
    args = ap.parse_args(argv)
    from hgqc.runtime.csim import find_ap_types

    inc = find_ap_types(args.ap_types)
    print('| kind | comparisons | wrong (< or >) |')
    print('|---|---|---|')
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ('same', 'mixed', 'cast'):
            src, n = program(kind, args.pairs, args.seed)
            cpp, exe = Path(tmp) / f'{kind}.cpp', Path(tmp) / kind
            cpp.write_text(src)
            subprocess.run(['g++', '-O0', '-std=c++17', f'-I{inc}', str(cpp), '-o', str(exe)], check=True)
            bad = int(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)
            print(f'| {kind} | {n} | {bad} |', flush=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

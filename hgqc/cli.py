"""The ``hgqc`` command.

    hgqc MODEL -o OUT [--target verilog|vhdl|hls4ml] [--latency-cutoff N] [--clock-period NS] [--top NAME] [--force]
                      [--max-adder-depth N] [--testbench-vectors N] [--cse KEY=VALUE ...]
    hgqc run OUT --inputs X.npy --out Y.npy
    hgqc verify OUT --inputs X.npy [--expect Y.npy] [--simulator verilator|iverilog|ghdl|gxx] [--ap-types DIR]
    hgqc report OUT

Errors are one line on stderr (exit 1); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SUBCOMMANDS = ('run', 'verify', 'report')


def _compile_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='hgqc',
        description='Compile an HGQ2 (.keras) or QONNX (.onnx) model to bit-exact hardware.',
        epilog='Then: `hgqc run OUT --inputs X.npy --out Y.npy` (bit-exact interpreter), `hgqc verify OUT --inputs X.npy '
        '[--expect Y.npy]` (simulation vs interpreter), `hgqc report OUT`; `hgqc run --help` etc. for their options.',
    )
    from hgqc import __version__

    p.add_argument('--version', action='version', version=f'hgqc {__version__}')
    p.add_argument('model', help='model file (.keras or .onnx)')
    p.add_argument('-o', '--output', required=True, help='output project folder')
    p.add_argument(
        '--target', default='verilog', help='verilog (default, Verilog-2001), vhdl (VHDL-2008) or hls4ml (HLS C++ project)'
    )
    p.add_argument('--latency-cutoff', type=int, default=0, help='register every N adder levels (0: combinational)')
    p.add_argument('--max-adder-depth', type=int, default=None, help='adder-depth limit for the CMVM optimizer')
    p.add_argument(
        '--cse',
        action='append',
        default=[],
        metavar='KEY=VALUE',
        help='CMVM optimizer option (repeatable): objective=bits|adders (default bits: fewest adder bits; adders: '
        'fewest adders), restarts=N, decompose_depth=N, max_variants=N, lookahead=N (opt-in and slow: a pilot '
        'search over the first N greedy decisions, 1+3N greedy runs per strategy; ~0.5%% fewer adders on small '
        'cmvms, no gain measured at 64x64). See docs/design.md',
    )
    p.add_argument(
        '--clock-period', type=float, default=5.0, help='target clock period in ns for the FPGA build constraints (default 5)'
    )
    p.add_argument('--top', default='model', help='top module name (default: model)')
    p.add_argument(
        '--testbench-vectors',
        type=int,
        default=256,
        metavar='N',
        help="vectors in the project's self-checking testbench, with the interpreter's outputs (default 256)",
    )
    p.add_argument('--force', action='store_true', help='replace a non-empty output folder')
    p.add_argument('--check', action='store_true', help='verify the IR and re-run the interpreter after every pass')
    p.add_argument(
        '--pipeline',
        default=None,
        help='comma-separated pass names replacing the default pipeline (custom passes register through the '
        '"hgqc.passes" entry-point group)',
    )
    p.add_argument('--debug', action='store_true', help='show tracebacks')
    return p


def _sub_parser(cmd: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f'hgqc {cmd}')
    p.add_argument('project', help='compiled project folder')
    if cmd in ('run', 'verify'):
        p.add_argument('--inputs', required=True, help='.npy (one input) or .npz (one array per input name)')
    if cmd == 'run':
        p.add_argument('--out', required=True, help='where to save outputs (.npy; .npz for several outputs)')
    if cmd == 'verify':
        p.add_argument('--expect', help='expected outputs (.npy/.npz), e.g. from keras.predict')
        from hgqc.runtime.sim import SIMULATORS

        p.add_argument(
            '--simulator',
            default=None,
            choices=tuple(SIMULATORS),
            help='verilator or iverilog (verilog projects), ghdl (vhdl), gxx (hls4ml); default: the first installed for the '
            "project's target",
        )
        p.add_argument('--workdir', default=None, help='keep simulator build files here')
        p.add_argument('--ap-types', default=None, help='ap_types include folder for hls4ml C simulation (default: from hls4ml)')
    p.add_argument('--debug', action='store_true', help='show tracebacks')
    return p


_NUMPY_MAGIC = (b'\x93NUMPY', b'PK\x03\x04')  # .npy, and .npz (a zip archive)


def _load_arrays(path: str, what: str):
    """``np.load`` of a user's .npy/.npz file, with errors that name the option and the file."""
    p = Path(path)
    try:
        with open(p, 'rb') as fh:
            head = fh.read(6)
        if not head.startswith(_NUMPY_MAGIC):
            raise ValueError('not a .npy or .npz file written by numpy (np.save / np.savez)')
        return np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:  # EOFError: a truncated file
        reason = e.strerror if isinstance(e, OSError) and e.strerror else e
        if isinstance(e, ValueError) and 'pickled' in str(e):
            reason = 'it holds Python objects (pickled), not numbers'
        raise ValueError(f"cannot read {what} '{p}': {reason}") from e


def _load_inputs(path: str, project) -> list[np.ndarray]:
    p = Path(path)
    data = _load_arrays(path, '--inputs')
    names = [n.name for n in project.graph.inputs]
    if isinstance(data, np.ndarray):
        if len(names) != 1:
            raise ValueError(f'the model has {len(names)} inputs ({", ".join(names)}); pass an .npz with one array each')
        return [data]
    missing = [n for n in names if n not in data.files]
    if missing:
        raise ValueError(f"'{p}' lacks inputs {missing} (has {data.files})")
    return [data[n] for n in names]


def _out_path(path: str, project) -> Path:
    """The file ``--out`` names (numpy adds .npy / .npz), checked writable before any work."""
    suffix = '.npy' if len(project.graph.outputs) == 1 else '.npz'
    p = Path(path if path.endswith(suffix) else path + suffix)
    if p.is_dir() or not p.parent.is_dir():
        why = 'is a folder' if p.is_dir() else f"its folder '{p.parent}' does not exist"
        raise ValueError(f"cannot write --out '{p}': {why}")
    return p


def _save_outputs(path: Path, project, outs) -> None:
    names = [n for n, _ in project.graph.outputs]
    try:
        if len(names) == 1:
            np.save(path, outs if isinstance(outs, np.ndarray) else outs[0])
        else:
            np.savez(path, **dict(zip(names, outs)))
    except OSError as e:
        raise ValueError(f"cannot write --out '{path}': {e.strerror or e}") from e


CSE_KEYS = {'objective': str, 'restarts': int, 'decompose_depth': int, 'max_variants': int, 'lookahead': int}


def cse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``options.extra`` entries (``cse.KEY``) from ``--cse KEY=VALUE`` arguments."""
    extra: dict[str, Any] = {}
    for kv in pairs:
        key, sep, value = kv.partition('=')
        if not sep or key not in CSE_KEYS:
            raise ValueError(f'--cse expects KEY=VALUE with KEY one of {", ".join(CSE_KEYS)}, got {kv!r}')
        if key == 'objective' and value not in ('bits', 'adders'):
            raise ValueError(f'--cse objective must be bits or adders, got {value!r}')
        try:
            extra[f'cse.{key}'] = CSE_KEYS[key](value)
        except ValueError:
            raise ValueError(f'--cse {key} expects an integer, got {value!r}') from None
    return extra


def cmd_compile(args: argparse.Namespace) -> int:
    import hgqc

    t0 = time.perf_counter()
    project = hgqc.compile(
        args.model,
        output_dir=args.output,
        target=args.target,
        force=args.force,
        latency_cutoff=args.latency_cutoff,
        clock_period=args.clock_period,
        testbench_vectors=args.testbench_vectors,
        max_adder_depth=args.max_adder_depth,
        top=args.top,
        check=args.check,
        pipeline=tuple(p.strip() for p in args.pipeline.split(',')) if args.pipeline else None,
        extra=cse_options(args.cse),
    )
    dt = time.perf_counter() - t0
    print(f'wrote {args.output} ({args.target}, latency {project.metadata["latency"]} cycles) in {dt:.2f} s')
    scripts = sorted(f for f in project.files if Path(f).name.startswith('run_') and f.endswith('.sh'))
    if scripts:
        print('self-checking testbench: ' + ' or '.join(f'bash {Path(args.output) / f}' for f in scripts))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from hgqc.project import Project

    project = Project.load(args.project)
    out = _out_path(args.out, project)
    xs = _load_inputs(args.inputs, project)
    outs = project.predict(*xs)
    _save_outputs(out, project, outs)
    n = xs[0].shape[0] if xs else 0
    print(f'ran {n} samples; outputs saved to {out}')
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from hgqc.project import Project
    from hgqc.runtime.sim import default_simulator

    project = Project.load(args.project)
    xs = _load_inputs(args.inputs, project)
    expected = _load_expected(args.expect, project, xs) if args.expect else None  # (bad files fail before simulating)
    sim = args.simulator or default_simulator(project.target)
    print(f'simulating {xs[0].shape[0] if xs else 0} vectors with {sim} (build, then run) ...', flush=True)
    result = project.verify(*xs, simulator=sim, workdir=args.workdir, ap_types=args.ap_types)
    print(f'simulation ({sim}) vs interpreter: mismatches: {result.mismatches} / {result.total}')
    bad = result.mismatches > 0
    if bad and result.first_mismatch_detail:
        print(result.first_mismatch_detail)
    if expected is not None:
        mism, total = _compare_expected(project, xs, expected)
        print(f'interpreter vs expected: mismatches: {mism} / {total}')
        bad = bad or mism > 0
    return 1 if bad else 0


def _load_expected(path: str, project, xs: list[np.ndarray]) -> list[np.ndarray]:
    """The ``--expect`` outputs, one float64 array per model output, shaped like the model's."""
    data = _load_arrays(path, '--expect')
    outputs = project.graph.outputs
    if isinstance(data, np.ndarray):
        if len(outputs) != 1:
            raise ValueError(f"--expect '{path}': the model has {len(outputs)} outputs; pass an .npz with one array each")
        arrays = [data]
    else:
        missing = [n for n, _ in outputs if n not in data.files]
        if missing:
            raise ValueError(f"--expect '{path}' lacks outputs {missing} (has {data.files})")
        arrays = [data[n] for n, _ in outputs]
    n = xs[0].shape[0] if xs else 0
    out = []
    for (name, node), a in zip(outputs, arrays):
        if a.size != n * node.type.size or a.dtype.kind not in 'iuf':
            raise ValueError(f'--expect \'{path}\': output "{name}" needs {n} x {node.shape} numbers, found {a.dtype} {a.shape}')
        out.append(np.asarray(a, np.float64).reshape((n, *node.shape)))
    return out


def _compare_expected(project, xs, expected: list[np.ndarray]) -> tuple[int, int]:
    """Input vectors whose interpreter outputs differ (exactly) from the expected ones."""
    got = project.predict(*xs)
    got_l = [got] if isinstance(got, np.ndarray) else list(got)
    n = got_l[0].shape[0]
    bad = np.zeros(n, dtype=bool)
    for g, e in zip(got_l, expected):
        bad |= (np.asarray(g, np.float64) != e.reshape(g.shape)).reshape(n, -1).any(axis=1)
    return int(bad.sum()), n


def cmd_report(args: argparse.Namespace) -> int:
    from hgqc.project import Project

    print(Project.load(args.project).report())
    return 0


def _enable_jax_cache() -> None:
    """Keras' model loading jit-compiles ~200 tiny jax functions (~8 s); a persistent compilation
    cache makes every later `hgqc` run skip that. Only defaults: a user's own settings win."""
    cache = Path(os.environ.get('XDG_CACHE_HOME', Path.home() / '.cache')) / 'hgqc' / 'jax'
    os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', str(cache))
    os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
    os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')


def main(argv: Sequence[str] | None = None) -> int:
    _enable_jax_cache()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        cmd = argv[0]
        args = _sub_parser(cmd).parse_args(argv[1:])
        fn = {'run': cmd_run, 'verify': cmd_verify, 'report': cmd_report}[cmd]
    else:
        args = _compile_parser().parse_args(argv)
        fn = cmd_compile
    try:
        return fn(args)
    except KeyboardInterrupt:  # (an output folder is written atomically: nothing half-written is left)
        print('hgqc: interrupted', file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - every failure becomes one line unless --debug
        if args.debug:
            raise
        from hgqc.errors import HgqcError

        known = isinstance(e, (HgqcError, ValueError, OSError))
        lines = str(e).strip().splitlines() or [type(e).__name__]
        msg = lines[0]
        if known:  # all of it (a simulator's build log follows its first line), within reason
            print('hgqc: error: ' + '\n'.join(lines[:40] + (['...'] if len(lines) > 40 else [])), file=sys.stderr)
        else:
            print(f'hgqc: internal error ({type(e).__name__}): {msg} (rerun with --debug for the traceback)', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())

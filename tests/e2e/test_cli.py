"""The hgqc command end to end on the bundled example, and its errors (one line, nothing half-written)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hgqc.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / 'examples' / 'jsc_example.keras'


@pytest.fixture(scope='module')
def project_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp('cli') / 'proj'
    assert main([str(EXAMPLE), '-o', str(out), '--latency-cutoff', '3']) == 0
    return out


@pytest.fixture(scope='module')
def example_io(tmp_path_factory):
    d = tmp_path_factory.mktemp('io')
    x, y = d / 'x.npy', d / 'y.npy'
    subprocess.run([sys.executable, str(ROOT / 'examples' / 'make_inputs.py'), str(EXAMPLE), str(x), str(y), '3000'], check=True)
    return x, y


def test_project_layout(project_dir):
    for rel in ('src/model.v', 'model.hgqir', 'metadata.json', 'report.txt'):
        assert (project_dir / rel).is_file(), rel
    assert not [p for p in project_dir.parent.iterdir() if '.tmp-' in p.name]


def test_run_equals_keras(project_dir, example_io, tmp_path):
    x, y = example_io
    out = tmp_path / 'out.npy'
    assert main(['run', str(project_dir), '--inputs', str(x), '--out', str(out)]) == 0
    assert np.array_equal(np.load(out), np.load(y))


def test_verify_prints_zero_mismatches(project_dir, example_io, capsys):
    x, y = example_io
    assert main(['verify', str(project_dir), '--inputs', str(x), '--expect', str(y)]) == 0
    text = capsys.readouterr().out
    assert 'mismatches: 0 / 3000' in text


def test_report(project_dir, capsys):
    assert main(['report', str(project_dir)]) == 0
    text = capsys.readouterr().out
    assert 'adders' in text and 'pipeline stages' in text


def test_refuses_non_empty_output_without_force(project_dir, capsys):
    before = sorted(p.name for p in project_dir.iterdir())
    assert main([str(EXAMPLE), '-o', str(project_dir)]) == 1
    err = capsys.readouterr().err
    assert 'not empty' in err and '--force' in err and 'Traceback' not in err
    assert sorted(p.name for p in project_dir.iterdir()) == before


def test_force_replaces_an_earlier_project(tmp_path):
    out = tmp_path / 'p'
    assert main([str(EXAMPLE), '-o', str(out), '--target', 'vhdl']) == 0
    (out / 'stale.txt').write_text('x')
    assert main([str(EXAMPLE), '-o', str(out), '--force']) == 0
    assert not (out / 'stale.txt').exists() and (out / 'src' / 'model.v').is_file()


def test_force_never_deletes_what_is_not_a_project(tmp_path, capsys, monkeypatch):
    """--force replaces only an hgqc project, never one holding the model, never the current folder."""
    mine = tmp_path / 'mine'
    (mine / 'sub').mkdir(parents=True)
    (mine / 'sub' / 'thesis.tex').write_text('x')
    shutil.copy(EXAMPLE, mine / 'm.keras')
    assert main([str(mine / 'm.keras'), '-o', str(mine), '--force']) == 1
    assert 'not an hgqc project' in capsys.readouterr().err
    assert main([str(EXAMPLE), '-o', str(tmp_path / 'p')]) == 0
    shutil.copy(EXAMPLE, tmp_path / 'p' / 'm.keras')
    assert main([str(tmp_path / 'p' / 'm.keras'), '-o', str(tmp_path / 'p'), '--force']) == 1
    assert 'holds the model being compiled' in capsys.readouterr().err
    monkeypatch.chdir(mine / 'sub')
    for out in ('.', '..', ''):
        assert main([str(EXAMPLE), '-o', out, '--force']) == 1
        err = capsys.readouterr().err
        assert 'is the current folder or contains it' in err and 'Traceback' not in err
    assert (mine / 'sub' / 'thesis.tex').is_file() and (mine / 'm.keras').is_file() and (tmp_path / 'p' / 'm.keras').is_file()


@pytest.mark.parametrize('kind', ['missing', 'corrupt', 'wrong_suffix'])
def test_bad_model_files(tmp_path, capsys, kind):
    path = {'missing': tmp_path / 'nope.keras', 'corrupt': tmp_path / 'bad.keras', 'wrong_suffix': tmp_path / 'm.txt'}[kind]
    if kind != 'missing':
        path.write_bytes(os.urandom(256))
    out = tmp_path / 'out'
    assert main([str(path), '-o', str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith('hgqc: error:') and err.count('\n') == 1
    assert not out.exists()


def test_top_name_validated(tmp_path, capsys):
    assert main([str(EXAMPLE), '-o', str(tmp_path / 'o'), '--top', 'my-top']) == 1
    assert 'top name' in capsys.readouterr().err
    # refused before any work, with the reason: a reserved word in some language and letter case
    assert main([str(EXAMPLE), '-o', str(tmp_path / 'o'), '--top', 'Entity']) == 1
    assert "top name 'Entity' is not a legal HDL identifier: it is a reserved word" in capsys.readouterr().err
    assert main([str(EXAMPLE), '-o', str(tmp_path / 'o'), '--top', 'clk']) == 1
    assert "is the clock port's name" in capsys.readouterr().err
    assert not (tmp_path / 'o').exists()


def test_custom_top_name(tmp_path):
    assert main([str(EXAMPLE), '-o', str(tmp_path / 'o'), '--top', 'trigger_nn']) == 0
    text = (tmp_path / 'o' / 'src' / 'trigger_nn.v').read_text()
    assert 'module trigger_nn' in text


def test_run_on_non_project(tmp_path, capsys):
    assert main(['run', str(tmp_path), '--inputs', 'x.npy', '--out', 'y.npy']) == 1
    assert 'not an hgqc project' in capsys.readouterr().err


def test_console_script_installed():
    r = subprocess.run(['hgqc', '--help'], capture_output=True, text=True)
    assert r.returncode == 0 and 'latency-cutoff' in r.stdout


# =========================================================================== targets and simulators


@pytest.fixture(scope='module')
def vhdl_project_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp('cli_vhdl') / 'proj'
    assert main([str(EXAMPLE), '-o', str(out), '--target', 'vhdl', '--latency-cutoff', '3', '--clock-period', '3.2']) == 0
    return out


def test_vhdl_project_layout_and_metadata(vhdl_project_dir):
    import json

    meta = json.loads((vhdl_project_dir / 'metadata.json').read_text())
    assert meta['target'] == 'vhdl' and meta['options']['clock_period'] == 3.2
    assert 'src/model.vhd' in meta['files'] and not (vhdl_project_dir / 'src' / 'model.v').exists()
    for rel in ('build_vivado_prj.tcl', 'build_quartus_prj.tcl', 'constraints.xdc', 'constraints.sdc'):
        assert rel in meta['files'] and (vhdl_project_dir / rel).is_file(), rel
    xdc = (vhdl_project_dir / 'constraints.xdc').read_text()
    assert 'create_clock -name clk -period 3.200 [get_ports clk]' in xdc
    tcl = (vhdl_project_dir / 'build_vivado_prj.tcl').read_text()
    assert 'read_vhdl -vhdl2008 [file join $root src/model.vhd]' in tcl


def test_verify_vhdl_defaults_to_ghdl(vhdl_project_dir, example_io, tmp_path, capsys):
    x, y = example_io
    assert main(['verify', str(vhdl_project_dir), '--inputs', str(x), '--expect', str(y), '--workdir', str(tmp_path)]) == 0
    assert 'mismatches: 0 / 3000' in capsys.readouterr().out
    assert (tmp_path / 'hgqc_tb.vhd').is_file()  # GHDL's testbench, so the default followed the target


def test_verify_verilog_with_iverilog(project_dir, example_io, capsys):
    x, _ = example_io
    assert main(['verify', str(project_dir), '--inputs', str(x), '--simulator', 'iverilog']) == 0
    assert 'mismatches: 0 / 3000' in capsys.readouterr().out


def test_simulator_must_fit_the_target(vhdl_project_dir, example_io, capsys):
    x, _ = example_io
    assert main(['verify', str(vhdl_project_dir), '--inputs', str(x), '--simulator', 'verilator']) == 1
    err = capsys.readouterr().err
    assert 'verilator cannot simulate a vhdl project; choose --simulator ghdl' in err and err.count('\n') == 1
    assert err.startswith('hgqc: error:')  # a user mistake, not an internal error


def test_unknown_pass_is_a_user_error(tmp_path, capsys):
    assert main([str(EXAMPLE), '-o', str(tmp_path / 'o'), '--pipeline', 'nosuchpass']) == 1
    err = capsys.readouterr().err
    assert err.startswith("hgqc: error: unknown pass 'nosuchpass'; registered:") and not (tmp_path / 'o').exists()


def test_a_design_that_does_not_build_shows_the_simulator_log(tmp_path, example_io, capsys):
    out = tmp_path / 'b'
    assert main([str(EXAMPLE), '-o', str(out)]) == 0
    with (out / 'src' / 'model.v').open('a') as f:
        f.write('garbage;\n')
    assert main(['verify', str(out), '--inputs', str(example_io[0]), '--simulator', 'iverilog']) == 1
    err = capsys.readouterr().err
    assert err.startswith('hgqc: error: iverilog') and 'error' in err.split('\n', 1)[1]  # the log, past line one


def test_bad_clock_period_is_refused(tmp_path, capsys):
    assert main([str(EXAMPLE), '-o', str(tmp_path / 'o'), '--clock-period', '0']) == 1
    assert 'clock_period' in capsys.readouterr().err and not (tmp_path / 'o').exists()


def test_testbench_vectors_option(tmp_path, capsys):
    assert main([str(EXAMPLE), '-o', str(tmp_path / 'o'), '--testbench-vectors', '9']) == 0
    assert len((tmp_path / 'o' / 'tb' / 'in0.hex').read_text().split()) == 9
    assert main([str(EXAMPLE), '-o', str(tmp_path / 'p'), '--testbench-vectors', '0']) == 1
    assert 'testbench_vectors must be an integer >= 1' in capsys.readouterr().err
    assert main([str(EXAMPLE), '-o', str(tmp_path / 'p'), '--testbench-vectors', '100000000']) == 1
    assert 'testbench_vectors must be at most 100,000' in capsys.readouterr().err  # (not 24 GB, then killed)
    assert not (tmp_path / 'p').exists()


def test_unknown_simulator_is_refused_before_anything_runs(vhdl_project_dir, capsys):
    with pytest.raises(SystemExit):
        main(['verify', str(vhdl_project_dir), '--inputs', 'x.npy', '--simulator', 'modelsim'])
    err = capsys.readouterr().err
    assert "invalid choice: 'modelsim'" in err and 'ghdl' in err


def test_bad_run_and_verify_files_are_named_before_any_work(project_dir, example_io, tmp_path, capsys):
    """Files that are not numpy's, an --expect that does not fit (read before simulating), an
    --out whose folder is missing, empty and complex batches: one line naming the option."""
    x, _ = example_io
    csv = tmp_path / 'x.csv'
    csv.write_text('1,2,3\n')
    cases = [
        (['run', str(project_dir), '--inputs', str(csv), '--out', str(tmp_path / 'y')], "--inputs '"),
        (['verify', str(project_dir), '--inputs', str(x), '--expect', str(csv)], "--expect '"),
        (['verify', str(project_dir), '--inputs', str(x), '--expect', str(tmp_path / 'none.npy')], 'No such file'),
        (['verify', str(project_dir), '--inputs', str(x), '--expect', str(x)], 'needs 3000 x (5,) numbers'),
        (['run', str(project_dir), '--inputs', str(x), '--out', str(tmp_path / 'no' / 'y.npy')], 'does not exist'),
    ]
    np.save(tmp_path / 'empty.npy', np.zeros((0, 16)))
    np.save(tmp_path / 'complex.npy', np.ones((3, 16), dtype=complex))
    for name, msg in (('empty', 'no vectors to run'), ('complex', 'real numbers expected')):
        cases.append((['run', str(project_dir), '--inputs', str(tmp_path / f'{name}.npy'), '--out', str(tmp_path / 'y')], msg))
    for argv, msg in cases:
        assert main(argv) == 1, argv
        out, err = capsys.readouterr()
        assert msg in err and 'Traceback' not in err and 'simulation' not in out, (argv, err)
    assert 'not a .npy or .npz file' in main_err(['run', str(project_dir), '--inputs', str(csv), '--out', 'y'], capsys)
    assert not (tmp_path / 'y.npy').exists()


def main_err(argv: list[str], capsys) -> str:
    assert main(argv) == 1
    return capsys.readouterr().err


def test_run_names_the_file_numpy_writes_and_verify_its_simulator(project_dir, example_io, tmp_path, capsys):
    x, y = example_io
    assert main(['run', str(project_dir), '--inputs', str(x), '--out', str(tmp_path / 'r')]) == 0
    assert f'outputs saved to {tmp_path / "r.npy"}' in capsys.readouterr().out
    assert np.array_equal(np.load(tmp_path / 'r.npy'), np.load(y))
    assert main(['verify', str(project_dir), '--inputs', str(x), '--simulator', 'iverilog']) == 0
    assert 'simulation (iverilog) vs interpreter: mismatches: 0 / 3000' in capsys.readouterr().out


def test_keras_backend_without_its_package_is_a_user_error(tmp_path):
    """KERAS_BACKEND=tensorflow where TensorFlow is not installed: say so, not 'internal error'."""
    import importlib.util

    assert importlib.util.find_spec('tensorflow') is None, 'this test needs TensorFlow not installed'
    env = dict(os.environ, KERAS_BACKEND='tensorflow')
    cmd = [sys.executable, '-m', 'hgqc.cli', str(EXAMPLE), '-o', str(tmp_path / 'o')]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    err = done.stderr
    assert done.returncode == 1 and "KERAS_BACKEND='tensorflow'" in err and 'internal error' not in err, err
    assert not (tmp_path / 'o').exists()


def test_version_and_help_name_the_subcommands(capsys):
    from hgqc import __version__

    for flag in ('--version', '--help'):
        with pytest.raises(SystemExit) as done:
            main([flag])
        assert done.value.code == 0
    out = ' '.join(capsys.readouterr().out.split())  # (argparse wraps the help text)
    assert f'hgqc {__version__}' in out and all(f'hgqc {cmd} OUT' in out for cmd in ('run', 'verify', 'report'))

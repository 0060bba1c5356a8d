"""The Python API: compile an in-memory model, write/load projects, atomicity, report."""

from __future__ import annotations

import errno
import pathlib

import numpy as np
import pytest

import hgqc
from hgqc.errors import OptionError, ProjectError
from hgqc.options import CompileOptions
from hgqc.project import Project
from hgqc.testing.models import make_qdense_model


@pytest.fixture(scope='module')
def model():
    return make_qdense_model('kif', 'SAT', 'RND', True, seed=11, activation='relu')


def test_compile_in_memory_write_and_load(model, tmp_path):
    x = np.random.default_rng(0).normal(0, 3, (1000, 8)).astype(np.float32)
    project = hgqc.compile(model, tmp_path / 'p', latency_cutoff=1)
    assert project.path == tmp_path / 'p'
    loaded = Project.load(tmp_path / 'p')
    want = np.asarray(model.predict(x, verbose=0), np.float64)
    assert np.array_equal(project.predict(x), want)
    assert np.array_equal(loaded.predict(x), want)  # from model.hgqir alone
    assert loaded.files == project.files and loaded.metadata['latency'] == project.metadata['latency']
    assert 'adders' in project.report()


def test_existing_folder_needs_force(model, tmp_path):
    (tmp_path / 'p').mkdir()
    (tmp_path / 'p' / 'keep.txt').write_text('mine')
    with pytest.raises(ProjectError, match='not empty'):
        hgqc.compile(model, tmp_path / 'p')
    assert (tmp_path / 'p' / 'keep.txt').read_text() == 'mine'


def test_failed_write_leaves_nothing(model, tmp_path, monkeypatch):
    project = hgqc.compile(model)

    def boom(self):
        raise RuntimeError('disk full')

    monkeypatch.setattr(Project, 'report', boom)
    with pytest.raises(RuntimeError):
        project.write(tmp_path / 'p')
    assert list(tmp_path.iterdir()) == []


def test_os_errors_name_the_output_folder_not_the_temporary_one(model, tmp_path, monkeypatch):
    project = hgqc.compile(model)
    (tmp_path / 'file').write_text('x')
    with pytest.raises(ProjectError, match="'.*file' is a file, not a folder"):
        project.write(tmp_path / 'file' / 'p')

    real_write_text = pathlib.Path.write_text

    def disk_full(self, *args, **kwargs):
        if self.name.endswith('.json'):
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, 'write_text', disk_full)
    with pytest.raises(ProjectError) as info:
        project.write(tmp_path / 'p')
    assert f"cannot write output folder '{tmp_path / 'p'}': No space left on device" in str(info.value)
    assert '.tmp-' not in str(info.value)
    assert sorted(q.name for q in tmp_path.iterdir()) == ['file']  # nothing half-written


def test_every_user_error_is_an_hgqc_error():
    from hgqc.backends.common import BackendError
    from hgqc.frontend.errors import FrontendError
    from hgqc.ir.text import ParseError
    from hgqc.passes.average import AverageError
    from hgqc.passes.lower import LoweringError
    from hgqc.runtime.interpreter import InterpreterError

    for cls in (
        FrontendError,
        BackendError,
        ParseError,
        AverageError,
        LoweringError,
        InterpreterError,
        ProjectError,
        OptionError,
    ):
        assert issubclass(cls, hgqc.HgqcError) and issubclass(cls, ValueError), cls
    with pytest.raises(hgqc.HgqcError, match='cannot read model'):
        hgqc.load_graph('no_such_model.keras')


def test_bad_options_are_clear(model):
    with pytest.raises(ValueError, match='bad option'):
        hgqc.compile(model, not_an_option=1)
    with pytest.raises(ValueError, match='unknown target'):
        hgqc.compile(model, target='vhdl2')


@pytest.mark.parametrize(
    ('option', 'value', 'msg'),
    [
        ('latency_cutoff', None, r'latency_cutoff must be an integer >= 0 \(0: combinational\), got None'),
        ('latency_cutoff', 1.5, 'latency_cutoff must be an integer >= 0'),
        ('latency_cutoff', '2', 'latency_cutoff must be an integer >= 0'),
        ('max_adder_depth', True, 'max_adder_depth must be an integer >= 0 or None'),
        ('check_samples', -1, 'check_samples must be an integer >= 0'),
        ('seed', 0.5, 'seed must be an integer >= 0'),
    ],
)
def test_option_types_are_checked(model, tmp_path, option, value, msg):
    with pytest.raises(hgqc.HgqcError, match=msg):
        hgqc.compile(model, tmp_path / 'out', **{option: value})
    assert not (tmp_path / 'out').exists()
    assert CompileOptions(**{option: np.int64(3)})  # numpy integers are integers


def test_refusal_found_while_lowering_is_an_hgqc_error(tmp_path):
    """A non-power-of-two average Keras rounds in float32, over more sums than hgqc can check."""
    import keras
    from hgq.layers import Quantizer
    from hgq.quantizer import QuantizerConfig

    from hgqc.passes.lower import LoweringError

    conf = QuantizerConfig('kif', 'datalane', overflow_mode='WRAP', round_mode='TRN', heterogeneous_axis=())
    inp = keras.Input((5, 4, 1))
    q1, q2 = Quantizer(conf, name='q1'), Quantizer(conf, name='q2')
    m = keras.Model(inp, q2(keras.layers.GlobalAveragePooling2D(name='avg')(q1(inp))))
    for q, (k, i, f) in ((q1, (1, 8, 12)), (q2, (1, 8, 4))):  # 21-bit inputs: the sum of 20 takes ~2^25 values
        for v, x in zip((q.quantizer._k, q.quantizer._i, q.quantizer._f), (k, i, f)):
            v.assign(np.full(v.shape, x, v.dtype))
    with pytest.raises(LoweringError, match=r'"q2.*average over 20 elements.*more than the \d+ hgqc can check. Narrow'):
        hgqc.compile(m, tmp_path / 'out')
    assert not (tmp_path / 'out').exists()


def test_iverilog_verification(model, tmp_path):
    x = np.random.default_rng(1).normal(0, 3, (500, 8)).astype(np.float32)
    result = hgqc.compile(model, latency_cutoff=2).verify(x, simulator='iverilog', workdir=tmp_path)
    assert result.total == 500 and result.mismatches == 0


def test_custom_pass_in_compile(model):
    from hgqc.passes import DEFAULT_PIPELINE, insert_after, register_pass

    seen = []

    @register_pass('test_api_spy', replace=True)
    def spy(graph, options):
        seen.append(len(graph))
        return graph

    project = hgqc.compile(model, pipeline=insert_after(DEFAULT_PIPELINE, 'lower', 'test_api_spy'))
    pipeline = project.metadata['options']['pipeline']
    assert seen and pipeline[list(DEFAULT_PIPELINE).index('lower') + 1] == 'test_api_spy'

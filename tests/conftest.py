"""Shared fixtures: trained HGQ2 models are built once per session and saved to a temp folder."""

from __future__ import annotations

import os

os.environ.setdefault('KERAS_BACKEND', 'jax')

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Derandomized hypothesis in CI: failures reproduce from the same seed.
settings.register_profile('ci', derandomize=True, deadline=None, print_blob=True)
settings.register_profile('dev', deadline=None)
settings.load_profile('ci' if os.environ.get('CI') else 'dev')


@pytest.fixture(scope='session')
def jsc_model_path(tmp_path_factory):
    """The JSC-shaped HGQ2 model (16→64→32→32→5), trained with an EBOPs β ramp and calibrated."""
    from hgqc.testing.models import make_jsc_model

    model = make_jsc_model(seed=1)
    path = tmp_path_factory.mktemp('models') / 'jsc.keras'
    model.save(path)
    return path


@pytest.fixture(scope='session')
def jsc_model(jsc_model_path):
    import hgq  # noqa: F401
    import keras

    return keras.models.load_model(jsc_model_path, compile=False)

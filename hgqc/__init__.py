"""hgqc: compile HGQ2 / QONNX quantized networks into bit-exact FPGA hardware."""

import os

# Keras refuses to import without a usable backend; jax (CPU) is the one we depend on.
os.environ.setdefault('KERAS_BACKEND', 'jax')

__version__ = '0.1.0'

from .api import compile, load_graph  # noqa: E402
from .errors import HgqcError  # noqa: E402
from .project import Project  # noqa: E402

__all__ = ['HgqcError', 'Project', 'compile', 'load_graph', '__version__']

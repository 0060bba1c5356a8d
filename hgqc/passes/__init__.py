"""Compiler passes: the registry / pass manager and the built-in passes.

Importing this package registers the built-in passes: ``range``, ``prune``, ``fold_round``,
``merge_positions``, ``csd``, ``cse``, ``lower`` and ``pipeline`` (see each module's docstring).
User passes register themselves with ``@register_pass('name')`` or through the ``hgqc.passes``
entry-point group.
"""

from ..options import CompileOptions
from . import csd, cse, fold_round, lower, merge_positions, pipeline, prune, range  # noqa: F401 - registers the built-in passes
from .cse import program_matches
from .lower import adder_depth, count_adders
from .manager import (
    DEFAULT_PIPELINE,
    PASSES,
    PassError,
    PassManager,
    get_pass,
    insert_after,
    insert_before,
    load_entry_points,
    register_pass,
    remove_pass,
    replace_pass,
    run_passes,
)

__all__ = [
    'DEFAULT_PIPELINE',
    'PASSES',
    'CompileOptions',
    'PassError',
    'PassManager',
    'adder_depth',
    'count_adders',
    'get_pass',
    'insert_after',
    'insert_before',
    'load_entry_points',
    'program_matches',
    'register_pass',
    'remove_pass',
    'replace_pass',
    'run_passes',
]

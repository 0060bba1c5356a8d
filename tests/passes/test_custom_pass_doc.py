"""The worked example of docs/custom_passes.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / 'docs' / 'custom_passes.md'


def _python_blocks(text: str) -> list[str]:
    """The doc's ```python blocks (```py blocks are illustrative snippets needing a model)."""
    return re.findall(r'```python\n(.*?)```', text, flags=re.S)


def test_doc_example_runs(capsys):
    blocks = _python_blocks(DOC.read_text())
    assert blocks, 'the doc must contain a python example'
    namespace: dict = {'__name__': 'custom_passes_doc'}
    for code in blocks:
        exec(compile(code, str(DOC), 'exec'), namespace)
    assert "{'dense': " in capsys.readouterr().out
    assert set(namespace['out'].meta['adders_per_layer']) == {'dense'}
    assert 'fold_double_neg' in namespace['pm'].pipeline

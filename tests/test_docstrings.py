"""Every module says what it is for, and so does every public transform (a one-line docstring at least)."""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ('audio', 'cloud', 'results', 'model', 'transforms', 'pipeline', 'stack', 'app', 'benchmarks', 'templates')


def missing_docstrings(package: str) -> list[str]:
    missing = []
    for path in sorted((ROOT / package).rglob('*.py')):
        tree = ast.parse(path.read_text(), str(path))
        name = str(path.relative_to(ROOT))
        if not ast.get_docstring(tree):
            missing.append(f'{name}: module')
        for node in ast.walk(tree):
            if (isinstance(node, ast.ClassDef) and not node.name.startswith('_')
                    and any('PTransform' in ast.unparse(base) for base in node.bases) and not ast.get_docstring(node)):
                missing.append(f'{name}: {node.name}')
    return missing


@pytest.mark.parametrize('package', PACKAGES)
def test_every_module_and_public_transform_has_a_docstring(package):
    assert missing_docstrings(package) == []

"""Dependencies point one way: a package imports only its own layer's package or lower layers.

    audio  <-  cloud  <-  results, model  <-  transforms  <-  pipeline  <-  stack, app, benchmarks, templates

Read from the source with ``ast`` (every import, including those inside functions), so a lazy
import that reaches upward fails here just like a top-level one. Within a layer, modules import each other
without a circle: a circle means neither module can be read (or changed) without the other.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYERS: tuple[tuple[str, ...], ...] = (
    ('audio',),                                     # pure functions and records
    ('cloud',),                                     # Cloud Storage objects, notifications, the emulator seam
    ('results', 'model'),                           # where rows go; the classifier
    ('transforms',),                                # one composite PTransform per stage
    ('pipeline',),                                  # options -> graph, the launcher
    ('stack', 'app', 'benchmarks', 'templates'),    # tools on top: each may use the others
)
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}
TOP = len(LAYERS) - 1
# What the lowest layer must never need: it is plain Python, NumPy and the audio libraries.
NOT_IN_AUDIO = ('apache_beam', 'google', 'tensorflow', 'keras')
# The dashboard and the emulator stack work with results and Cloud Storage objects (results/, cloud/) and start the
# pipeline as a command; they never reach into its options or stages.
NOT_FROM_TOOLS = {'app': ('pipeline', 'transforms'), 'stack': ('pipeline', 'transforms')}


def imported_modules(path: pathlib.Path, with_names: bool = False) -> list[tuple[int, str]]:
    """(line, dotted module name) of every absolute import in a file; ``with_names``: also ``a.b.c`` for
    ``from a.b import c`` (c may be a module)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            if with_names:
                found += [(node.lineno, f'{node.module}.{alias.name}') for alias in node.names]
    return found


def module_graph(root: pathlib.Path) -> dict[str, set[str]]:
    """Each module of the layered packages -> the modules of those packages it imports (lazily or not)."""
    modules = {}
    for package in RANK:
        for path in sorted((root / package).rglob('*.py')):
            name = '.'.join(path.relative_to(root).with_suffix('').parts)
            modules[name.removesuffix('.__init__')] = path
    return {name: {m for _, m in imported_modules(path, with_names=True) if m in modules and m != name}
            for name, path in modules.items()}


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import one another round a circle (strongly connected, Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while True:
                group.append(stack.pop())
                if group[-1] == module:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return circles


def violations(package: str) -> list[str]:
    rank = RANK[package]
    found = []
    for path in sorted((ROOT / package).rglob('*.py')):
        for line, module in imported_modules(path):
            top = module.split('.')[0]
            where = f'{path.relative_to(ROOT)}:{line} imports {module}'
            if top in RANK and top != package and (RANK[top] > rank or (RANK[top] == rank and rank != TOP)):
                found.append(f'{where} (layer {RANK[top]} above or beside layer {rank})')
            if top in NOT_FROM_TOOLS.get(package, ()):
                found.append(f'{where} ({package}/ uses results/ and cloud/, not the pipeline\'s internals)')
            if package == 'audio' and top in NOT_IN_AUDIO:
                found.append(f'{where} (audio/ is pure: no Beam, Google Cloud or TensorFlow)')
    return found


@pytest.mark.parametrize('package', sorted(RANK))
def test_no_package_imports_a_higher_layer(package):
    assert violations(package) == []


def test_every_package_is_in_a_layer():
    packages = {p.parent.name for p in ROOT.glob('*/__init__.py')}
    assert packages <= set(RANK), f'place {sorted(packages - set(RANK))} in LAYERS'


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The test itself can fail: a lazy import of a higher layer inside a function is found."""
    (tmp_path / 'results').mkdir()
    (tmp_path / 'results' / 'bad.py').write_text('def f():\n    from pipeline.options import OPTIONS\n')
    monkeypatch.setitem(globals(), 'ROOT', tmp_path)
    assert violations('results') == ['results/bad.py:2 imports pipeline.options (layer 4 above or beside layer 2)']


def test_no_import_circle():
    assert import_circles(module_graph(ROOT)) == []


def test_the_check_sees_an_import_circle(tmp_path):
    """A circle closed by a lazy import inside a function is found; a one-way import is not a circle."""
    (tmp_path / 'results').mkdir()
    (tmp_path / 'results' / 'a.py').write_text('from results import b\n')
    (tmp_path / 'results' / 'b.py').write_text('def f():\n    from results.c import g\n')
    (tmp_path / 'results' / 'c.py').write_text('import results.a\n')
    (tmp_path / 'results' / 'd.py').write_text('from results import a\n')
    assert import_circles(module_graph(tmp_path)) == [['results.a', 'results.b', 'results.c']]

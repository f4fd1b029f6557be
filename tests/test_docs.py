"""The README and docs/ stay in step with the tree: links, file paths and ``python -m`` modules they name exist,
and the README's folder map lists every package."""
from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]
PACKAGES = sorted(p.parent.name for p in ROOT.glob('*/__init__.py'))
LINK = re.compile(r'\]\(([^)#\s]+)(?:#[^)]*)?\)')
PATH = re.compile(r'`((?:' + '|'.join(PACKAGES + ['tests', 'docs']) + r')/[\w./-]+\.(?:py|sh|json|yaml|env|md|png))`')
MODULE = re.compile(r'python -m ((?:' + '|'.join(PACKAGES) + r')(?:\.\w+)*)')


def page_ids():
    return [str(page.relative_to(ROOT)) for page in PAGES]


@pytest.mark.parametrize('page', PAGES, ids=page_ids())
def test_links_and_named_files_exist(page):
    text = page.read_text()
    missing = [link for link in LINK.findall(text)
               if not link.startswith(('http://', 'https://', 'mailto:')) and not (page.parent / link).exists()]
    missing += [path for path in PATH.findall(text) if not (ROOT / path).exists()]
    assert missing == []


@pytest.mark.parametrize('page', PAGES, ids=page_ids())
def test_python_dash_m_names_a_module_that_exists(page):
    missing = []
    for module in set(MODULE.findall(page.read_text())):
        path = ROOT / module.replace('.', '/')
        if not (path.with_suffix('.py').exists() or (path / '__main__.py').exists()):
            missing.append(module)
    assert missing == []


def test_the_readme_maps_every_package():
    readme = (ROOT / 'README.md').read_text()
    assert [package for package in PACKAGES if f'| `{package}/`' not in readme] == []


def test_no_unresolved_merge_conflicts():
    """A merge left half-done must not land: no conflict markers in any tracked text file."""
    import subprocess

    tracked = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    marked = []
    for name in tracked.splitlines():
        path = ROOT / name
        if path.suffix in {'.png', '.wav', '.flac', '.mp3', '.tflite'} or not path.is_file():
            continue
        text = path.read_text(errors='replace')
        if re.search(r'^(<{7} |>{7} |={7}$)', text, re.MULTILINE):
            marked.append(name)
    assert marked == []

"""The image's Python packages: requirements.in by hand, requirements.txt compiled from it against the Beam
SDK image's own package set (beam-image-constraints.txt), and what this virtualenv holds."""
from __future__ import annotations

import importlib.metadata
import re

from templates.compile_requirements import CONSTRAINTS, REQUIREMENTS, REQUIREMENTS_IN, canonical, pins
from tests.templates.script_runner import REPO


def test_requirements_pin_every_package_and_agree_with_the_beam_image():
    locked, image = pins(REQUIREMENTS), pins(CONSTRAINTS)
    assert set(pins(REQUIREMENTS_IN)) <= set(locked)
    for line in REQUIREMENTS.read_text().splitlines():   # nothing but pins: the whole closure is compiled
        assert line.startswith('#') or re.match(r'^[A-Za-z0-9][\w.-]*(\[\w+\])?==\S+$', line), line
    disagree = {name: (version, image[name]) for name, version in locked.items()
                if name in image and image[name] != version}
    assert disagree == {}
    assert set(image) <= set(locked)   # the image's set is part of the closure (apache-beam[gcp])


def test_one_beam_version_everywhere():
    version = pins(REQUIREMENTS_IN)['apache-beam']
    assert pins(REQUIREMENTS)['apache-beam'] == pins(CONSTRAINTS)['apache-beam'] == version
    assert f'apache/beam_python3.11_sdk:{version}' in CONSTRAINTS.read_text()
    assert f'FROM apache/beam_python3.11_sdk:{version}' in (REPO / 'Dockerfile').read_text()


def test_this_virtualenv_runs_exactly_the_pinned_runtime():
    installed = {canonical(d.metadata['Name']): d.version for d in importlib.metadata.distributions()}
    assert {n: (v, installed.get(n)) for n, v in pins(REQUIREMENTS).items() if installed.get(n) != v} == {}


def test_benchmark_and_test_only_packages_stay_out_of_the_image():
    runtime = set(pins(REQUIREMENTS))
    for package in ('librosa', 'pytest', 'streamlit', 'playwright', 'bqemulator', 'gcp-storage-emulator'):
        assert package not in runtime, package
    assert 'librosa' in pins(REPO / 'requirements-dev.txt')
    setup = (REPO / 'setup.py').read_text()
    assert "'requirements.in'" in setup   # the package declares its direct dependencies only


def test_the_makefile_regenerates_both_files():
    makefile = (REPO / 'Makefile').read_text()
    assert '-m templates.compile_requirements constraints' in makefile
    assert '-m templates.compile_requirements requirements' in makefile

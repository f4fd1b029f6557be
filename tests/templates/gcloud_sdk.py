"""The installed Google Cloud CLI, used offline: its --help texts and its own Python code.

A machine without the CLI skips these checks (``make test`` cannot install it: it comes from
Google's package repository, not from PyPI or Debian).
"""
from __future__ import annotations

import functools
import os
import pathlib
import re
import shutil
import subprocess

import pytest

ANSI = re.compile(r'\x1b\[[0-9;]*m')


@functools.lru_cache(maxsize=None)
def sdk_root() -> pathlib.Path | None:
    gcloud = shutil.which('gcloud')
    if not gcloud:
        return None
    root = pathlib.Path(gcloud).resolve().parent.parent
    return root if (root / 'lib' / 'googlecloudsdk').is_dir() else None


def require_sdk() -> pathlib.Path:
    root = sdk_root()
    if root is None:
        pytest.skip('the Google Cloud CLI (gcloud) is not installed')
    return root


def offline_env() -> dict[str, str]:
    """No credentials, no network probes, no prompts, no update checks, a throwaway config folder."""
    env = dict(os.environ)
    env.update(CLOUDSDK_CORE_DISABLE_PROMPTS='1', CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK='1',
               CLOUDSDK_CORE_CHECK_GCE_METADATA='false', NO_GCE_CHECK='True', TERM='dumb')
    return env


def help_text(*command: str) -> str:
    """``gcloud COMMAND --help`` (or ``bq help COMMAND``) as plain text."""
    require_sdk()
    argv = ['bq', 'help', *command[1:]] if command[0] == 'bq' else [*command, '--help']
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=offline_env())
    assert result.returncode == 0, f'{" ".join(argv)} failed: {result.stderr[-2000:]}'
    return ANSI.sub('', result.stdout)


def bundled_python(root: pathlib.Path) -> str:
    bundled = root / 'platform' / 'bundledpythonunix' / 'bin' / 'python3'
    return str(bundled) if bundled.exists() else (shutil.which('python3') or 'python3')


def run_gcloud_python(code: str, *args: str) -> str:
    """Runs ``code`` with the CLI's own libraries importable (its bundled Python when it has one)."""
    root = require_sdk()
    env = offline_env()
    env['PYTHONPATH'] = os.pathsep.join([str(root / 'lib'), str(root / 'lib' / 'third_party')])
    result = subprocess.run([bundled_python(root), '-c', code, *args], capture_output=True, text=True, timeout=120,
                            env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout

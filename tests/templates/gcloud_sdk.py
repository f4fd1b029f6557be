"""The installed Google Cloud CLI, used offline: its --help texts and its own Python code.

A machine without the CLI skips these checks (``make test`` cannot install it: it comes from
Google's package repository, not from PyPI or Debian).
"""
from __future__ import annotations

import atexit
import functools
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

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


@functools.lru_cache(maxsize=None)
def _throwaway_config_dir() -> str:
    path = tempfile.mkdtemp(prefix='gcloud-config-')
    atexit.register(shutil.rmtree, path, True)
    return path


def offline_env() -> dict[str, str]:
    """No credentials, no network probes, no prompts, no update checks, a throwaway config folder."""
    env = dict(os.environ)
    env.update(CLOUDSDK_CONFIG=_throwaway_config_dir(), CLOUDSDK_CORE_DISABLE_PROMPTS='1',
               CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK='1', CLOUDSDK_CORE_CHECK_GCE_METADATA='false',
               NO_GCE_CHECK='True', TERM='dumb')
    return env


def help_text(*command: str) -> str:
    """``gcloud COMMAND --help`` (or ``bq help COMMAND``) as plain text."""
    require_sdk()
    argv = ['bq', 'help', *command[1:]] if command[0] == 'bq' else [*command, '--help']
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=offline_env())
    # `bq help` exits 1 even when it prints the help; its text starting with the command is the test.
    ok = result.returncode == 0 or (command[0] == 'bq' and f'\n{command[1]} ' in result.stdout)
    assert ok, f'{" ".join(argv)} failed: {result.stderr[-2000:]}'
    return ANSI.sub('', result.stdout)


# Prints `gcloud PATH --help` for each PATH argument from one process: gcloud's own entry point,
# loaded once (a separate `gcloud ... --help` costs about a second of CPU each).
_BATCH_HELP = '''
import sys
from googlecloudsdk import gcloud_main
from googlecloudsdk.core import log
cli = gcloud_main.CreateCLI([])
for path in sys.argv[1:]:
    log.out.Print("@@@ help " + path)
    log.out.flush()
    try:
        cli.Execute(path.split() + ["--help"])
    except SystemExit:
        pass
    log.out.flush()
'''


def gcloud_help_texts(paths: list[tuple[str, ...]]) -> dict[tuple[str, ...], str]:
    """``gcloud PATH --help`` of each path (each path starts with 'gcloud'), as plain text."""
    output = ANSI.sub('', run_gcloud_python(_BATCH_HELP, *(' '.join(path[1:]) for path in paths)))
    texts = {}
    for section in output.split('@@@ help ')[1:]:
        path, _, text = section.partition('\n')
        texts[('gcloud', *path.split())] = text
    assert set(texts) == set(paths), 'gcloud printed no help for some commands'
    return texts


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

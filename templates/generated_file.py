"""Writes a generated file, or (``--check``) reports that the committed copy is stale."""
from __future__ import annotations

import pathlib
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def write_or_check(files: dict[pathlib.Path, str], check: bool) -> int:
    """Returns 0 when every file is current (check) or was written; 1 when a check found a stale one."""
    stale = [path for path, text in files.items() if not path.exists() or path.read_text() != text]
    if check:
        for path in stale:
            print(f'{path.relative_to(REPO_ROOT)} is stale: run `make template-metadata`', file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
        print(f'wrote {path.relative_to(REPO_ROOT)}')
    return 0

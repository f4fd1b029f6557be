"""TensorFlow's and LiteRT's C++ start-up lines, which ignore ``TF_CPP_MIN_LOG_LEVEL``, kept off stderr.

Importing TensorFlow 2.21 prints, whatever ``TF_CPP_MIN_LOG_LEVEL`` says, absl's
"All log messages before absl::InitializeLog() is called are written to STDERR"
and an INFO line about oneDNN, twice (two native libraries), from C++, where no
Python logging setting reaches. ``info_logs_hidden`` catches the process's stderr
at the file descriptor while the import runs and writes back everything except
those INFO lines, so warnings and errors (``W``/``E`` lines, Python tracebacks,
other threads' output) still appear, in order. It does so only when
``TF_CPP_MIN_LOG_LEVEL`` asks for INFO to be hidden (1 or more), as TensorFlow
itself should; ``python -m pipeline.main --verbose`` sets it to 0.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from typing import Iterator

LEVEL_ENV = 'TF_CPP_MIN_LOG_LEVEL'
# absl's INFO line (I + MMDD, time, thread id, file:line]), and absl's notice that precedes its first line.
_HIDDEN = re.compile(rb'^(I\d{4} [\d:.]+ +\d+ [^ \]]+:\d+\] |WARNING: All log messages before absl::InitializeLog\(\)'
                     rb'|INFO: Created TensorFlow Lite XNNPACK delegate for CPU)')
_LOCK = threading.Lock()  # one redirect of fd 2 at a time


def _info_hidden() -> bool:
    try:
        return int(os.environ.get(LEVEL_ENV, '0')) >= 1
    except ValueError:
        return False


@contextlib.contextmanager
def info_logs_hidden() -> Iterator[None]:
    """Runs the body with native INFO lines dropped from stderr (when ``TF_CPP_MIN_LOG_LEVEL`` >= 1)."""
    if not _info_hidden():
        yield
        return
    with _LOCK, tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().splitlines(keepends=True) if not _HIDDEN.match(line)]
            if kept:
                os.write(2, b''.join(kept))

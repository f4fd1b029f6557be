"""What every benchmark prints and saves: medians with their spread, a table, and a JSON file.

A figure is only as good as the conditions it was measured in, so each JSON
file also records the machine (cores, load average before and after, Python,
the git commit) next to the raw per-run values.
"""
from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any, Iterable, Optional, Sequence

from benchmarks.inputs import ROOT

RESULTS_DIR = os.path.join(ROOT, 'artifacts', 'benchmarks')
INPUTS_DIR = os.path.join(RESULTS_DIR, 'inputs')  # generated audio, kept between runs


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Median, extremes and spread ((max - min) / median) of repeated measurements."""
    values = [float(v) for v in values]
    median = statistics.median(values)
    return {'median': median, 'min': min(values), 'max': max(values), 'runs': len(values),
            'spread': (max(values) - min(values)) / median if median else 0.0, 'values': values}


def spread_text(s: dict[str, Any]) -> str:
    return f"±{50 * s['spread']:.0f}%" if s['runs'] > 1 else 'one run'


def fmt(value: Optional[float], digits: int = 3) -> str:
    """A number with about ``digits`` significant figures, without scientific notation; n/a for none."""
    if value is None or not math.isfinite(value):
        return 'n/a'
    if value == 0:
        return '0'
    magnitude = len(str(int(abs(value)))) if abs(value) >= 1 else 0
    return f'{value:,.{max(digits - magnitude, 0)}f}'


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    rows = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return '  '.join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return '\n'.join([line(headers), line(['-' * w for w in widths])] + [line(r) for r in rows])


def int_list(text: str) -> list[int]:
    """An option's comma-separated integers, e.g. ``100,500,2500``."""
    return [int(x) for x in text.split(',') if x.strip()]


def float_list(text: str) -> list[float]:
    return [float(x) for x in text.split(',') if x.strip()]


def machine() -> dict[str, Any]:
    try:
        commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True,
                                timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ''
    return {'cpus': os.cpu_count(), 'load_average': os.getloadavg(), 'cpu_pressure': _cpu_pressure(),
            'python': platform.python_version(), 'platform': platform.platform(), 'commit': commit,
            'time': time.strftime('%Y-%m-%dT%H:%M:%S%z')}


def _cpu_pressure() -> str:
    """Linux's share of time some task waited for a CPU (``some avg10=...``): how contended the machine is."""
    try:
        with open('/proc/pressure/cpu') as f:
            return f.readline().strip()
    except OSError:
        return ''


def save(name: str, payload: dict[str, Any], path: str | None = None) -> str:
    """Writes ``payload`` (plus the machine's state now) as JSON; returns the path."""
    path = path or os.path.join(RESULTS_DIR, f'{name}.json')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    payload = {'benchmark': name, 'command': ' '.join(sys.argv), 'machine_after': machine(), **payload}
    with open(path, 'w') as f:
        json.dump(payload, f, indent=2, default=str)
    return path

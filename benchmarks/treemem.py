"""Peak memory of a whole process tree, sampled from /proc (Linux).

Beam's FnApiRunner runs its SDK workers as child processes, so the memory a
pipeline run needs is the sum over the tree, not the parent's own peak.
Two sums are sampled: RSS (what the task's target is stated in; it counts
pages shared between processes, such as TensorFlow's libraries, once per
process, so it overstates a multi-process tree) and PSS (shared pages split
between their sharers: the tree's real footprint). Sampling can miss a peak
shorter than the interval, so each process's own high-water mark (VmHWM) is
kept as well; their largest value is a floor the true peak cannot be under.
"""
from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from typing import Optional, Sequence


@dataclass
class TreeMemory:
    peak_rss_mib: float = 0.0        # largest sampled sum of RSS over the tree
    peak_pss_mib: float = 0.0        # largest sampled sum of PSS over the tree
    max_process_hwm_mib: float = 0.0  # largest VmHWM of any single process in the tree
    max_processes: int = 0
    samples: int = 0

    def as_dict(self) -> dict:
        return {k: round(v, 1) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _children(pid: int) -> list[int]:
    kids = []
    try:
        for tid in os.listdir(f'/proc/{pid}/task'):
            with open(f'/proc/{pid}/task/{tid}/children') as f:
                kids.extend(int(c) for c in f.read().split())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return kids


def tree_pids(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(_children(pid))
    return pids


def _status_kib(pid: int, fields: tuple[str, ...]) -> dict[str, int]:
    found = {}
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                key = line.split(':', 1)[0]
                if key in fields:
                    found[key] = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


def _pss_kib(pid: int) -> int:
    try:
        with open(f'/proc/{pid}/smaps_rollup') as f:
            for line in f:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


_TICKS = os.sysconf('SC_CLK_TCK') if hasattr(os, 'sysconf') else 100


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one live process (all its threads), from /proc/PID/stat."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS   # fields 14 and 15 of stat(5), after the name


def cores_between(timeline: Sequence[tuple[float, float]], start: float, end: float) -> Optional[float]:
    """Cores the tree kept busy between two wall-clock times (CPU seconds / wall seconds), from its
    (time, CPU so far) samples; None when fewer than two samples fall in the span."""
    inside = [(t, c) for t, c in timeline if start <= t <= end]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


class TreeSampler:
    """Samples a running process tree in a background thread until stopped.

    Besides memory it keeps a timeline of (wall-clock time, CPU seconds of the live tree), so a caller can
    tell how many cores the run kept busy over any stretch of it (``cores_between``).
    """

    # What a sample reads is not free, and it is read while the tree runs on the same cores: every 50 ms, the
    # tree's PSS (the kernel walks each process's page tables for smaps_rollup) and the tree itself (a children
    # file per thread of every process) took ~0.16 of a core from a 2-core BirdNET run (1.0 s of CPU in 6.6 s).
    # Those two are read every REFRESH_S; RSS, the high-water marks and CPU stay at every sample.
    REFRESH_S = 0.5

    def __init__(self, root_pid: int, interval_s: float = 0.05):
        self._root = root_pid
        self._interval = interval_s
        self._pids: list[int] = []
        self._refreshed = float('-inf')
        self._stop = threading.Event()
        self._hwm_kib: dict[int, int] = {}
        self.result = TreeMemory()
        self.timeline: list[tuple[float, float]] = []
        self.rss_timeline: list[tuple[float, float]] = []   # (time.monotonic(), RSS of the tree in MiB)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> 'TreeSampler':
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.result.max_process_hwm_mib = max(self._hwm_kib.values(), default=0) / 1024

    def sample(self) -> None:
        now = time.monotonic()
        refresh = now - self._refreshed >= self.REFRESH_S
        if refresh:
            self._pids, self._refreshed = tree_pids(self._root), now
        pids = self._pids
        rss = pss = 0
        cpu = 0.0
        for pid in pids:
            cpu += _cpu_seconds(pid)
            status = _status_kib(pid, ('VmRSS', 'VmHWM'))
            rss += status.get('VmRSS', 0)
            if 'VmHWM' in status:
                self._hwm_kib[pid] = max(self._hwm_kib.get(pid, 0), status['VmHWM'])
            if refresh:
                pss += _pss_kib(pid)
        r = self.result
        r.peak_rss_mib = max(r.peak_rss_mib, rss / 1024)
        if refresh:
            r.peak_pss_mib = max(r.peak_pss_mib, pss / 1024)
        r.max_processes = max(r.max_processes, len(pids))
        r.samples += 1
        self.timeline.append((time.time(), cpu))
        self.rss_timeline.append((time.monotonic(), rss / 1024))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self._interval)


def peak_between(timeline: Sequence[tuple[float, float]], start: float, end: float) -> Optional[float]:
    """The largest value of a (time, value) timeline between two times; None when no sample falls there."""
    inside = [v for t, v in timeline if start <= t <= end]
    return max(inside) if inside else None


def children_cpu_seconds() -> float:
    """CPU seconds of every child (and their descendants) that this process has reaped so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_measured(command: Sequence[str], env: Optional[dict] = None, cwd: Optional[str] = None,
                 interval_s: float = 0.05, timeline: Optional[list] = None
                 ) -> tuple[subprocess.CompletedProcess, TreeMemory, float, float]:
    """Runs ``command`` to completion.

    Returns its result (output captured), the tree's memory, wall seconds, and the CPU seconds of the whole
    tree (every descendant is reaped by its parent, so the kernel adds it to this process's children's usage).
    ``timeline``, if given, receives the sampler's (time, CPU of the live tree) samples.
    """
    cpu_before = children_cpu_seconds()
    started = time.perf_counter()
    proc = subprocess.Popen(list(command), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    with TreeSampler(proc.pid, interval_s) as sampler:
        stdout, stderr = proc.communicate()
    if timeline is not None:
        timeline.extend(sampler.timeline)
    seconds = time.perf_counter() - started
    cpu = children_cpu_seconds() - cpu_before
    return subprocess.CompletedProcess(list(command), proc.returncode, stdout, stderr), sampler.result, seconds, cpu

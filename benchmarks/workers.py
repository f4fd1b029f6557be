"""Runs a per-file loop in N worker processes and times only the work.

Each worker builds its loop object (imports, model load: not timed), processes
one warm-up file, and says it is ready; the clock starts when every worker is
ready and stops when the last one has finished its share, pulled from a shared
queue a few files at a time. Both the original design and the bare loop run
through this, with as many processes as the pipeline has workers, so every
contender gets the same cores.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from benchmarks.treemem import children_cpu_seconds

CHUNK = 8
STARTUP_TIMEOUT_S = 600


@dataclass
class LoopRun:
    seconds: float                 # wall clock from "go" until the last worker finished (the work alone)
    files: int
    audio_seconds: float
    cpu_seconds: float             # the work alone, summed over the workers
    launch_seconds: float          # wall clock from starting the workers (imports, model load) to the end
    launch_cpu_seconds: float      # CPU of the workers over their whole lives
    steps: dict[str, float] = field(default_factory=dict)  # seconds per step, summed over the workers
    processes: int = 1             # the worker processes it ran

    @property
    def files_per_second(self) -> float:
        return self.files / self.seconds

    @property
    def audio_seconds_per_second(self) -> float:
        return self.audio_seconds / self.seconds


def _worker(factory: Callable, warmup: str, tasks, results, ready, go) -> None:
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    loop = factory()
    loop.process(warmup)
    loop.finish()
    loop.steps.reset()
    ready.put(os.getpid())
    go.wait()
    cpu_start = time.process_time()
    files, audio_seconds = 0, 0.0
    while True:
        chunk = tasks.get()
        if chunk is None:
            break
        for path in chunk:
            audio_seconds += loop.process(path)
            files += 1
    loop.finish()
    results.put({'files': files, 'audio_seconds': audio_seconds, 'cpu_seconds': time.process_time() - cpu_start,
                 'steps': dict(loop.steps.seconds), 'finished': time.perf_counter()})


def run_loop(factory: Callable, files: Sequence[str], processes: int, warmup: str) -> LoopRun:
    """Processes ``files`` with ``processes`` workers made by ``factory()`` (picklable); returns the timing.
    Never more workers than chunks of ``CHUNK`` files: one with no chunk would only add its start-up (an import
    of TensorFlow and a model load) to the run's CPU."""
    processes = max(1, min(processes, -(-len(files) // CHUNK)))
    launched, cpu_before = time.perf_counter(), children_cpu_seconds()
    context = mp.get_context('spawn')  # no fork after TensorFlow has started threads
    tasks, results, ready, go = context.Queue(), context.Queue(), context.Queue(), context.Event()
    workers = [context.Process(target=_worker, args=(factory, warmup, tasks, results, ready, go), daemon=True)
               for _ in range(processes)]
    for w in workers:
        w.start()
    try:
        for _ in workers:
            _get(ready, workers, STARTUP_TIMEOUT_S)
        for i in range(0, len(files), CHUNK):
            tasks.put(list(files[i:i + CHUNK]))
        for _ in workers:
            tasks.put(None)
        time.sleep(0.5)  # let the queue's feeder thread hand the work over before the clock starts
        started = time.perf_counter()
        go.set()
        reports = [_get(results, workers, None) for _ in workers]
        finished = max(r['finished'] for r in reports)
    finally:
        for w in workers:
            w.join(timeout=30)
            if w.is_alive():
                w.terminate()
    steps: dict[str, float] = {}
    for report in reports:
        for name, seconds in report['steps'].items():
            steps[name] = steps.get(name, 0.0) + seconds
    return LoopRun(seconds=finished - started, files=sum(r['files'] for r in reports),
                   audio_seconds=sum(r['audio_seconds'] for r in reports),
                   cpu_seconds=sum(r['cpu_seconds'] for r in reports), launch_seconds=finished - launched,
                   launch_cpu_seconds=children_cpu_seconds() - cpu_before, steps=steps, processes=processes)


def _get(q, workers, timeout_s):
    """The next item from ``q``; fails instead of hanging when a worker has died."""
    deadline = time.monotonic() + timeout_s if timeout_s else None
    while True:
        try:
            return q.get(timeout=1.0)
        except queue.Empty:
            dead = [w for w in workers if w.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f'a benchmark worker died (exit code {dead[0].exitcode}); '
                                   'see its output above') from None
            if deadline and time.monotonic() > deadline:
                raise TimeoutError('benchmark workers did not get ready in time') from None

"""Overlapping the Cloud Storage round trips of the files of one bundle, inside a stage's DoFn.

Beam's local streaming runner executes one bundle of one step at a time, on one thread, and a file's
read or spectrogram write is a round trip to Cloud Storage; one file after another, the thread mostly
waits (benchmarks/drain.py, docs/benchmarks.md). A stage hands each file's work (read + decode, or
render + write, retries included) to a small pool of threads and emits its outputs from the DoFn's own
thread, in input order, each with its own element's timestamp, window and pane: from ``process`` once
more than ``OVERLAP_FILES`` are in flight, the rest in ``finish_bundle``. Beam's counters belong to the
DoFn's thread, so a stage counts in its ``emit`` step, never in the work.

Memory stays bounded: only files the stage calls small go to the pool (a big file first waits for
those in flight, then runs alone on the DoFn's thread), and at most ``OVERLAP_FILES`` wait.

``OverlappedStage`` is the DoFn such a stage is: the lifecycle around ``Overlap``, each file's outcome, and
the counting (files done, failures by stage, retries, time per file) are the same for every stage.
"""
from __future__ import annotations

import collections
import concurrent.futures
import time
from typing import Any, Callable, Deque, Generic, Iterable, Iterator, NamedTuple, Optional, Sequence, TypeVar

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput
from apache_beam.utils.windowed_value import WindowedValue

from audio.records import AudioObject
from transforms import METRICS_NAMESPACE
from transforms.failures import StageFailure, tagged

R = TypeVar('R')
# Files one stage works on at once. The round trips they overlap are short (a few ms on the emulator,
# tens on Cloud Storage) and the work between them is CPU (decode, render) that the worker's other
# threads also want; measured on the drain benchmark: see docs/benchmarks.md.
OVERLAP_FILES = 4


class Windowing(NamedTuple):
    """Where an element's outputs belong: its timestamp, its one window (the DoFn asks per window), its pane."""
    timestamp: Any
    window: Any
    pane: Any

    def wrap(self, output):
        if isinstance(output, TaggedOutput):
            return TaggedOutput(output.tag, self.wrap(output.value))
        return WindowedValue(output, self.timestamp, (self.window,), self.pane)


class _Pending(NamedTuple):
    future: 'concurrent.futures.Future[Any]'
    emit: Callable[[Any], Iterable[Any]]
    windowing: Windowing


class Overlap:
    """A DoFn's pool: ``start`` in setup, ``submit``/``run_alone`` in process, ``drain`` in finish_bundle."""

    def __init__(self, limit: int = OVERLAP_FILES, name: str = 'overlap'):
        self._limit = limit
        self._name = name
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self._pending: Deque[_Pending] = collections.deque()

    def start(self) -> None:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(max(1, self._limit), thread_name_prefix=self._name)
        self._pending.clear()   # a failed bundle's leftovers are not this bundle's outputs

    def submit(self, work: Callable[[], R], emit: Callable[[R], Iterable[Any]], windowing: Windowing
               ) -> Iterator[Any]:
        """Starts ``work`` in the pool; yields the outputs (``emit`` of their results) of the oldest files once
        more than the limit are in flight."""
        assert self._pool is not None, 'Overlap.start() was not called (DoFn.setup)'
        self._pending.append(_Pending(self._pool.submit(work), emit, windowing))
        while len(self._pending) > self._limit:
            yield from self._emit_oldest()

    def run_alone(self, work: Callable[[], R], emit: Callable[[R], Iterable[Any]], windowing: Windowing
                  ) -> Iterator[Any]:
        """Waits for the files in flight, then works on this one on the caller's thread."""
        yield from self.drain()
        for output in emit(work()):
            yield windowing.wrap(output)

    def drain(self) -> Iterator[Any]:
        while self._pending:
            yield from self._emit_oldest()

    def _emit_oldest(self) -> Iterator[Any]:
        pending = self._pending.popleft()
        for output in pending.emit(pending.future.result()):   # an exception in the work fails the bundle
            yield pending.windowing.wrap(output)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._pending.clear()


In = TypeVar('In')


class Outcome(NamedTuple):
    """One file's work in a stage: its output, or the failure that stopped it; attempts and seconds it took."""
    element: Any
    output: Any
    failure: Optional[StageFailure]
    attempts: int
    seconds: float


class OverlappedStage(beam.DoFn, Generic[In]):
    """A stage's DoFn whose per-file work (I/O, retries included) may overlap other files' (``Overlap``).

    A subclass says what a file's work is (``work``: its output and the attempts it took, or ``StageFailure``),
    which files go to the pool (``overlaps``), where a failure happened (``failure_stage``) and whose file the
    element is (``source``). This class runs the work, on the pool or alone, and counts on the DoFn's thread:
    ``done`` per output, ``failed_{stage}`` per failure, ``transient_retries_{retried}`` per retry,
    ``retryable_failures_{retried}`` per failure that outlasted the retries, and ``timing`` (ms per file).
    """

    def __init__(self, name: str, *, done: str, timing: str, retried: str, failure_stages: Sequence[str]):
        self._name = name
        self._done = Metrics.counter(METRICS_NAMESPACE, done)
        self._timing = Metrics.distribution(METRICS_NAMESPACE, timing)
        self._retries = Metrics.counter(METRICS_NAMESPACE, f'transient_retries_{retried}')
        self._gave_up = Metrics.counter(METRICS_NAMESPACE, f'retryable_failures_{retried}')
        self._failed = {stage: Metrics.counter(METRICS_NAMESPACE, f'failed_{stage}') for stage in failure_stages}

    def work(self, element: In) -> tuple[Any, int]:
        """(the file's output, attempts); raises ``StageFailure``. May run on a pool thread: no Beam metrics."""
        raise NotImplementedError

    def overlaps(self, element: In) -> bool:
        """Whether the file's work goes to the pool (a round trip to overlap, little to hold while it waits)."""
        raise NotImplementedError

    def source(self, element: In) -> AudioObject:
        raise NotImplementedError

    def failure_stage(self, element: In, failure: StageFailure) -> str:
        """The error row's stage; one of ``failure_stages``."""
        return next(iter(self._failed))

    def succeeded(self, output: Any) -> Any:
        """What is emitted for a file's output (counted here, on the DoFn's thread); by default the output."""
        return output

    def _attempt(self, element: In) -> Outcome:
        start = time.perf_counter()
        try:
            output, attempts = self.work(element)
        except StageFailure as f:
            return Outcome(element, None, f, f.attempts, time.perf_counter() - start)
        return Outcome(element, output, None, attempts, time.perf_counter() - start)

    def _emit(self, outcome: Outcome) -> Iterator[Any]:
        if outcome.attempts > 1:
            self._retries.inc(outcome.attempts - 1)
        f = outcome.failure
        if f is not None:
            stage = self.failure_stage(outcome.element, f)
            self._failed[stage].inc()
            if not f.permanent:
                self._gave_up.inc()
            yield tagged(f.failed_audio(self.source(outcome.element), stage))
            return
        emitted = self.succeeded(outcome.output)
        self._done.inc()
        self._timing.update(int(outcome.seconds * 1000))
        yield emitted

    def setup(self):
        self._overlap = Overlap(name=self._name)

    def start_bundle(self):
        self._overlap.start()

    def process(self, element, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam,
                pane=beam.DoFn.PaneInfoParam):
        windowing = Windowing(timestamp, window, pane)
        if self.overlaps(element):
            yield from self._overlap.submit(lambda: self._attempt(element), self._emit, windowing)
        else:
            yield from self._overlap.run_alone(lambda: self._attempt(element), self._emit, windowing)

    def finish_bundle(self):
        yield from self._overlap.drain()

    def teardown(self):
        self._overlap.close()

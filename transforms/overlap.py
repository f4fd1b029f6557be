"""Overlapping the Cloud Storage round trips of the files of one bundle, inside a stage's DoFn.

Beam's local streaming runner executes one bundle of one step at a time, on one thread, and a file's
read or spectrogram write is a round trip to Cloud Storage; one file after another, the thread mostly
waits (benchmarks/drain.py, docs/benchmarks.md). A stage hands each file's work (read + decode, or
render + write, retries included) to a small pool of threads and emits its outputs from the DoFn's own
thread, in input order, each with its own element's timestamp, window and pane: from ``process`` once
more than ``OVERLAP_FILES`` are in flight, the rest in ``finish_bundle``. Beam's counters belong to the
DoFn's thread, so a stage counts in its ``emit`` step, never in the work.

Memory stays bounded: only files the stage calls small go to the pool (a big file first waits for
those in flight, then runs alone on the DoFn's thread, as before), and at most ``OVERLAP_FILES`` wait.
"""
from __future__ import annotations

import collections
import concurrent.futures
from typing import Any, Callable, Deque, Iterable, Iterator, NamedTuple, Optional, TypeVar

from apache_beam.pvalue import TaggedOutput
from apache_beam.utils.windowed_value import WindowedValue

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

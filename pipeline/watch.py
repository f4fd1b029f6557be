"""Watch mode (``--watch``): keep running over ``--input_pattern`` and process each new file, and each new
version of a file, once, a few seconds after it appears.

Beam 2.77's local streaming runner cannot expand ``fileio.MatchContinuously`` /
``PeriodicImpulse`` (see docs/pipeline.md, "Watch mode"), so this is a loop of
bounded batch runs of the same graph: every ``--watch_interval_seconds`` the
pattern is listed (local folders or ``gs://`` prefixes, Beam's own glob
rules), and the files that are ready and have no row yet are handed to one
batch run of ``build_pipeline`` (``MatchFiles`` reads the listed files instead
of matching again).

* **Ready** means whole: a local file whose size and modification time did not
  change between two listings (or, first seen, has not been touched for an
  interval) - a file still being copied waits. A Cloud Storage object is
  whole once it is listed.
* **Crash-safe by construction**: the only state is the results themselves. A
  file is done when its ``(audio_file, generation)`` has a result or a permanent
  error row (one with only retryable errors is tried again, as a replay would);
  after ``kill -9`` a restart lists again and runs what has no row, and the
  batch run's own ``Dedupe`` re-reads the rows first, so nothing is written
  twice (SQLite's primary key would refuse it anyway).
* Removing a file's error row (the dashboard's "retry" action) makes it pending
  again: the next listing picks it up.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import threading
import time
from typing import Callable, Iterable, Optional

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from cloud.listing import Listed, Lister
from pipeline.options import PipelineConfig
from results import tables

_LOG = logging.getLogger('pipeline.watch')


# A local file counts as whole once it is unchanged since the previous listing *and* untouched for this long
# (or the interval, if longer): a writer may pause for longer than one interval mid-file, and a half-written
# version taken for whole would get a row of its own (Truncated). The cost is this much delay per new file.
SETTLE_SECONDS = 2.0


def ready(now: dict[str, Listed], before: dict[str, Listed], settle_seconds: float,
          clock: Callable[[], float] = time.time) -> list[Listed]:
    """The files that are whole: Cloud Storage objects (finalized when listed), and local files unchanged since
    the previous listing (if there was one) and untouched for ``settle_seconds``."""
    out = []
    for path, seen in now.items():
        previous = before.get(path)
        if seen.whole or ((previous is None or previous == seen) and clock() - seen.modified >= settle_seconds):
            out.append(seen)
    return out


def done_keys(config: PipelineConfig) -> set[tuple[str, str]]:
    """Every (audio_file, generation) with a result or a permanent error row: those files are done.

    A file whose only rows are retryable errors is tried again, as a batch replay would (docs/reliability.md).
    """
    return config.store.done_keys(config.retry_failed)


class _DoneKeys:
    """The done keys, re-read only when the results may have changed (cheap to ask every interval)."""

    def __init__(self, config: PipelineConfig):
        self._config = config
        self._store = config.store
        self._keys: set[tuple[str, str]] = set()
        self._stamp: object = None

    def current(self, wanted: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        stamp = self._store.change_stamp()
        if stamp is not None:
            if stamp != self._stamp:
                self._keys, self._stamp = done_keys(self._config), stamp
        elif not set(wanted) <= self._keys:  # no cheap stamp (BigQuery): ask only when something looks new
            self._keys = done_keys(self._config)
        return self._keys

    def add(self, keys: Iterable[tuple[str, str]]) -> None:
        self._keys |= set(keys)


RunBatch = Callable[[list[Listed]], None]


def ignored_paths(config: PipelineConfig) -> list[str]:
    return [config.spectrogram_location, *config.store.files()]


def watch(config: PipelineConfig, run_batch: RunBatch, stop: Optional[threading.Event] = None,
          log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> None:
    """Lists, picks the ready files without rows, runs them; every ``watch_interval_seconds`` until ``stop``."""
    stop = stop or threading.Event()
    interval = config.watch_interval_seconds
    assert config.input_pattern  # validate(): --watch needs it
    lister = Lister(config.input_pattern, ignored_paths(config))
    done = _DoneKeys(config)
    before: dict[str, Listed] = {}
    first_seen: dict[tuple[str, str], float] = {}  # version -> when a listing first showed it (latency's start)
    waiting_logged: set[tuple[str, str]] = set()
    log(f'Watching {config.input_pattern} every {interval:g} s (Ctrl-C to stop); rows go to {config.output_table}')
    while not stop.is_set():
        started = time.monotonic()
        try:
            listed_at = time.time()
            now = lister.list()
            keys = done.current(f.key for f in now.values())
            new = {p: f for p, f in now.items() if f.key not in keys}
            first_seen = {f.key: first_seen.get(f.key, listed_at) for f in new.values()}
            new = {p: dataclasses.replace(f, first_seen=first_seen[f.key]) for p, f in new.items()}
            batch = ready(new, before, max(interval, SETTLE_SECONDS))
            for f in new.values():  # said once per version, when a second listing still sees it change
                if f not in batch and f.path in before and f.key not in waiting_logged:
                    waiting_logged.add(f.key)
                    log(f'  waiting for {f.path} to be complete ({f.size:,} bytes so far)')
            if batch:
                log(f'  {len(batch)} new file{"s" if len(batch) != 1 else ""}: '
                    + ', '.join(os.path.basename(f.path) for f in batch[:5]) + (' ...' if len(batch) > 5 else ''))
                t0 = time.monotonic()
                run_batch(batch)
                done.add(f.key for f in batch)
                log(outcome_line(config, batch, time.monotonic() - t0))
            before = now
        except Exception as e:  # an outage (bucket, database) is a bad moment: log it, try again next interval
            _LOG.warning('watch cycle failed (%s: %s); trying again in %g s', type(e).__name__, e, interval,
                         exc_info=_LOG.isEnabledFor(logging.DEBUG))
        stop.wait(max(0.0, interval - (time.monotonic() - started)))


def outcome_line(config: PipelineConfig, batch: list[Listed], seconds: float) -> str:
    """What a run did, from the rows it wrote: "done in 1.1 s: 2 ok, 1 failed (x.png); ..."."""
    try:
        states = config.store.key_states()
    except Exception as e:  # the rows are the record; this line only reports them
        _LOG.debug('could not read the rows back: %s', e)
        return f'  done in {seconds:.1f} s'
    failed = [os.path.basename(f.path) for f in batch if states.get(f.key) != tables.RESULT]
    line = f'  done in {seconds:.1f} s: {len(batch) - len(failed)} ok, {len(failed)} failed'
    if failed:
        line += (f' ({", ".join(failed[:5])}{" ..." if len(failed) > 5 else ""}); '
                 f'why is in the error rows ({config.error_table})')
    return line


def batch_runner(options: PipelineOptions, config: PipelineConfig) -> RunBatch:
    """One bounded batch run of the pipeline over exactly the listed files, on the local batch runner."""
    from pipeline.graph import build_pipeline
    from pipeline.handler_choice import make_handler
    from pipeline.local_runner import configure_runner, scoring_threads

    # Built once (the model metadata is not read again every run), with its model kept loaded between runs.
    handler = make_handler(config, keep_model_loaded=True, scoring_threads=scoring_threads(options, config))
    if handler.keeps_model_loaded:
        handler.load_model()  # now, so the first file does not wait for the runtime to start

    def run(files: list[Listed]) -> None:
        runner = configure_runner(options, config, len(files))
        pipeline = beam.Pipeline(runner=runner, options=options)
        build_pipeline(pipeline, config, handler, listed_files=[f.metadata() for f in files],
                       seen_at={f.path: f.first_seen for f in files if f.first_seen is not None})
        pipeline.run().wait_until_finish()

    return run


def run_watch(options: PipelineOptions, config: PipelineConfig) -> int:
    """``--watch``: runs until Ctrl-C or SIGTERM (then exits 0; a run cut short is redone on the next start)."""
    stop = threading.Event()

    def _stop(signum, _frame):
        if stop.is_set():  # a second Ctrl-C: stop now, even inside a run
            raise KeyboardInterrupt
        stop.set()
        print('Stopping after the current run (Ctrl-C again to stop now) ...', file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        watch(config, batch_runner(options, config), stop)
    except KeyboardInterrupt:
        pass
    print('Stopped.', file=sys.stderr, flush=True)
    return 0

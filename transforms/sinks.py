"""Sinks: result rows and error rows into the result store (``results.store``), whichever it is.

Both sinks take the row dicts built by ``results.schema``, and the store decides how
they reach its tables (``results.writes``); this module lends it what the pipeline
owns: retries, metrics, and error rows for rows that could not be written. A
result row the store refuses (BigQuery ``invalid``, a SQLite constraint) becomes a
permanent error row (stage ``write``), so even a failed write is accounted for.

A store that is *unavailable* (BigQuery 5xx, a SQLite file locked by another
writer, a full disk) is never the file's fault: the write is retried
(``transforms.failures.Retrier``, ``--transient_retry_seconds``) and, if the
store is still unavailable, the bundle fails and the runner retries it: there is
nowhere to record an error row, and dropping the row would lose the file.

Event rows travel with their file's result row (``schema.ROW_EVENTS_KEY``); the store
writes them with it (SQLite: one transaction; BigQuery: ``<output_table>_events``
from the same elements, ``event_count`` on the result row says how many to expect).
An event row that cannot be written is logged and counted (``event_rows_lost``),
never turned into an error row: the file has its result.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, Union

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from audio.records import FailedAudio
from results import schema
from results.store import ResultStore, lock_wait_seconds, open_store
from results.tables import ERRORS
from transforms import METRICS_NAMESPACE
from transforms.failures import (DEFAULT_RETRIER, BIGQUERY_PERMANENT_REASONS, FAILED, Retrier, StageFailure,
                                 attempts_text)

_LOG = logging.getLogger(__name__)
FLUSH_ROWS = 500
FLUSH_SECONDS = 2.0


def busy_timeout(retrier: Retrier) -> float:
    """How long one SQLite write waits for another writer's lock under this retrier (``results.store``)."""
    return lock_wait_seconds(retrier.deadline_s)


class _WriteBatches(beam.DoFn):
    """Buffers rows and writes them in one call per bundle, per 500 rows or per 2 s.

    The time bound keeps rows visible while a long batch bundle is still running (progress, dashboard).
    """

    def __init__(self, write_batch: Callable[[list[dict[str, Any]]], None], table: str, retrier: Retrier):
        self._write_batch = write_batch
        self._where = str(write_batch)
        self._retrier = retrier
        self._written = Metrics.counter(METRICS_NAMESPACE, f'rows_written_{table}')
        self._failed = Metrics.counter(METRICS_NAMESPACE, f'rows_failed_{table}')
        self._retries = Metrics.counter(METRICS_NAMESPACE, f'transient_retries_write_{table}')

    def start_bundle(self):
        self._rows = []
        self._last_flush = time.monotonic()

    def process(self, row):
        self._rows.append(row)
        if len(self._rows) >= FLUSH_ROWS or time.monotonic() - self._last_flush >= FLUSH_SECONDS:
            for failed in self._flush():
                yield beam.pvalue.TaggedOutput(FAILED, failed)

    def finish_bundle(self):
        for failed in self._flush():
            yield beam.pvalue.TaggedOutput(FAILED, GlobalWindows.windowed_value(failed))

    def _log_retry(self, error: BaseException, wait: float) -> None:
        self._retries.inc()
        _LOG.warning('writing to %s failed (%s: %s); retrying in %.1f s', self._where, type(error).__name__,
                     error, wait)

    def _write_retrying(self, rows) -> None:
        """Writes rows; a transient failure that outlasts the retries fails the bundle (the runner retries it)."""
        try:
            self._retrier.call(lambda: self._write_batch(rows), on_retry=self._log_retry)
        except StageFailure as f:
            if f.permanent:
                raise
            raise RuntimeError(f'{self._where} stayed unwritable for {f.seconds:.0f} s ({attempts_text(f.attempts)}): '
                               f'{type(f.error).__name__}: {f.error}') from f.error

    def _flush(self):
        rows, self._rows = self._rows, []
        self._last_flush = time.monotonic()
        if not rows:
            return
        try:
            self._write_retrying(rows)
            self._written.inc(len(rows))
            return
        except StageFailure:  # a row the table refuses: find it, write the others
            _LOG.warning('a row of the batch for %s was refused; writing row by row', self._where)
        for row in rows:
            try:
                self._write_retrying([row])
                self._written.inc()
            except StageFailure as f:
                self._failed.inc()
                yield f.failed_audio(schema.source_of(row), 'write')


def _refused_row(failed_row) -> FailedAudio:
    """A row BigQuery gave up on: refused as invalid (permanent), or still failing after Beam's own retries."""
    _, row, errors = failed_row
    reasons = {e.get('reason') for e in errors if isinstance(e, dict)}
    permanent = bool(reasons) and reasons <= BIGQUERY_PERMANENT_REASONS
    return FailedAudio(schema.source_of(row), 'write', 'BigQueryInsertError', json.dumps(errors, default=str),
                       retryable=not permanent)


class _LostRowReport:
    """Counts and logs a row that could not be written even as an error row (the last resort: nothing to retry)."""

    def __init__(self, what: str, counter: str):
        self._what = what
        self._lost = Metrics.counter(METRICS_NAMESPACE, counter)

    def __call__(self, failure: FailedAudio) -> None:
        self._lost.inc()
        _LOG.error('could not write %s for %s: %s', self._what, failure.source.uri, failure.message)


class _StageWrites:
    """What the write stage lends the store (``results.writes.RowWrites``): retries, metrics, failure rows."""

    def __init__(self, retrier: Retrier):
        self._retrier = retrier
        self.outage_deadline_s = retrier.deadline_s

    def batched(self, rows, name: str, write_batch):
        out = rows | 'WriteBatches' >> beam.ParDo(_WriteBatches(write_batch, name, self._retrier)).with_outputs(
            FAILED, main='done')
        return out[FAILED]

    def refused(self, failed_rows):
        return failed_rows | 'RowFailures' >> beam.Map(_refused_row)

    def lost(self, failures, label: str, what: str, counter: str):
        return failures | label >> beam.Map(_LostRowReport(what, counter))


def _store(store: Union[ResultStore, str]) -> ResultStore:
    return store if isinstance(store, ResultStore) else open_store(store)


class WriteResults(beam.PTransform):
    """(ProcessedAudio, Classification) -> one row each, and its events; returns the FailedAudio of rows that failed.

    ``store``: a ResultStore, or an ``--output_table`` name. ``events``: also write the event rows.
    """

    def __init__(self, store: Union[ResultStore, str], streaming: bool, retrier: Retrier = DEFAULT_RETRIER,
                 events: bool = True):
        super().__init__()
        self._store = _store(store)
        self._streaming = streaming
        self._retrier = retrier
        self._events = events

    def expand(self, classified):
        rows = classified | 'ToRows' >> beam.MapTuple(
            lambda item, result: schema.processed_row_with_events(item, result, time.time()))
        return self._store.write_results(rows, self._streaming, _StageWrites(self._retrier), self._events)


class WriteErrors(beam.PTransform):
    """FailedAudio -> one error row each. Error rows that cannot be written are logged and counted.

    ``store``: a ResultStore, or an ``--output_table`` name (its default error table).
    """

    def __init__(self, store: Union[ResultStore, str], streaming: bool, retrier: Retrier = DEFAULT_RETRIER):
        super().__init__()
        self._store = _store(store)
        self._streaming = streaming
        self._retrier = retrier

    def expand(self, failures):
        rows = failures | 'ToRows' >> beam.Map(lambda f: schema.error_row(f, time.time()))
        writes = _StageWrites(self._retrier)
        lost = self._store.write_table(rows, ERRORS, self._streaming, writes)
        return writes.lost(lost, 'ReportLost', 'the error row', 'error_rows_lost')

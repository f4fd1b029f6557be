"""Sinks: result rows and error rows, to BigQuery or to the embedded SQLite file.

Both sinks take the row dicts built by ``results.schema`` so the two backends
always agree on columns. A result row the store refuses (BigQuery ``invalid``,
a SQLite constraint) becomes a permanent error row (stage ``write``), so even a
failed write is accounted for.

A store that is *unavailable* (BigQuery 5xx, a SQLite file locked by another
writer, a full disk) is never the file's fault: the write is retried
(``transforms.failures.Retrier``, ``--transient_retry_seconds``) and, if the
store is still unavailable, the bundle fails and the runner retries it: there is
nowhere to record an error row, and dropping the row would lose the file.

Event rows travel with their file's result row. SQLite writes both in one
transaction. BigQuery writes them to ``<output_table>_events`` beside the
results, from the same elements (streaming: inserts of the same bundle;
batch: load jobs at the end of the run); ``event_count`` on the result row
says how many to expect. An event row BigQuery refuses is logged and counted
(``event_rows_lost``), never turned into an error row: the file has its result.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Optional

import apache_beam as beam
from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery
from apache_beam.io.gcp.bigquery_tools import RetryStrategy
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from audio.records import FailedAudio
from cloud.emulators import beam_test_client
from results import schema, sqlite_store
from results.tables import is_sqlite_path
from transforms import METRICS_NAMESPACE
from transforms.failures import (DEFAULT_RETRIER, BIGQUERY_PERMANENT_REASONS, FAILED, Retrier, StageFailure,
                                 attempts_text)

_LOG = logging.getLogger(__name__)
SQLITE_FLUSH_ROWS = 500
SQLITE_FLUSH_SECONDS = 2.0


def busy_timeout(retrier: Retrier) -> float:
    """How long one SQLite write waits for another writer's lock: a quarter of the retry budget, at most 60 s,
    so that a lock held longer than that is retried several times before the budget runs out."""
    return max(1.0, min(sqlite_store.BUSY_TIMEOUT_SECONDS, retrier.deadline_s / 4))


class _WriteSqlite(beam.DoFn):
    """Buffers rows and writes them in one transaction per bundle, per 500 rows or per 2 s.

    The time bound keeps rows visible while a long batch bundle is still running (progress, dashboard).
    """

    def __init__(self, path: str, table: str, retrier: Retrier):
        self._path = path
        self._table = table
        self._retrier = retrier
        self._written = Metrics.counter(METRICS_NAMESPACE, f'rows_written_{table}')
        self._failed = Metrics.counter(METRICS_NAMESPACE, f'rows_failed_{table}')
        self._retries = Metrics.counter(METRICS_NAMESPACE, f'transient_retries_write_{table}')

    def start_bundle(self):
        self._rows = []
        self._last_flush = time.monotonic()

    def process(self, row):
        self._rows.append(row)
        if len(self._rows) >= SQLITE_FLUSH_ROWS or time.monotonic() - self._last_flush >= SQLITE_FLUSH_SECONDS:
            for failed in self._flush():
                yield beam.pvalue.TaggedOutput(FAILED, failed)

    def finish_bundle(self):
        for failed in self._flush():
            yield beam.pvalue.TaggedOutput(FAILED, GlobalWindows.windowed_value(failed))

    def _write_rows(self, rows) -> None:
        write = sqlite_store.write_processed if self._table == sqlite_store.PROCESSED else sqlite_store.write_errors
        with sqlite_store.connect(self._path, busy_timeout(self._retrier)) as conn:
            write(conn, rows)

    def _log_retry(self, error: BaseException, wait: float) -> None:
        self._retries.inc()
        _LOG.warning('writing to %s failed (%s: %s); retrying in %.1f s', self._path, type(error).__name__,
                     error, wait)

    def _write_retrying(self, rows) -> None:
        """Writes rows; a transient failure that outlasts the retries fails the bundle (the runner retries it)."""
        try:
            self._retrier.call(lambda: self._write_rows(rows), on_retry=self._log_retry)
        except StageFailure as f:
            if f.permanent:
                raise
            raise RuntimeError(f'{self._path} stayed unwritable for {f.seconds:.0f} s ({attempts_text(f.attempts)}): '
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
            _LOG.warning('a row of the batch for %s was refused; writing row by row', self._path)
        for row in rows:
            try:
                self._write_retrying([row])
                self._written.inc()
            except StageFailure as f:
                self._failed.inc()
                yield f.failed_audio(schema.source_of(row), 'write')


def _bigquery_write(rows, table: str, table_kind: str, streaming: bool, retrier: Retrier):
    partition, cluster = {
        sqlite_store.PROCESSED: (schema.PARTITION_FIELD, schema.CLUSTER_FIELDS),
        sqlite_store.ERRORS: (schema.ERRORS_PARTITION_FIELD, schema.ERRORS_CLUSTER_FIELDS),
        sqlite_store.EVENTS: (schema.EVENTS_PARTITION_FIELD, schema.EVENTS_CLUSTER_FIELDS)}[table_kind]
    extra = {'timePartitioning': {'type': 'DAY', 'field': partition}, 'clustering': {'fields': list(cluster)}}
    return rows | 'ToBigQuery' >> WriteToBigQuery(
        table,
        schema=schema.bigquery_schema(table_kind),
        method=WriteToBigQuery.Method.STREAMING_INSERTS if streaming else WriteToBigQuery.Method.FILE_LOADS,
        create_disposition=BigQueryDisposition.CREATE_IF_NEEDED,
        write_disposition=BigQueryDisposition.WRITE_APPEND,
        insert_retry_strategy=RetryStrategy.RETRY_ON_TRANSIENT_ERROR,
        additional_bq_parameters=extra,
        # None on Google Cloud. On the emulator, an outage is waited out for the retry budget; longer, the
        # bundle fails and the runner retries it (as google-cloud-bigquery's own 600 s deadline does).
        test_client=beam_test_client(outage_deadline=retrier.deadline_s))


def _bigquery_failure(failed_row) -> FailedAudio:
    """A row Beam gave up on: refused as invalid (permanent), or still failing after Beam's own retries."""
    _, row, errors = failed_row
    reasons = {e.get('reason') for e in errors if isinstance(e, dict)}
    permanent = bool(reasons) and reasons <= BIGQUERY_PERMANENT_REASONS
    return FailedAudio(schema.source_of(row), 'write', 'BigQueryInsertError', json.dumps(errors, default=str),
                       retryable=not permanent)


def _write(rows, table: str, table_kind: str, streaming: bool, retrier: Retrier):
    """Writes rows; returns the FailedAudio of those that could not be written."""
    if is_sqlite_path(table):
        out = rows | 'ToSqlite' >> beam.ParDo(_WriteSqlite(table, table_kind, retrier)).with_outputs(FAILED,
                                                                                                       main='done')
        return out[FAILED]
    result = _bigquery_write(rows, table, table_kind, streaming, retrier)
    if not streaming:
        # A load job succeeds or fails as a whole (and then fails the pipeline): no per-row failures.
        return rows.pipeline | 'NoRowFailures' >> beam.Create([])
    return result.failed_rows_with_errors | 'RowFailures' >> beam.Map(_bigquery_failure)


def _result_row(row):
    return schema.split_events(row)[0]


def _event_rows(row):
    return schema.split_events(row)[1] or []


class WriteResults(beam.PTransform):
    """(ProcessedAudio, Classification) -> one row each, and its events; returns the FailedAudio of rows that failed.

    ``events_table``: where BigQuery event rows go (SQLite keeps them in the results file; see the module doc).
    """

    def __init__(self, table: str, streaming: bool, retrier: Retrier = DEFAULT_RETRIER,
                 events_table: Optional[str] = None):
        super().__init__()
        self._table = table
        self._streaming = streaming
        self._retrier = retrier
        self._events_table = events_table

    def expand(self, classified):
        rows = classified | 'ToRows' >> beam.MapTuple(
            lambda item, result: schema.processed_row_with_events(item, result, time.time()))
        if is_sqlite_path(self._table):   # the row carries its events into the same transaction
            return _write(rows, self._table, sqlite_store.PROCESSED, self._streaming, self._retrier)
        if self._events_table:
            events = rows | 'EventRows' >> beam.FlatMap(_event_rows)
            lost = events | 'WriteEvents' >> _WriteRows(self._events_table, sqlite_store.EVENTS, self._streaming,
                                                        self._retrier)
            _ = lost | 'ReportLostEvents' >> beam.Map(_LostRowReport('an event row', 'event_rows_lost'))
        results = rows | 'ResultRows' >> beam.Map(_result_row)
        return _write(results, self._table, sqlite_store.PROCESSED, self._streaming, self._retrier)


class _WriteRows(beam.PTransform):
    """Rows of one kind into one table, in a composite of its own so that its steps' labels clash with no other's."""

    def __init__(self, table: str, table_kind: str, streaming: bool, retrier: Retrier):
        super().__init__()
        self._table = table
        self._table_kind = table_kind
        self._streaming = streaming
        self._retrier = retrier

    def expand(self, rows):
        return _write(rows, self._table, self._table_kind, self._streaming, self._retrier)


class _LostRowReport:
    """Counts and logs a row that could not be written even as an error row (the last resort: nothing to retry)."""

    def __init__(self, what: str, counter: str):
        self._what = what
        self._lost = Metrics.counter(METRICS_NAMESPACE, counter)

    def __call__(self, failure: FailedAudio) -> None:
        self._lost.inc()
        _LOG.error('could not write %s for %s: %s', self._what, failure.source.uri, failure.message)


class WriteErrors(beam.PTransform):
    """FailedAudio -> one error row each. Error rows that cannot be written are logged and counted."""

    def __init__(self, table: str, streaming: bool, retrier: Retrier = DEFAULT_RETRIER):
        super().__init__()
        self._table = table
        self._streaming = streaming
        self._retrier = retrier

    def expand(self, failures):
        rows = failures | 'ToRows' >> beam.Map(lambda f: schema.error_row(f, time.time()))
        lost = _write(rows, self._table, sqlite_store.ERRORS, self._streaming, self._retrier)
        return lost | 'ReportLost' >> beam.Map(_LostRowReport('the error row', 'error_rows_lost'))

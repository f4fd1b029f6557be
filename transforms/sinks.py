"""Sinks: result rows and error rows, to BigQuery or to the embedded SQLite file.

Both sinks take the row dicts built by ``results.schema`` so the two backends
always agree on columns. A result row that cannot be written becomes an error
row (stage ``write``), so even a failed write is accounted for.
"""
from __future__ import annotations

import json
import logging
import time

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
from transforms.sources import FAILED

_LOG = logging.getLogger(__name__)
SQLITE_FLUSH_ROWS = 500
SQLITE_FLUSH_SECONDS = 2.0


class _WriteSqlite(beam.DoFn):
    """Buffers rows and writes them in one transaction per bundle, per 500 rows or per 2 s.

    The time bound keeps rows visible while a long batch bundle is still running (progress, dashboard).
    """

    def __init__(self, path: str, table: str):
        self._path = path
        self._table = table
        self._written = Metrics.counter(METRICS_NAMESPACE, f'rows_written_{table}')
        self._failed = Metrics.counter(METRICS_NAMESPACE, f'rows_failed_{table}')

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

    def _flush(self):
        rows, self._rows = self._rows, []
        self._last_flush = time.monotonic()
        if not rows:
            return
        write = sqlite_store.write_processed if self._table == sqlite_store.PROCESSED else sqlite_store.write_errors
        try:
            with sqlite_store.connect(self._path) as conn:
                write(conn, rows)
            self._written.inc(len(rows))
            return
        except Exception:  # isolate the rows that fail; a lock timeout or full disk fails them all
            _LOG.warning('batch write to %s failed; retrying row by row', self._path, exc_info=True)
        for row in rows:
            try:
                with sqlite_store.connect(self._path) as conn:
                    write(conn, [row])
                self._written.inc()
            except Exception as e:
                self._failed.inc()
                yield FailedAudio(schema.source_of(row), 'write', type(e).__name__, str(e))


def _bigquery_write(rows, table: str, table_kind: str, streaming: bool):
    partition, cluster = ((schema.PARTITION_FIELD, schema.CLUSTER_FIELDS) if table_kind == sqlite_store.PROCESSED
                          else (schema.ERRORS_PARTITION_FIELD, schema.ERRORS_CLUSTER_FIELDS))
    extra = {'timePartitioning': {'type': 'DAY', 'field': partition}, 'clustering': {'fields': list(cluster)}}
    return rows | 'ToBigQuery' >> WriteToBigQuery(
        table,
        schema=schema.bigquery_schema(table_kind),
        method=WriteToBigQuery.Method.STREAMING_INSERTS if streaming else WriteToBigQuery.Method.FILE_LOADS,
        create_disposition=BigQueryDisposition.CREATE_IF_NEEDED,
        write_disposition=BigQueryDisposition.WRITE_APPEND,
        insert_retry_strategy=RetryStrategy.RETRY_ON_TRANSIENT_ERROR,
        additional_bq_parameters=extra,
        test_client=beam_test_client())  # None on Google Cloud


def _bigquery_failure(failed_row) -> FailedAudio:
    _, row, errors = failed_row
    return FailedAudio(schema.source_of(row), 'write', 'BigQueryInsertError', json.dumps(errors, default=str))


def _write(rows, table: str, table_kind: str, streaming: bool):
    """Writes rows; returns the FailedAudio of those that could not be written."""
    if is_sqlite_path(table):
        out = rows | 'ToSqlite' >> beam.ParDo(_WriteSqlite(table, table_kind)).with_outputs(FAILED, main='done')
        return out[FAILED]
    result = _bigquery_write(rows, table, table_kind, streaming)
    if not streaming:
        # A load job succeeds or fails as a whole (and then fails the pipeline): no per-row failures.
        return rows.pipeline | 'NoRowFailures' >> beam.Create([])
    return result.failed_rows_with_errors | 'RowFailures' >> beam.Map(_bigquery_failure)


class WriteResults(beam.PTransform):
    """(ProcessedAudio, Classification) -> one row each; returns the FailedAudio of rows that failed."""

    def __init__(self, table: str, streaming: bool):
        super().__init__()
        self._table = table
        self._streaming = streaming

    def expand(self, classified):
        rows = classified | 'ToRows' >> beam.MapTuple(lambda item, result: schema.processed_row(item, result,
                                                                                                time.time()))
        return _write(rows, self._table, sqlite_store.PROCESSED, self._streaming)


class WriteErrors(beam.PTransform):
    """FailedAudio -> one error row each. Error rows that cannot be written are logged and counted."""

    def __init__(self, table: str, streaming: bool):
        super().__init__()
        self._table = table
        self._streaming = streaming

    def expand(self, failures):
        rows = failures | 'ToRows' >> beam.Map(lambda f: schema.error_row(f, time.time()))
        lost = _write(rows, self._table, sqlite_store.ERRORS, self._streaming)
        lost_counter = Metrics.counter(METRICS_NAMESPACE, 'error_rows_lost')

        def report(failure: FailedAudio):
            lost_counter.inc()
            _LOG.error('could not write the error row for %s: %s', failure.source.uri, failure.message)

        return lost | 'ReportLost' >> beam.Map(report)

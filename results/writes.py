"""The store's Beam writes: what each store does with a PCollection of rows (``ResultStore.write_table`` /
``write_results``).

Retries, metrics and turning a refused row into an error row are the pipeline's (``transforms/sinks.py``), which
hands them in as a ``RowWrites``; the store decides how rows reach its tables:

* SQLite: rows are buffered and written in one transaction per batch (``SqliteBatch``), a result row
  together with its events, so a reader never sees a result without its events.
* BigQuery: ``WriteToBigQuery`` per table (streaming inserts, or load jobs at the end of a batch run). Event
  rows go to ``<output_table>_events`` from the same elements; an event row BigQuery refuses is reported as
  lost, never turned into an error row (the file has its result).
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

import apache_beam as beam

from results import schema, sqlite_store
from results.tables import EVENTS, PROCESSED


class RowWrites(Protocol):
    """What the pipeline's write stage lends a store (implemented in transforms/sinks.py)."""
    #: How long a store may keep retrying an outage before the bundle fails (the runner then retries it).
    outage_deadline_s: float

    def batched(self, rows: beam.PCollection, name: str,
                write_batch: Callable[[list[dict[str, Any]]], None]) -> beam.PCollection:
        """Buffers ``rows`` and calls ``write_batch`` on each batch, retrying transient failures; a row the table
        refuses becomes a FailedAudio (returned)."""

    def refused(self, failed_rows: beam.PCollection) -> beam.PCollection:
        """BigQuery's ``(table, row, errors)`` of rows it gave up on -> FailedAudio."""

    def lost(self, failures: beam.PCollection, label: str, what: str, counter: str) -> beam.PCollection:
        """Counts and logs rows that could not be written even as error rows."""


class TableWriter(Protocol):
    """A store, as far as writing one of its tables goes (``results.store.ResultStore.write_table``)."""

    def write_table(self, rows: beam.PCollection, name: str, streaming: bool,
                    writes: RowWrites) -> beam.PCollection: ...


class SqliteBatch:
    """Writes one batch of rows of table ``name`` into a SQLite file in one transaction (picklable)."""

    def __init__(self, path: str, name: str, busy_timeout: float):
        self.path = path
        self._write = sqlite_store.WRITERS[name]
        self._busy_timeout = busy_timeout

    def __str__(self) -> str:
        return self.path

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        with sqlite_store.connect(self.path, self._busy_timeout) as conn:
            self._write(conn, rows)


def write_bigquery_table(rows, table_spec: str, table: schema.Table, streaming: bool, writes: RowWrites):
    from results import bigquery_store

    result = bigquery_store.write_rows(rows, table_spec, table, streaming, writes.outage_deadline_s)
    if not streaming:
        # A load job succeeds or fails as a whole (and then fails the pipeline): no per-row failures.
        return rows.pipeline | 'NoRowFailures' >> beam.Create([])
    return writes.refused(result.failed_rows_with_errors)


class WriteTable(beam.PTransform):
    """Rows of one table, in a composite of its own so that its steps' labels clash with no other's."""

    def __init__(self, store: TableWriter, name: str, streaming: bool, writes: RowWrites):
        super().__init__()
        self._store = store
        self._name = name
        self._streaming = streaming
        self._writes = writes

    def expand(self, rows):
        return self._store.write_table(rows, self._name, self._streaming, self._writes)


def _result_row(row):
    return schema.split_events(row)[0]


def _event_rows(row):
    return schema.split_events(row)[1] or []


def write_bigquery_results(store: TableWriter, rows, streaming: bool, writes: RowWrites, events: bool):
    if events:
        event_rows = rows | 'EventRows' >> beam.FlatMap(_event_rows)
        lost = event_rows | 'WriteEvents' >> WriteTable(store, EVENTS, streaming, writes)
        writes.lost(lost, 'ReportLostEvents', 'an event row', 'event_rows_lost')
    results = rows | 'ResultRows' >> beam.Map(_result_row)
    return store.write_table(results, PROCESSED, streaming, writes)

"""The result store's shared vocabulary: what a table name means, where each table lives, and row states.

``--output_table`` names either a local SQLite file (``*.db``, every table in it)
or a BigQuery table (``PROJECT:DATASET.TABLE``; errors in ``<table>_errors``,
events in ``<table>_events``). Only ``results/`` reads these rules; everything
else asks the store (``results.store.open_store``).
"""
from __future__ import annotations

import re

from results.schema import ERRORS, EVENTS, PROCESSED, TABLES

__all__ = ['BQ_TABLE_RE', 'ERRORS', 'EVENTS', 'PERMANENT_ERROR', 'PROCESSED', 'RESULT', 'RESULT_WITHOUT_EVENTS',
           'RETRYABLE_ERROR', 'default_error_table', 'default_events_table', 'done_states', 'is_bigquery_table',
           'is_sqlite_path']

BQ_TABLE_RE = r'^([a-z][-a-z0-9.:]{3,62}[:.])?[A-Za-z0-9_]{1,1024}\.[-A-Za-z0-9_$]{1,1024}$'
# What one (audio_file, generation) has in the store: a batch replay and watch mode decide on it.
RESULT, PERMANENT_ERROR, RETRYABLE_ERROR = 'result', 'permanent_error', 'retryable_error'
# A result row whose event rows are not all there: its ``event_count`` is more than the distinct events written
# with it (the same ``processed_at``). BigQuery writes a result row and its event rows in separate inserts, so a
# streaming pipeline killed between them leaves this; it is not done, and a replay or reconciliation processes
# the file again (a newer result row with its own events, the one readers then see).
RESULT_WITHOUT_EVENTS = 'result_without_events'


def done_states(retry_failed: bool = False) -> frozenset[str]:
    """The states that make a replay (and watch mode) skip a file: a result, or a permanent error unless
    ``--retry_failed``. A file whose only rows are retryable errors (an outage outlasted the retries) is
    always tried again, and so is a result whose events are not all there (``RESULT_WITHOUT_EVENTS``)."""
    return frozenset({RESULT} if retry_failed else {RESULT, PERMANENT_ERROR})


def is_sqlite_path(table: str) -> bool:
    """``--output_table`` names a SQLite file when it ends in .db (else it is a BigQuery table)."""
    return table.endswith('.db')


def is_bigquery_table(table: str) -> bool:
    return re.match(BQ_TABLE_RE, table) is not None


def default_table(output_table: str, name: str) -> str:
    """Where table ``name`` lives by default: the same SQLite file, or ``<output_table><suffix>`` in BigQuery."""
    return output_table if is_sqlite_path(output_table) else output_table + TABLES[name].suffix


def default_error_table(output_table: str) -> str:
    """The same SQLite file (its ``errors`` table), or ``<output_table>_errors`` in BigQuery."""
    return default_table(output_table, ERRORS)


def default_events_table(output_table: str) -> str:
    """Where events go: ``<output_table>_events`` in BigQuery, the ``events`` table of the same SQLite file."""
    return default_table(output_table, EVENTS)

"""Where rows go: table names, the default error table, and which store (SQLite file or BigQuery) a name means.

``--output_table`` names either a local SQLite file (``*.db``, both tables in it)
or a BigQuery table (``PROJECT:DATASET.TABLE``, errors in ``<table>_errors``).
Everything that has to tell the two apart asks here.
"""
from __future__ import annotations

import re

from results import sqlite_store

BQ_TABLE_RE = r'^([a-z][-a-z0-9.:]{3,62}[:.])?[A-Za-z0-9_]{1,1024}\.[-A-Za-z0-9_$]{1,1024}$'


def is_sqlite_path(table: str) -> bool:
    """``--output_table`` names a SQLite file when it ends in .db (else it is a BigQuery table)."""
    return table.endswith('.db')


def is_bigquery_table(table: str) -> bool:
    return re.match(BQ_TABLE_RE, table) is not None


def default_error_table(output_table: str) -> str:
    """The same SQLite file (its ``errors`` table), or ``<output_table>_errors`` in BigQuery."""
    return output_table if is_sqlite_path(output_table) else f'{output_table}_errors'


def default_events_table(output_table: str) -> str:
    """Where events go: ``<output_table>_events`` in BigQuery, the ``events`` table of the same SQLite file."""
    return output_table if is_sqlite_path(output_table) else f'{output_table}_events'


def key_states(output_table: str, error_table: str) -> dict[tuple[str, str], str]:
    """(audio_file, generation) -> RESULT, PERMANENT_ERROR or RETRYABLE_ERROR (``sqlite_store``), from either store.

    What a batch replay decides on: skip a result or a permanent error, retry a key whose only rows are
    retryable errors.
    """
    if is_sqlite_path(output_table):
        states = sqlite_store.key_states(error_table) if error_table != output_table else {}
        states.update(sqlite_store.key_states(output_table))
        return states
    from results import bigquery_store  # the BigQuery client library loads only when a BigQuery table is named

    return bigquery_store.key_states(output_table, error_table)

"""Where the dashboard's queries run: the result store ``--results`` names (``results.store``).

A backend is the store plus the SQL dialect it speaks (``app.queries``); it runs one
query with named parameters and returns plain dicts. Everything else (which queries,
how rows are shaped) is shared, in ``app.data``.
"""
from __future__ import annotations

from typing import Any, Protocol

from app.queries import BIGQUERY, SQLITE, Dialect, Query
from results.store import BigQueryStore, NoResultsYet, ResultStore, ResultsUnavailable, SqliteStore, open_results

__all__ = ['Backend', 'BigQueryBackend', 'NoResultsYet', 'ResultsUnavailable', 'SqliteBackend', 'StoreBackend',
           'open_backend']
DIALECTS: dict[str, Dialect] = {d.name: d for d in (SQLITE, BIGQUERY)}


class Backend(Protocol):
    dialect: Dialect
    description: str

    def rows(self, query: Query) -> list[dict[str, Any]]: ...


class StoreBackend:
    """Runs the dashboard's queries on a result store, in the store's dialect."""

    def __init__(self, store: ResultStore):
        self.store = store
        self.dialect = DIALECTS[store.dialect]
        self.description = store.description

    def rows(self, query: Query) -> list[dict[str, Any]]:
        return self.store.query(query.sql, query.params)


def SqliteBackend(path: str) -> StoreBackend:
    """The embedded default's SQLite file, read-only."""
    return StoreBackend(SqliteStore(path))


def BigQueryBackend(table: str, error_table: str | None = None, client: Any = None) -> StoreBackend:
    """BigQuery (or its emulator), through the ``<table>_latest`` view; raises ValueError for a bad table name."""
    return StoreBackend(BigQueryStore(table, error_table, client))


def open_backend(results: str, error_table: str | None = None) -> Backend:
    """A SQLite file (``*.db``, or any existing SQLite file) or a BigQuery table, as the pipeline's
    ``--output_table`` names them. Anything else raises ResultsUnavailable with what to give instead."""
    return StoreBackend(open_results(results, error_table))

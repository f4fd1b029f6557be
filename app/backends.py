"""Where the dashboard's queries run: the SQLite results file, or BigQuery (also its emulator).

A backend knows its SQL dialect and its two table names, and runs one query
with named parameters, returning plain dicts. Everything else (which queries,
how rows are shaped) is shared, in ``app.data``.
"""
from __future__ import annotations

import datetime as dt
import os
import sqlite3
from typing import Any, Protocol

from google.api_core import exceptions
from google.cloud import bigquery

from app.queries import BIGQUERY, SQLITE, Dialect, Query
from results import bigquery_store, schema, sqlite_store
from results.tables import default_error_table, default_events_table, is_bigquery_table, is_sqlite_path


class ResultsUnavailable(Exception):
    """The results cannot be read (no database yet, no table, no access); the message says what to do."""


class NoResultsYet(ResultsUnavailable):
    """Nothing has been written yet (no results file, or no tables in it): the page says how rows come."""


class Backend(Protocol):
    dialect: Dialect
    description: str

    def rows(self, query: Query) -> list[dict[str, Any]]: ...


class SqliteBackend:
    """Reads the embedded default's SQLite file, read-only, one short connection per query.

    Streamlit serves each session from its own thread and a ``sqlite3`` connection
    belongs to one thread; opening is cheap next to a page render. WAL mode (set by
    the pipeline's writes) lets these reads run while a streaming run writes.
    """
    dialect = SQLITE

    def __init__(self, path: str):
        self.path = path
        self.description = f'SQLite {path}'

    def rows(self, query: Query) -> list[dict[str, Any]]:
        if not os.path.exists(self.path):
            raise NoResultsYet(f'No results database at {self.path} yet.')
        sql = query.sql.format(processed=sqlite_store.PROCESSED, errors=sqlite_store.ERRORS,
                               events=sqlite_store.EVENTS)
        params = {k: _sqlite_value(v) for k, v in query.params.items()}
        conn = sqlite3.connect(f'file:{os.path.abspath(self.path)}?mode=ro', uri=True, timeout=30)
        try:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(sql, params)]
        except sqlite3.OperationalError as e:
            if 'no such table' in str(e):
                raise NoResultsYet(f'{self.path} has no results tables yet ({e}).') from e
            if 'no such column' in str(e):
                raise ResultsUnavailable(f'{self.path} was written by an older pipeline ({e}); the next pipeline '
                                         'run brings its tables up to date.') from e
            raise
        except sqlite3.DatabaseError as e:  # a file that is not SQLite, or a damaged one
            raise ResultsUnavailable(f'{self.path} cannot be read as a SQLite database ({e}); --results takes '
                                     f'{WHAT_RESULTS_ARE}.') from e
        finally:
            conn.close()


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        # The store's own timestamp text, so string comparison orders like time and uses the index.
        return schema.timestamp(value.timestamp())
    return value


class BigQueryBackend:
    """Runs the same queries as standard SQL with typed query parameters (emulator: BIGQUERY_EMULATOR_HOST).

    It reads the ``<table>_latest`` view (results/schema.py), never the tables: streaming inserts are
    at-least-once and ``--reprocess`` appends, and the view shows one row per file version (the newest
    result, else the newest error), so a duplicate never counts twice and a repaired file is not also failed.
    """
    dialect = BIGQUERY

    def __init__(self, table: str, error_table: str | None = None, client: Any = None):
        error_table = error_table or default_error_table(table)
        for name in (table, error_table):
            if not is_bigquery_table(name):
                raise ValueError(f'not a BigQuery table (PROJECT:DATASET.TABLE or DATASET.TABLE): {name!r}')
        self._client = client
        self.processed_table = table
        self.error_table = error_table
        self.description = f'BigQuery {table}'

    @property
    def client(self):
        if self._client is None:
            self._client = bigquery_store.client()
        return self._client

    def rows(self, query: Query) -> list[dict[str, Any]]:
        latest = _quoted(schema.latest_view_name(self.processed_table))
        sql = query.sql.format(processed=_outcomes(latest, schema.RESULT_OUTCOME, schema.PROCESSED_FIELDS),
                               errors=_outcomes(latest, schema.ERROR_OUTCOME, schema.ERROR_FIELDS),
                               events=_quoted(default_events_table(self.processed_table)))
        config = bigquery.QueryJobConfig(query_parameters=[_bigquery_param(k, v) for k, v in query.params.items()])
        try:
            return [dict(row.items()) for row in self.client.query(sql, job_config=config).result()]
        except exceptions.NotFound as e:
            raise ResultsUnavailable(f'BigQuery table not found: {e.message}') from e
        except exceptions.Forbidden as e:
            raise ResultsUnavailable(f'No access to BigQuery: {e.message}') from e


def _outcomes(view: str, outcome: str, fields: list[dict[str, Any]]) -> str:
    """The view's rows of one outcome, with that table's columns: a drop-in for the table in a FROM clause."""
    columns = ', '.join(f['name'] for f in fields)
    return f"(SELECT {columns} FROM {view} WHERE {schema.OUTCOME_COLUMN} = '{outcome}')"


def _quoted(table: str) -> str:
    """``PROJECT:DATASET.TABLE`` -> ```PROJECT.DATASET.TABLE```; names were checked by is_bigquery_table."""
    return f'`{bigquery_store.table_id(table)}`'


def _bigquery_param(name: str, value: Any) -> bigquery.ScalarQueryParameter:
    if isinstance(value, bool):
        kind = 'BOOL'
    elif isinstance(value, int):
        kind = 'INT64'
    elif isinstance(value, float):
        kind = 'FLOAT64'
    elif isinstance(value, dt.datetime):
        kind = 'TIMESTAMP'
    else:
        kind = 'STRING'
    return bigquery.ScalarQueryParameter(name, kind, value)


SQLITE_HEADER = b'SQLite format 3\x00'
WHAT_RESULTS_ARE = ('a SQLite file written by the pipeline (its --output_table ending in .db) or a BigQuery table '
                    'PROJECT:DATASET.TABLE')


def sqlite_problem(path: str) -> str:
    """Why an existing file cannot be the results database, or '' if it looks like one."""
    try:
        with open(path, 'rb') as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as e:
        return f'{path} cannot be read ({e.strerror})'
    if head and head != SQLITE_HEADER:
        return f'{path} is not a SQLite database; --results takes {WHAT_RESULTS_ARE}.'
    return ''


def open_backend(results: str, error_table: str | None = None) -> Backend:
    """A SQLite file (``*.db``, or any existing SQLite file) or a BigQuery table, as the pipeline's
    ``--output_table`` names them. Anything else raises ResultsUnavailable with what to give instead."""
    if is_sqlite_path(results) or os.path.isfile(results):
        problem = sqlite_problem(results) if os.path.exists(results) else ''
        if problem:
            raise ResultsUnavailable(problem)
        return SqliteBackend(results)
    if os.sep in results or not is_bigquery_table(results):
        raise ResultsUnavailable(f'{results!r} is neither an existing file nor a BigQuery table; --results takes '
                                 f'{WHAT_RESULTS_ARE}.')
    try:
        return BigQueryBackend(results, error_table)
    except ValueError as e:
        raise ResultsUnavailable(f'{e}; --results takes {WHAT_RESULTS_ARE}.') from e

"""The result store: where rows go and how they are read back, behind one interface.

``open_store(output_table, error_table)`` decides once, from the name, between a local
SQLite file (``*.db``: every table in it, see ``results.sqlite_store``) and BigQuery
(``PROJECT:DATASET.TABLE``, also its emulator: ``results.bigquery_store``). Everything
outside ``results/`` asks the store it got, never which kind it is:

========================  ================================================================
naming                    ``output_table``, ``error_table``, ``table(name)``, ``description``
replay and watch mode     ``key_states()``, ``done_keys(retry_failed)``, ``change_stamp()``
summary                   ``counts()``, ``local`` (a file here: cheap to count while a run goes on)
Beam writes               ``write_table`` / ``write_results`` (``results.writes``), wrapped by transforms/sinks.py
dashboard                 ``dialect``, ``query(sql, params)`` (``{processed}`` etc. name the tables)
dashboard's retry         ``forgets_errors``, ``forget_retryable_error(audio_file, generation)``
set-up                    ``ensure_tables()`` (tables and BigQuery's ``<table>_latest`` view)
========================  ================================================================

The tables are declared once, in ``results.schema.TABLES``; a new table is one declaration
there, and every store creates, writes and reads it from that.
"""
from __future__ import annotations

import abc
import datetime as dt
import os
import sqlite3
from typing import TYPE_CHECKING, Any, Optional

from results import schema, sqlite_store
from results.sqlite_store import lock_wait_seconds
from results.tables import (ERRORS, PROCESSED, default_error_table, default_table, done_states, is_bigquery_table,
                            is_sqlite_path)

if TYPE_CHECKING:
    from results.writes import RowWrites

__all__ = ['BigQueryStore', 'NoResultsYet', 'ResultStore', 'ResultsUnavailable', 'SqliteStore', 'lock_wait_seconds',
           'open_results', 'open_store', 'table_name_problem']
Key = tuple[str, str]
SQLITE_HEADER = b'SQLite format 3\x00'
WHAT_RESULTS_ARE = ('a SQLite file written by the pipeline (its --output_table ending in .db) or a BigQuery table '
                    'PROJECT:DATASET.TABLE')


class ResultsUnavailable(Exception):
    """The results cannot be read (no database yet, no table, no access); the message says what to do."""


class NoResultsYet(ResultsUnavailable):
    """Nothing has been written yet (no results file, or no tables in it); a reader says how rows come."""


class ResultStore(abc.ABC):
    """One place rows go: the result table, the error table and the tables beside them (``results.schema``)."""
    #: The SQL the store's ``query`` speaks: 'sqlite' or 'bigquery' (the dashboard picks its dialect by it).
    dialect: str
    #: Whether the rows live in files on this machine: cheap to count, invisible to remote workers.
    local: bool
    #: Whether ``forget_retryable_error`` can remove a row (BigQuery tables are append-only here).
    forgets_errors: bool

    def __init__(self, output_table: str, error_table: Optional[str] = None):
        self.output_table = output_table
        self.error_table = error_table or default_error_table(output_table)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.output_table!r}, {self.error_table!r})'

    def __eq__(self, other: object) -> bool:
        return (type(self) is type(other) and isinstance(other, ResultStore)
                and (self.output_table, self.error_table) == (other.output_table, other.error_table))

    def __hash__(self) -> int:
        return hash((type(self), self.output_table, self.error_table))

    def table(self, name: str) -> str:
        """Where table ``name`` (``results.schema.TABLES``) lives: the SQLite file, or a BigQuery table name."""
        if name == PROCESSED:
            return self.output_table
        if name == ERRORS:
            return self.error_table
        return default_table(self.output_table, name)

    @property
    def description(self) -> str:
        return self.output_table

    # --- replay and watch mode ---

    @abc.abstractmethod
    def key_states(self) -> dict[Key, str]:
        """(audio_file, generation) -> RESULT, PERMANENT_ERROR or RETRYABLE_ERROR (``results.tables``).

        A key with a result is RESULT whatever else it has (several rows per key are possible in BigQuery:
        streaming inserts, ``--reprocess``); otherwise RETRYABLE_ERROR only if every error row of it is.
        """

    def done_keys(self, retry_failed: bool = False) -> set[Key]:
        """The keys a replay or watch mode skips: a result, or a permanent error unless ``retry_failed``."""
        done = done_states(retry_failed)
        return {key for key, state in self.key_states().items() if state in done}

    def change_stamp(self) -> Optional[object]:
        """A value that changes whenever the rows may have changed, or None when that cannot be told cheaply
        (the caller then re-reads only when it has a reason to)."""
        return None

    def files(self) -> list[str]:
        """The files on this machine that hold the rows (a folder listing must not take them for input)."""
        return []

    def needs_google_cloud(self) -> bool:
        """Whether reaching the store needs Google credentials (not a local file, not an emulator)."""
        return False

    def absolute(self) -> 'ResultStore':
        """The same store, named independently of the working directory."""
        return self

    # --- summary ---

    @abc.abstractmethod
    def counts(self) -> tuple[int, int]:
        """(result rows, error rows); (0, 0) before anything was written."""

    @abc.abstractmethod
    def read_rows(self, name: str) -> list[dict[str, Any]]:
        """Every row of table ``name`` as plain dicts (scores decoded): for tests, tools and small tables."""

    # --- set-up ---

    @abc.abstractmethod
    def ensure_tables(self) -> None:
        """Creates every table (and BigQuery's ``<table>_latest`` view) if missing."""

    # --- the dashboard ---

    @abc.abstractmethod
    def query(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Runs one read-only query; ``{processed}``, ``{errors}``, ... in ``sql`` name this store's tables.

        Raises ResultsUnavailable when there is nothing to read yet (or no access), with what to do.
        """

    def forget_retryable_error(self, audio_file: str, generation: str) -> bool:
        """Removes the key's retryable error row, so the file is pending again; whether one was removed."""
        raise NotImplementedError(f'{self.description}: rows are not removed (forgets_errors is False)')

    # --- Beam writes (results.writes; transforms/sinks.py supplies retries, metrics and failure rows) ---

    @abc.abstractmethod
    def write_table(self, rows, name: str, streaming: bool, writes: 'RowWrites'):
        """Beam: ``rows`` into table ``name``; returns the FailedAudio of rows that could not be written."""

    @abc.abstractmethod
    def write_results(self, rows, streaming: bool, writes: 'RowWrites', events: bool):
        """Beam: result rows carrying their events (``schema.ROW_EVENTS_KEY``) into the result table and, with
        ``events``, their event rows into the events table; returns the FailedAudio of result rows not written."""


class SqliteStore(ResultStore):
    """The embedded default: one SQLite file with every table (``results.sqlite_store`` keeps its rules)."""
    dialect = 'sqlite'
    local = True
    forgets_errors = True

    def __init__(self, output_table: str, error_table: Optional[str] = None):
        super().__init__(output_table, error_table or output_table)  # the errors table of the same file
        if not is_sqlite_path(self.error_table) and self.error_table != output_table:
            raise ValueError('--error_table must use the same backend as --output_table (both BigQuery or both '
                             'SQLite)')

    @property
    def path(self) -> str:
        return self.output_table

    def table(self, name: str) -> str:
        return self.error_table if name == ERRORS else self.output_table  # whatever the file's name

    @property
    def description(self) -> str:
        return f'SQLite {self.path}'

    def _paths(self) -> list[str]:
        return sorted({self.output_table, self.error_table})

    def key_states(self) -> dict[Key, str]:
        states = sqlite_store.key_states(self.error_table) if self.error_table != self.output_table else {}
        states.update(sqlite_store.key_states(self.output_table))
        return states

    def change_stamp(self) -> Optional[object]:
        stamps: list[Optional[tuple[int, int]]] = []
        for path in self._paths():
            for part in (path, path + '-wal'):
                try:
                    st = os.stat(part)
                    stamps.append((st.st_mtime_ns, st.st_size))
                except OSError:
                    stamps.append(None)
        return tuple(stamps)

    def files(self) -> list[str]:
        return [path + suffix for path in self._paths() for suffix in ('', '-wal', '-shm', '-journal')]

    def absolute(self) -> 'SqliteStore':
        return SqliteStore(os.path.abspath(self.output_table), os.path.abspath(self.error_table))

    def counts(self) -> tuple[int, int]:
        if self.error_table == self.output_table:
            return sqlite_store.counts(self.path)
        return sqlite_store.counts(self.output_table)[0], sqlite_store.counts(self.error_table)[1]

    def read_rows(self, name: str) -> list[dict[str, Any]]:
        return sqlite_store.read_table(self.table(name), name)

    def ensure_tables(self) -> None:
        for path in self._paths():
            with sqlite_store.connect(path):
                pass

    def query(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Read-only, one short connection per query: a ``sqlite3`` connection belongs to one thread (Streamlit
        serves each session from its own), and WAL mode lets these reads run while a pipeline writes."""
        if not os.path.exists(self.path):
            raise NoResultsYet(f'No results database at {self.path} yet.')
        sql = sql.format(**{name: name for name in schema.TABLES})
        conn = sqlite3.connect(f'file:{os.path.abspath(self.path)}?mode=ro', uri=True, timeout=30)
        try:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(sql, {k: sqlite_value(v) for k, v in params.items()})]
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

    def forget_retryable_error(self, audio_file: str, generation: str) -> bool:
        return sqlite_store.forget_retryable_error(self.error_table, audio_file, generation)

    def write_table(self, rows, name: str, streaming: bool, writes: 'RowWrites'):
        from results.writes import SqliteBatch

        return writes.batched(rows, name, SqliteBatch(self.table(name), name,
                                                      lock_wait_seconds(writes.outage_deadline_s)))

    def write_results(self, rows, streaming: bool, writes: 'RowWrites', events: bool):
        # The result row carries its events into the same transaction (sqlite_store.write_processed).
        return self.write_table(rows, PROCESSED, streaming, writes)


def sqlite_value(value: Any) -> Any:
    """A query parameter as the SQLite store holds it: a datetime as the store's own timestamp text, so string
    comparison orders like time and uses the index."""
    if isinstance(value, dt.datetime):
        return schema.timestamp(value.timestamp())
    return value


class BigQueryStore(ResultStore):
    """BigQuery tables (or the emulator's, with BIGQUERY_EMULATOR_HOST): ``results.bigquery_store``.

    Reads go through the ``<table>_latest`` view (results/schema.py), never the tables: streaming inserts are
    at-least-once and ``--reprocess`` appends, and the view shows one row per file version (the newest result,
    else the newest error), so a duplicate never counts twice and a repaired file is not also failed.
    """
    dialect = 'bigquery'
    local = False
    forgets_errors = False

    def __init__(self, output_table: str, error_table: Optional[str] = None, client: Any = None):
        super().__init__(output_table, error_table)
        for name in (self.output_table, self.error_table):
            if not is_bigquery_table(name):
                raise ValueError(f'not a BigQuery table (PROJECT:DATASET.TABLE or DATASET.TABLE): {name!r}')
        self._client = client

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, '_client': None}  # a client does not travel (pickled into Beam's graph)

    @property
    def description(self) -> str:
        return f'BigQuery {self.output_table}'

    @property
    def client(self):
        if self._client is None:
            from results import bigquery_store

            self._client = bigquery_store.client()
        return self._client

    def needs_google_cloud(self) -> bool:
        from cloud import emulators

        return not emulators.emulated(emulators.BIGQUERY)

    def key_states(self) -> dict[Key, str]:
        from results import bigquery_store

        return bigquery_store.key_states(self.output_table, self.error_table, self.client)

    def counts(self) -> tuple[int, int]:
        from results import bigquery_store

        return bigquery_store.counts(self.output_table, self.error_table, self.client)

    def read_rows(self, name: str) -> list[dict[str, Any]]:
        from results import bigquery_store

        return bigquery_store.read_rows(self.table(name), self.client)

    def ensure_tables(self) -> None:
        from results import bigquery_store

        bigquery_store.ensure_tables(self.output_table, self.error_table, self.client)

    def _quoted(self, name: str) -> str:
        from results import bigquery_store

        return f'`{bigquery_store.table_id(name)}`'

    def query(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        from google.api_core import exceptions
        from google.cloud import bigquery

        latest = self._quoted(schema.latest_view_name(self.output_table))
        tables = {name: self._quoted(self.table(name)) for name in schema.TABLES}
        tables[PROCESSED] = _outcomes(latest, schema.RESULT_OUTCOME, schema.PROCESSED_FIELDS)
        tables[ERRORS] = _outcomes(latest, schema.ERROR_OUTCOME, schema.ERROR_FIELDS)
        config = bigquery.QueryJobConfig(query_parameters=[bigquery_param(k, v) for k, v in params.items()])
        try:
            return [dict(row.items()) for row in self.client.query(sql.format(**tables), job_config=config).result()]
        except exceptions.NotFound as e:
            raise ResultsUnavailable(f'BigQuery table not found: {e.message}') from e
        except exceptions.Forbidden as e:
            raise ResultsUnavailable(f'No access to BigQuery: {e.message}') from e

    def write_table(self, rows, name: str, streaming: bool, writes: 'RowWrites'):
        from results.writes import write_bigquery_table

        return write_bigquery_table(rows, self.table(name), schema.TABLES[name], streaming, writes)

    def write_results(self, rows, streaming: bool, writes: 'RowWrites', events: bool):
        from results.writes import write_bigquery_results

        return write_bigquery_results(self, rows, streaming, writes, events)


def _outcomes(view: str, outcome: str, fields: list[dict[str, Any]]) -> str:
    """The view's rows of one outcome, with that table's columns: a drop-in for the table in a FROM clause."""
    columns = ', '.join(f['name'] for f in fields)
    return f"(SELECT {columns} FROM {view} WHERE {schema.OUTCOME_COLUMN} = '{outcome}')"


def bigquery_param(name: str, value: Any):
    """A typed BigQuery query parameter for a Python value."""
    from google.cloud import bigquery

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


def table_name_problem(output_table: str) -> str:
    """Why ``output_table`` names no store ('' when it names one)."""
    if is_sqlite_path(output_table) or is_bigquery_table(output_table):
        return ''
    return f'--output_table must be PROJECT:DATASET.TABLE or a path ending in .db, got {output_table!r}'


def open_store(output_table: str, error_table: Optional[str] = None, client: Any = None) -> ResultStore:
    """The store ``--output_table`` names: a SQLite file (``*.db``) or a BigQuery table (``client``: BigQuery's,
    else one is made when first needed). Raises ValueError for a name that is neither, or mixed backends."""
    if is_sqlite_path(output_table):
        return SqliteStore(output_table, error_table)
    if error_table and is_sqlite_path(error_table):
        raise ValueError('--error_table must use the same backend as --output_table (both BigQuery or both SQLite)')
    return BigQueryStore(output_table, error_table, client)


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


def open_results(results: str, error_table: Optional[str] = None) -> ResultStore:
    """The store the dashboard reads (``--results``): as ``open_store``, and any existing file is a SQLite file
    whatever its name. Anything else raises ResultsUnavailable with what to give instead."""
    if is_sqlite_path(results) or os.path.isfile(results):
        problem = sqlite_problem(results) if os.path.exists(results) else ''
        if problem:
            raise ResultsUnavailable(problem)
        return SqliteStore(results)
    if os.sep in results or not is_bigquery_table(results):
        raise ResultsUnavailable(f'{results!r} is neither an existing file nor a BigQuery table; --results takes '
                                 f'{WHAT_RESULTS_ARE}.')
    try:
        return BigQueryStore(results, error_table)
    except ValueError as e:
        raise ResultsUnavailable(f'{e}; --results takes {WHAT_RESULTS_ARE}.') from e

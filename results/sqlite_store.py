"""The embedded default sink: one SQLite file with ``processed``, ``errors`` and ``events`` tables.

Columns mirror the BigQuery schema (``results.schema``); ``scores`` is JSON text
and timestamps are ISO-8601 UTC text; ``retryable`` is 0/1. ``(audio_file, generation)``
is the primary key of both tables, and the writes keep the accounting rule in the
database itself: a result replaces an earlier error (retryable or not) for the same
object generation, an error never shadows an existing result, and a repeated write
changes nothing. A result row and its file's events are written in one
transaction (the events of that object generation are replaced), so a reader
never sees a result row without its events, and a replay never doubles them.

A file locked by another writer makes a write wait up to ``busy_timeout`` seconds and
then raise ``sqlite3.OperationalError: database is locked``: a transient failure that
the sink retries (``transforms/failures.py``), never a fact about the audio file.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from typing import Any, Iterable, Iterator

from results.schema import KEY_COLUMNS, TABLES, split_events
from results.tables import ERRORS, EVENTS, PERMANENT_ERROR, PROCESSED, RESULT, RESULT_WITHOUT_EVENTS, RETRYABLE_ERROR

_SQL_TYPES = {'STRING': 'TEXT', 'FLOAT': 'REAL', 'INTEGER': 'INTEGER', 'BOOLEAN': 'INTEGER', 'TIMESTAMP': 'TEXT',
              'RECORD': 'TEXT'}
# How long a write waits for another writer's lock before it fails (and is retried by the sink).
BUSY_TIMEOUT_SECONDS = 60.0


def lock_wait_seconds(retry_deadline_s: float) -> float:
    """How long one write waits for another writer's lock, given the writer's retry budget: a quarter of it,
    at most ``BUSY_TIMEOUT_SECONDS``, so that a lock held longer is retried several times before the budget runs
    out."""
    return max(1.0, min(BUSY_TIMEOUT_SECONDS, retry_deadline_s / 4))

PROCESSED_COLUMNS = TABLES[PROCESSED].columns
ERROR_COLUMNS = TABLES[ERRORS].columns
EVENT_COLUMNS = TABLES[EVENTS].columns


def _column_sql(field: dict[str, Any]) -> str:
    return f"{field['name']} {_SQL_TYPES[field['type']]}" + (' NOT NULL' if field['mode'] == 'REQUIRED' else '')


def _create_sql(table: str, fields: list[dict[str, Any]], key: tuple[str, ...] = KEY_COLUMNS) -> str:
    cols = ', '.join(_column_sql(f) for f in fields)
    return f'CREATE TABLE IF NOT EXISTS {table} ({cols}, PRIMARY KEY ({", ".join(key)}))'


def _add_missing_columns(conn: sqlite3.Connection, table: str, fields: list[dict[str, Any]]) -> None:
    """A file written before a column existed gets it (NULLABLE columns only, like BigQuery's schema updates)."""
    present = {row[1] for row in conn.execute(f'PRAGMA table_info({table})')}
    for field in fields:
        if field['name'] not in present and field['mode'] != 'REQUIRED':
            conn.execute(f'ALTER TABLE {table} ADD COLUMN {_column_sql(field)}')


def _rekey_events(conn: sqlite3.Connection) -> None:
    """A file written when an event's key had no label gets the current key (its rows kept): with the old
    key a second label detected in the same window would replace the first."""
    table = TABLES[EVENTS]
    key = [row[1] for row in sorted(conn.execute(f'PRAGMA table_info({EVENTS})'), key=lambda r: r[5]) if row[5]]
    if key == list(table.key):
        return
    conn.execute(f'ALTER TABLE {EVENTS} RENAME TO {EVENTS}_old_key')
    conn.execute('DROP INDEX IF EXISTS events_label_idx')
    conn.execute(_create_sql(EVENTS, table.fields, table.key))
    columns = ', '.join(EVENT_COLUMNS)
    conn.execute(f'INSERT OR REPLACE INTO {EVENTS} ({columns}) SELECT {columns} FROM {EVENTS}_old_key')
    conn.execute(f'DROP TABLE {EVENTS}_old_key')


def _use_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """WAL lets the dashboard read while several worker processes write.

    Switching a new file to WAL takes an exclusive lock, and when two connections ask at the same moment
    SQLite answers one of them "database is locked" at once, without waiting (its deadlock rule: the busy
    timeout does not apply). Seen with two worker processes opening a fresh results file together (2 of 120
    connections in tests/results/test_sqlite_store.py's race). So ask again, for up to the busy timeout.
    """
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            conn.execute('PRAGMA journal_mode=WAL')
            return
        except sqlite3.OperationalError as e:
            if 'locked' not in str(e) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


@contextlib.contextmanager
def connect(path: str, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> Iterator[sqlite3.Connection]:
    """A connection with the tables created; commits on success."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    conn = sqlite3.connect(path, timeout=busy_timeout)
    try:
        _use_wal(conn, busy_timeout)
        for table in TABLES.values():
            conn.execute(_create_sql(table.name, table.fields, table.key))
            _add_missing_columns(conn, table.name, table.fields)
        _rekey_events(conn)
        # The dashboard's "files with an event of this label" filter.
        conn.execute(f'CREATE INDEX IF NOT EXISTS events_label_idx ON {EVENTS} (label, audio_file, generation)')
        conn.execute(f'CREATE INDEX IF NOT EXISTS processed_at_idx ON {PROCESSED} (processed_at)')
        # The dashboard's label counts and label filter (GROUP BY label was 4x faster with it at 100k rows).
        conn.execute(f'CREATE INDEX IF NOT EXISTS label_idx ON {PROCESSED} (label, processed_at)')
        conn.execute(f'CREATE INDEX IF NOT EXISTS failed_at_idx ON {ERRORS} (failed_at)')
        yield conn
        conn.commit()
    finally:
        conn.close()


def _encode_processed(row: dict[str, Any]) -> tuple:
    return tuple(json.dumps(row[c]) if c == 'scores' else row.get(c) for c in PROCESSED_COLUMNS)


def write_processed(conn: sqlite3.Connection, rows: Iterable[dict[str, Any]]) -> None:
    """Result rows; each replaces its file generation's events by those it carries (``schema.ROW_EVENTS_KEY``)."""
    plain, events = [], []
    for row in rows:
        row, file_events = split_events(row)
        plain.append(row)
        # Without events (--events=false) the file's earlier events go too: they belong to an earlier run.
        events.append((row, file_events or []))
    marks = ', '.join('?' * len(PROCESSED_COLUMNS))
    conn.executemany(f'INSERT OR REPLACE INTO {PROCESSED} ({", ".join(PROCESSED_COLUMNS)}) VALUES ({marks})',
                     [_encode_processed(r) for r in plain])
    write_events(conn, events)
    conn.executemany(f'DELETE FROM {ERRORS} WHERE audio_file = ? AND generation = ?',
                     [(r['audio_file'], r['generation']) for r in plain])


def write_events(conn: sqlite3.Connection, files: Iterable[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
    """For each (result row, its event rows): the file generation's events become exactly these."""
    files = list(files)
    conn.executemany(f'DELETE FROM {EVENTS} WHERE audio_file = ? AND generation = ?',
                     [(row['audio_file'], row['generation']) for row, _ in files])
    marks = ', '.join('?' * len(EVENT_COLUMNS))
    conn.executemany(f'INSERT OR REPLACE INTO {EVENTS} ({", ".join(EVENT_COLUMNS)}) VALUES ({marks})',
                     [tuple(e.get(c) for c in EVENT_COLUMNS) for _, file_events in files for e in file_events])


def _encode_error(row: dict[str, Any]) -> tuple:
    return tuple(int(row[c]) if c == 'retryable' and row.get(c) is not None else row.get(c) for c in ERROR_COLUMNS)


def write_errors(conn: sqlite3.Connection, rows: Iterable[dict[str, Any]]) -> None:
    """An error row replaces an earlier error row of the same key (the newest attempt), never a result."""
    cols = ', '.join(ERROR_COLUMNS)
    marks = ', '.join('?' * len(ERROR_COLUMNS))
    conn.executemany(
        f'INSERT OR REPLACE INTO {ERRORS} ({cols}) SELECT {marks} WHERE NOT EXISTS '
        f'(SELECT 1 FROM {PROCESSED} WHERE audio_file = ? AND generation = ?)',
        [_encode_error(r) + (r['audio_file'], r.get('generation') or '') for r in rows])


def forget_retryable_error(path: str, audio_file: str, generation: str) -> bool:
    """Removes the key's error row if it is retryable (the file is then pending again); whether one was removed."""
    with connect(path) as conn:
        return conn.execute(f'DELETE FROM {ERRORS} WHERE audio_file = ? AND generation = ? AND retryable = 1',
                            (audio_file, str(generation))).rowcount > 0


WRITERS = {PROCESSED: write_processed, ERRORS: write_errors}  # events travel with their result row


def existing_keys(path: str) -> set[tuple[str, str]]:
    """(audio_file, generation) of every row, result or error; empty when the file does not exist yet.

    Both count: a replay must not write a second error row for a file that already failed.
    """
    if not os.path.exists(path):
        return set()
    with connect(path) as conn:
        return set(conn.execute(f'SELECT audio_file, generation FROM {PROCESSED} UNION '
                                f'SELECT audio_file, generation FROM {ERRORS}'))


def key_states(path: str) -> dict[tuple[str, str], str]:
    """(audio_file, generation) -> RESULT, PERMANENT_ERROR or RETRYABLE_ERROR; what a batch replay decides on.

    A key with a result is RESULT whatever else it has, unless fewer event rows of its run (the same
    ``processed_at``) are there than its ``event_count`` says: RESULT_WITHOUT_EVENTS, processed again (the rule
    BigQuery's separate inserts need; here a result and its events share a transaction, so only a file changed
    by hand gets it). An error row written before ``retryable`` existed (NULL) counts as permanent, as it was then.
    """
    if not os.path.exists(path):
        return {}
    with connect(path) as conn:
        states = {(f, g): (RETRYABLE_ERROR if retryable else PERMANENT_ERROR)
                  for f, g, retryable in conn.execute(f'SELECT audio_file, generation, retryable FROM {ERRORS}')}
        states.update({(f, g): RESULT if complete else RESULT_WITHOUT_EVENTS
                       for f, g, complete in conn.execute(_RESULT_STATES)})
    return states


# Per result row: whether its events are all there. The count runs only for rows that say they have events,
# through the events table's primary key (audio_file, generation, ...).
_RESULT_STATES = (f'SELECT p.audio_file, p.generation, CASE WHEN IFNULL(p.event_count, 0) = 0 THEN 1 ELSE '
                  f'(SELECT COUNT(*) FROM {EVENTS} e WHERE e.audio_file = p.audio_file AND e.generation = '
                  f'p.generation AND e.processed_at = p.processed_at) >= p.event_count END FROM {PROCESSED} p')


def counts(path: str) -> tuple[int, int]:
    """(result rows, error rows)."""
    if not os.path.exists(path):
        return 0, 0
    with connect(path) as conn:
        return (conn.execute(f'SELECT COUNT(*) FROM {PROCESSED}').fetchone()[0],
                conn.execute(f'SELECT COUNT(*) FROM {ERRORS}').fetchone()[0])


def read_table(path: str, table: str) -> list[dict[str, Any]]:
    """Every row of one table as dicts (scores decoded): for tests and small tools."""
    with connect(path) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute(f'SELECT * FROM {table}')]
    for row in rows:
        if 'scores' in row and row['scores'] is not None:
            row['scores'] = json.loads(row['scores'])
        if 'retryable' in row and row['retryable'] is not None:
            row['retryable'] = bool(row['retryable'])
    return rows

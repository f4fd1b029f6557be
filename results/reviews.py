"""Reviews: a person's verdict on a detection (an event row), kept next to the events in the same store.

One verdict per detection, the detection being ``results.schema.REVIEW_KEY`` (the file version, the event's
seconds and its label): reviewing it again replaces the verdict. In SQLite that is the table's primary key
(``INSERT OR REPLACE``); BigQuery tables have no keys, so each review is a row of its own and readers take the
newest per detection from the ``<output_table>_reviews_latest`` view (``schema.reviews_view_query``). Rows are
added with a DML ``INSERT`` rather than a streaming insert so that Undo can ``DELETE`` one at once (a streamed row
cannot be deleted while it sits in the streaming buffer).

Pipeline runs never touch this table: a replay, ``--reprocess`` or a new model rewrites results and events, and
the verdicts stay (an old verdict is still true of the same seconds of the same file version).

    record(store, row)          -> the verdict it replaced (or None), for Undo
    undo(store, row, previous)  -> the detection's verdict is ``previous`` again (none if None)
    read_reviews(results)       -> every detection's current verdict (results.thresholds, results.export)
"""
from __future__ import annotations

import datetime as dt
import getpass
from typing import Any, Optional

from results import schema
from results.schema import REVIEW_KEY, REVIEWS

CORRECT, WRONG = 'correct', 'wrong'
VERDICTS = (CORRECT, WRONG)


def default_reviewer() -> str:
    """The operating-system user: who reviewed, unless the person types a name."""
    try:
        return getpass.getuser()
    except Exception:   # no user name in this environment (a container without one)
        return ''


def review_row(detection: dict[str, Any], verdict: str, reviewer: Optional[str] = None,
               reviewed_at: Optional[float] = None) -> dict[str, Any]:
    """A reviews row for an event row (``audio_file``, ``generation``, seconds, ``label``, ``confidence``,
    ``model_version``) and its verdict."""
    if verdict not in VERDICTS:
        raise ValueError(f'verdict must be one of {VERDICTS}, got {verdict!r}')
    when = reviewed_at if reviewed_at is not None else dt.datetime.now(dt.timezone.utc).timestamp()
    return {'audio_file': detection['audio_file'], 'generation': str(detection['generation']),
            'start_seconds': float(detection['start_seconds']), 'end_seconds': float(detection['end_seconds']),
            'label': detection['label'], 'confidence': float(detection['confidence']),
            'model_version': detection.get('model_version'), 'verdict': verdict,
            'reviewer': default_reviewer() if reviewer is None else reviewer,
            'reviewed_at': schema.timestamp(when)}


def key_of(row: dict[str, Any]) -> tuple:
    return tuple(row[c] for c in REVIEW_KEY)


# ---- SQLite -----------------------------------------------------------------------------------------------------

def _sqlite_where() -> str:
    return ' AND '.join(f'{c} = ?' for c in REVIEW_KEY)


def _sqlite_current(conn, row: dict[str, Any]) -> Optional[dict[str, Any]]:
    columns = schema.TABLES[REVIEWS].columns
    found = conn.execute(f'SELECT {", ".join(columns)} FROM {REVIEWS} WHERE {_sqlite_where()}', key_of(row)).fetchone()
    return dict(zip(columns, found)) if found else None


def _sqlite_put(conn, row: dict[str, Any]) -> None:
    columns = schema.TABLES[REVIEWS].columns
    conn.execute(f'INSERT OR REPLACE INTO {REVIEWS} ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})',
                 tuple(row.get(c) for c in columns))


# ---- BigQuery ---------------------------------------------------------------------------------------------------

def _bigquery_params(row: dict[str, Any], names) -> list:
    from google.cloud import bigquery

    types = {f['name']: f['type'] for f in schema.TABLES[REVIEWS].fields}
    kinds = {'STRING': 'STRING', 'FLOAT': 'FLOAT64', 'TIMESTAMP': 'TIMESTAMP', 'INTEGER': 'INT64'}
    params = []
    for name in names:
        value = row.get(name)
        if types[name] == 'TIMESTAMP' and isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace('Z', '+00:00'))
        params.append(bigquery.ScalarQueryParameter(name, kinds[types[name]], value))
    return params


def _bigquery_run(store, sql: str, row: dict[str, Any], names) -> list[dict[str, Any]]:
    from google.cloud import bigquery

    config = bigquery.QueryJobConfig(query_parameters=_bigquery_params(row, names))
    return [dict(r.items()) for r in store.client.query(sql, job_config=config).result()]


def _bigquery_table(store, name: str) -> str:
    from results import bigquery_store

    return f'`{bigquery_store.table_id(name, store.client.project)}`'


def _bigquery_current(store, row: dict[str, Any]) -> Optional[dict[str, Any]]:
    view = _bigquery_table(store, schema.reviews_view_name(store.output_table))
    where = ' AND '.join(f'{c} = @{c}' for c in REVIEW_KEY)
    found = _bigquery_run(store, f'SELECT * FROM {view} WHERE {where}', row, REVIEW_KEY)
    return _plain(found[0]) if found else None


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A BigQuery row in the form this module writes (timestamps as the store's text)."""
    out = dict(row)
    if isinstance(out.get('reviewed_at'), dt.datetime):
        out['reviewed_at'] = schema.timestamp(out['reviewed_at'].timestamp())
    return out


# ---- the operations ---------------------------------------------------------------------------------------------

def record(store, row: dict[str, Any]) -> Optional[dict[str, Any]]:
    """Stores a verdict (``review_row``), replacing the detection's earlier one; returns that earlier one."""
    if store.dialect == 'sqlite':
        from results import sqlite_store

        with sqlite_store.connect(store.table(REVIEWS)) as conn:
            previous = _sqlite_current(conn, row)
            _sqlite_put(conn, row)
        return previous
    previous = _bigquery_current(store, row)
    columns = schema.TABLES[REVIEWS].columns
    _bigquery_run(store, f'INSERT INTO {_bigquery_table(store, store.table(REVIEWS))} ({", ".join(columns)}) '
                         f'VALUES ({", ".join("@" + c for c in columns)})', row, columns)
    return previous


def undo(store, row: dict[str, Any], previous: Optional[dict[str, Any]]) -> None:
    """Takes back ``row`` (what ``record`` stored): the detection's verdict is ``previous`` again, or none."""
    if store.dialect == 'sqlite':
        from results import sqlite_store

        with sqlite_store.connect(store.table(REVIEWS)) as conn:
            if previous is None:
                conn.execute(f'DELETE FROM {REVIEWS} WHERE {_sqlite_where()}', key_of(row))
            else:
                _sqlite_put(conn, previous)
        return
    # Every review is its own row here: deleting the one taken back leaves the earlier one the newest.
    where = ' AND '.join(f'{c} = @{c}' for c in (*REVIEW_KEY, 'reviewed_at'))
    _bigquery_run(store, f'DELETE FROM {_bigquery_table(store, store.table(REVIEWS))} WHERE {where}', row,
                  (*REVIEW_KEY, 'reviewed_at'))


def current_reviews(store) -> list[dict[str, Any]]:
    """Every detection's current verdict (BigQuery: through the ``_reviews_latest`` view)."""
    if store.dialect == 'sqlite':
        import os

        from results import sqlite_store

        if not os.path.exists(store.table(REVIEWS)):
            return []
        return sqlite_store.read_table(store.table(REVIEWS), REVIEWS)
    view = _bigquery_table(store, schema.reviews_view_name(store.output_table))
    return [_plain(r) for r in _bigquery_run(store, f'SELECT * FROM {view}', {}, ())]


def read_reviews(results: str) -> list[dict[str, Any]]:
    """Every detection's current verdict in the results the pipeline's ``--output_table`` names."""
    from results.store import open_store

    return current_reviews(open_store(results))

"""The ``<table>_latest`` view (results/schema.py) on the real BigQuery emulator, over deliberately duplicated rows.

Streaming inserts are at-least-once and ``--reprocess`` appends, so the tables may hold several rows per
(audio_file, generation); the view must show exactly one: the newest result, else the newest error.
"""
from __future__ import annotations

import collections

import pytest

from results import bigquery_store, schema
from results.sqlite_store import PERMANENT_ERROR, RESULT, RETRYABLE_ERROR

pytestmark = pytest.mark.e2e
TABLE = 'local-project:audio.processed'


def _result(uri: str, at: str, label: str = 'tone') -> dict:
    return {'audio_file': uri, 'generation': '1', 'spectrogram_image': f'{uri}.png', 'label': label,
            'confidence': 0.5, 'scores': [{'label': label, 'score': 0.5}], 'model_version': 'v1',
            'duration_seconds': 1.0, 'sample_rate_hz': 16000, 'channels': 1, 'event_time': None,
            'processed_at': f'2026-11-26T{at}:00.000000Z'}


def _error(uri: str, at: str, retryable: bool, error_type: str = 'ServiceUnavailable') -> dict:
    return {'audio_file': uri, 'generation': '1', 'stage': 'read', 'error_type': error_type, 'message': 'm',
            'failed_at': f'2026-11-26T{at}:00.000000Z', 'retryable': retryable, 'attempts': 3}


def test_the_view_shows_one_row_per_file_version_the_newest_result_else_the_newest_error(bigquery_emulator):
    bq = bigquery_store.client()
    results_id, errors_id = bigquery_store.ensure_tables(TABLE, bq=bq)
    twice = _result('a', '08:00', 'hum')
    rows = [_result('a', '07:00'), twice, twice,                  # a reprocessed, and one insert delivered twice
            _result('c', '07:00', 'click'),                       # c: a result, then a later retryable error
            _result('d', '07:00'), _result('d', '07:00')]         # d: the same insert twice
    errors = [_error('a', '06:00', True),                         # a failed on a bad moment before its result
              _error('b', '06:00', True), _error('b', '09:00', False, 'NotAudio'),
              _error('c', '09:00', True),
              _error('e', '06:00', True), _error('e', '07:00', True, 'RetryError')]
    assert bq.insert_rows_json(results_id, rows) == [] and bq.insert_rows_json(errors_id, errors) == []

    latest = [dict(r) for r in bq.query(
        f'SELECT * FROM `{bigquery_store.table_id(schema.latest_view_name(TABLE))}`').result()]
    assert collections.Counter((r['audio_file'], r['generation']) for r in latest) == {
        (uri, '1'): 1 for uri in 'abcde'}
    by_file = {r['audio_file']: r for r in latest}
    assert list(latest[0]) == schema.latest_view_columns()
    assert (by_file['a']['outcome'], by_file['a']['label']) == ('result', 'hum')  # the newest result
    assert (by_file['b']['outcome'], by_file['b']['error_type'], by_file['b']['retryable']) == ('error', 'NotAudio',
                                                                                                  False)
    assert (by_file['c']['outcome'], by_file['c']['label']) == ('result', 'click')  # a result beats a later error
    assert by_file['d']['outcome'] == 'result'
    assert (by_file['e']['outcome'], by_file['e']['error_type'], by_file['e']['attempts']) == ('error', 'RetryError',
                                                                                                 3)

    # What a replay decides on, from the same rows: only e has nothing but retryable errors.
    assert bigquery_store.key_states(TABLE, bq=bq) == {
        ('a', '1'): RESULT, ('b', '1'): PERMANENT_ERROR, ('c', '1'): RESULT, ('d', '1'): RESULT,
        ('e', '1'): RETRYABLE_ERROR}


def test_ensuring_the_tables_again_keeps_the_view_and_brings_an_old_query_up_to_date(bigquery_emulator):
    bq = bigquery_store.client()
    results_id, _ = bigquery_store.ensure_tables(TABLE, bq=bq)
    view_id = bigquery_store.table_id(schema.latest_view_name(TABLE))
    old = bq.get_table(view_id)
    old.view_query = f'SELECT audio_file FROM `{results_id}`'
    bq.update_table(old, ['view_query'])
    columns = lambda: [f.name for f in bq.query(f'SELECT * FROM `{view_id}`').result().schema]  # noqa: E731
    assert columns() == ['audio_file']
    bigquery_store.ensure_tables(TABLE, bq=bq)
    # (The emulator does not return a view's query from tables.get, so the view is read instead.)
    assert bq.get_table(view_id).table_type == 'VIEW' and columns() == schema.latest_view_columns()

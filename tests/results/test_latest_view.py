"""The ``<table>_latest`` view (results/schema.py) on the real BigQuery emulator, over deliberately duplicated rows.

Streaming inserts are at-least-once and ``--reprocess`` appends, so the tables may hold several rows per
(audio_file, generation); the view must show exactly one: the newest result, else the newest error.
"""
from __future__ import annotations

import collections

import pytest

from results import bigquery_store, schema, tables
from results.sqlite_store import PERMANENT_ERROR, RESULT, RETRYABLE_ERROR
from results.tables import RESULT_WITHOUT_EVENTS

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


def _event(uri: str, at: str, start: float, label: str = 'tone') -> dict:
    return {'audio_file': uri, 'generation': '1', 'start_seconds': start, 'end_seconds': start + 1.0,
            'label': label, 'confidence': 0.5, 'model_version': 'v1', 'processed_at': f'2026-11-26T{at}:00.000000Z'}


def test_a_result_whose_event_rows_are_not_all_there_is_not_done(bigquery_emulator):
    """The crash gap: BigQuery gets a result row and its event rows in separate inserts, so a streaming pipeline
    killed between them leaves a result with fewer event rows than its ``event_count``. Such a key is
    RESULT_WITHOUT_EVENTS (a replay or reconciliation processes it again), judged on its newest result row (the
    one the view shows) and the events written with it (the same processed_at), duplicates counted once."""
    bq = bigquery_store.client()
    results_id, _ = bigquery_store.ensure_tables(TABLE, bq=bq)
    events_id = bigquery_store.table_id(TABLE + schema.TABLES['events'].suffix)
    rows = [{**_result('whole', '07:00'), 'event_count': 2},
            {**_result('none', '07:00'), 'event_count': 2},           # killed before its events were inserted
            {**_result('part', '07:00'), 'event_count': 3},           # one insert of two landed
            {**_result('doubled', '07:00'), 'event_count': 2},        # an event insert delivered twice, one lost
            {**_result('zero', '07:00'), 'event_count': 0},
            {**_result('off', '07:00'), 'event_count': None},         # --events=false
            {**_result('redone', '07:00'), 'event_count': 1},         # an incomplete run, then a whole one
            {**_result('redone', '08:00'), 'event_count': 1},
            {**_result('broken', '07:00'), 'event_count': 1},         # a whole run, then one killed midway
            {**_result('broken', '08:00'), 'event_count': 1},
            {**_result('twice', '07:00'), 'event_count': 1},          # processed twice, whole both times (a
            {**_result('twice', '09:00'), 'event_count': 1}]          # notification past the dedupe window)
    events = [_event('whole', '07:00', 0.0), _event('whole', '07:00', 0.0, 'hum'),  # two labels, same start
              _event('part', '07:00', 0.0), _event('part', '07:00', 2.0),
              _event('doubled', '07:00', 0.0), _event('doubled', '07:00', 0.0),
              _event('none', '06:00', 0.0), _event('none', '06:00', 1.0),           # an earlier run's: not these
              _event('redone', '08:00', 1.0), _event('broken', '07:00', 1.0),
              _event('twice', '07:00', 0.0), _event('twice', '09:00', 0.0)]
    assert bq.insert_rows_json(results_id, rows) == [] and bq.insert_rows_json(events_id, events) == []

    states = bigquery_store.key_states(TABLE, bq=bq)
    assert {uri for (uri, _), state in states.items() if state == RESULT} == {'whole', 'zero', 'off', 'redone',
                                                                              'twice'}
    assert {uri for (uri, _), state in states.items() if state == RESULT_WITHOUT_EVENTS} == {
        'none', 'part', 'doubled', 'broken'}
    assert RESULT_WITHOUT_EVENTS not in tables.done_states() | tables.done_states(retry_failed=True)

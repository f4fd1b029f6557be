"""results.tables: which store a table name means, and the default error table."""
from __future__ import annotations

from results import sqlite_store, tables


def test_is_sqlite_path():
    assert tables.is_sqlite_path('out/results.db')
    assert not tables.is_sqlite_path('project:dataset.table')


def test_is_bigquery_table():
    assert tables.is_bigquery_table('my-project:dataset.table')
    assert tables.is_bigquery_table('dataset.table')
    assert not tables.is_bigquery_table('out/results.db')


def test_default_error_table():
    assert tables.default_error_table('p:d.results') == 'p:d.results_errors'
    assert tables.default_error_table('/x/r.db') == '/x/r.db'


def test_key_states_of_a_sqlite_file_tell_results_and_errors_apart(tmp_path):
    path = str(tmp_path / 'r.db')
    assert tables.key_states(path, path) == {}
    row = {'audio_file': 'a', 'generation': '1', 'spectrogram_image': 'a.png', 'label': 'tone', 'confidence': 0.9,
           'scores': [], 'model_version': 'v1', 'duration_seconds': 1.0, 'sample_rate_hz': 16000, 'channels': 1,
           'event_time': None, 'processed_at': '2026-11-26T07:00:00.000000Z'}
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_processed(conn, [row])
        sqlite_store.write_errors(conn, [{'audio_file': 'b', 'generation': '1', 'stage': 'decode',
                                          'error_type': 'Corrupt', 'message': 'bad',
                                          'failed_at': '2026-11-26T07:00:00.000000Z'},
                                         {'audio_file': 'c', 'generation': '1', 'stage': 'read',
                                          'error_type': 'RetryError', 'message': 'storage down',
                                          'failed_at': '2026-11-26T07:00:00.000000Z', 'retryable': True}])
    assert tables.key_states(path, path) == {('a', '1'): sqlite_store.RESULT, ('b', '1'): sqlite_store.PERMANENT_ERROR,
                                             ('c', '1'): sqlite_store.RETRYABLE_ERROR}

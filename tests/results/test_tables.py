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


def test_existing_keys_of_a_sqlite_file_counts_results_and_errors(tmp_path):
    path = str(tmp_path / 'r.db')
    assert tables.existing_keys(path, path) == set()
    row = {'audio_file': 'a', 'generation': '1', 'spectrogram_image': 'a.png', 'label': 'tone', 'confidence': 0.9,
           'scores': [], 'model_version': 'v1', 'duration_seconds': 1.0, 'sample_rate_hz': 16000, 'channels': 1,
           'event_time': None, 'processed_at': '2026-11-26T07:00:00.000000Z'}
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_processed(conn, [row])
        sqlite_store.write_errors(conn, [{'audio_file': 'b', 'generation': '1', 'stage': 'decode',
                                          'error_type': 'Corrupt', 'message': 'bad',
                                          'failed_at': '2026-11-26T07:00:00.000000Z'}])
    assert tables.existing_keys(path, path) == {('a', '1'), ('b', '1')}

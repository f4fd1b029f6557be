"""results.store: one ResultStore interface, chosen once from the table name; SQLite here, BigQuery on its emulator."""
from __future__ import annotations

import pickle

import pytest

from results import schema, sqlite_store, tables
from results.store import (BigQueryStore, ResultsUnavailable, SqliteStore, open_results, open_store,
                           table_name_problem)

NOW = '2026-11-26T07:00:00.000000Z'


def result_row(audio_file: str, generation: str = '1', events=None) -> dict:
    row = {'audio_file': audio_file, 'generation': generation, 'spectrogram_image': 'a.png', 'label': 'tone',
           'confidence': 0.9, 'scores': [], 'model_version': 'v1', 'duration_seconds': 1.0, 'sample_rate_hz': 16000,
           'channels': 1, 'event_time': None, 'processed_at': NOW}
    if events is not None:
        row['_events'] = events
    return row


def error_row(audio_file: str, retryable: bool, generation: str = '1') -> dict:
    return {'audio_file': audio_file, 'generation': generation, 'stage': 'read', 'error_type': 'E', 'message': 'm',
            'failed_at': NOW, 'retryable': retryable}


def test_open_store_chooses_once_from_the_name():
    local = open_store('/x/r.db')
    assert isinstance(local, SqliteStore) and local.local and local.forgets_errors
    assert local.error_table == local.table(tables.EVENTS) == '/x/r.db'
    remote = open_store('my-project:d.results')
    assert isinstance(remote, BigQueryStore) and not remote.local and not remote.forgets_errors
    assert remote.error_table == 'my-project:d.results_errors'
    assert remote.table(tables.EVENTS) == 'my-project:d.results_events'
    assert open_store('my-project:d.results', 'my-project:d.failures').table(tables.ERRORS) == 'my-project:d.failures'
    for output, errors in (('/x/r.db', 'my-project:d.e'), ('my-project:d.r', '/x/e.db')):
        with pytest.raises(ValueError, match='same backend'):
            open_store(output, errors)
    assert table_name_problem('my-project:d.results') == table_name_problem('r.db') == ''
    assert 'PROJECT:DATASET.TABLE' in table_name_problem('not a table')


def test_a_bigquery_store_pickles_without_its_client():
    store = BigQueryStore('my-project:d.results', client=object())
    assert pickle.loads(pickle.dumps(store)) == store


def test_key_states_done_keys_and_counts_of_a_sqlite_file(tmp_path):
    store = open_store(str(tmp_path / 'r.db'))
    assert store.key_states() == {} and store.counts() == (0, 0) and store.done_keys() == set()
    with sqlite_store.connect(store.output_table) as conn:
        sqlite_store.write_processed(conn, [result_row('a')])
        sqlite_store.write_errors(conn, [error_row('b', retryable=False), error_row('c', retryable=True)])
    assert store.counts() == (1, 2)
    assert store.done_keys() == {('a', '1'), ('b', '1')}
    assert store.done_keys(retry_failed=True) == {('a', '1')}


def test_forgetting_a_retryable_error_makes_the_file_pending_again(tmp_path):
    store = open_store(str(tmp_path / 'r.db'))
    with sqlite_store.connect(store.output_table) as conn:
        sqlite_store.write_errors(conn, [error_row('b', retryable=False), error_row('c', retryable=True)])
    assert not store.forget_retryable_error('b', '1')   # about the file itself: kept
    assert store.forget_retryable_error('c', '1')
    assert not store.forget_retryable_error('c', '1')   # nothing left to forget
    assert store.key_states() == {('b', '1'): tables.PERMANENT_ERROR}


def test_change_stamp_moves_with_the_rows_and_the_files_are_named(tmp_path):
    store = open_store(str(tmp_path / 'r.db'))
    before = store.change_stamp()
    store.ensure_tables()
    with sqlite_store.connect(store.output_table) as conn:
        sqlite_store.write_processed(conn, [result_row('a')])
    assert store.change_stamp() not in (None, before)
    assert store.change_stamp() == store.change_stamp()
    assert store.output_table in store.files() and store.output_table + '-wal' in store.files()


def test_sqlite_reads_rows_and_runs_the_dashboards_queries(tmp_path):
    store = open_store(str(tmp_path / 'r.db'))
    with pytest.raises(ResultsUnavailable, match='No results database'):
        store.query('SELECT * FROM {processed}', {})
    event = {'audio_file': 'a', 'generation': '1', 'start_seconds': 0.0, 'end_seconds': 1.0, 'label': 'tone',
             'confidence': 0.8, 'model_version': 'v1', 'processed_at': NOW}
    with sqlite_store.connect(store.output_table) as conn:
        sqlite_store.write_processed(conn, [result_row('a', events=[event])])
    assert [r['label'] for r in store.read_rows(tables.EVENTS)] == ['tone']
    assert store.query('SELECT p.audio_file, COUNT(*) AS n FROM {processed} p JOIN {events} e '
                       'USING (audio_file, generation) WHERE p.label = :label GROUP BY p.audio_file',
                       {'label': 'tone'}) == [{'audio_file': 'a', 'n': 1}]


def test_open_results_takes_any_sqlite_file_and_explains_anything_else(tmp_path):
    other = tmp_path / 'results.sqlite'
    with sqlite_store.connect(str(other)):
        pass
    assert isinstance(open_results(str(other)), SqliteStore)
    assert {open_results(str(other)).table(name) for name in schema.TABLES} == {str(other)}
    text = tmp_path / 'notes.txt'
    text.write_text('hello')
    with pytest.raises(ResultsUnavailable, match='not a SQLite database'):
        open_results(str(text))
    with pytest.raises(ResultsUnavailable, match='neither an existing file nor a BigQuery table'):
        open_results(str(tmp_path / 'missing' / 'r'))
    assert isinstance(open_results('my-project:d.results'), BigQueryStore)


def test_absolute_names_a_local_store_independently_of_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert open_store('r.db').absolute() == open_store(str(tmp_path / 'r.db'))
    assert open_store('my-project:d.r').absolute() == open_store('my-project:d.r')


def test_a_bigquery_store_on_the_emulator(bigquery_emulator):
    """The same questions, asked of BigQuery: tables and view created, states, counts, rows, queries."""
    from results import bigquery_store

    store = open_store('local-project:audio.results')
    assert store.key_states() == {} and store.counts() == (0, 0)
    store.ensure_tables()
    bq = bigquery_store.client()
    assert bq.insert_rows_json(bigquery_store.table_id(store.output_table), [result_row('a')]) == []
    assert bq.insert_rows_json(bigquery_store.table_id(store.error_table),
                               [error_row('a', retryable=True), error_row('b', retryable=False),
                                error_row('c', retryable=True)]) == []
    assert store.key_states() == {('a', '1'): tables.RESULT, ('b', '1'): tables.PERMANENT_ERROR,
                                  ('c', '1'): tables.RETRYABLE_ERROR}
    assert store.done_keys() == {('a', '1'), ('b', '1')}
    assert store.counts() == (1, 3)
    assert [r['audio_file'] for r in store.read_rows(tables.PROCESSED)] == ['a']
    # The dashboard reads the _latest view: one row per key, a result before an error.
    assert sorted((r['audio_file'], r['n']) for r in store.query(
        'SELECT audio_file, COUNT(*) AS n FROM {errors} GROUP BY audio_file', {})) == [('b', 1), ('c', 1)]
    with pytest.raises(NotImplementedError):
        store.forget_retryable_error('c', '1')


def test_key_states_of_a_sqlite_file_tell_results_and_errors_apart(tmp_path):
    path = str(tmp_path / 'r.db')
    assert open_store(path).key_states() == {}
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
    assert open_store(path).key_states() == {('a', '1'): tables.RESULT, ('b', '1'): tables.PERMANENT_ERROR,
                                             ('c', '1'): tables.RETRYABLE_ERROR}


def test_a_sqlite_result_without_all_its_events_is_not_done(tmp_path):
    """The rule BigQuery's separate inserts need (results.tables.RESULT_WITHOUT_EVENTS), the same in SQLite: a
    result row with fewer event rows of its run (same processed_at) than its event_count is processed again."""
    store = open_store(str(tmp_path / 'r.db'))
    run = '2026-11-26T07:00:00.000000Z'

    def event(uri, start, at=run):
        return {'audio_file': uri, 'generation': '1', 'start_seconds': start, 'end_seconds': start + 1,
                'label': 'tone', 'confidence': 0.5, 'model_version': 'v1', 'processed_at': at}

    with sqlite_store.connect(store.output_table) as conn:
        sqlite_store.write_processed(conn, [
            {**result_row(uri), 'event_count': count, 'processed_at': run, '_events': [event(uri, 0.0)]}
            for uri, count in (('whole', 1), ('short', 2), ('older', 1))] + [
            {**result_row('off'), 'event_count': None, 'processed_at': run},
            {**result_row('none'), 'event_count': 0, 'processed_at': run}])
        # As if a writer had left the events of an earlier run of 'older' (not the result row's own).
        conn.execute("UPDATE events SET processed_at = '2026-11-26T06:00:00.000000Z' WHERE audio_file = 'older'")
    assert {uri for (uri, _), state in store.key_states().items() if state == tables.RESULT_WITHOUT_EVENTS} == {
        'short', 'older'}
    assert store.done_keys() == store.done_keys(retry_failed=True) == {('whole', '1'), ('off', '1'), ('none', '1')}


def test_a_file_processed_twice_keeps_one_result_row_and_the_newer_runs_events_in_sqlite(tmp_path):
    """A notification later than the dedupe window processes a file again (tests/transforms/
    test_streaming_source.py): the second run replaces the first's row and events; the key stays done."""
    store = open_store(str(tmp_path / 'r.db'))

    def run(at, starts):
        events = [{'audio_file': 'a', 'generation': '1', 'start_seconds': s, 'end_seconds': s + 1, 'label': 'tone',
                   'confidence': 0.5, 'model_version': 'v1', 'processed_at': at} for s in starts]
        return {**result_row('a', events=events), 'event_count': len(starts), 'processed_at': at}

    with sqlite_store.connect(store.output_table) as conn:
        sqlite_store.write_processed(conn, [run('2026-11-26T07:00:00.000000Z', [0.0, 2.0])])
    with sqlite_store.connect(store.output_table) as conn:
        sqlite_store.write_processed(conn, [run('2026-11-26T09:00:00.000000Z', [0.0, 2.0])])
    assert store.counts() == (1, 0) and store.key_states() == {('a', '1'): tables.RESULT}
    assert sorted((e['start_seconds'], e['processed_at']) for e in store.read_rows('events')) == [
        (0.0, '2026-11-26T09:00:00.000000Z'), (2.0, '2026-11-26T09:00:00.000000Z')]

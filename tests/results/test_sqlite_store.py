import multiprocessing
import os

from results import schema, sqlite_store, tables
from results.schema import PROCESSED_FIELDS, ERROR_FIELDS, EVENT_FIELDS


def result(uri, gen='1', label='tone'):
    return {'audio_file': uri, 'generation': gen, 'spectrogram_image': f'{uri}.png', 'label': label,
            'confidence': 0.9, 'scores': [{'label': label, 'score': 0.9}], 'model_version': 'v1',
            'event_count': None, 'duration_seconds': 1.0, 'sample_rate_hz': 16000, 'channels': 1, 'event_time': None,
            'processed_at': '2026-11-26T07:00:00.000000Z', 'seen_at': None}


def error(uri, gen='1', stage='decode'):
    return {'audio_file': uri, 'generation': gen, 'stage': stage, 'error_type': 'NotAudio', 'message': 'no',
            'failed_at': '2026-11-26T07:00:00.000000Z'}


def test_tables_have_the_bigquery_columns(tmp_path):
    path = str(tmp_path / 'r.db')
    with sqlite_store.connect(path) as conn:
        for table, fields in (('processed', PROCESSED_FIELDS), ('errors', ERROR_FIELDS), ('events', EVENT_FIELDS)):
            columns = [row[1] for row in conn.execute(f'PRAGMA table_info({table})')]
            assert columns == [f['name'] for f in fields]


def test_rows_round_trip_with_scores_as_json(tmp_path):
    path = str(tmp_path / 'r.db')
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_processed(conn, [result('a')])
    assert sqlite_store.read_table(path, 'processed') == [result('a')]


def test_repeated_writes_change_nothing(tmp_path):
    path = str(tmp_path / 'r.db')
    for _ in range(3):
        with sqlite_store.connect(path) as conn:
            sqlite_store.write_processed(conn, [result('a'), result('b')])
            sqlite_store.write_errors(conn, [error('c')])
    assert sqlite_store.counts(path) == (2, 1)


def test_a_result_replaces_an_earlier_error_and_an_error_never_shadows_a_result(tmp_path):
    path = str(tmp_path / 'r.db')
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_errors(conn, [error('a'), error('b')])
        sqlite_store.write_processed(conn, [result('a')])
        sqlite_store.write_errors(conn, [error('a', stage='write')])
    assert sqlite_store.counts(path) == (1, 1)
    assert [r['audio_file'] for r in sqlite_store.read_table(path, 'errors')] == ['b']


def test_a_new_generation_is_a_new_row(tmp_path):
    path = str(tmp_path / 'r.db')
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_processed(conn, [result('a', '1'), result('a', '2')])
    assert sqlite_store.existing_keys(path) == {('a', '1'), ('a', '2')}


def test_existing_keys_include_errors_and_a_missing_file_has_none(tmp_path):
    path = str(tmp_path / 'r.db')
    assert sqlite_store.existing_keys(path) == set()
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_processed(conn, [result('a')])
        sqlite_store.write_errors(conn, [error('b')])
    assert sqlite_store.existing_keys(path) == {('a', '1'), ('b', '1')}


def event(uri, start, label='tone', gen='1'):
    return {'audio_file': uri, 'generation': gen, 'start_seconds': start, 'end_seconds': start + 1.0,
            'label': label, 'confidence': 0.8, 'model_version': 'v1', 'processed_at': '2026-11-26T07:00:00.000000Z'}


def with_events(row, events):
    return {**row, 'event_count': len(events), schema.ROW_EVENTS_KEY: events}


def test_a_result_row_and_its_events_are_written_together_and_replaced_together(tmp_path):
    path = str(tmp_path / 'r.db')
    first = [event('a', 0.0), event('a', 3.5, 'chirp')]
    for _ in range(2):  # a replayed write adds nothing
        with sqlite_store.connect(path) as conn:
            sqlite_store.write_processed(conn, [with_events(result('a'), first), with_events(result('b'), [])])
    rows = {r['audio_file']: r for r in sqlite_store.read_table(path, 'processed')}
    assert rows['a']['event_count'] == 2 and rows['b']['event_count'] == 0
    assert schema.ROW_EVENTS_KEY not in rows['a']
    assert sorted(sqlite_store.read_table(path, 'events'), key=lambda e: e['start_seconds']) == first
    # --reprocess: the new row's events replace the old ones of that generation, another generation keeps its own.
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_processed(conn, [with_events(result('a'), [event('a', 7.0, 'hum')]),
                                            with_events(result('a', gen='2'), [event('a', 1.0, gen='2')])])
    events = sorted((e['generation'], e['start_seconds'], e['label']) for e in sqlite_store.read_table(path, 'events'))
    assert events == [('1', 7.0, 'hum'), ('2', 1.0, 'tone')]
    # Without events (--events=false) the row has event_count NULL and no stale events remain.
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_processed(conn, [result('a')])
    assert [e['generation'] for e in sqlite_store.read_table(path, 'events')] == ['2']


def test_a_file_written_before_event_count_existed_gains_the_column(tmp_path):
    import sqlite3
    path = str(tmp_path / 'old.db')
    old_fields = [f for f in PROCESSED_FIELDS if f['name'] != 'event_count']
    conn = sqlite3.connect(path)
    conn.execute(sqlite_store._create_sql('processed', old_fields))
    conn.commit()
    conn.close()
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_processed(conn, [with_events(result('a'), [event('a', 0.0)])])
    assert sqlite_store.read_table(path, 'processed')[0]['event_count'] == 1


def retryable_error(uri, gen='1'):
    return dict(error(uri, gen, stage='read'), error_type='ServiceUnavailable', retryable=True, attempts=7)


def test_error_rows_say_whether_they_are_retryable_and_how_often_they_were_tried(tmp_path):
    path = str(tmp_path / 'r.db')
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_errors(conn, [retryable_error('a'), dict(error('b'), retryable=False, attempts=1)])
    rows = {r['audio_file']: r for r in sqlite_store.read_table(path, 'errors')}
    assert (rows['a']['retryable'], rows['a']['attempts']) == (True, 7)
    assert (rows['b']['retryable'], rows['b']['attempts']) == (False, 1)


def test_key_states_tell_results_permanent_and_retryable_errors_apart(tmp_path):
    path = str(tmp_path / 'r.db')
    assert sqlite_store.key_states(path) == {}
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_errors(conn, [retryable_error('a'), retryable_error('b'), error('c')])
        sqlite_store.write_processed(conn, [result('a'), result('d')])
    assert sqlite_store.key_states(path) == {('a', '1'): tables.RESULT, ('b', '1'): tables.RETRYABLE_ERROR,
                                             ('c', '1'): tables.PERMANENT_ERROR, ('d', '1'): tables.RESULT}
    # The result replaced the retryable error: one row per key.
    assert sqlite_store.counts(path) == (2, 2)


def test_a_file_from_before_the_retryable_column_gets_it_and_its_old_errors_count_as_permanent(tmp_path):
    import sqlite3
    path = str(tmp_path / 'old.db')
    old = sqlite3.connect(path)
    old.execute('CREATE TABLE errors (audio_file TEXT NOT NULL, generation TEXT, stage TEXT NOT NULL, '
                'error_type TEXT NOT NULL, message TEXT, failed_at TEXT NOT NULL, '
                'PRIMARY KEY (audio_file, generation))')
    old.execute("INSERT INTO errors VALUES ('x', '1', 'decode', 'NotAudio', 'no', '2026-01-01T00:00:00.000000Z')")
    old.commit()
    old.close()
    assert sqlite_store.key_states(path) == {('x', '1'): tables.PERMANENT_ERROR}
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_errors(conn, [retryable_error('y')])
        columns = [row[1] for row in conn.execute('PRAGMA table_info(errors)')]
    assert columns == [f['name'] for f in ERROR_FIELDS]


def _open_together(path, barrier, answers):
    barrier.wait()
    try:
        with sqlite_store.connect(path):
            pass
        answers.put('ok')
    except Exception as e:  # the answer is the evidence
        answers.put(repr(e))


def test_worker_processes_opening_a_new_results_file_at_once_all_get_it(tmp_path):
    """Switching a new file to WAL: SQLite refuses one of two simultaneous askers at once ("database is locked",
    no busy wait). Before the retry, 2 of 120 such connections failed; a batch run's workers (or the benchmark's
    bare-loop processes) open the results file together at their first flush."""
    ctx = multiprocessing.get_context('fork')
    answers = []
    for trial in range(20):
        path = os.path.join(tmp_path, f'{trial}.db')
        barrier, queue = ctx.Barrier(6), ctx.Queue()
        processes = [ctx.Process(target=_open_together, args=(path, barrier, queue)) for _ in range(6)]
        for p in processes:
            p.start()
        answers += [queue.get(timeout=60) for _ in processes]
        for p in processes:
            p.join(timeout=60)
    assert answers == ['ok'] * 120


def test_several_labels_at_the_same_time_are_separate_events(tmp_path):
    path = str(tmp_path / 'r.db')
    both = [event('a', 3.0, 'Turdus merula_Eurasian Blackbird'), event('a', 3.0, 'Parus major_Great Tit')]
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_processed(conn, [with_events(result('a'), both)])
    assert sorted(e['label'] for e in sqlite_store.read_table(path, 'events')) == sorted(e['label'] for e in both)


def test_a_file_whose_events_were_keyed_without_the_label_gets_the_new_key_and_keeps_its_rows(tmp_path):
    import sqlite3

    path = str(tmp_path / 'old.db')
    old = sqlite3.connect(path)
    old.execute(sqlite_store._create_sql(sqlite_store.EVENTS, schema.EVENT_FIELDS,
                                         ('audio_file', 'generation', 'start_seconds')))
    old.execute(f'INSERT INTO events ({", ".join(sqlite_store.EVENT_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                tuple(event('a', 1.0).values()))
    old.commit()
    old.close()
    with sqlite_store.connect(path) as conn:
        key = [r[1] for r in sorted(conn.execute('PRAGMA table_info(events)'), key=lambda r: r[5]) if r[5]]
        sqlite_store.write_events(conn, [({'audio_file': 'b', 'generation': '1'},
                                          [event('b', 0.0, 'x'), event('b', 0.0, 'y')])])
    assert key == list(schema.EVENT_KEY_COLUMNS)
    assert sorted((e['audio_file'], e['label']) for e in sqlite_store.read_table(path, 'events')) == [
        ('a', 'tone'), ('b', 'x'), ('b', 'y')]

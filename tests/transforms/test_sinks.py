"""transforms.sinks into the embedded SQLite store: one row per element, replays add nothing, results win.

(The BigQuery path is exercised through the real emulator in tests/results/test_bigquery_store.py and the e2e tests.)
"""
import sqlite3
import threading
import time

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from audio.records import AudioInfo, AudioObject, Classification, FailedAudio, ProcessedAudio
from results import sqlite_store, tables
from transforms.failures import Retrier
from transforms.sinks import WriteErrors, WriteResults, busy_timeout


def processed(name: str, generation: str = '1') -> tuple[ProcessedAudio, Classification]:
    item = ProcessedAudio(AudioObject(uri=f'/in/{name}', name=name, generation=generation), AudioInfo(16000, 1, 1.0),
                          f'/out/{name}.png')
    return item, Classification('tone', 0.75, (('tone', 0.75), ('chirp', 0.25)), 'v1', 1)


def failed(name: str, generation: str = '1') -> FailedAudio:
    return FailedAudio(AudioObject(uri=f'/in/{name}', name=name, generation=generation), 'decode', 'NotAudio', 'no')


def write(path: str, results=(), errors=()):
    with TestPipeline(runner='FnApiRunner') as p:
        result_failures = p | 'Results' >> beam.Create(list(results)) | WriteResults(path, streaming=False)
        lost = p | 'Errors' >> beam.Create(list(errors)) | WriteErrors(path, streaming=False)
        assert_that(result_failures, equal_to([]), label='NoResultFailures')
        assert_that(lost, equal_to([]), label='NoLostErrors')


def test_each_result_and_each_failure_becomes_one_row(tmp_path):
    path = str(tmp_path / 'r.db')
    write(path, results=[processed('a.wav'), processed('b.wav')], errors=[failed('c.txt')])
    rows = {r['audio_file']: r for r in sqlite_store.read_table(path, tables.PROCESSED)}
    assert sorted(rows) == ['/in/a.wav', '/in/b.wav']
    assert rows['/in/a.wav']['label'] == 'tone' and rows['/in/a.wav']['spectrogram_image'] == '/out/a.wav.png'
    errors = sqlite_store.read_table(path, tables.ERRORS)
    assert [(e['audio_file'], e['stage'], e['error_type']) for e in errors] == [('/in/c.txt', 'decode', 'NotAudio')]


def test_writing_the_same_elements_again_adds_no_rows(tmp_path):
    path = str(tmp_path / 'r.db')
    for _ in range(2):
        write(path, results=[processed('a.wav')], errors=[failed('c.txt')])
    assert sqlite_store.counts(path) == (1, 1)


def test_an_error_never_shadows_a_result_and_a_result_replaces_an_error(tmp_path):
    path = str(tmp_path / 'r.db')
    write(path, results=[processed('a.wav')], errors=[failed('b.wav')])
    write(path, results=[processed('b.wav')], errors=[failed('a.wav')])
    assert sqlite_store.counts(path) == (2, 0)


def test_a_file_locked_by_another_writer_past_the_busy_timeout_is_retried_not_recorded(tmp_path):
    path = str(tmp_path / 'r.db')
    with sqlite_store.connect(path):
        pass  # the tables exist, as they would after the first bundle
    retrier = Retrier(deadline_s=8, initial_s=0.2, maximum_s=0.5)
    assert busy_timeout(retrier) == 2.0  # each attempt gives up on the lock after 2 s
    # A real second writer holds the write lock (its connection may be released from another thread).
    other = sqlite3.connect(path, timeout=0, check_same_thread=False)
    other.execute('BEGIN IMMEDIATE')
    released = threading.Event()

    def release_later():
        # ... for longer than one attempt's busy timeout, shorter than the whole retry budget.
        time.sleep(3 * busy_timeout(retrier))
        other.rollback()
        released.set()
    threading.Thread(target=release_later, daemon=True).start()
    with TestPipeline(runner='FnApiRunner') as p:
        lost = p | beam.Create([processed('a.wav')]) | WriteResults(path, streaming=False, retrier=retrier)
        assert_that(lost, equal_to([]))
    assert released.is_set()  # the write really met the lock
    other.close()
    assert sqlite_store.counts(path) == (1, 0)
    assert sqlite_store.read_table(path, tables.ERRORS) == []


def test_a_file_locked_past_the_whole_budget_fails_the_bundle_instead_of_losing_or_misfiling_the_row(tmp_path):
    path = str(tmp_path / 'r.db')
    with sqlite_store.connect(path):
        pass
    other = sqlite3.connect(path, timeout=0)
    other.execute('BEGIN IMMEDIATE')
    try:
        with pytest.raises(Exception, match='stayed unwritable'):
            with TestPipeline(runner='FnApiRunner') as p:
                _ = p | beam.Create([processed('a.wav')]) | WriteResults(
                    path, streaming=False, retrier=Retrier(deadline_s=1, initial_s=0.1))
    finally:
        other.rollback()
        other.close()
    assert sqlite_store.counts(path) == (0, 0)  # nothing recorded as the file's fault: a replay will do it


def test_a_result_replaces_a_retryable_error_row(tmp_path):
    path = str(tmp_path / 'r.db')
    outage = FailedAudio(AudioObject(uri='/in/a.wav', name='a.wav', generation='1'), 'read', 'ServiceUnavailable',
                         'storage down', retryable=True, attempts=9)
    write(path, errors=[outage])
    assert [(e['retryable'], e['attempts']) for e in sqlite_store.read_table(path, tables.ERRORS)] == [(True, 9)]
    write(path, results=[processed('a.wav')])
    assert sqlite_store.counts(path) == (1, 0)

"""transforms.sinks into the embedded SQLite store: one row per element, replays add nothing, results win.

(The BigQuery path is exercised through the real emulator in tests/results/test_bigquery_store.py and the e2e tests.)
"""
import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from audio.records import AudioInfo, AudioObject, Classification, FailedAudio, ProcessedAudio
from results import sqlite_store
from transforms.sinks import WriteErrors, WriteResults


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
    rows = {r['audio_file']: r for r in sqlite_store.read_table(path, sqlite_store.PROCESSED)}
    assert sorted(rows) == ['/in/a.wav', '/in/b.wav']
    assert rows['/in/a.wav']['label'] == 'tone' and rows['/in/a.wav']['spectrogram_image'] == '/out/a.wav.png'
    errors = sqlite_store.read_table(path, sqlite_store.ERRORS)
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

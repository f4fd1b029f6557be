"""pipeline.graph: the stages wired for batch replay, run on a local Beam runner with a real (tiny) model."""
import os

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.graph import build_pipeline, done_states, key_states_reader
from pipeline.options import validate, with_absolute_paths
from cloud.objects import local_generation
from results import sqlite_store, tables
from tests.helpers import write_bytes, write_clip


def config_for(tmp_path, model_dir, *extra):
    return with_absolute_paths(validate(PipelineOptions([
        '--input_pattern', str(tmp_path / 'in' / '**'), '--output_table', str(tmp_path / 'out' / 'r.db'),
        '--spectrogram_location', str(tmp_path / 'out' / 'spectrograms'), '--model_uri', model_dir, *extra])))


def run_graph(config, expect_classified, expect_failures):
    with TestPipeline(runner='FnApiRunner') as p:
        outputs = build_pipeline(p, config)
        assert_that(outputs.classified | beam.MapTuple(lambda item, result: os.path.basename(item.source.uri)),
                    equal_to(expect_classified), label='Classified')
        assert_that(outputs.failures | beam.Map(lambda f: (os.path.basename(f.source.uri), f.stage, f.error_type)),
                    equal_to(expect_failures), label='Failures')


def test_batch_wiring_classifies_good_files_fails_bad_ones_and_writes_both(tmp_path, tiny_model_dir):
    write_clip(tmp_path / 'in', 'a.wav', label='tone')
    write_clip(tmp_path / 'in', 'sub/b.flac', kind='flac', label='chirp', seed=1)
    write_bytes(tmp_path / 'in', 'empty.wav', b'')
    config = config_for(tmp_path, tiny_model_dir)
    run_graph(config, ['a.wav', 'b.flac'], [('empty.wav', 'decode', 'EmptyFile')])
    assert sqlite_store.counts(config.output_table) == (2, 1)
    pngs = [name for _, _, names in os.walk(config.spectrogram_location) for name in names]
    assert len(pngs) == 2 and all(name.endswith('.png') for name in pngs)


def test_rows_say_when_the_pipeline_first_saw_the_file_not_its_modification_time(tmp_path, tiny_model_dir):
    import datetime as dt
    import time

    def to_datetime(text):
        return dt.datetime.fromisoformat(text.replace('Z', '+00:00'))

    copied = write_clip(tmp_path / 'in', 'copied.wav', label='tone')
    os.utime(copied, (1.7e9, 1.7e9))   # copied with its 2023 modification time
    config = config_for(tmp_path, tiny_model_dir)
    started = time.time()
    run_graph(config, ['copied.wav'], [])
    row, = sqlite_store.read_table(config.output_table, 'processed')
    assert to_datetime(row['event_time']).timestamp() == 1.7e9                     # the file's own time
    assert started <= to_datetime(row['seen_at']).timestamp() <= to_datetime(row['processed_at']).timestamp()


def test_a_replay_reads_the_table_once_and_skips_every_file_it_already_has(tmp_path, tiny_model_dir):
    write_clip(tmp_path / 'in', 'a.wav')
    write_bytes(tmp_path / 'in', 'empty.wav', b'')
    config = config_for(tmp_path, tiny_model_dir)
    run_graph(config, ['a.wav'], [('empty.wav', 'decode', 'EmptyFile')])
    run_graph(config, [], [])
    run_graph(config_for(tmp_path, tiny_model_dir, '--reprocess'), ['a.wav'], [('empty.wav', 'decode', 'EmptyFile')])
    assert sqlite_store.counts(config.output_table) == (1, 1)


def test_the_skip_reads_results_and_errors_only_for_batch_without_reprocess(tmp_path, tiny_model_dir):
    config = config_for(tmp_path, tiny_model_dir)
    assert key_states_reader(config)() == {}
    assert key_states_reader(config_for(tmp_path, tiny_model_dir, '--reprocess')) is None
    assert done_states(config) == {tables.RESULT, tables.PERMANENT_ERROR}
    assert done_states(config_for(tmp_path, tiny_model_dir, '--retry_failed')) == {tables.RESULT}


def _error_row(path, retryable: bool, error_type: str) -> dict:
    return {'audio_file': path, 'generation': local_generation(path), 'stage': 'read', 'error_type': error_type,
            'message': 'm', 'failed_at': '2026-11-26T07:00:00.000000Z', 'retryable': retryable, 'attempts': 4}


def test_a_replay_retries_files_with_only_retryable_errors_and_retry_failed_also_permanent_ones(tmp_path,
                                                                                               tiny_model_dir):
    outage = write_clip(tmp_path / 'in', 'outage.wav', label='tone')
    upgraded = write_clip(tmp_path / 'in', 'upgraded.wav', label='chirp', seed=1)
    done = write_clip(tmp_path / 'in', 'done.wav', label='hum', seed=2)
    config = config_for(tmp_path, tiny_model_dir)
    run_graph(config_for(tmp_path, tiny_model_dir), ['outage.wav', 'upgraded.wav', 'done.wav'], [])
    # As if outage.wav had met an outage (retryable) and upgraded.wav an older decoder (permanent).
    with sqlite_store.connect(config.output_table) as conn:
        conn.execute('DELETE FROM processed WHERE audio_file IN (?, ?)', (outage, upgraded))
        sqlite_store.write_errors(conn, [_error_row(outage, True, 'ServiceUnavailable'),
                                         _error_row(upgraded, False, 'Corrupt')])
    run_graph(config, ['outage.wav'], [])                  # retried and repaired; the others skipped
    states = sqlite_store.key_states(config.output_table)
    assert [states[(p, local_generation(p))] for p in (outage, upgraded, done)] == [
        tables.RESULT, tables.PERMANENT_ERROR, tables.RESULT]
    run_graph(config_for(tmp_path, tiny_model_dir, '--retry_failed'), ['upgraded.wav'], [])
    assert sqlite_store.counts(config.output_table) == (3, 0)


def test_a_replay_repairs_a_result_whose_events_a_crash_lost_exactly_once(tmp_path, tiny_model_dir):
    """BigQuery gets a result row and its event rows in separate inserts; a crash between them leaves a result
    with fewer event rows than its event_count (results.tables.RESULT_WITHOUT_EVENTS). Made here by deleting
    one file's events: the replay processes that file again, and only it, and each file then has its result row
    and exactly its events."""
    torn = write_clip(tmp_path / 'in', 'torn.wav', label='tone')
    write_clip(tmp_path / 'in', 'whole.wav', label='chirp', seed=1)
    # The tiny model is untrained: a low threshold makes its windows into events, to write some.
    config = config_for(tmp_path, tiny_model_dir, '--event_min_confidence', '0.05')
    run_graph(config, ['torn.wav', 'whole.wav'], [])
    before = {r['audio_file']: r for r in sqlite_store.read_table(config.output_table, 'processed')}
    assert before[torn]['event_count'] > 0
    with sqlite_store.connect(config.output_table) as conn:
        conn.execute('DELETE FROM events WHERE audio_file = ?', (torn,))  # killed before the events' insert
    assert sqlite_store.key_states(config.output_table)[(torn, local_generation(torn))] == \
        tables.RESULT_WITHOUT_EVENTS

    run_graph(config, ['torn.wav'], [])
    after = {r['audio_file']: r for r in sqlite_store.read_table(config.output_table, 'processed')}
    assert after[torn]['processed_at'] > before[torn]['processed_at']          # processed again
    assert after[str(tmp_path / 'in' / 'whole.wav')] == before[str(tmp_path / 'in' / 'whole.wav')]  # skipped
    events = sqlite_store.read_table(config.output_table, 'events')
    for uri, row in after.items():
        own = [(e['start_seconds'], e['label']) for e in events if e['audio_file'] == uri]
        assert len(own) == len(set(own)) == row['event_count'], uri
        assert {e['processed_at'] for e in events if e['audio_file'] == uri} == {row['processed_at']}
    assert set(sqlite_store.key_states(config.output_table).values()) == {tables.RESULT}

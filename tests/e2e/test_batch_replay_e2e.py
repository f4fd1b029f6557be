"""Batch replay over a gs:// glob on the real local stack, into the BigQuery emulator (load jobs).

The pipeline runs as its own process with the same command line as on Dataflow
(plus the emulator variables). The BigQuery emulator reads the load files Beam
writes to the storage emulator from that emulator's data directory (see
``stack/emulators.py``), so FILE_LOADS runs for real.
"""
from __future__ import annotations

import collections
import datetime
import subprocess
import sys

import pytest

from results import bigquery_store
from results.tables import PERMANENT_ERROR, RESULT, RESULT_WITHOUT_EVENTS
from stack import streaming
from stack.uploads import Uploader
from tests.e2e.corpus import Expected, Rows, assert_events_match_their_rows, broken_files, clip, wav

pytestmark = pytest.mark.e2e
RUN_TIMEOUT_S = 300


def _replay(stack, model_dir: str, output_table: str, log_path: str) -> None:
    config = stack.config
    argv = [sys.executable, '-m', 'pipeline.main', '--input_pattern', f'gs://{config.upload_bucket}/replay/**',
            '--output_table', output_table, '--spectrogram_location', f'gs://{config.output_bucket}/replay-spectrograms',
            '--temp_location', f'gs://{config.output_bucket}/tmp', '--model_uri', model_dir,
            # The test model is untrained: a low threshold makes its windows into events, to write some.
            '--event_min_confidence', '0.05']
    with open(log_path, 'ab') as log:
        done = subprocess.run(argv, env=streaming.pipeline_env(stack), stdout=log, stderr=subprocess.STDOUT,
                              timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, open(log_path).read()[-4000:]


def test_batch_replay_from_gcs_writes_each_object_once_and_skips_it_next_time(local_stack, model_on_local_stack,
                                                                              tmp_path):
    """The model too is read from Cloud Storage (the storage emulator), as a Dataflow job reads it."""
    stack, bucket = local_stack, local_stack.config.upload_bucket
    output_table = f'{stack.config.project}:{stack.config.dataset}.replay'
    error_table = output_table + '_errors'
    # A backlog: objects in the bucket, no notifications (replay does not need them).
    uploader = Uploader(stack.config.topic_path)
    expected = Expected()
    for i in range(12):
        ext, data = clip(i)
        resource, _ = uploader.write(bucket, f'replay/day1/clip {i}.{ext}', data)
        expected.result(f'gs://{bucket}/{resource["name"]}', resource['generation'])
    for name, (data, error_type) in list(broken_files().items())[:3]:
        resource, _ = uploader.write(bucket, f'replay/{name}', data)
        expected.error(f'gs://{bucket}/{resource["name"]}', resource['generation'], error_type)
    # The glob names it, so unlike a notification for it (ignored), it is accounted for as an error.
    notes, _ = uploader.write(bucket, 'replay/notes.txt', b'not audio\n')
    expected.error(f'gs://{bucket}/replay/notes.txt', notes['generation'], 'NotAudio')
    log = str(tmp_path / 'replay.log')

    _replay(stack, model_on_local_stack, output_table, log)
    rows = Rows.read(output_table, error_table)
    assert rows.result_keys == {key: 1 for key in expected.results}
    assert {r['model_version'] for r in rows.results} == {'tiny-test-1'}
    assert {(r['audio_file'], r['generation']): r['error_type'] for r in rows.errors} == expected.errors
    assert len(rows.errors) == len(expected.errors)
    events = assert_events_match_their_rows(output_table, rows.results)
    assert events >= len(rows.results)

    # A streaming pipeline killed between a result's insert and its events' (separate inserts in BigQuery): a
    # newer result row of one file, without its events. The next replay processes that file again.
    torn = next(r for r in rows.results if r['event_count'])
    torn_row = {**torn, 'processed_at': torn['processed_at'] + datetime.timedelta(seconds=1)}
    assert bigquery_store.client().insert_rows_json(bigquery_store.table_id(output_table), [
        {k: (v.isoformat() if hasattr(v, 'isoformat') else v) for k, v in torn_row.items()}]) == []
    torn_key = (torn['audio_file'], torn['generation'])
    assert bigquery_store.key_states(output_table)[torn_key] == RESULT_WITHOUT_EVENTS

    # Replaying the same backlog adds nothing but the torn file's run; a new object and a new generation are all
    # that is processed after that.
    _replay(stack, model_on_local_stack, output_table, log)
    again = Rows.read(output_table, error_table)
    assert again.result_keys == rows.result_keys + collections.Counter({torn_key: 2})
    repaired = max((r for r in again.results if (r['audio_file'], r['generation']) == torn_key),
                   key=lambda r: r['processed_at'])
    assert repaired['processed_at'] > torn_row['processed_at']
    whole = [r for r in again.results  # every row but the torn one
             if ((r['audio_file'], r['generation']), r['processed_at']) != (torn_key, torn_row['processed_at'])]
    assert assert_events_match_their_rows(output_table, whole) == events + repaired['event_count']
    assert set(bigquery_store.key_states(output_table).values()) == {RESULT, PERMANENT_ERROR}
    rows_per_key = {torn_key: 3}  # its first run's, the torn one, the repair
    new, _ = uploader.write(bucket, 'replay/day2/new.wav', wav(5))
    newer, _ = uploader.write(bucket, 'replay/day1/clip 0.wav', wav(6))
    expected.result(f'gs://{bucket}/{new["name"]}', new['generation'])
    expected.result(f'gs://{bucket}/{newer["name"]}', newer['generation'])
    _replay(stack, model_on_local_stack, output_table, log)
    rows = Rows.read(output_table, error_table)
    assert rows.result_keys == {key: rows_per_key.get(key, 1) for key in expected.results}
    assert len(rows.errors) == len(expected.errors)

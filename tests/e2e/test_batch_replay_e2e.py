"""Batch replay over a gs:// glob on the real local stack, into the BigQuery emulator (load jobs).

The pipeline runs as its own process with the same command line as on Dataflow
(plus the emulator variables). The BigQuery emulator reads the load files Beam
writes to the storage emulator from that emulator's data directory (see
``stack/emulators.py``), so FILE_LOADS runs for real.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

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

    # Replaying the same backlog adds nothing; a new object and a new generation are all that is processed.
    _replay(stack, model_on_local_stack, output_table, log)
    assert Rows.read(output_table, error_table).result_keys == rows.result_keys
    assert assert_events_match_their_rows(output_table, rows.results) == events, 'a replay adds no events'
    new, _ = uploader.write(bucket, 'replay/day2/new.wav', wav(5))
    newer, _ = uploader.write(bucket, 'replay/day1/clip 0.wav', wav(6))
    expected.result(f'gs://{bucket}/{new["name"]}', new['generation'])
    expected.result(f'gs://{bucket}/{newer["name"]}', newer['generation'])
    _replay(stack, model_on_local_stack, output_table, log)
    rows = Rows.read(output_table, error_table)
    assert rows.result_keys == {key: 1 for key in expected.results}
    assert len(rows.errors) == len(expected.errors)

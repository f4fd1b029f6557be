"""Streaming end to end on the real local stack: Pub/Sub, Cloud Storage and BigQuery emulators.

Nothing is mocked: the storage emulator holds the objects, the Pub/Sub emulator
carries the Cloud Storage notifications (built by ``stack.uploads`` as Cloud
Storage builds them), the pipeline runs as its own process exactly as
``python -m pipeline.main --input_subscription ...`` on the BundleBasedDirectRunner,
and rows are read back from the BigQuery emulator.
"""
from __future__ import annotations

import time

import pytest

from cloud import notification
from stack import clients, streaming
from stack.processes import is_alive
from stack.uploads import Uploader, publish
from tests.e2e.corpus import (Expected, assert_events_match_their_rows, broken_files, clip, pipeline_log_tail, settle,
                              stack_rows, wait_accounted, wav)

pytestmark = pytest.mark.e2e
GOOD_FILES = 44
REDELIVERED = 10
# Object names as users upload them: the notification, the read and the spectrogram must all cope.
AWKWARD_NAMES = ('clip {i:02d}', '#{i} what?', 'ünïcødé {i}', '-dash {i}', 'deep/er/x {i}', '..dots {i}')


def test_streaming_upload_gives_one_row_per_object_generation(local_stack, model_on_local_stack):
    stack, config = local_stack, local_stack.config
    bucket = config.upload_bucket
    # The test model is untrained: a low event threshold makes its windows into events, to stream some.
    service = streaming.start_pipeline(stack, model_on_local_stack, ['--max_batch_duration_secs', '1',
                                                                     '--event_min_confidence', '0.05'])
    uploader = Uploader(config.topic_path)
    expected = Expected()

    # Wave 1: good clips in every format (some notifications delivered twice), broken files, a text file.
    first_wave = {}
    for i in range(GOOD_FILES // 2):
        ext, data = clip(i)
        first_wave[f'wave1/{AWKWARD_NAMES[i % len(AWKWARD_NAMES)].format(i=i)}.{ext}'] = data
    for name, data in first_wave.items():
        item = uploader.put(bucket, name, data, repeat=2 if len(expected.outcomes) < REDELIVERED else 1)
        expected.result(item.uri, item.generation)
    for name, (data, error_type) in broken_files().items():
        item = uploader.put(bucket, name, data)
        expected.error(item.uri, item.generation, error_type)
    ignored = uploader.put(bucket, 'wave1/readme.txt', b'not audio\n')

    # Overwritten before its notification was read: generation 1 is gone by the time it is read.
    first, _ = uploader.write(bucket, 'wave1/overwritten.wav', wav(1))
    second, replaced = uploader.write(bucket, 'wave1/overwritten.wav', wav(2))
    uploader.announce(first)
    uploader.announce(second, replaced)
    expected.error(f'gs://{bucket}/wave1/overwritten.wav', first['generation'], 'ObjectGone')
    expected.result(f'gs://{bucket}/wave1/overwritten.wav', second['generation'])

    # Deleted before its notification was read (OBJECT_DELETE even arrives first).
    gone, _ = uploader.write(bucket, 'wave1/deleted.wav', wav(3))
    uploader.delete(bucket, 'wave1/deleted.wav')
    uploader.announce(gone)
    expected.error(f'gs://{bucket}/wave1/deleted.wav', gone['generation'], 'ObjectGone')

    wait_accounted(stack, expected.outcomes, 'every first-wave object to have its row')

    # Wave 2 while the pipeline runs, plus redelivery of notifications whose rows already exist.
    for i in range(GOOD_FILES // 2, GOOD_FILES):
        ext, data = clip(i)
        item = uploader.put(bucket, f'wave2/clip {i:02d}.{ext}', data)
        expected.result(item.uri, item.generation)
    publisher = clients.publisher_client()
    storage = clients.storage_client()
    for name in list(first_wave)[:5]:
        blob = storage.bucket(bucket).get_blob(name)
        publish(publisher, config.topic_path, *notification.build_notification(notification.object_resource(
            blob._properties)))

    wait_accounted(stack, expected.outcomes, 'every object to have its row')
    settle(lambda: stack_rows(stack).totals)
    rows = stack_rows(stack)

    uploaded_versions = len(expected.outcomes) + 1  # + the text file
    assert uploaded_versions >= 50
    # Exactly one result row per good object generation, one error row per bad one, nothing else.
    assert rows.result_keys == {key: 1 for key in expected.results}
    assert rows.error_keys == {key: 1 for key in expected.errors}
    assert {(r['audio_file'], r['generation']): r['error_type'] for r in rows.errors} == expected.errors
    assert (ignored.uri, ignored.generation) not in set(rows.result_keys) | set(rows.error_keys)
    gone_messages = [r['message'] for r in rows.errors if r['error_type'] == 'ObjectGone']
    assert all('no longer exists' in m for m in gone_messages), gone_messages
    assert all(r['stage'] == 'read' for r in rows.errors if r['error_type'] == 'ObjectGone')

    # Each result row's events arrive with it (streaming inserts into <table>_events, seconds apart), none twice.
    deadline = time.monotonic() + 60
    while True:
        try:
            assert assert_events_match_their_rows(config.output_table, rows.results) >= len(rows.results)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)

    # Every result row points at a PNG in the storage emulator.
    for row in rows.results:
        assert row['spectrogram_image'].startswith(config.spectrogram_location + '/')
        out_bucket, _, name = row['spectrogram_image'][len('gs://'):].partition('/')
        assert storage.bucket(out_bucket).blob(name).download_as_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
        assert row['label'] and row['model_version'] == 'tiny-test-1'

    # The pipeline stops on SIGTERM, by its pid, and leaves no process behind.
    assert is_alive(service.pid), pipeline_log_tail(stack)
    assert streaming.stop_pipeline(stack), 'the pipeline had to be killed'
    assert not is_alive(service.pid)

"""Faults on the real local stack: the BigQuery or the storage emulator stops mid-stream and comes back.

The emulators are stopped by their pid and restarted on the same port with the
same data, as a service outage would look to the pipeline. The rows of the
files announced during the outage must still arrive, each exactly once.

What these runs cannot show: the DirectRunner acknowledges Pub/Sub messages as
soon as it pulls them, so a *pipeline* crash loses the messages it held (see
docs/local-stack.md); Dataflow acknowledges only after a checkpoint.
"""
from __future__ import annotations

import time

import pytest

from stack import clients, streaming
from cloud.emulators import BIGQUERY, STORAGE
from stack.uploads import Uploader
from tests.e2e.corpus import (WAIT_S, Expected, Rows, broken_files, clip, settle, stack_rows, wait_accounted,
                              wait_for)

pytestmark = pytest.mark.e2e
OUTAGE_S = 15


def _upload_wave(uploader: Uploader, bucket: str, wave: str, first: int, count: int, expected: Expected,
                 announce: bool = True) -> list[dict]:
    written = []
    for i in range(first, first + count):
        ext, data = clip(i)
        resource, _ = uploader.write(bucket, f'{wave}/clip {i:02d}.{ext}', data)
        expected.result(f'gs://{bucket}/{resource["name"]}', resource['generation'])
        written.append(resource)
        if announce:
            uploader.announce(resource)
    return written


def _assert_exactly_once(rows: Rows, expected: Expected) -> None:
    assert rows.result_keys == {key: 1 for key in expected.results}
    assert rows.error_keys == {key: 1 for key in expected.errors}


def _start(stack, model_dir):
    streaming.start_pipeline(stack, model_dir, ['--max_batch_duration_secs', '1'])
    return Uploader(stack.config.topic_path), Expected()


def test_bigquery_outage_mid_stream_loses_and_duplicates_nothing(local_stack, tiny_model_dir):
    stack, bucket = local_stack, local_stack.config.upload_bucket
    uploader, expected = _start(stack, tiny_model_dir)
    _upload_wave(uploader, bucket, 'before', 0, 6, expected)
    wait_accounted(stack, expected.outcomes, 'rows before the outage')

    stack.stop_service(BIGQUERY)
    _upload_wave(uploader, bucket, 'during', 6, 6, expected)
    name, (data, error_type) = next(iter(broken_files().items()))
    broken = uploader.put(bucket, f'during/{name}', data)
    expected.error(broken.uri, broken.generation, error_type)
    # A spectrogram of this wave proves the pipeline reached it while BigQuery was down (its write is then
    # pending; the DirectRunner runs one bundle at a time, so everything else waits behind that write).
    storage = clients.storage_client()
    prefix = stack.config.spectrogram_location[len(f'gs://{stack.config.output_bucket}/'):] + '/during/'
    wait_for(lambda: len(list(storage.list_blobs(stack.config.output_bucket, prefix=prefix))),
             lambda n: n >= 1, WAIT_S, 'the pipeline to reach the files announced during the outage')
    time.sleep(OUTAGE_S)  # the outage lasts a while longer, with a write pending
    stack.start_service(BIGQUERY)

    wait_accounted(stack, expected.outcomes, 'rows of the files announced during the outage')
    settle(lambda: stack_rows(stack).totals)
    _assert_exactly_once(stack_rows(stack), expected)
    assert streaming.stop_pipeline(stack)


def test_storage_outage_mid_stream_loses_and_duplicates_nothing(local_stack, tiny_model_dir):
    stack, bucket = local_stack, local_stack.config.upload_bucket
    uploader, expected = _start(stack, tiny_model_dir)
    _upload_wave(uploader, bucket, 'before', 0, 6, expected)
    wait_accounted(stack, expected.outcomes, 'rows before the outage')

    # Uploaded just before Cloud Storage goes away; the notifications arrive during the outage.
    during = _upload_wave(uploader, bucket, 'during', 6, 6, expected, announce=False)
    stack.stop_service(STORAGE)
    for resource in during:
        uploader.announce(resource)
    time.sleep(OUTAGE_S)  # reads and spectrogram writes of these files fail and are retried meanwhile
    stack.start_service(STORAGE)

    wait_accounted(stack, expected.outcomes, 'rows of the files announced during the outage')
    settle(lambda: stack_rows(stack).totals)
    _assert_exactly_once(stack_rows(stack), expected)
    assert streaming.stop_pipeline(stack)

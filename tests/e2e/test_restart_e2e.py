"""A streaming pipeline killed with SIGKILL mid-drain, then started again: every upload ends exactly once.

Beam's local runner acknowledges Pub/Sub messages when it pulls them, so the notifications it held when it
died are gone from the subscription. The stack starts the pipeline with ``--reconcile`` (stack/config.py):
at its start it lists the bucket and processes every object without a row, drops notifications of objects
that had a row, and its Dedupe drops a notification of an object the listing also found.

"Exactly once" here is stricter than the ``_latest`` view (one row per object version, whatever the raw tables
hold): the raw result table holds exactly one row per good upload and the raw error table one per broken one.
"""
from __future__ import annotations

import os
import re
import signal

import pytest

from stack import clients, streaming
from stack.processes import is_alive
from stack.uploads import Uploader
from tests.e2e.corpus import (WAIT_S, Expected, broken_files, clip, pipeline_log_tail, settle, stack_rows,
                              wait_accounted, wait_for)

pytestmark = pytest.mark.e2e
PER_HALF = 25            # 50 uploads: the first half is announced before the kill, the second while it is down
REPEATED_EVERY = 3       # one upload in three is announced twice (~30% duplicate notifications)


def _pipeline_log(stack) -> str:
    service = stack.services.get('pipeline')
    return open(service.log, errors='replace').read() if service else ''


def _reconcile_line(stack) -> str:
    """The start's tally (transforms.dedupe.tally_line), once the listing has been decided."""
    found = wait_for(lambda: re.findall(r'Reconcile: .*', _pipeline_log(stack)), bool, WAIT_S,
                     'the pipeline to reconcile at its start')
    return found[-1]


def _write_half(uploader: Uploader, bucket: str, half: str, first: int, expected: Expected,
                broken: dict) -> list[dict]:
    """Writes PER_HALF objects (the broken ones last); announces none."""
    resources = []
    for i in range(first, first + PER_HALF - len(broken)):
        ext, data = clip(i)
        resource, _ = uploader.write(bucket, f'{half}/clip {i:02d}.{ext}', data)
        expected.result(f'gs://{bucket}/{resource["name"]}', resource['generation'])
        resources.append(resource)
    for name, (data, error_type) in broken.items():
        resource, _ = uploader.write(bucket, f'{half}/{name}', data)
        expected.error(f'gs://{bucket}/{resource["name"]}', resource['generation'], error_type)
        resources.append(resource)
    return resources


def _announce(uploader: Uploader, resources: list[dict]) -> None:
    for n, resource in enumerate(resources):
        uploader.announce(resource, repeat=2 if n % REPEATED_EVERY == 0 else 1)


def _spectrograms(stack, half: str) -> int:
    config = stack.config
    prefix = config.spectrogram_location[len(f'gs://{config.output_bucket}/'):] + f'/{half}/'
    return len(list(clients.storage_client().list_blobs(config.output_bucket, prefix=prefix)))


@pytest.mark.slow
def test_kill_9_mid_drain_then_restart_leaves_every_upload_exactly_once(local_stack, tiny_model_dir):
    stack, bucket = local_stack, local_stack.config.upload_bucket
    args = ['--max_batch_duration_secs', '1']
    first = streaming.start_pipeline(stack, tiny_model_dir, args)
    assert _reconcile_line(stack).startswith('Reconcile: 0 of 0 ')  # an empty bucket: listed, nothing to do
    uploader, expected = Uploader(stack.config.topic_path), Expected()
    broken = list(broken_files().items())

    # First half, announced to the running pipeline (a third of them twice) in two goes: the first 10 get
    # their rows; it is killed once it has pulled the other 15 and rendered some of them.
    first_half = _write_half(uploader, bucket, 'first', 0, expected, dict(broken[:1]))
    early = first_half[:10]
    _announce(uploader, early)
    wait_accounted(stack, [(f'gs://{bucket}/{r["name"]}', r['generation']) for r in early], 'the first 10 rows')
    _announce(uploader, first_half[10:])
    wait_for(lambda: _spectrograms(stack, 'first'), lambda n: n > len(early), WAIT_S,
             'the pipeline to reach the next uploads', interval=0.1)
    os.kill(first.pid, signal.SIGKILL)
    wait_for(lambda: is_alive(first.pid), lambda alive: not alive, 30, 'the killed pipeline to be gone', 0.1)
    rows = stack_rows(stack)
    had_row_at_kill = len(set(rows.result_keys) | set(rows.error_keys))
    assert len(early) <= had_row_at_kill < PER_HALF, f'not killed mid-drain: {had_row_at_kill} rows'

    # While it is down: the second half is uploaded and announced, and 5 of the first 10 (which have their
    # rows) are announced again.
    _announce(uploader, _write_half(uploader, bucket, 'second', PER_HALF, expected, dict(broken[1:2])))
    for resource in early[:5]:
        uploader.announce(resource)

    second = streaming.start_pipeline(stack, tiny_model_dir, args)
    line = _reconcile_line(stack)
    missing, listed = map(int, re.match(r'Reconcile: (\d+) of (\d+) ', line).groups())
    assert listed == len(expected.outcomes) == 2 * PER_HALF
    assert missing == len(expected.outcomes) - had_row_at_kill  # what the kill lost, and the second half

    wait_accounted(stack, expected.outcomes, 'a row for every upload after the restart')
    rows = settle(lambda: stack_rows(stack), timeout=90)
    assert rows.result_keys == {key: 1 for key in expected.results}
    assert rows.error_keys == {key: 1 for key in expected.errors}
    assert {(r['audio_file'], r['generation']): r['error_type'] for r in rows.errors} == expected.errors
    assert is_alive(second.pid), pipeline_log_tail(stack)
    assert streaming.stop_pipeline(stack)
    print(f'\nrestart figures: {had_row_at_kill} of {PER_HALF} first-half uploads had a row at the kill; '
          f'{line}')

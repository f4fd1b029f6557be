"""A streaming pipeline killed with SIGKILL mid-drain, then started again: every upload ends exactly once.

Beam's local runner acknowledges Pub/Sub messages when it pulls them, so the notifications it held when it
died are gone from the subscription. The stack starts the pipeline with ``--reconcile`` (stack/config.py):
at its start it lists the bucket and processes every object without a row, drops notifications of objects
that had a row, and its Dedupe drops a notification of an object the listing also found.

"Exactly once" here is stricter than the ``_latest`` view (one row per object version, whatever the raw tables
hold): the raw result table holds exactly one row per good upload and the raw error table one per broken one,
and each result row has exactly its events. BigQuery gets a result row and its event rows in separate inserts,
so the kill can fall between them: such a file (``results.tables.RESULT_WITHOUT_EVENTS`` at the kill) is
processed again, and it alone has a second result row, the newer one with its events (the one readers see).
The kill rarely falls there, so the test also makes one such file while the pipeline is down.
"""
from __future__ import annotations

import collections
import datetime
import os
import re
import signal

import pytest

from results import bigquery_store
from results.tables import RESULT_WITHOUT_EVENTS, default_events_table
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
    # The test model is untrained: a low threshold makes its windows into events, to write some.
    args = ['--max_batch_duration_secs', '1', '--event_min_confidence', '0.05']
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
    torn = _torn(stack)
    # The kill rarely falls between a result's insert and its events'; one such file is made here, as the kill
    # would leave it: a newer result row of an early file, without its events.
    made = _tear_one(stack, rows.results, exclude=torn)
    torn_rows = {key: 2 for key in torn} | {made: 3}   # raw result rows in the end: + the repair's

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
    assert f' {len(torn) + 1} had a result row without all its event rows (processed again); ' in line

    wait_accounted(stack, expected.outcomes, 'a row for every upload after the restart')
    rows = settle(lambda: stack_rows(stack), timeout=90)
    assert rows.result_keys == {key: torn_rows.get(key, 1) for key in expected.results}
    assert rows.error_keys == {key: 1 for key in expected.errors}
    _assert_each_newest_result_has_its_events(stack, rows.results)
    assert {(r['audio_file'], r['generation']): r['error_type'] for r in rows.errors} == expected.errors
    assert is_alive(second.pid), pipeline_log_tail(stack)
    assert streaming.stop_pipeline(stack)
    print(f'\nrestart figures: {had_row_at_kill} of {PER_HALF} first-half uploads had a row at the kill '
          f'({len(torn)} without all their events, and 1 made so); {line}')


def _tear_one(stack, results: list[dict], exclude: set) -> tuple[str, str]:
    """Inserts a newer copy of a result row that has events, without them; returns its key."""
    row = next(r for r in results if r['event_count'] and (r['audio_file'], r['generation']) not in exclude)
    row = {**row, 'processed_at': row['processed_at'] + datetime.timedelta(seconds=1)}
    assert bigquery_store.client().insert_rows_json(bigquery_store.table_id(stack.config.output_table), [
        {k: (v.isoformat() if hasattr(v, 'isoformat') else v) for k, v in row.items()}]) == []
    key = (row['audio_file'], row['generation'])
    assert key in _torn(stack)
    return key


def _torn(stack) -> set:
    """The keys whose result row was written and not all of its events (``RESULT_WITHOUT_EVENTS``)."""
    states = bigquery_store.key_states(stack.config.output_table, stack.config.error_table)
    return {key for key, state in states.items() if state == RESULT_WITHOUT_EVENTS}


def _assert_each_newest_result_has_its_events(stack, results: list[dict]) -> None:
    """Each file's newest result row has exactly ``event_count`` distinct events written with it (same
    processed_at): what the dashboard shows. (Event rows of a run whose result row never landed may remain in
    the raw table; no reader shows them.)"""
    events = bigquery_store.read_rows(default_events_table(stack.config.output_table))
    distinct = {(e['audio_file'], e['generation'], e['processed_at'], e['start_seconds'], e['label']) for e in events}
    written = collections.Counter(event[:3] for event in distinct)
    newest: dict = {}
    for row in results:
        key = (row['audio_file'], row['generation'])
        if key not in newest or row['processed_at'] > newest[key]['processed_at']:
            newest[key] = row
    for (uri, generation), row in newest.items():
        assert written[(uri, generation, row['processed_at'])] == row['event_count'], row
    assert sum(row['event_count'] for row in newest.values()) > 0, 'no events written: nothing checked'

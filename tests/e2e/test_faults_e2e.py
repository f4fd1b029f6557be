"""Faults on the real local stack: the BigQuery or the storage emulator stops mid-stream and comes back.

The emulators are stopped by their pid and restarted on the same port with the
same data, as a service outage would look to the pipeline. The rows of the
files announced during the outage must still arrive, each exactly once.

The longer outages below outlast every client retry deadline in play (the Cloud Storage client's own
120 s; the BigQuery client's, which the sink sets to --transient_retry_seconds on the emulator), so
the pipeline's own failure contract (transforms/failures.py, docs/reliability.md) is what keeps the
files: retried in the stage, then a retryable error row that one batch replay repairs, or a failed
bundle that the runner retries. Each prints its figures (run with -s to see them).

What these runs cannot show: the DirectRunner acknowledges Pub/Sub messages as
soon as it pulls them, so a *pipeline* crash loses the messages it held (see
docs/local-stack.md); Dataflow acknowledges only after a checkpoint.
"""
from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from stack import clients, streaming
from cloud.emulators import BIGQUERY, STORAGE
from stack.uploads import Uploader
from results import bigquery_store, schema, sqlite_store, tables
from stack.processes import is_alive
from tests.e2e.corpus import (WAIT_S, Expected, Rows, broken_files, clip, settle, stack_rows, wait_accounted,
                              wait_for)
from tests.helpers import write_bytes, write_clip

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


# Longer than google-cloud-storage's own retry deadline (120 s): its RetryError reaches the stage.
LONG_STORAGE_OUTAGE_S = 150
REPLAY_TIMEOUT_S = 300


def _latest_rows(stack) -> list[dict]:
    view = bigquery_store.table_id(schema.latest_view_name(stack.config.output_table))
    return bigquery_store.read_rows(view)


def _replay(stack, model_dir: str, prefix: str, log_path: str) -> str:
    """One batch replay over the uploads under ``prefix`` into the stack's tables; returns its summary line."""
    config = stack.config
    argv = [sys.executable, '-m', 'pipeline.main', '--input_pattern', f'gs://{config.upload_bucket}/{prefix}/**',
            '--output_table', config.output_table, '--spectrogram_location', config.spectrogram_location,
            '--temp_location', f'gs://{config.output_bucket}/tmp', '--model_uri', model_dir]
    with open(log_path, 'ab') as log:
        done = subprocess.run(argv, env=streaming.pipeline_env(stack), stdout=log, stderr=subprocess.STDOUT,
                              timeout=REPLAY_TIMEOUT_S)
    text = open(log_path, errors='replace').read()
    assert done.returncode == 0, text[-4000:]
    (line,) = re.findall(r'^Replay: .*$', text, re.MULTILINE)
    return line


def _assert_one_latest_row_each(stack, expected: Expected) -> list[dict]:
    latest = _latest_rows(stack)
    keys = [(r['audio_file'], r['generation']) for r in latest if (r['audio_file'], r['generation']) in
            expected.outcomes]
    assert sorted(keys) == sorted(expected.outcomes)  # exactly one row per file version
    for row in latest:
        key = (row['audio_file'], row['generation'])
        if key in expected.outcomes:
            wanted = expected.outcomes[key]
            assert (row['outcome'], row['error_type']) == (('result', None) if wanted is None else ('error', wanted))
    return latest


def _storage_outage_then_one_replay(stack, model_dir, tmp_path, retry_args: list[str]) -> dict:
    bucket = stack.config.upload_bucket
    streaming.start_pipeline(stack, model_dir, ['--max_batch_duration_secs', '1', *retry_args])
    uploader, expected = Uploader(stack.config.topic_path), Expected()
    _upload_wave(uploader, bucket, 'outage/before', 0, 3, expected)
    wait_accounted(stack, expected.outcomes, 'rows before the outage')

    # Uploaded just before Cloud Storage goes away; announced during the outage.
    during = _upload_wave(uploader, bucket, 'outage/during', 3, 4, expected, announce=False)
    name, (data, error_type) = next(iter(broken_files().items()))
    broken, _ = uploader.write(bucket, f'outage/during/{name}', data)
    broken_uri = f'gs://{bucket}/{broken["name"]}'
    expected.error(broken_uri, broken['generation'], error_type)
    stack.stop_service(STORAGE)
    stopped = time.monotonic()
    for resource in during:
        uploader.announce(resource)
    uploader.announce(broken)
    time.sleep(max(0.0, LONG_STORAGE_OUTAGE_S - (time.monotonic() - stopped)))
    stack.start_service(STORAGE)
    outage_s = time.monotonic() - stopped

    # Every file version gets a row: a result, the broken file's error, or a retryable error for a file whose
    # reads outlasted the retries. None is recorded as the file's fault while the outage lasted.
    rows = wait_accounted(stack, expected.outcomes, 'a row for each file announced during the outage')
    settle(lambda: stack_rows(stack).totals)
    rows = stack_rows(stack)
    retryable_before = sorted((r['audio_file'], r['generation']) for r in rows.errors if r['retryable'])
    permanent_during_outage = [r for r in rows.errors if not r['retryable'] and r['audio_file'] != broken_uri]
    assert permanent_during_outage == []

    replay = _replay(stack, model_dir, 'outage', str(tmp_path / 'replay.log'))
    settle(lambda: stack_rows(stack).totals)
    rows = stack_rows(stack)
    assert rows.result_keys == {key: 1 for key in expected.results}  # every good file: exactly one result row
    _assert_one_latest_row_each(stack, expected)
    assert streaming.stop_pipeline(stack)
    figures = {'outage_s': round(outage_s), 'files': len(expected.outcomes), 'good': len(expected.results),
               'retryable_rows_before_replay': len(retryable_before),
               'retryable_good_files': len(set(retryable_before) & expected.results), 'result_rows': len(rows.results),
               'error_rows': len(rows.errors), 'replay': replay}
    print(f'\nstorage outage figures ({" ".join(retry_args) or "production defaults"}): {figures}')
    return figures


@pytest.mark.slow
def test_storage_outage_longer_than_the_clients_deadline_one_replay_repairs_every_file(local_stack, tiny_model_dir,
                                                                                        tmp_path):
    # A short retry budget (30 s < the outage) makes the stage give up: retryable rows, then one replay.
    figures = _storage_outage_then_one_replay(local_stack, tiny_model_dir, tmp_path,
                                              ['--transient_retry_seconds', '30'])
    assert figures['outage_s'] >= LONG_STORAGE_OUTAGE_S
    assert figures['retryable_rows_before_replay'] >= 1  # the outage did outlast the retries
    retried, repaired = map(int, re.findall(r'(\d+) files retried.*?(\d+) repaired', figures['replay'])[0])
    assert retried == figures['retryable_rows_before_replay']  # (the broken file may be one: it then stays failed)
    assert repaired == figures['retryable_good_files']


@pytest.mark.skipif(not os.environ.get('AUDIO_PIPELINE_OUTAGE_AT_DEFAULTS'),
                    reason='takes the production retry budget (600 s) into account: run by hand with '
                           'AUDIO_PIPELINE_OUTAGE_AT_DEFAULTS=1 (figures in docs/reliability.md)')
def test_storage_outage_at_production_defaults_needs_no_replay(local_stack, tiny_model_dir, tmp_path):
    figures = _storage_outage_then_one_replay(local_stack, tiny_model_dir, tmp_path, [])
    assert figures['retryable_rows_before_replay'] == 0  # 600 s of retries ride out a 150 s outage


@pytest.mark.slow
def test_bigquery_outage_longer_than_the_clients_deadline_is_retried_by_the_sink_and_loses_nothing(
        local_stack, tiny_model_dir):
    stack, bucket = local_stack, local_stack.config.upload_bucket
    budget_s = 20  # the emulator's BigQuery client gives up after the budget: RetryError
    streaming.start_pipeline(stack, tiny_model_dir, ['--max_batch_duration_secs', '1',
                                                     '--transient_retry_seconds', str(budget_s)])
    uploader, expected = Uploader(stack.config.topic_path), Expected()
    _upload_wave(uploader, bucket, 'before', 0, 3, expected)
    wait_accounted(stack, expected.outcomes, 'rows before the outage')

    stack.stop_service(BIGQUERY)
    stopped = time.monotonic()
    _upload_wave(uploader, bucket, 'during', 3, 4, expected)
    storage = clients.storage_client()
    prefix = stack.config.spectrogram_location[len(f'gs://{stack.config.output_bucket}/'):] + '/during/'
    wait_for(lambda: len(list(storage.list_blobs(stack.config.output_bucket, prefix=prefix))),
             lambda n: n >= 1, WAIT_S, 'the pipeline to reach the files announced during the outage')
    # Their write is pending now; it outlasts the client's deadline twice (the local runner tries a bundle 4 times).
    time.sleep(2.5 * budget_s)
    stack.start_service(BIGQUERY)
    down_s = time.monotonic() - stopped

    wait_accounted(stack, expected.outcomes, 'rows of the files announced during the outage')
    settle(lambda: stack_rows(stack).totals)
    rows = stack_rows(stack)
    assert set(rows.result_keys) == expected.results and rows.errors == []
    _assert_one_latest_row_each(stack, expected)
    log = pipeline_log(stack)
    # The client's deadline did pass while BigQuery was down; Beam's sink retried the insert (past its own
    # retries the bundle would fail and the runner retry it); nothing was given up.
    assert 'RetryError: Timeout of 20.0s exceeded' in log and 'before retrying _insert_all_rows' in log
    assert 'Giving up after' not in log
    assert streaming.stop_pipeline(stack)
    print(f'\nbigquery outage figures: outage {down_s:.0f} s, budget {budget_s} s, files {len(expected.results)}, '
          f'result rows {len(rows.results)} (view: one per file), error rows {len(rows.errors)}')


def pipeline_log(stack) -> str:
    service = stack.services.get('pipeline')
    return open(service.log, errors='replace').read() if service else ''


def test_a_sqlite_file_locked_longer_than_the_busy_timeout_is_waited_out_not_recorded(tmp_path, tiny_model_dir):
    folder = tmp_path / 'in'
    good = [write_clip(folder, f'clip {i}.wav', seed=i) for i in range(4)]
    bad = write_bytes(folder, 'broken/fake.ogg', b'\x00\x01garbage' * 100)
    db = str(tmp_path / 'out' / 'results.db')
    with sqlite_store.connect(db):
        pass
    # --transient_retry_seconds 60: each write waits 15 s for the lock (transforms.sinks.busy_timeout).
    hold_s = 40
    other = sqlite3.connect(db, timeout=0, check_same_thread=False)
    other.execute('BEGIN IMMEDIATE')  # a real second writer, holding the write lock
    released = threading.Event()

    def release():
        time.sleep(hold_s)
        other.rollback()
        released.set()
    threading.Thread(target=release, daemon=True).start()
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    done = subprocess.run([sys.executable, '-m', 'pipeline.main', '--input_pattern', str(folder / '**'),
                           '--output_table', db, '--spectrogram_location', str(tmp_path / 'out' / 'png'),
                           '--model_uri', tiny_model_dir, '--transient_retry_seconds', '60'],
                          env=env, capture_output=True, text=True, timeout=REPLAY_TIMEOUT_S)
    other.close()
    assert done.returncode == 0, done.stderr[-4000:]
    assert released.is_set()
    assert 'database is locked); retrying' in done.stderr  # the lock did outlast a busy timeout
    results = {r['audio_file'] for r in sqlite_store.read_table(db, tables.PROCESSED)}
    errors = sqlite_store.read_table(db, tables.ERRORS)
    assert results == set(good)
    assert [(e['audio_file'], e['error_type'], e['retryable']) for e in errors] == [(bad, 'NotAudio', False)]
    print(f'\nsqlite lock figures: lock held {hold_s} s, busy timeout 15 s, files {len(good) + 1}, '
          f'result rows {len(results)}, error rows {len(errors)}')


# BigQuery down past everything that retries an insert: the emulator client's deadline (--transient_retry_seconds),
# Beam's 4 tries of _insert_all_rows with its own backoff (~35 s), and the local runner's 4 tries of the bundle.
EVERY_RETRY_BUDGET_S = 1
PAST_EVERY_RETRY_TIMEOUT_S = 420


def _stage_paths(stack, wave: str) -> str:
    return stack.config.spectrogram_location[len(f'gs://{stack.config.output_bucket}/'):] + f'/{wave}/'


def _wait_until_rendered(stack, wave: str) -> None:
    storage = clients.storage_client()
    wait_for(lambda: len(list(storage.list_blobs(stack.config.output_bucket, prefix=_stage_paths(stack, wave)))),
             lambda n: n >= 1, WAIT_S, f'the pipeline to reach the {wave} files', interval=0.5)


def _assert_raw_exactly_once(stack, expected: Expected) -> Rows:
    rows = settle(lambda: stack_rows(stack))
    assert rows.result_keys == {key: 1 for key in expected.results}
    assert rows.error_keys == {key: 1 for key in expected.errors}
    _assert_one_latest_row_each(stack, expected)
    return rows


@pytest.mark.slow
def test_streaming_bigquery_down_past_every_retry_stops_the_local_pipeline_and_a_restart_loses_nothing(
        local_stack, tiny_model_dir):
    stack, bucket = local_stack, local_stack.config.upload_bucket
    args = ['--max_batch_duration_secs', '1', '--transient_retry_seconds', str(EVERY_RETRY_BUDGET_S)]
    first = streaming.start_pipeline(stack, tiny_model_dir, args)
    uploader, expected = Uploader(stack.config.topic_path), Expected()
    _upload_wave(uploader, bucket, 'before', 0, 3, expected)
    wait_accounted(stack, expected.outcomes, 'rows before the outage')

    stack.stop_service(BIGQUERY)
    stopped = time.monotonic()
    _upload_wave(uploader, bucket, 'during', 3, 4, expected)
    _wait_until_rendered(stack, 'during')
    # Every retry gives up in turn; the local runner then fails the pipeline, which exits. (Dataflow would
    # retry the bundle for as long as BigQuery stays down.) Nothing was acknowledged in vain: the restart's
    # reconciliation finds the files without a row.
    wait_for(lambda: is_alive(first.pid), lambda alive: not alive, PAST_EVERY_RETRY_TIMEOUT_S,
             'the local runner to give up on the pending insert')
    log = pipeline_log(stack)
    assert 'before retrying _insert_all_rows' in log and 'Giving up after 4 attempts' in log
    stack.start_service(BIGQUERY)
    down_s = time.monotonic() - stopped
    assert not stack_rows(stack).accounts_for(expected.outcomes)  # the outage did cost rows, for now

    streaming.start_pipeline(stack, tiny_model_dir, args)
    wait_accounted(stack, expected.outcomes, 'rows of the files pending when the pipeline gave up')
    rows = _assert_raw_exactly_once(stack, expected)
    assert rows.errors == []
    reconcile = re.findall(r'Reconcile: .*', pipeline_log(stack))
    assert streaming.stop_pipeline(stack)
    print(f'\nbigquery outage past every retry (streaming): down {down_s:.0f} s, budget {EVERY_RETRY_BUDGET_S} s, '
          f'files {len(expected.results)}, result rows {len(rows.results)}, error rows {len(rows.errors)}; '
          f'after the restart: {reconcile[-1] if reconcile else "no reconcile line"}')


@pytest.mark.slow
def test_batch_bigquery_down_past_every_retry_fails_the_run_and_the_same_command_again_loses_nothing(
        local_stack, tiny_model_dir, tmp_path):
    stack, bucket, config = local_stack, local_stack.config.upload_bucket, local_stack.config
    uploader, expected = Uploader(config.topic_path), Expected()
    _upload_wave(uploader, bucket, 'batch', 0, 5, expected, announce=False)
    name, (data, error_type) = next(iter(broken_files().items()))
    broken, _ = uploader.write(bucket, f'batch/{name}', data)
    expected.error(f'gs://{bucket}/{broken["name"]}', broken['generation'], error_type)
    argv = [sys.executable, '-m', 'pipeline.main', '--reconcile', '--input_pattern', f'gs://{bucket}/batch/**',
            '--output_table', config.output_table, '--spectrogram_location', config.spectrogram_location,
            '--temp_location', f'gs://{config.output_bucket}/tmp', '--model_uri', tiny_model_dir,
            '--transient_retry_seconds', str(EVERY_RETRY_BUDGET_S)]
    log_path = tmp_path / 'batch.log'
    with open(log_path, 'wb') as log:
        run = subprocess.Popen(argv, env=streaming.pipeline_env(stack), stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_rendered(stack, 'batch')   # the keys were read; the load jobs are still to come
            stack.stop_service(BIGQUERY)
            stopped = time.monotonic()
            returncode = run.wait(timeout=PAST_EVERY_RETRY_TIMEOUT_S)
        finally:
            run.kill()
    stack.start_service(BIGQUERY)
    down_s = time.monotonic() - stopped
    text = log_path.read_text(errors='replace')
    assert returncode != 0, text[-4000:]   # the run fails, loudly; no row claims a file was bad
    assert stack_rows(stack).totals == (0, 0)

    again = subprocess.run(argv, env=streaming.pipeline_env(stack), capture_output=True, text=True,
                           timeout=REPLAY_TIMEOUT_S)
    assert again.returncode == 0, again.stderr[-4000:]
    (line,) = re.findall(r'^Reconcile: .*$', again.stdout, re.MULTILINE)
    assert line.startswith(f'Reconcile: {len(expected.outcomes)} of {len(expected.outcomes)} ')
    rows = _assert_raw_exactly_once(stack, expected)
    print(f'\nbigquery outage past every retry (batch): down {down_s:.0f} s, first run exit {returncode}, '
          f'then: {line} -> result rows {len(rows.results)}, error rows {len(rows.errors)}')

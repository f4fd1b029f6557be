"""Watch mode end to end: ``python -m pipeline.main --watch`` as a real process over a folder (and a storage
emulator bucket), files appearing while it runs, a ``kill -9`` mid-run and a restart with the same command.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from audio import encode, synth
from results import sqlite_store
from tests.helpers import write_clip

pytestmark = pytest.mark.e2e
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INTERVAL = '0.5'


def start_watch(pattern: str, db, spectrograms, model: str, log_path, env=None) -> subprocess.Popen:
    with open(log_path, 'a') as log:
        return subprocess.Popen(
            [sys.executable, '-m', 'pipeline.main', '--input_pattern', pattern, '--watch', '--watch_interval_seconds',
             INTERVAL, '--output_table', str(db), '--spectrogram_location', str(spectrograms), '--model_uri', model],
            cwd=REPO, env=dict(env or os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2'), stdout=log,
            stderr=subprocess.STDOUT)


def keys(db) -> list[tuple[str, str]]:
    if not os.path.exists(db):
        return []
    return [(r['audio_file'], r['generation']) for table in ('processed', 'errors')
            for r in sqlite_store.read_table(str(db), table)]


def wait_for(condition, timeout: float, what: str, log_path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f'{what} within {timeout} s; watcher log:\n{open(log_path).read()[-4000:]}')


def current_keys(folder) -> set[tuple[str, str]]:
    return {(os.path.join(d, n), str(os.stat(os.path.join(d, n)).st_mtime_ns))
            for d, _, names in os.walk(folder) for n in names}


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def test_new_files_and_versions_once_and_a_kill_9_loses_and_repeats_nothing(tmp_path, tiny_model_dir):
    folder, db, spectrograms, log = tmp_path / 'in', tmp_path / 'results.db', tmp_path / 'img', tmp_path / 'w.log'
    first = [write_clip(folder, f'first/{i:02d} take.wav', seconds=1.0, seed=i) for i in range(6)]
    pattern = f'{folder}/**'
    proc = start_watch(pattern, db, spectrograms, tiny_model_dir, log)
    try:
        wait_for(lambda: len(keys(db)) == len(first), 180, 'rows for the files there at the start', log)
        # All 30 appear at once (written elsewhere, then one rename, as a copy tool's final step does), so one
        # listing sees them together however fast the runs before it were.
        staging = tmp_path / 'staging'
        for i in range(30):
            # One modification time for all: the watcher takes a file whose mtime is already old as complete on
            # first sight, and a newer one after a second listing, which would split the 30 into two runs.
            os.utime(write_clip(staging, f'second/{i:02d}.wav', seconds=1.0, seed=20 + i), (1.7e9, 1.7e9))
        os.rename(staging / 'second', folder / 'second')
        second = [os.path.join(folder, 'second', f'{i:02d}.wav') for i in range(30)]
        first += second
        wait_for(lambda: '30 new files' in open(log).read(), 60, 'a run over the 30 new files', log)
        time.sleep(0.3)
        proc.kill()  # kill -9, in the middle of that run
        proc.wait(timeout=30)
        before = {(r['audio_file'], r['generation']): r['processed_at']
                  for r in sqlite_store.read_table(str(db), 'processed')}
        # While it is down: new files, a new version of one already done, and one still being written.
        during = [write_clip(folder, f'during/{i}.flac', kind='flac', seconds=1.0, seed=40 + i) for i in range(3)]
        redone = next(iter(before))[0]
        write_clip(folder, os.path.relpath(redone, folder), seconds=2.0, seed=99)
        slow_path = folder / 'slow.wav'
        slow = encode.encode(synth.make('tone', __import__('numpy').random.default_rng(5), 3.0, 16000), 16000, 'wav')
        slow_file = open(slow_path, 'wb')
        slow_file.write(slow[:len(slow) // 4])
        slow_file.flush()

        proc = start_watch(pattern, db, spectrograms, tiny_model_dir, log)  # the same command
        for i in range(1, 4):  # keeps writing for longer than several intervals
            time.sleep(0.6)
            slow_file.write(slow[i * len(slow) // 4:(i + 1) * len(slow) // 4])
            slow_file.flush()
        slow_file.write(slow[len(slow) // 4 * 4:])
        slow_file.close()
        after_start = [write_clip(folder, 'after/new.ogg', kind='ogg', seconds=1.0, seed=77)]

        expected = current_keys(folder)
        wait_for(lambda: expected <= set(keys(db)), 240, 'a row for every file', log)
        time.sleep(3 * float(INTERVAL) + 1)  # a few more listings: nothing more may be written
        rows = keys(db)
        assert len(rows) == len(set(rows)), 'no (file, generation) twice'
        assert set(rows) == expected | set(before), 'the current version of every file, and nothing else new'
        assert sqlite_store.read_table(str(db), 'errors') == [], 'the half-written file was not read half-written'
        processed = {(r['audio_file'], r['generation']): r for r in sqlite_store.read_table(str(db), 'processed')}
        for key, processed_at in before.items():
            assert processed[key]['processed_at'] == processed_at, f'{key} was processed again after the restart'
        slow_row = next(r for k, r in processed.items() if k[0] == str(slow_path))
        assert abs(slow_row['duration_seconds'] - 3.0) < 0.01
        assert {k[0] for k in processed} >= set(first + during + after_start)
        assert sum(1 for k in processed if k[0] == redone) == 2, 'the new version of a done file got its own row'
        assert stop(proc) == 0
        assert 'Stopped.' in open(log).read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_watches_a_bucket_on_the_storage_emulator(tmp_path, tiny_model_dir):
    from stack import clients
    from tests.app.emulators import storage_emulator

    with storage_emulator(str(tmp_path / 'storage.log')) as host:
        env = dict(os.environ, STORAGE_EMULATOR_HOST=host)
        os.environ['STORAGE_EMULATOR_HOST'] = host
        try:
            storage = clients.storage_client()
            bucket = storage.create_bucket('watched')
            wav = encode.encode(synth.make('chirp', __import__('numpy').random.default_rng(1), 1.0, 16000), 16000,
                                'wav')
            bucket.blob('uploads/one.wav').upload_from_string(wav)
            db, log = tmp_path / 'results.db', tmp_path / 'w.log'
            proc = start_watch('gs://watched/uploads/**', db, 'gs://watched/spectrograms', tiny_model_dir, log, env)
            try:
                wait_for(lambda: len(keys(db)) == 1, 180, 'the first object\'s row', log)
                bucket.blob('uploads/two.wav').upload_from_string(wav)
                bucket.blob('uploads/one.wav').upload_from_string(wav + b'')  # a new generation of the same name
                live = {(f'gs://watched/{b.name}', str(b.generation)) for b in bucket.list_blobs(prefix='uploads/')}
                wait_for(lambda: live <= set(keys(db)), 120, 'rows for the new objects', log)
                time.sleep(3 * float(INTERVAL) + 1)
                rows = keys(db)
                assert len(rows) == 3 and len(set(rows)) == 3, rows
                assert all(r['spectrogram_image'].startswith('gs://watched/spectrograms/')
                           for r in sqlite_store.read_table(str(db), 'processed'))
                assert stop(proc) == 0
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=30)
        finally:
            del os.environ['STORAGE_EMULATOR_HOST']

"""End to end on the embedded default: a real batch run of ``pipeline.main`` over generated files."""
import os

import pytest
from PIL import Image

from pipeline.main import run
from results import sqlite_store, tables
from tests.helpers import DEMO_LABELS, write_bytes, write_clip

pytestmark = pytest.mark.e2e


def run_pipeline(folder, db, spectrograms, model, *extra):
    return run(['--input_pattern', f'{folder}/**', '--output_table', str(db), '--spectrogram_location',
                str(spectrograms), '--model_uri', model, '--direct_num_workers', '1', *extra])


def test_every_input_is_accounted_for_exactly_once(mixed_audio_dir, tiny_model_dir, tmp_path):
    folder, good, bad = mixed_audio_dir
    db, spectrograms = tmp_path / 'results.db', tmp_path / 'spectrograms'
    assert run_pipeline(folder, db, spectrograms, tiny_model_dir) == 0

    processed = {r['audio_file']: r for r in sqlite_store.read_table(str(db), 'processed')}
    errors = {r['audio_file']: r for r in sqlite_store.read_table(str(db), 'errors')}
    assert set(processed) == set(good), 'every good file (12 formats) has a result row'
    assert set(errors) == set(bad), 'every bad file has an error row'
    assert not set(processed) & set(errors)
    for path, expected_type in bad.items():
        assert errors[path]['stage'] == 'decode' and errors[path]['error_type'] == expected_type, errors[path]
        assert errors[path]['message']
    for row in processed.values():
        assert row['label'] in DEMO_LABELS and 0 < row['confidence'] <= 1
        assert [s['label'] for s in row['scores']] == list(DEMO_LABELS)
        assert row['model_version'] == 'tiny-test-1' and row['generation']
        assert row['spectrogram_image'].startswith(str(spectrograms) + '/')
        with Image.open(row['spectrogram_image']) as image:
            assert image.format == 'PNG' and image.width > 100
    assert len(os.listdir(spectrograms)) > 0


def test_replay_adds_no_rows_and_reprocess_redoes_everything(tmp_path, tiny_model_dir):
    folder = tmp_path / 'in'
    for i in range(3):
        write_clip(folder, f'c{i}.wav', seconds=1.0, seed=i)
    (folder / 'bad.wav').write_bytes(b'nope')
    db, spectrograms = tmp_path / 'r.db', tmp_path / 's'
    assert run_pipeline(folder, db, spectrograms, tiny_model_dir) == 0
    first = sqlite_store.read_table(str(db), 'processed')
    assert sqlite_store.counts(str(db)) == (3, 1)

    assert run_pipeline(folder, db, spectrograms, tiny_model_dir) == 0
    assert sqlite_store.read_table(str(db), 'processed') == first, 'a replay leaves the rows untouched'

    write_clip(folder, 'c3.wav', seconds=1.0, seed=3)
    assert run_pipeline(folder, db, spectrograms, tiny_model_dir) == 0
    assert sqlite_store.counts(str(db)) == (4, 1), 'only the new file is processed'

    assert run_pipeline(folder, db, spectrograms, tiny_model_dir, '--reprocess') == 0
    again = sqlite_store.read_table(str(db), 'processed')
    assert sqlite_store.counts(str(db)) == (4, 1), 'reprocessing replaces rows, never duplicates them'
    assert {r['processed_at'] for r in again}.isdisjoint({r['processed_at'] for r in first})


def test_over_the_duration_limit_is_an_error_row_and_the_rest_goes_on(tmp_path, tiny_model_dir):
    folder = tmp_path / 'in'
    write_clip(folder, 'long.flac', 'flac', seconds=12.0)
    write_clip(folder, 'short.wav', seconds=1.0)
    db = tmp_path / 'r.db'
    assert run_pipeline(folder, db, tmp_path / 's', tiny_model_dir, '--max_duration_seconds', '10') == 0
    [error] = sqlite_store.read_table(str(db), 'errors')
    assert error['audio_file'].endswith('long.flac') and error['error_type'] == 'TooLong'
    assert 'not decoded' in error['message']
    assert [r['audio_file'].rsplit('/', 1)[-1] for r in sqlite_store.read_table(str(db), 'processed')] == ['short.wav']


def test_bad_options_exit_2_without_running(capsys):
    assert run(['--input_pattern', 'x', '--output_table', 'bad table']) == 2
    assert 'invalid pipeline options' in capsys.readouterr().err


def test_own_outputs_under_the_input_folder_are_not_reingested(tmp_path, tiny_model_dir):
    folder = tmp_path / 'bucket'
    write_clip(folder, 'a.wav', seconds=1.0)
    spectrograms = folder / 'spectrograms'
    db = tmp_path / 'r.db'
    assert run_pipeline(folder, db, spectrograms, tiny_model_dir, '--reprocess') == 0
    assert run_pipeline(folder, db, spectrograms, tiny_model_dir, '--reprocess') == 0
    assert sqlite_store.counts(str(db)) == (1, 0)


def test_a_replay_repairs_a_retryable_error_and_says_so(tmp_path, tiny_model_dir, capsys):
    from cloud.objects import local_generation

    folder = tmp_path / 'in'
    clips = [write_clip(folder, f'c{i}.wav', seconds=1.0, seed=i) for i in range(2)]
    db, spectrograms = tmp_path / 'r.db', tmp_path / 's'
    assert run_pipeline(folder, db, spectrograms, tiny_model_dir) == 0
    with sqlite_store.connect(str(db)) as conn:  # as if an outage had outlasted the retries for c0
        conn.execute('DELETE FROM processed WHERE audio_file = ?', (clips[0],))
        sqlite_store.write_errors(conn, [{
            'audio_file': clips[0], 'generation': local_generation(clips[0]), 'stage': 'read',
            'error_type': 'RetryError', 'message': 'storage down', 'failed_at': '2026-11-26T07:00:00.000000Z',
            'retryable': True, 'attempts': 12}])
    capsys.readouterr()
    assert run_pipeline(folder, db, spectrograms, tiny_model_dir, '--progress') == 0
    out = capsys.readouterr().out
    assert '1 files ok, 0 failed, 1 skipped' in out
    assert 'replay: 1 files retried' in out and '1 repaired (now have a result)' in out
    assert sqlite_store.counts(str(db)) == (2, 0)


def test_reconcile_processes_what_has_no_row_and_says_how_many(tmp_path, tiny_model_dir, capsys):
    folder = tmp_path / 'in'
    clips = [write_clip(folder, f'c{i}.wav', seconds=1.0, seed=i) for i in range(3)]
    write_bytes(folder, 'notes.txt', b'not audio\n')   # streaming would ignore it: so does reconciliation
    db, spectrograms = tmp_path / 'r.db', tmp_path / 's'
    events = ('--event_min_confidence', '0.05')  # the untrained test model's windows become events
    assert run_pipeline(folder, db, spectrograms, tiny_model_dir, '--reconcile', *events) == 0
    assert f'Reconcile: 3 of 3 audio objects under {folder}/** had no row' in capsys.readouterr().out
    with sqlite_store.connect(str(db)) as conn:  # as if c0's notification had been lost, and c1's events
        conn.execute('DELETE FROM processed WHERE audio_file = ?', (clips[0],))
        conn.execute('DELETE FROM events WHERE audio_file = ?', (clips[1],))
    assert run_pipeline(folder, db, spectrograms, tiny_model_dir, '--reconcile', '--progress', *events) == 0
    out = capsys.readouterr().out
    assert (f'Reconcile: 1 of 3 audio objects under {folder}/** had no row (processed by this run); '
            '0 had only retryable errors (retried); 1 had a result row without all its event rows (processed '
            'again); 1 were done.') in out
    assert 'replay: 1 files had a result row without all its event rows (processed again).' in out
    assert sqlite_store.counts(str(db)) == (3, 0)
    assert {state for state in sqlite_store.key_states(str(db)).values()} == {tables.RESULT}


def test_the_output_is_progress_and_summary_without_third_party_start_up_chatter(tmp_path, tiny_model_dir):
    import subprocess
    import sys

    write_clip(tmp_path / 'in', 'a.wav')
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}  # as a user runs it, no make
    args = [sys.executable, '-m', 'pipeline.main', '--input_pattern', f'{tmp_path}/in/**', '--output_table',
            str(tmp_path / 'r.db'), '--spectrogram_location', str(tmp_path / 's'), '--model_uri', tiny_model_dir,
            '--inference_runtime', 'savedmodel', '--progress']
    quiet = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert 'Done in' in quiet.stdout and 'Processing 1 files' in quiet.stderr
    for noise in ('oneDNN', 'absl::InitializeLog', 'Resource module is not available'):
        assert noise not in quiet.stderr, quiet.stderr
    # What --verbose brings back depends on the CPU (TensorFlow logs its oneDNN line only on some) and on the
    # libraries' wording: tests/pipeline/test_main.py checks what this project sets for it instead.
    verbose = subprocess.run(args + ['--reprocess', '--verbose'], capture_output=True, text=True, env=env,
                             timeout=300)
    assert verbose.returncode == 0 and 'Done in' in verbose.stdout, verbose.stderr

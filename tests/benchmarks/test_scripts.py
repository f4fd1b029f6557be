"""Each benchmark script runs end to end on a handful of generated files and writes its table and JSON.

Smoke tests only: they check that the scripts work and report consistent counts, never how fast anything was.
"""
import json
import os
import subprocess
import sys

import pytest

from benchmarks.inputs import generate_clips

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.e2e


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp('bench') / 'clips'
    generate_clips(str(folder), 6, min_s=0.2, max_s=0.6)
    return str(folder)


def _run(module, *args, tmp_path):
    out = str(tmp_path / 'result.json')
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2')
    done = subprocess.run([sys.executable, '-m', f'benchmarks.{module}', *args, '--out', out], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out) as f:
        return done.stdout, json.load(f)


@pytest.mark.slow
def test_throughput_compares_the_three_on_the_same_files(clips, tiny_model_dir, tmp_path):
    # One set end to end (each set is a handful of process trees); the clips5 set's audio is checked below.
    stdout, payload = _run('throughput', '--sets', 'fsdd', '--input', clips, '--cache', str(tmp_path / 'cache'),
                           '--model', tiny_model_dir, '--repeats', '1', '--original-every', '2', '--modes', 'threads',
                           tmp_path=tmp_path)
    assert set(payload['sets']) == {'fsdd'}
    result = payload['sets']['fsdd']
    assert result['files'] == 6 and result['original_files'] == 3
    assert [r['files'] for r in result['runs']['a']] == [6] and result['runs']['c'][0]['files'] == 6
    assert result['runs']['b'][0]['files'] == 3
    assert all(r['cores'] > 0 for key in ('a', 'b', 'c', 'c_work') for r in result['runs'][key])
    assert set(result['ratios']) >= {'a/b', 'a/c', 'a/c (work only)', "a'(threads)/b"}
    assert [r['files'] for r in result['runs']['a_threads']] == [6]   # the forced running mode, beside (a)
    # (a) is launched as a user launches it: no worker count, running mode or runtime of the benchmark's own.
    (a_argv,), (threads_argv,) = [[r['argv'] for r in result['runs'][key]] for key in ('a', 'a_threads')]
    assert [arg for arg in a_argv if arg.startswith('--')] == ['--input_pattern', '--output_table',
                                                               '--spectrogram_location', '--model_uri']
    assert threads_argv[-2:] == ['--direct_running_mode', 'multi_threading'] and len(threads_argv) == len(a_argv) + 2
    assert result['workers'] == os.cpu_count()   # (b) and (c) get as many processes as the pipeline has workers ...
    # ... but no more than the chunks of files they have to share (run_loop): one process for 6 and for 3 files.
    assert [r['processes'] for key in ('b', 'c', 'c_work') for r in result['runs'][key]] == [1, 1, 1]
    assert 'pyplot figure + savefig' in result['steps_seconds_per_file']['b'][0]
    assert '(a) pipeline, end to end' in stdout and 'a/b' in stdout and 'cores (CPU/wall)' in stdout


def test_the_clips5_set_is_that_many_5_s_clips_at_44_1_khz_made_once(tmp_path):
    import soundfile

    from benchmarks.throughput import input_sets

    ((name, description, folder, files),) = input_sets(['clips5'], 2, None, 0, cache=str(tmp_path))
    assert (name, len(files)) == ('clips5', 2) and '2 generated 5-s' in description
    assert [(soundfile.info(f).samplerate, soundfile.info(f).channels, soundfile.info(f).frames) for f in files] == \
        [(44100, 1, 5 * 44100)] * 2
    stamps = [os.stat(f).st_mtime_ns for f in files]
    assert [f for *_, f in input_sets(['clips5'], 2, None, 0, cache=str(tmp_path))] == [files]   # kept, not remade
    assert [os.stat(f).st_mtime_ns for f in files] == stamps


def test_steady_state_is_read_from_the_rows_and_the_cpu_timeline(tmp_path):
    """Rows 10%..90% of the way through, and the tree's CPU over the same span."""
    from audio.records import AudioInfo, AudioObject, Classification, ProcessedAudio
    from benchmarks.pipeline_run import steady_state
    from results import schema, sqlite_store

    table = str(tmp_path / 'r.db')
    t0 = 1_800_000_000.0
    rows = [schema.processed_row(ProcessedAudio(AudioObject(uri=f'/x/{i}.wav', name=f'{i}.wav', generation='1'),
                                                AudioInfo(8000, 1, 0.5), f'/x/{i}.png'),
                                 Classification('tone', 1.0, (('tone', 1.0),), 'v', 1), t0 + 0.5 * i)
            for i in range(101)]   # 2 rows a second
    with sqlite_store.connect(table) as conn:
        sqlite_store.write_processed(conn, rows)
    timeline = [(t0 + 0.1 * k, 0.15 * k) for k in range(600)]   # 1.5 cores
    rate, cores = steady_state(table, timeline)
    assert rate == pytest.approx(2.0) and cores == pytest.approx(1.5)


def test_stages_times_every_stage(clips, tiny_model_dir, tmp_path):
    stdout, result = _run('stages', '--input', clips, '--model', tiny_model_dir, '--files', '4', '--repeats', '1',
                          tmp_path=tmp_path)
    names = set(result['stages'])
    assert {'read + decode (own rate)', 'spectrogram PNG (STFT, image, encode)', 'row, batched (500 per commit)',
            'inference SavedModel: model call, batch of 64 (per window)',
            'inference LiteRT through the handler, 5-s files, 63 windows a batch (per window)',
            'inference SavedModel through the handler, 5-s files, 63 windows a batch (per window)',
            '5 s clip: spectrogram PNG (target <= 10 ms)'} <= names
    assert all(s['cpu_ms']['median'] >= 0 for s in result['stages'].values())
    assert 'spectrogram PNG' in stdout


def test_memory_measures_a_long_file_and_short_files(clips, tiny_model_dir, tmp_path):
    stdout, result = _run('memory', '--hours', '0.01', '--workers', '1', '--counts', '3', '--input', clips,
                          '--model', tiny_model_dir, '--cache', str(tmp_path / 'cache'), tmp_path=tmp_path)
    long_run, short_run = result['runs']
    assert long_run['case'] == '0.01-hour file' and long_run['ok_rows'] == 1
    assert short_run['files'] == 3 and short_run['ok_rows'] == 3
    assert long_run['peak_rss_mib'] > 0 and long_run['max_processes'] >= 1
    assert 'tree RSS MiB' in stdout


def test_scaling_fits_a_line_through_the_runs(clips, tiny_model_dir, tmp_path):
    stdout, result = _run('scaling', '--input', clips, '--model', tiny_model_dir, '--counts', '2,6',
                          '--workers', '1', '--repeats', '1', tmp_path=tmp_path)
    assert [(r['files'], r['rows']) for r in result['runs']] == [(2, 2), (6, 6)]
    assert set(result['fits']) == {'workers 1'}
    assert 'marginal files/s' in stdout


def test_a_run_is_launched_with_the_users_command_plus_only_the_flags_asked_for():
    from benchmarks.pipeline_run import pipeline_args
    from pipeline.options import DEFAULT_MODEL_URI

    assert pipeline_args('/in', DEFAULT_MODEL_URI, '/out') == [
        '--input_pattern', '/in/**', '--output_table', '/out/results.db', '--spectrogram_location', '/out/spectrograms']
    assert pipeline_args('/in', '/m', '/out', 2, 'multi_processing', ['--events=false'])[6:] == [
        '--model_uri', '/m', '--direct_num_workers', '2', '--direct_running_mode', 'multi_processing', '--events=false']


def test_storage_metadata_measures_both_ways_per_step(tmp_path):
    stdout, payload = _run('storage_metadata', '--objects', '30', '--step', '10', tmp_path=tmp_path)
    assert {kind: len(values) for kind, values in payload['cpu_ms_per_write'].items()} == {'rewrite': 3, 'journal': 3}
    assert 'journal' in stdout and 'rewrite' in stdout

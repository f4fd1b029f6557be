"""The command line's answers to a user's mistakes: exit codes and messages of ``python -m pipeline.main``."""
import logging
import os
import subprocess
import sys

import pytest

from model.native_logs import info_logs_hidden
from pipeline.main import quiet_startup, run
from pipeline.options import DEFAULT_MODEL_URI, OPTIONS


def local_args(tmp_path, pattern, model):
    return ['--input_pattern', pattern, '--output_table', str(tmp_path / 'r.db'),
            '--spectrogram_location', str(tmp_path / 's'), '--model_uri', model]


def error_of(capsys, argv) -> str:
    assert run(argv) == 2
    return capsys.readouterr().err


def test_a_mistyped_option_stops_the_run_and_names_the_close_match(tmp_path):
    env = {**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'}
    done = subprocess.run([sys.executable, '-m', 'pipeline.main', *local_args(tmp_path, f'{tmp_path}/**', 'm'),
                           '--event_min_confidense', '0.9'], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert 'unknown option --event_min_confidense (did you mean --event_min_confidence?)' in done.stderr
    assert not (tmp_path / 'r.db').exists(), 'nothing ran'


def test_a_dash_spelling_says_which_argument_and_what_to_use(capsys, tmp_path):
    err = error_of(capsys, ['--input-pattern', 'x/**', '--output_table', 'r.db', '--spectrogram_location', 's'])
    assert 'unknown option --input-pattern: options are spelled with underscores, use --input_pattern' in err
    err = error_of(capsys, ['--input_pattern=x/**', '--output-table=r.db'])
    assert 'unknown option --output-table' in err and 'use --output_table' in err


def test_every_unknown_option_is_listed_and_beam_and_dataflow_options_are_not_unknown(capsys, tmp_path):
    err = error_of(capsys, [*local_args(tmp_path, 'x/**', 'm'), '--reprocces', '--zzz_nothing_like_it', '1',
                            '--direct_num_workers', '2', '--experiments=a', '--project', 'p', '--max_num_workers', '3'])
    assert 'unknown option --reprocces (did you mean --reprocess?)' in err
    assert 'unknown option --zzz_nothing_like_it (python -m pipeline.main --help lists the options)' in err
    for beam_option in ('--direct_num_workers', '--experiments', '--project', '--max_num_workers'):
        assert beam_option not in err


def test_a_stray_argument_and_a_bad_value_are_refused(capsys):
    assert 'unexpected argument' in error_of(capsys, ['demo/input'])
    err = error_of(capsys, ['--input_pattern', 'x', '--min_batch_size', 'ten'])
    assert "argument --min_batch_size: invalid int value: 'ten'" in err


def test_a_missing_model_folder_is_one_line_and_early(capsys, tmp_path):
    (tmp_path / 'in').mkdir()
    err = error_of(capsys, local_args(tmp_path, f'{tmp_path}/in/**', str(tmp_path / 'no-model')))
    assert f'--model_uri: no such folder {tmp_path}/no-model' in err
    assert 'Traceback' not in err and len(err.strip().splitlines()) == 2   # "error: invalid ...", the problem


def test_a_folder_without_metadata_is_not_a_model(capsys, tmp_path):
    (tmp_path / 'in').mkdir()
    (tmp_path / 'empty-model').mkdir()
    assert 'has no metadata.json' in error_of(capsys, local_args(tmp_path, f'{tmp_path}/in/**',
                                                                  str(tmp_path / 'empty-model')))


def test_the_missing_default_model_says_how_to_make_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr('pipeline.options.os.path.isdir', lambda path: path != DEFAULT_MODEL_URI)
    err = error_of(capsys, ['--input_pattern', f'{tmp_path}/**', '--output_table', str(tmp_path / 'r.db'),
                            '--spectrogram_location', str(tmp_path / 's')])
    assert 'the demo model: make model trains it' in err


@pytest.mark.parametrize('pattern,needle', [
    ('{tmp}/missing/**', 'no such folder {tmp}/missing, so {tmp}/missing/** can match no file'),
    ('{tmp}/missing/*/x.wav', 'no such folder {tmp}/missing'),
    ('{tmp}/in', "{tmp}/in is a folder: give a pattern of its files, e.g. '{tmp}/in/**'"),
    ('{tmp}/in/a.wav', 'no such file {tmp}/in/a.wav'),
])
def test_a_pattern_that_can_never_match_is_an_error(capsys, tmp_path, tiny_model_dir, pattern, needle):
    (tmp_path / 'in').mkdir()
    err = error_of(capsys, local_args(tmp_path, pattern.format(tmp=tmp_path), tiny_model_dir))
    assert f'--input_pattern: {needle.format(tmp=tmp_path)}' in err


def test_a_pattern_that_matches_nothing_says_so(capsys, tmp_path, tiny_model_dir):
    (tmp_path / 'in').mkdir()
    (tmp_path / 'in' / 'notes.txt').write_text('x')
    assert run(local_args(tmp_path, f'{tmp_path}/in/**/*.wav', tiny_model_dir)) == 0
    assert f'No file matched --input_pattern {tmp_path}/in/**/*.wav: nothing to do.' in capsys.readouterr().err


def test_help_shows_defaults_plain_flags_and_no_markup():
    out = subprocess.run([sys.executable, '-m', 'pipeline.main', '--help'], capture_output=True, text=True,
                         timeout=120).stdout
    flat = ' '.join(out.split())
    assert '``' not in out and '`' not in out
    for option in OPTIONS:
        if option.is_flag:
            assert f'[{option.name.upper()}]' not in out
    assert '--reprocess Batch replay' in flat and 'Default: off.' in flat
    assert 'Default: 7200.' in flat and 'Default: artifacts/models/demo (in this repository).' in flat
    assert "Default: on." in flat   # --events


@pytest.fixture
def root_handler():
    """A handler on the root logger, as ``logging.basicConfig`` in ``pipeline.main.main`` installs one."""
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    yield records
    logging.getLogger().removeHandler(handler)


@pytest.mark.parametrize('verbose', [False, True])
def test_start_up_chatter_is_hidden_unless_verbose(verbose, monkeypatch, capfd, root_handler):
    """What the project sets, whatever the CPU: TensorFlow's level for this process and its workers, native INFO
    lines while TensorFlow loads, and Beam's known noise in the log."""
    monkeypatch.delenv('TF_CPP_MIN_LOG_LEVEL', raising=False)
    quiet_startup(verbose)
    assert os.environ['TF_CPP_MIN_LOG_LEVEL'] == ('0' if verbose else '2')
    with info_logs_hidden():
        os.write(2, b'I0000 00:00:1795856299.444070   26053 port.cc:153] some native INFO line\n')
    assert ('native INFO line' in capfd.readouterr().err) is verbose
    logging.getLogger('apache_beam.x').warning('Resource module is not available for current platform')
    logging.getLogger('pipeline').warning('our own warning')
    assert root_handler == (['Resource module is not available for current platform', 'our own warning']
                            if verbose else ['our own warning'])


@pytest.mark.e2e
def test_a_bucket_pattern_that_matches_nothing_says_so_after_the_run(capsys, tmp_path, tiny_model_dir,
                                                                      cloud_storage):
    cloud_storage.bucket('empty-uploads')
    argv = local_args(tmp_path, 'gs://empty-uploads/uploads/**', tiny_model_dir)
    assert run([*argv, '--direct_num_workers', '1']) == 0
    assert 'No file matched --input_pattern gs://empty-uploads/uploads/**: nothing to do.' in capsys.readouterr().err

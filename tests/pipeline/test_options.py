import dataclasses
import os
import subprocess
import sys

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.options import (DERIVED_FIELDS, OPTIONS, OptionsError, PipelineConfig, validate,
                              with_absolute_paths)

BASE = ['--output_table', 'out.db', '--spectrogram_location', 'spec']
ENDPOINT = 'projects/p/locations/us-central1/endpoints/1'


def config_of(*args):
    return validate(PipelineOptions(list(args)))


def test_batch_on_the_embedded_default():
    config = config_of('--input_pattern', 'in/**', *BASE)
    assert not config.streaming and config.store.local and config.error_table == 'out.db'


def test_streaming_from_a_subscription_to_bigquery():
    config = config_of('--input_subscription', 'projects/my-proj/subscriptions/audio-sub', '--output_table',
                       'my-proj:audio.results', '--spectrogram_location', 'gs://b/s')
    assert config.streaming and config.error_table == 'my-proj:audio.results_errors'


@pytest.mark.parametrize('args,needle', [
    (BASE, 'exactly one of --input_subscription'),
    (['--input_pattern', 'x', '--input_subscription', 'projects/p-1234/subscriptions/audio-sub', *BASE], 'exactly one'),
    (['--input_subscription', 'topics/x', *BASE], 'projects/P/subscriptions/S'),
    (['--input_pattern', 'x', '--output_table', 'nonsense', '--spectrogram_location', 's'], '--output_table'),
    (['--input_pattern', 'x', '--output_table', 'a.db'], '--spectrogram_location is required'),
    (['--input_pattern', 'x', '--min_batch_size', '10', '--max_batch_size', '5', *BASE], 'min_batch_size'),
    (['--input_pattern', 'x', '--model_watch_pattern', 'm/*', *BASE], 'streaming'),
    (['--input_subscription', 'projects/p-1234/subscriptions/audio-sub', '--model_watch_pattern', 'm/*', *BASE],
     'needs Dataflow'),
    (['--input_pattern', 'x', '--max_duration_seconds', '0', *BASE], 'max_duration_seconds must be positive'),
    (['--input_subscription', 'projects/p-1234/subscriptions/audio-sub', '--reprocess', *BASE], '--reprocess'),
    (['--input_subscription', 'projects/p-1234/subscriptions/audio-sub', '--retry_failed', *BASE],
     '--retry_failed applies to batch'),
    (['--input_pattern', 'x', '--transient_retry_seconds', '-1', *BASE], '--transient_retry_seconds must be 0'),
    (['--input_pattern', 'x', '--error_table', 'p:d.t', *BASE], 'same backend'),
    (['--input_pattern', 'gs://b/x', '--runner', 'DataflowRunner', *BASE], 'on Dataflow'),
    (['--input_subscription', 'projects/p-1234/subscriptions/audio-sub', '--reconcile', *BASE],
     'needs --input_pattern'),
    (['--input_pattern', 'x', '--reconcile', '--reprocess', *BASE], 'give one'),
    (['--input_pattern', 'x', '--reconcile', '--watch', *BASE], 'drop --reconcile'),
    (['--input_pattern', 'x', '--vertex_api_endpoint', 'http://127.0.0.1:9080', *BASE], 'only applies with'),
    (['--input_pattern', 'x', '--model_endpoint', ENDPOINT, '--vertex_api_endpoint', 'http://10.1.2.3:80', *BASE],
     'plain HTTP is for a local endpoint only'),
    (['--input_pattern', 'gs://b/x', '--runner', 'DataflowRunner', '--model_endpoint', ENDPOINT,
      '--vertex_api_endpoint', 'http://127.0.0.1:9080', *BASE], 'Dataflow workers cannot reach it'),
])
def test_bad_combinations_fail_before_the_job_starts(args, needle):
    with pytest.raises(OptionsError) as e:
        config_of(*args)
    assert needle in str(e.value)


def test_reconcile_alone_is_batch_and_with_a_subscription_streams_over_the_pattern_too():
    batch = config_of('--input_pattern', 'gs://b/**', '--reconcile', *BASE)
    assert batch.reconcile and not batch.streaming
    both = config_of('--input_subscription', 'projects/p-1234/subscriptions/audio-sub', '--reconcile',
                     '--input_pattern', 'gs://b/**', *BASE)
    assert both.reconcile and both.streaming and both.input_pattern == 'gs://b/**'


def test_the_retry_budget_defaults_to_ten_minutes_and_zero_means_one_try():
    assert config_of('--input_pattern', 'x', *BASE).transient_retry_seconds == 600.0
    assert config_of('--input_pattern', 'x', '--transient_retry_seconds', '0', *BASE).transient_retry_seconds == 0
    assert config_of('--input_pattern', 'x', '--retry_failed', *BASE).retry_failed


def test_vertex_api_endpoint_reaches_the_config():
    config = config_of('--input_pattern', 'x', '--model_endpoint', ENDPOINT, '--vertex_api_endpoint',
                       'http://127.0.0.1:9080', *BASE)
    assert (config.model_endpoint, config.vertex_api_endpoint) == (ENDPOINT, 'http://127.0.0.1:9080')
    assert config_of('--input_pattern', 'x', '--model_endpoint', ENDPOINT, *BASE).vertex_api_endpoint is None


def test_every_problem_is_listed_at_once():
    with pytest.raises(OptionsError) as e:
        config_of('--max_duration_seconds', '-1')
    assert str(e.value).count('\n  - ') >= 3


def test_help_lists_every_option_with_its_help_text():
    out = subprocess.run([sys.executable, '-m', 'pipeline.main', '--help'], capture_output=True, text=True).stdout
    flat = ' '.join(out.split())
    for option in OPTIONS:
        assert f'--{option.name}' in out
        assert ' '.join(option.help.split())[:40] in flat


def test_docs_document_every_option():
    import pathlib

    readme = (pathlib.Path(__file__).resolve().parents[2] / 'docs' / 'pipeline.md').read_text()
    for option in OPTIONS:
        assert f'`--{option.name}`' in readme, option.name


def test_the_config_has_one_field_per_declared_option_of_the_declared_type():
    fields = {f.name: str(f.type) for f in dataclasses.fields(PipelineConfig)}
    assert set(fields) == {option.name for option in OPTIONS} | set(DERIVED_FIELDS)
    for option in OPTIONS:
        assert ('bool' if option.is_flag else option.type.__name__) in fields[option.name], option.name


@pytest.mark.parametrize('name', [option.name for option in OPTIONS if option.positive])
def test_options_declared_positive_refuse_zero(name):
    with pytest.raises(OptionsError, match=f'--{name} must be positive'):
        config_of('--input_pattern', 'x', *BASE, f'--{name}', '0')


def test_local_paths_and_sqlite_tables_become_absolute_and_gs_paths_stay():
    config = with_absolute_paths(config_of('--input_pattern', 'in/**', '--output_table', 'out.db', '--error_table',
                                           'err.db', '--spectrogram_location', 'gs://b/s', '--model_uri', 'm'))
    assert config.input_pattern == os.path.abspath('in/**') and config.model_uri == os.path.abspath('m')
    assert config.output_table == os.path.abspath('out.db') and config.error_table == os.path.abspath('err.db')
    assert config.spectrogram_location == 'gs://b/s'

"""Runner selection and credential handling of the launcher (no pipeline is run here)."""
import pytest
from apache_beam.options.pipeline_options import DirectOptions, GoogleCloudOptions, StandardOptions
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from pipeline.main import configure_runner, parse

LOCAL = ['--input_pattern', 'in/**', '--output_table', 'out.db', '--spectrogram_location', 'spec']
STREAM = ['--input_subscription', 'projects/proj-1234/subscriptions/audio-sub', '--output_table', 'proj-1234:d.t',
          '--spectrogram_location', 'gs://bucket/spec', '--model_uri', 'gs://bucket/model']


@pytest.fixture(autouse=True)
def no_emulators(monkeypatch):
    for var in ('PUBSUB_EMULATOR_HOST', 'STORAGE_EMULATOR_HOST', 'BIGQUERY_EMULATOR_HOST'):
        monkeypatch.delenv(var, raising=False)


def test_local_batch_runs_on_the_fn_api_runner_with_every_core_and_no_credential_lookup():
    options, config = parse(LOCAL)
    runner = configure_runner(options, config)
    assert isinstance(runner, FnApiRunner)
    assert options.view_as(DirectOptions).direct_num_workers >= 1
    assert options.view_as(GoogleCloudOptions).no_auth


def test_local_paths_become_absolute():
    _, config = parse(LOCAL)
    assert config.output_table.startswith('/') and config.spectrogram_location.startswith('/')
    assert config.input_pattern.startswith('/') and config.input_pattern.endswith('in/**')


def test_streaming_against_emulators_skips_the_credential_lookup(monkeypatch):
    for var in ('PUBSUB_EMULATOR_HOST', 'STORAGE_EMULATOR_HOST', 'BIGQUERY_EMULATOR_HOST'):
        monkeypatch.setenv(var, 'localhost:1')
    options, config = parse(STREAM)
    assert isinstance(configure_runner(options, config), BundleBasedDirectRunner)
    assert options.view_as(StandardOptions).streaming and options.view_as(GoogleCloudOptions).no_auth


def test_real_google_cloud_keeps_the_credential_lookup():
    options, config = parse(STREAM)
    configure_runner(options, config)
    assert not options.view_as(GoogleCloudOptions).no_auth


def test_dataflow_is_left_to_beam():
    options, config = parse(STREAM + ['--runner', 'DataflowRunner'])
    assert configure_runner(options, config) is None

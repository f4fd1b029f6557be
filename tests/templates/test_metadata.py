"""templates/metadata.json cannot drift from the pipeline's options, and Dataflow would accept it."""
from __future__ import annotations

import json
import re

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.options import OPTIONS, AudioPipelineOptions, OptionsError, validate
from templates import generate_metadata
from tests.templates.gcloud_sdk import run_gcloud_python
from tests.templates.script_runner import dry_run, find, flag_values

COMMITTED = json.loads(generate_metadata.METADATA_PATH.read_text())
PARAMETERS = {p['name']: p for p in COMMITTED['parameters']}
# The smallest launch validate() accepts on Dataflow; every value matches the template's regexes.
MINIMAL_DATAFLOW_LAUNCH = {
    'input_subscription': 'projects/test-project/subscriptions/uploads',
    'output_table': 'test-project:audio.results',
    'spectrogram_location': 'gs://test-bucket/spectrograms',
    'model_uri': 'gs://test-models/models/demo',
}


def validate_on_dataflow(values: dict[str, str]):
    return validate(PipelineOptions(['--runner=DataflowRunner', *(f'--{k}={v}' for k, v in values.items())]))


def test_committed_metadata_is_what_the_options_generate():
    assert generate_metadata.METADATA_PATH.read_text() == generate_metadata.metadata_json(), \
        'templates/metadata.json is stale: run `make template-metadata`'
    assert generate_metadata.main(['--check']) == 0


def test_every_template_option_is_a_parameter_with_its_own_words():
    template_options = [o for o in OPTIONS if o.in_template]
    assert list(PARAMETERS) == [o.name for o in template_options]
    for option in template_options:
        parameter = PARAMETERS[option.name]
        assert parameter['helpText'] == option.help
        assert parameter['label'] == option.template_label
        assert parameter['regexes'] == ([option.regex] if option.regex else parameter.get('regexes'))


def test_local_only_options_stay_out():
    local_only = {o.name for o in OPTIONS if not o.in_template}
    assert local_only and not local_only & set(PARAMETERS)


def test_every_parameter_is_an_option_the_pipeline_parses():
    parsed = PipelineOptions([f'--{name}=1' for name, p in PARAMETERS.items() if p['paramType'] == 'NUMBER'])
    audio = parsed.view_as(AudioPipelineOptions)
    for name in PARAMETERS:
        assert hasattr(audio, name), name


def test_the_minimal_launch_is_valid_on_dataflow_and_needs_every_required_parameter():
    validate_on_dataflow(MINIMAL_DATAFLOW_LAUNCH)
    required = {name for name, p in PARAMETERS.items() if not p['isOptional']}
    assert required == set(generate_metadata.REQUIRED_ON_DATAFLOW)
    for name in required:
        without = {k: v for k, v in MINIMAL_DATAFLOW_LAUNCH.items() if k != name}
        with pytest.raises(OptionsError, match=f'--{name}'):
            validate_on_dataflow(without)


def test_each_input_is_optional_but_one_is_needed():
    assert PARAMETERS['input_subscription']['isOptional'] and PARAMETERS['input_pattern']['isOptional']
    batch = {**MINIMAL_DATAFLOW_LAUNCH, 'input_pattern': 'gs://test-bucket/uploads/**'}
    del batch['input_subscription']
    assert not validate_on_dataflow(batch).streaming
    neither = {k: v for k, v in batch.items() if k != 'input_pattern'}
    with pytest.raises(OptionsError, match='exactly one'):
        validate_on_dataflow(neither)


def test_defaults_shown_in_the_console_are_the_pipelines_defaults():
    for option in OPTIONS:
        if 'defaultValue' in PARAMETERS.get(option.name, {}):
            assert option.type(PARAMETERS[option.name]['defaultValue']) == option.default


def test_regexes_accept_the_values_run_sh_launches_with():
    """Dataflow checks each parameter against its regexes before starting: run.sh's values must pass."""
    launches = [*find(dry_run('run.sh', 'streaming', '--', 'max_batch_size=16', 'dedupe_ttl_seconds=600',
                              MODEL_ENDPOINT='projects/p/locations/us-central1/endpoints/42',
                              MODEL_WATCH_PATTERN='gs://test-project-audio-models/models/*/metadata.json'),
                      'gcloud', 'dataflow', 'flex-template', 'run'),
                *find(dry_run('run.sh', 'replay', 'gs://test-project-audio-input/**', '--reprocess'),
                      'gcloud', 'dataflow', 'flex-template', 'run')]
    checked = set()
    for launch in launches:
        for entry in flag_values(launch, '--parameters'):
            name, value = entry.removeprefix('^|^').split('=', 1)
            if name == 'sdk_container_image':  # a Dataflow option, not one of the template's
                continue
            for regex in PARAMETERS[name]['regexes']:
                assert re.fullmatch(regex, value), (name, value, regex)
            checked.add(name)
    assert len(checked) >= 10


@pytest.mark.parametrize('name,value', [
    ('input_subscription', 'uploads'),
    ('input_subscription', 'projects/test-project/topics/uploads'),
    ('output_table', 'results'),
    ('output_table', 'project:dataset'),
    ('spectrogram_location', '/tmp/spectrograms'),
    ('model_endpoint', 'https://example.com/predict'),
    ('max_batch_size', 'many'),
    ('reprocess', 'yes'),
])
def test_regexes_reject_what_would_fail_on_a_worker(name, value):
    assert not any(re.fullmatch(regex, value) for regex in PARAMETERS[name]['regexes'])


def test_gcloud_accepts_the_metadata_file():
    """The installed gcloud's own check, the one `gcloud dataflow flex-template build --metadata-file` runs."""
    output = run_gcloud_python('''
import sys
from googlecloudsdk.api_lib.dataflow import apis
metadata = apis.Templates._BuildTemplateMetadata(open(sys.argv[1]).read())
print(len(metadata.parameters), sorted({str(p.paramType) for p in metadata.parameters}))
''', str(generate_metadata.METADATA_PATH))
    count, _ = output.split(' ', 1)
    assert int(count) == len(PARAMETERS)


@pytest.mark.parametrize('name', [o.name for o in OPTIONS if o.is_flag and o.in_template])
def test_boolean_parameters_parse_as_the_launcher_passes_them(name):
    on = PipelineOptions([f'--{name}=true']).view_as(AudioPipelineOptions)
    off = PipelineOptions([f'--{name}=false']).view_as(AudioPipelineOptions)
    assert getattr(on, name) is True and getattr(off, name) is False

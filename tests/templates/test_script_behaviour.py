"""The deploy scripts run for real, against stand-in ``gcloud`` and ``bq`` executables.

Google Cloud itself cannot be reached from a test, so it is mocked: the stand-ins (see
``script_runner.FAKE_CLI``) log each call and answer the probes as a fresh or an already
provisioned project would. What is tested is the scripts' own logic: describe-before-create,
idempotence, refusing to start a second streaming job, asking before deleting data.
"""
from __future__ import annotations

import pytest

from tests.templates.script_runner import (IMAGE_IN_SPEC, PROJECT, TOPIC_PATH, fake_cloud_env, find, flag_value,
                                           flag_values, logged_calls, make_fake_cloud_bin, run_script)

# Calls that leave a project as it was when what they set is already there (`bq update` sets the error
# table's schema and the _latest view's query to what they already are on a provisioned project).
IDEMPOTENT = ('add-iam-policy-binding', 'enable', 'service-agent', 'update')
OUR_NOTIFICATION = f'7\t//pubsub.googleapis.com/{TOPIC_PATH}\n'
OTHER_NOTIFICATION = f'8\t//pubsub.googleapis.com/projects/{PROJECT}/topics/someone-else\n'


@pytest.fixture
def cloud(tmp_path):
    """Runs a script against the stand-in CLI; returns (result, the calls it made)."""
    fake_bin = make_fake_cloud_bin(tmp_path / 'bin')
    log = tmp_path / 'calls.log'

    def call(script, *args, state='fresh', stdin='', **env):
        log.unlink(missing_ok=True)
        result = run_script(script, *args, env=fake_cloud_env(log, state, **env), stdin=stdin,
                            path_prefix=fake_bin)
        return result, logged_calls(log)
    return call


def is_change(call: list[str]) -> bool:
    read_only = {'describe', 'show', 'list', 'cat'}
    return not read_only.intersection(call[:5]) and not any(word in call for word in IDEMPOTENT)


def test_provision_on_a_fresh_project_creates_everything(cloud):
    result, calls = cloud('provision.sh', state='fresh')
    assert result.returncode == 0, result.stderr
    created = [c for c in calls if 'create' in c[:5] or 'mk' in c[:3]]
    assert len(find(created, 'gcloud', 'storage', 'buckets', 'create')) == 4
    assert len(find(created, 'gcloud', 'iam', 'service-accounts', 'create')) == 2
    # dataset, results, errors, events, reviews, the _latest and _reviews_latest views
    assert len([c for c in created if c[0] == 'bq']) == 7
    for kind in (('pubsub', 'topics'), ('pubsub', 'subscriptions'), ('storage', 'buckets', 'notifications'),
                 ('artifacts', 'repositories')):
        assert len(find(created, 'gcloud', *kind, 'create')) == 1, kind
    (publisher,) = find(calls, 'gcloud', 'pubsub', 'topics', 'add-iam-policy-binding')
    assert flag_value(publisher, '--member') == \
        'serviceAccount:service-123@gs-project-accounts.iam.gserviceaccount.com'


def test_provision_twice_changes_nothing_the_second_time(cloud):
    result, calls = cloud('provision.sh', state='provisioned', notifications=OUR_NOTIFICATION)
    assert result.returncode == 0, result.stderr
    assert [c for c in calls if is_change(c)] == []
    assert len([c for c in calls if 'add-iam-policy-binding' in c]) == 14  # 1 publisher, 10 worker, 3 build


def test_provision_of_a_provisioned_project_adds_new_columns_and_keeps_the_view_current(cloud):
    from results import schema
    from tests.templates.script_runner import TEMPLATES

    result, calls = cloud('provision.sh', state='provisioned', notifications=OUR_NOTIFICATION)
    assert result.returncode == 0, result.stderr
    updates = find(calls, 'bq', f'--project_id={PROJECT}', 'update')
    # New NULLABLE columns: the error table's retryable/attempts, the results table's event_count.
    assert [(u[-1], flag_value(u, '--schema')) for u in updates if flag_value(u, '--schema')] == \
        [(f'{PROJECT}:audio_pipeline.results', str(TEMPLATES / 'schema' / 'processed.json')),
         (f'{PROJECT}:audio_pipeline.results_errors', str(TEMPLATES / 'schema' / 'errors.json'))]
    view, reviews = [u for u in updates if flag_value(u, '--view')]
    assert view[-1] == f'{PROJECT}:audio_pipeline.results' + schema.LATEST_VIEW_SUFFIX
    assert reviews[-1] == schema.reviews_view_name(f'{PROJECT}:audio_pipeline.results')
    assert 'QUALIFY ROW_NUMBER()' in flag_value(view, '--view') and 'QUALIFY ROW_NUMBER()' in flag_value(reviews,
                                                                                                         '--view')


def test_provision_adds_our_notification_next_to_someone_elses(cloud):
    result, calls = cloud('provision.sh', state='provisioned', notifications=OTHER_NOTIFICATION)
    assert result.returncode == 0, result.stderr
    assert [c[:5] for c in calls if is_change(c)] == [['gcloud', 'storage', 'buckets', 'notifications', 'create']]


def test_streaming_launch_leaves_the_workers_image_to_the_template_spec(cloud):
    result, calls = cloud('run.sh', 'streaming')
    assert result.returncode == 0, result.stderr
    (launch,) = find(calls, 'gcloud', 'dataflow', 'flex-template', 'run')
    assert not [flag for flag in launch if 'sdk_container_image' in flag]
    result, calls = cloud('run.sh', 'streaming', IMAGE=IMAGE_IN_SPEC)
    (launch,) = find(calls, 'gcloud', 'dataflow', 'flex-template', 'run')
    assert flag_value(launch, '--additional-pipeline-options') == f'sdk_container_image={IMAGE_IN_SPEC}'


def test_a_second_streaming_job_is_refused_and_update_offered(cloud):
    result, calls = cloud('run.sh', 'streaming', active_jobs='2026-01-01_00_00_00-123\n')
    assert result.returncode != 0 and '--update' in result.stderr
    assert find(calls, 'gcloud', 'dataflow', 'flex-template', 'run') == []


def test_update_needs_a_running_job_and_replaces_it(cloud):
    result, _ = cloud('run.sh', 'streaming', '--update')
    assert result.returncode != 0 and 'no active job' in result.stderr
    result, calls = cloud('run.sh', 'streaming', '--update', active_jobs='2026-01-01_00_00_00-123\n')
    assert result.returncode == 0, result.stderr
    (launch,) = find(calls, 'gcloud', 'dataflow', 'flex-template', 'run')
    assert '--update' in launch and launch[4] == 'audio-pipeline-streaming'


def test_drain_drains_the_running_job(cloud):
    result, calls = cloud('run.sh', 'drain', active_jobs='2026-01-01_00_00_00-123\n')
    assert result.returncode == 0, result.stderr
    (drain,) = find(calls, 'gcloud', 'dataflow', 'jobs', 'drain')
    assert drain[4] == '2026-01-01_00_00_00-123'


def test_replay_launches_a_batch_job(cloud):
    result, calls = cloud('run.sh', 'replay', f'gs://{PROJECT}-audio-input/**')
    assert result.returncode == 0, result.stderr
    (launch,) = find(calls, 'gcloud', 'dataflow', 'flex-template', 'run')
    assert f'input_pattern=gs://{PROJECT}-audio-input/**' in [v for v in flag_values(launch, '--parameters')]


def test_teardown_refuses_while_a_job_runs(cloud):
    result, calls = cloud('teardown.sh', '--yes', state='provisioned', active_jobs='123\taudio-pipeline-streaming')
    assert result.returncode != 0 and 'drain' in result.stderr
    assert [c for c in calls if is_change(c)] == []


def test_teardown_keeps_the_data_unless_the_user_says_yes(cloud):
    result, calls = cloud('teardown.sh', state='provisioned', stdin='n\nn\nn\nn\n',
                          notifications=OUR_NOTIFICATION + OTHER_NOTIFICATION)
    assert result.returncode == 0, result.stderr
    removed = [c for c in calls if c[:3] == ['gcloud', 'storage', 'rm'] or c[:3] == ['bq', f'--project_id={PROJECT}',
                                                                                     'rm']]
    assert removed == [['gcloud', 'storage', 'rm', '--recursive', f'gs://{PROJECT}-audio-dataflow',
                        f'--project={PROJECT}']]
    assert 'kept gs://test-project-audio-input' in result.stderr
    # Only the notification that publishes to our topic goes.
    (notification,) = find(calls, 'gcloud', 'storage', 'buckets', 'notifications', 'delete')
    assert notification[5] == f'projects/_/buckets/{PROJECT}-audio-input/notificationConfigs/7'


def test_teardown_with_yes_deletes_the_data_too(cloud):
    result, calls = cloud('teardown.sh', '--yes', state='provisioned')
    assert result.returncode == 0, result.stderr
    removed = {c[4] for c in calls if c[:3] == ['gcloud', 'storage', 'rm']}
    assert removed == {f'gs://{PROJECT}-audio-{name}' for name in ('input', 'output', 'models', 'dataflow')}
    assert find(calls, 'bq', f'--project_id={PROJECT}', 'rm')[0][-1] == f'{PROJECT}:audio_pipeline'


def test_teardown_of_a_torn_down_project_deletes_nothing(cloud):
    result, calls = cloud('teardown.sh', '--yes', state='fresh')
    assert result.returncode == 0, result.stderr
    assert [c for c in calls if is_change(c) and 'remove-iam-policy-binding' not in c] == []


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / 'tone.wav'
    path.write_bytes(b'RIFF')
    return str(path)


def test_smoke_builds_launches_uploads_and_reports_the_row(cloud, clip):
    row = '[{"audio_file": "gs://x", "label": "tone", "confidence": "0.97"}]'
    result, calls = cloud('smoke.sh', CLIP=clip, FAKE_QUERY_ROWS=row, POLL_SECONDS='0')
    assert result.returncode == 0, result.stderr
    assert 'OK: the template built, the job launched' in result.stdout and '"label": "tone"' in result.stdout
    (spec_upload, _) = find(calls, 'gcloud', 'storage', 'cp')[:2]
    assert spec_upload[4].endswith('.json')           # build.sh ran, spec patched and uploaded
    (launch,) = find(calls, 'gcloud', 'dataflow', 'flex-template', 'run')
    assert '--update' not in launch
    (upload,) = [c for c in find(calls, 'gcloud', 'storage', 'cp') if c[3] == clip]
    assert upload[4].startswith(f'gs://{PROJECT}-audio-input/smoke/') and upload[4].endswith('-tone.wav')
    queries = [c for c in find(calls, 'bq') if upload[4] in c[-1]]
    assert len(queries) == 2 and all('query' in q for q in queries)   # its result row, then its error row


def test_smoke_updates_a_running_job_and_fails_on_an_error_row_or_no_row(cloud, clip):
    error = '[{"audio_file": "gs://x", "error_type": "NotAudio"}]'
    result, calls = cloud('smoke.sh', CLIP=clip, FAKE_QUERY_ROWS=error, POLL_SECONDS='0',
                          active_jobs='2026-01-01_00_00_00-123\n')
    assert result.returncode != 0 and 'became an error row' in result.stderr
    (launch,) = find(calls, 'gcloud', 'dataflow', 'flex-template', 'run')
    assert '--update' in launch
    result, _ = cloud('smoke.sh', CLIP=clip, POLL_SECONDS='0', SMOKE_TIMEOUT_SECONDS='0')
    assert result.returncode != 0 and 'no row for gs://' in result.stderr

"""``python -m stack`` against the real emulators: what it starts, creates, publishes, restarts and stops."""
import json
import os
import subprocess
import sys

import pytest
from google.api_core import exceptions
from google.cloud import pubsub_v1

from results import bigquery_store, schema
from results.schema import ERROR_FIELDS, PROCESSED_FIELDS
from stack import clients, processes
from cloud.emulators import ENV_VARS, STORAGE
from stack.config import METADATA_ENV_VARS

pytestmark = pytest.mark.e2e


def _cli(stack, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'stack', '--state-dir', stack.state_dir, *args],
                          capture_output=True, text=True, timeout=120)


def _pull_all(subscriber, subscription: str, expected: int) -> list:
    messages = []
    for _ in range(20):
        response = subscriber.pull(subscription=subscription, max_messages=100, timeout=10)
        messages += response.received_messages
        if response.received_messages:
            subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages])
        if len(messages) >= expected:
            break
    return messages


def test_start_creates_what_the_pipeline_expects(local_stack):
    config = local_stack.config
    status = local_stack.status()
    assert set(status) == {'pubsub', 'storage', 'bigquery', 'metadata', 'vertex'}
    assert all(s['alive'] and s['answers'] for s in status.values())
    env = local_stack.env()
    assert set(env) >= set(ENV_VARS.values()) | set(METADATA_ENV_VARS)

    storage = clients.storage_client()
    assert {b.name for b in storage.list_buckets()} == {config.upload_bucket, config.output_bucket}
    subscription = pubsub_v1.SubscriberClient().get_subscription(subscription=config.subscription_path)
    assert subscription.topic == config.topic_path
    bq = bigquery_store.client()
    for table, fields in ((config.output_table, PROCESSED_FIELDS), (config.error_table, ERROR_FIELDS)):
        got = bq.get_table(bigquery_store.table_id(table))
        assert [f.to_api_repr()['name'] for f in got.schema] == [f['name'] for f in fields]
        assert got.time_partitioning is not None
    # The view readers use (one row per file version), provisioned with the tables.
    latest = bq.get_table(bigquery_store.table_id(schema.latest_view_name(config.output_table)))
    assert latest.table_type == 'VIEW'

    # The CLI finds the same stack from its state directory.
    done = _cli(local_stack, 'env')
    assert done.returncode == 0, done.stderr
    assert f"export {ENV_VARS['pubsub']}={env[ENV_VARS['pubsub']]}" in done.stdout.splitlines()
    assert _cli(local_stack, 'status').returncode == 0


def test_upload_publishes_one_notification_per_object_version_and_repeat(local_stack, tmp_path):
    config = local_stack.config
    subscriber = pubsub_v1.SubscriberClient()
    tap = f'projects/{config.project}/subscriptions/test-tap'
    subscriber.create_subscription(name=tap, topic=config.topic_path)
    folder = tmp_path / 'in'
    (folder / 'sub').mkdir(parents=True)
    (folder / 'a.wav').write_bytes(b'RIFFa')
    (folder / 'sub' / 'b.mp3').write_bytes(b'ID3b')

    done = _cli(local_stack, 'upload', str(folder), '--prefix', 'up/', '--repeat', '2')
    assert done.returncode == 0, done.stderr
    messages = _pull_all(subscriber, tap, 4)
    assert len(messages) == 4
    by_object = {}
    for m in messages:
        attributes = dict(m.message.attributes)
        assert attributes['eventType'] == 'OBJECT_FINALIZE' and attributes['payloadFormat'] == 'JSON_API_V1'
        resource = json.loads(m.message.data)
        assert resource['name'] == attributes['objectId'] and resource['generation'] == attributes['objectGeneration']
        by_object.setdefault(attributes['objectId'], set()).add(attributes['objectGeneration'])
    assert {k: len(v) for k, v in by_object.items()} == {'up/a.wav': 1, 'up/sub/b.mp3': 1}
    blob = clients.storage_client().bucket(config.upload_bucket).get_blob('up/sub/b.mp3')
    assert str(blob.generation) == by_object['up/sub/b.mp3'].pop()
    assert blob.download_as_bytes() == b'ID3b'

    done = _cli(local_stack, 'delete', 'up/a.wav')
    assert done.returncode == 0, done.stderr
    (deleted,) = _pull_all(subscriber, tap, 1)
    assert deleted.message.attributes['eventType'] == 'OBJECT_DELETE'
    assert clients.storage_client().bucket(config.upload_bucket).get_blob('up/a.wav') is None


def test_reads_of_a_replaced_generation_fail_as_in_cloud_storage(local_stack):
    bucket = clients.storage_client().bucket(local_stack.config.upload_bucket)
    first = bucket.blob('x.wav')
    first.upload_from_string(b'one')
    second = bucket.blob('x.wav')
    second.upload_from_string(b'two')
    with pytest.raises(exceptions.NotFound):
        bucket.blob('x.wav', generation=first.generation).download_as_bytes()
    assert bucket.blob('x.wav', generation=second.generation).download_as_bytes() == b'two'


def test_an_emulator_restarts_on_its_port_with_its_data_and_stop_ends_everything(local_stack):
    bucket = clients.storage_client().bucket(local_stack.config.upload_bucket)
    bucket.blob('kept.wav').upload_from_string(b'kept')
    port = local_stack.services[STORAGE].port
    old_pid = local_stack.services[STORAGE].pid
    local_stack.stop_service(STORAGE)
    assert not processes.is_alive(old_pid)
    # Whatever the client raises with nothing listening (a connection error, wrapped or not): not a result.
    with pytest.raises(Exception):  # noqa: B017
        clients.storage_client().bucket(local_stack.config.upload_bucket).get_blob('kept.wav', timeout=2, retry=None)
    local_stack.start_service(STORAGE)
    assert local_stack.services[STORAGE].port == port
    assert bucket.blob('kept.wav').download_as_bytes() == b'kept'

    pids = [s.pid for s in local_stack.services.values()]
    local_stack.stop()
    assert not any(processes.is_alive(pid) for pid in pids)
    assert not os.path.exists(os.path.join(local_stack.state_dir, 'state.json'))

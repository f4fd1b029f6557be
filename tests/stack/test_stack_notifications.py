"""The Cloud Storage notifications the stack publishes, checked field by field, read back by the pipeline's parser."""
import base64
import hashlib
import json

import google_crc32c

from stack import notifications
from cloud.notification import Ignored, parse_notification

EMULATOR_RESOURCE = {  # what gcp-storage-emulator returns after an upload (no hashes, size as a number)
    'kind': 'storage#object', 'id': 'b/dir/a b.wav/1795679341039181690', 'name': 'dir/a b.wav', 'bucket': 'b',
    'generation': '1795679341039181690', 'metageneration': '1', 'contentType': 'audio/x-wav',
    'timeCreated': '2026-11-26T07:40:12.123456Z', 'updated': '2026-11-26T07:40:12.123456Z',
    'storageClass': 'STANDARD', 'timeStorageClassUpdated': '2026-11-26T07:40:12.123456Z', 'size': 5,
    'md5Hash': None, 'crc32c': None, 'etag': None, 'acl': [],
    'mediaLink': 'http://127.0.0.1:9023/download/storage/v1/b/b/o/dir%2Fa%20b.wav?generation=1&alt=media',
}
CONTENT = b'RIFF!'


def test_object_resource_is_completed_as_cloud_storage_sends_it():
    resource = notifications.object_resource(EMULATOR_RESOURCE, CONTENT)
    assert resource['size'] == '5' and resource['generation'] == '1795679341039181690'
    assert resource['md5Hash'] == base64.b64encode(hashlib.md5(CONTENT).digest()).decode()
    assert resource['crc32c'] == base64.b64encode(google_crc32c.Checksum(CONTENT).digest()).decode()
    assert resource['etag'] and 'acl' not in resource
    assert resource['timeCreated'] == resource['updated'] == '2026-11-26T07:40:12.123Z'  # milliseconds, as GCS


def test_finalize_notification_attributes_and_payload():
    resource = notifications.object_resource(EMULATOR_RESOURCE, CONTENT)
    data, attributes = notifications.notification(resource)
    assert attributes == {
        'notificationConfig': 'projects/_/buckets/b/notificationConfigs/1',
        'eventType': 'OBJECT_FINALIZE',
        'payloadFormat': 'JSON_API_V1',
        'bucketId': 'b',
        'objectId': 'dir/a b.wav',
        'objectGeneration': '1795679341039181690',
        'eventTime': '2026-11-26T07:40:12.123Z',
    }
    assert json.loads(data) == resource


def test_the_pipeline_reads_the_notification_back_to_the_same_object():
    data, attributes = notifications.notification(notifications.object_resource(EMULATOR_RESOURCE, CONTENT))
    obj = parse_notification(data, attributes)
    assert obj.uri == 'gs://b/dir/a b.wav' and obj.name == 'dir/a b.wav'
    assert obj.generation == '1795679341039181690' and obj.size == 5 and obj.content_type == 'audio/x-wav'
    assert obj.event_time == 1795678812.123


def test_overwrite_and_delete_notifications():
    old = notifications.object_resource(EMULATOR_RESOURCE)
    new = dict(old, generation='1795679341039181999')
    _, finalize = notifications.notification(new, overwrote_generation=old['generation'])
    assert finalize['overwroteGeneration'] == old['generation'] and finalize['objectGeneration'] == new['generation']
    data, delete = notifications.notification(old, notifications.OBJECT_DELETE,
                                              overwritten_by_generation=new['generation'])
    assert delete['eventType'] == 'OBJECT_DELETE' and delete['overwrittenByGeneration'] == new['generation']
    assert delete['eventTime'].endswith('Z')
    assert parse_notification(data, delete) == Ignored('event_type')

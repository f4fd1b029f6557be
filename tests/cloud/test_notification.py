"""Cloud Storage notifications: parsed into the object to process, and built as Cloud Storage sends them
(the local stack publishes these), field by field and read back by the parser."""
import base64
import hashlib
import json

import google_crc32c
import pytest

from cloud.notification import (OBJECT_DELETE, Ignored, MalformedNotification, build_notification, object_resource,
                                parse_notification, parse_time)


def notification(name='uploads/a b.wav', bucket='in-bucket', generation='1700000000000001', event='OBJECT_FINALIZE',
                 content_type='audio/wav', **resource_extra):
    resource = {'kind': 'storage#object', 'name': name, 'bucket': bucket, 'generation': generation,
                'size': '1234', 'contentType': content_type, 'timeCreated': '2026-11-26T07:00:00.000Z',
                **resource_extra}
    attributes = {'notificationConfig': f'projects/_/buckets/{bucket}/notificationConfigs/1', 'eventType': event,
                  'payloadFormat': 'JSON_API_V1', 'bucketId': bucket, 'objectId': name,
                  'objectGeneration': generation, 'eventTime': '2026-11-26T07:00:01.5Z'}
    return json.dumps(resource).encode(), attributes


def test_finalize_of_an_audio_object_becomes_an_audio_object():
    obj = parse_notification(*notification())
    assert obj.uri == 'gs://in-bucket/uploads/a b.wav' and obj.name == 'uploads/a b.wav'
    assert obj.generation == '1700000000000001' and obj.size == 1234 and obj.bucket == 'in-bucket'
    assert obj.content_type == 'audio/wav'
    assert obj.event_time == parse_time('2026-11-26T07:00:01.5Z')
    assert obj.seen_at == obj.event_time   # the notification is when the pipeline learns of the upload


@pytest.mark.parametrize('event', ['OBJECT_DELETE', 'OBJECT_ARCHIVE', 'OBJECT_METADATA_UPDATE'])
def test_other_events_are_ignored(event):
    assert parse_notification(*notification(event=event)) == Ignored('event_type')


def test_non_audio_objects_are_ignored():
    assert parse_notification(*notification(name='notes.txt', content_type='text/plain')) == Ignored('not_audio')


def test_own_outputs_are_ignored_even_if_audio_named():
    data, attrs = notification(name='spectrograms/a.wav.png', content_type='image/png')
    assert parse_notification(data, attrs, 'gs://in-bucket/spectrograms') == Ignored('own_output')
    data, attrs = notification(name='spectrograms/x.wav')
    assert parse_notification(data, attrs, 'gs://in-bucket/spectrograms/') == Ignored('own_output')


def test_audio_by_content_type_without_extension():
    assert parse_notification(*notification(name='upload-123', content_type='audio/mpeg')).name == 'upload-123'


@pytest.mark.parametrize('mutate,needle', [
    (lambda d, a: (d, {k: v for k, v in a.items() if k != 'eventType'}), 'eventType'),
    (lambda d, a: (b'{not json', a), 'not JSON'),
    (lambda d, a: (b'[1, 2]', a), 'JSON object'),
    (lambda d, a: (b'{}', {k: v for k, v in a.items() if k not in ('bucketId', 'objectId')}), 'bucket'),
    (lambda d, a: (d, {**a, 'objectGeneration': 'abc'}), 'generation'),
])
def test_malformed_notifications_raise(mutate, needle):
    with pytest.raises(MalformedNotification) as e:
        parse_notification(*mutate(*notification()))
    assert needle in str(e.value)


def test_payload_none_uses_attributes():
    _, attrs = notification()
    obj = parse_notification(b'', {**attrs, 'payloadFormat': 'NONE'})
    assert obj.uri == 'gs://in-bucket/uploads/a b.wav' and obj.size is None


# Built as Cloud Storage sends them.
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
    resource = object_resource(EMULATOR_RESOURCE, CONTENT)
    assert resource['size'] == '5' and resource['generation'] == '1795679341039181690'
    assert resource['md5Hash'] == base64.b64encode(hashlib.md5(CONTENT).digest()).decode()
    assert resource['crc32c'] == base64.b64encode(google_crc32c.Checksum(CONTENT).digest()).decode()
    assert resource['etag'] and 'acl' not in resource
    assert resource['timeCreated'] == resource['updated'] == '2026-11-26T07:40:12.123Z'  # milliseconds, as GCS


def test_finalize_notification_attributes_and_payload():
    resource = object_resource(EMULATOR_RESOURCE, CONTENT)
    data, attributes = build_notification(resource)
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
    data, attributes = build_notification(object_resource(EMULATOR_RESOURCE, CONTENT))
    obj = parse_notification(data, attributes)
    assert obj.uri == 'gs://b/dir/a b.wav' and obj.name == 'dir/a b.wav'
    assert obj.generation == '1795679341039181690' and obj.size == 5 and obj.content_type == 'audio/x-wav'
    assert obj.event_time == 1795678812.123


def test_overwrite_and_delete_notifications():
    old = object_resource(EMULATOR_RESOURCE)
    new = dict(old, generation='1795679341039181999')
    _, finalize = build_notification(new, overwrote_generation=old['generation'])
    assert finalize['overwroteGeneration'] == old['generation'] and finalize['objectGeneration'] == new['generation']
    data, delete = build_notification(old, OBJECT_DELETE, overwritten_by_generation=new['generation'])
    assert delete['eventType'] == 'OBJECT_DELETE' and delete['overwrittenByGeneration'] == new['generation']
    assert delete['eventTime'].endswith('Z')
    assert parse_notification(data, delete) == Ignored('event_type')

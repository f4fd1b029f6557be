import json

import pytest

from cloud.notification import Ignored, MalformedNotification, parse_notification, parse_time


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

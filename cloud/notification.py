"""Cloud Storage Pub/Sub notifications (payload format JSON_API_V1): parsed into an AudioObject, and built
exactly as Cloud Storage sends them (for the local stack, whose storage emulator sends none).

Format: https://cloud.google.com/storage/docs/pubsub-notifications: attributes name the event and the object;
with payload format JSON_API_V1 the data is the object's JSON API resource. Pure functions, no Beam:

- ``parse_notification`` either returns the object to process, returns an ``Ignored`` reason (another event
  type, not audio, one of our own outputs), or raises ``MalformedNotification``;
- ``object_resource`` and ``build_notification``: an object's resource in, (data, attributes) out.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

import google_crc32c

from audio.naming import is_audio_name, is_under
from audio.records import AudioObject

OBJECT_FINALIZE = 'OBJECT_FINALIZE'
OBJECT_DELETE = 'OBJECT_DELETE'
JSON_API_V1 = 'JSON_API_V1'
NOTIFICATION_CONFIG_ID = '1'


class MalformedNotification(ValueError):
    def __init__(self, message: str, uri: str = ''):
        super().__init__(message)
        self.uri = uri


@dataclass(frozen=True)
class Ignored:
    reason: str  # event_type | not_audio | own_output


def parse_time(value: Optional[str]) -> Optional[float]:
    """RFC 3339 (e.g. 2026-11-26T07:00:00.123Z) -> seconds since the epoch."""
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace('Z', '+00:00')).timestamp()
    except ValueError:
        return None


def parse_notification(data: bytes, attributes: Mapping[str, str], ignore_prefix: str = ''
                       ) -> Union[AudioObject, Ignored]:
    attributes = dict(attributes or {})
    event_type = attributes.get('eventType')
    bucket = attributes.get('bucketId')
    name = attributes.get('objectId')
    uri = f'gs://{bucket}/{name}' if bucket and name else ''
    if not event_type:
        raise MalformedNotification('not a Cloud Storage notification: no eventType attribute', uri)
    if event_type != OBJECT_FINALIZE:
        return Ignored('event_type')

    resource: dict = {}
    if data:
        if attributes.get('payloadFormat', JSON_API_V1) == JSON_API_V1:
            try:
                resource = json.loads(data.decode('utf-8'))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise MalformedNotification(f'payload is not JSON: {e}', uri) from e
            if not isinstance(resource, dict):
                raise MalformedNotification('payload is not a JSON object resource', uri)
    bucket = bucket or resource.get('bucket')
    name = name or resource.get('name')
    if not bucket or not name:
        raise MalformedNotification('notification names no bucket and object (bucketId/objectId)', uri)
    uri = f'gs://{bucket}/{name}'
    generation = str(attributes.get('objectGeneration') or resource.get('generation') or '')
    if not generation.isdigit():
        raise MalformedNotification(f'object generation {generation!r} is not a number', uri)

    content_type = resource.get('contentType')
    if ignore_prefix and is_under(uri, ignore_prefix):
        return Ignored('own_output')
    if not is_audio_name(name, content_type):
        return Ignored('not_audio')
    size = resource.get('size')
    event_time = parse_time(attributes.get('eventTime')) or parse_time(resource.get('timeCreated'))
    return AudioObject(
        uri=uri, name=name, generation=generation, bucket=bucket,
        size=int(str(size)) if str(size or '').isdigit() else None, content_type=content_type,
        event_time=event_time, seen_at=event_time)  # the notification is how the pipeline learns of the upload


def rfc3339(when: dt.datetime) -> str:
    """Cloud Storage's timestamp form: UTC, milliseconds, Z."""
    return when.astimezone(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.') + f'{when.microsecond // 1000:03d}Z'


def content_hashes(content: bytes) -> dict[str, str]:
    """md5Hash and crc32c as Cloud Storage reports them (base64 of the big-endian digest)."""
    return {'md5Hash': base64.b64encode(hashlib.md5(content).digest()).decode('ascii'),
            'crc32c': base64.b64encode(google_crc32c.Checksum(content).digest()).decode('ascii')}


def object_resource(emulator_resource: dict[str, Any], content: Optional[bytes] = None) -> dict[str, Any]:
    """The JSON API object resource Cloud Storage would put in a notification.

    The emulator's resource lacks the hashes and the etag and reports ``size`` as
    a number; Cloud Storage sends every int64 (size, generation, ...) as a string.
    """
    resource = {key: value for key, value in emulator_resource.items() if key != 'acl'}
    for key in ('timeCreated', 'updated', 'timeStorageClassUpdated'):
        if resource.get(key):
            resource[key] = rfc3339(dt.datetime.fromisoformat(resource[key].replace('Z', '+00:00')))
    for key in ('size', 'generation', 'metageneration'):
        if resource.get(key) is not None:
            resource[key] = str(resource[key])
    if content is not None:
        resource.update(content_hashes(content))
        resource['size'] = str(len(content))
    generation = int(resource.get('generation') or 0)
    resource['etag'] = resource.get('etag') or base64.b64encode(
        generation.to_bytes(8, 'little') + int(resource.get('metageneration') or 1).to_bytes(2, 'little')
    ).decode('ascii')
    resource.setdefault('kind', 'storage#object')
    resource.setdefault('id', f"{resource['bucket']}/{resource['name']}/{resource.get('generation')}")
    return resource


def build_notification(resource: dict[str, Any], event_type: str = OBJECT_FINALIZE, event_time: Optional[str] = None,
                 overwrote_generation: Optional[str] = None, overwritten_by_generation: Optional[str] = None,
                 ) -> tuple[bytes, dict[str, str]]:
    """(data, attributes) of the message Cloud Storage publishes for ``event_type`` on this object."""
    bucket, name = resource['bucket'], resource['name']
    if event_time is None:
        event_time = resource.get('updated') if event_type == OBJECT_FINALIZE else rfc3339(
            dt.datetime.now(dt.timezone.utc))
    attributes = {
        'notificationConfig': f'projects/_/buckets/{bucket}/notificationConfigs/{NOTIFICATION_CONFIG_ID}',
        'eventType': event_type,
        'payloadFormat': JSON_API_V1,
        'bucketId': bucket,
        'objectId': name,
        'objectGeneration': str(resource['generation']),
        'eventTime': event_time,
    }
    if overwrote_generation:
        attributes['overwroteGeneration'] = str(overwrote_generation)
    if overwritten_by_generation:
        attributes['overwrittenByGeneration'] = str(overwritten_by_generation)
    data = json.dumps(resource, separators=(',', ':'), sort_keys=True).encode('utf-8')
    return data, attributes

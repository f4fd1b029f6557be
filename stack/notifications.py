"""Cloud Storage Pub/Sub notifications, built exactly as Cloud Storage sends them (the emulator sends none).

Format: https://cloud.google.com/storage/docs/pubsub-notifications — attributes
name the event and the object; with payload format JSON_API_V1 the data is the
object's JSON API resource. Pure functions: resource in, (data, attributes) out.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any, Optional

import google_crc32c

OBJECT_FINALIZE = 'OBJECT_FINALIZE'
OBJECT_DELETE = 'OBJECT_DELETE'
JSON_API_V1 = 'JSON_API_V1'
NOTIFICATION_CONFIG_ID = '1'


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


def notification(resource: dict[str, Any], event_type: str = OBJECT_FINALIZE, event_time: Optional[str] = None,
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

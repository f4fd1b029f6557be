"""Cloud Storage Pub/Sub notifications (payload format JSON_API_V1) -> AudioObject.

Pure functions, no Beam: ``parse_notification`` either returns the object to
process, returns an ``Ignored`` reason (another event type, not audio, one of
our own outputs), or raises ``MalformedNotification``.
See https://cloud.google.com/storage/docs/pubsub-notifications for the format.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Mapping, Optional, Union

from audio.naming import is_audio_name, is_under
from audio.records import AudioObject

OBJECT_FINALIZE = 'OBJECT_FINALIZE'
JSON_API_V1 = 'JSON_API_V1'


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

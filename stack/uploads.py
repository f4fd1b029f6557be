"""Uploading files to the storage emulator and announcing them on Pub/Sub as Cloud Storage would.

Cloud Storage publishes a notification after every change to a bucket with a
notification config; the emulator publishes nothing, so every change made here
is followed by the message Cloud Storage would have sent: OBJECT_FINALIZE for a
new object (also carrying ``overwroteGeneration`` when it replaced one, followed
by OBJECT_DELETE for the replaced generation), OBJECT_DELETE for a deletion.
"""
from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass
from typing import Iterable, Optional

from cloud import notification
from stack import clients

PUBLISH_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Uploaded:
    """One object version written, and the notification(s) sent for it."""
    local_path: str
    bucket: str
    name: str
    generation: str
    message_ids: tuple[str, ...]

    @property
    def uri(self) -> str:
        return f'gs://{self.bucket}/{self.name}'


def files_to_upload(paths: Iterable[str], prefix: str = '') -> list[tuple[str, str]]:
    """(local path, object name) for every file given or under every folder given, in a stable order.

    A folder's files keep their path relative to the folder, under ``prefix``.
    """
    found = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for file in sorted(files):
                    local = os.path.join(root, file)
                    found.append((local, prefix + os.path.relpath(local, path).replace(os.sep, '/')))
        elif os.path.isfile(path):
            found.append((path, prefix + os.path.basename(path)))
        else:
            raise FileNotFoundError(path)
    return found


def content_type_of(name: str) -> str:
    return mimetypes.guess_type(name)[0] or 'application/octet-stream'


def publish(publisher, topic_path: str, data: bytes, attributes: dict[str, str]) -> str:
    return publisher.publish(topic_path, data, **attributes).result(timeout=PUBLISH_TIMEOUT_S)


class Uploader:
    """Writes objects to the storage emulator and publishes their notifications on ``topic_path``.

    ``put`` writes and announces at once. ``write`` and ``announce`` apart let a
    test reorder them as Pub/Sub may: a notification delivered after the object
    was already overwritten or deleted.
    """

    def __init__(self, topic_path: str, storage=None, publisher=None):
        self.topic_path = topic_path
        self.storage = storage or clients.storage_client()
        self.publisher = publisher or clients.publisher_client()

    def write(self, bucket: str, name: str, content: bytes, content_type: Optional[str] = None
              ) -> tuple[dict, Optional[dict]]:
        """Uploads one object version; returns its resource and the resource of the version it replaced."""
        blob_bucket = self.storage.bucket(bucket)
        previous = blob_bucket.get_blob(name)
        blob = blob_bucket.blob(name)
        blob.upload_from_string(content, content_type=content_type or content_type_of(name))
        return (notification.object_resource(blob._properties, content),
                notification.object_resource(previous._properties) if previous is not None else None)

    def announce(self, resource: dict, replaced: Optional[dict] = None, repeat: int = 1) -> tuple[str, ...]:
        """Publishes OBJECT_FINALIZE ``repeat`` times (redelivery), then OBJECT_DELETE of the replaced version."""
        data, attributes = notification.build_notification(
            resource, overwrote_generation=replaced['generation'] if replaced else None)
        ids = tuple(publish(self.publisher, self.topic_path, data, attributes) for _ in range(repeat))
        if replaced is not None:
            publish(self.publisher, self.topic_path, *notification.build_notification(
                replaced, notification.OBJECT_DELETE, overwritten_by_generation=resource['generation']))
        return ids

    def put(self, bucket: str, name: str, content: bytes, content_type: Optional[str] = None,
            local_path: str = '', repeat: int = 1) -> Uploaded:
        resource, replaced = self.write(bucket, name, content, content_type)
        ids = self.announce(resource, replaced, repeat)
        return Uploaded(local_path, bucket, name, resource['generation'], ids)

    def upload_files(self, paths: Iterable[str], bucket: str, prefix: str = '', repeat: int = 1) -> list[Uploaded]:
        done = []
        for local, name in files_to_upload(paths, prefix):
            with open(local, 'rb') as f:
                done.append(self.put(bucket, name, f.read(), local_path=local, repeat=repeat))
        return done

    def delete(self, bucket: str, name: str) -> str:
        """Deletes the live object and publishes OBJECT_DELETE; returns the deleted generation."""
        blob = self.storage.bucket(bucket).get_blob(name)
        if blob is None:
            raise FileNotFoundError(f'gs://{bucket}/{name}')
        resource = notification.object_resource(blob._properties)
        blob.delete()
        publish(self.publisher, self.topic_path, *notification.build_notification(resource, notification.OBJECT_DELETE))
        return resource['generation']

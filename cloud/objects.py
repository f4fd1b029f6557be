"""Opening and describing input objects, local or in Cloud Storage.

Beam's ``FileSystems`` opens local paths and ``gs://`` URIs alike, but cannot
pin a Cloud Storage generation. When a notification names the generation, the
object is read through the storage client at exactly that generation, so an
object overwritten or deleted after its notification is reported as such
rather than silently read at its newer version.
"""
from __future__ import annotations

import functools
import os
from typing import BinaryIO, Optional

from apache_beam.io.filesystems import FileSystems

from audio.records import AudioObject
from cloud import emulators

READ_CHUNK = 8 * 1024 * 1024


class ObjectGone(Exception):
    """The object (at the requested generation) no longer exists."""


@functools.lru_cache(maxsize=1)
def storage_client():
    """The process's Cloud Storage client (anonymous against the storage emulator)."""
    from google.cloud import storage

    return emulators.anonymous_storage_client() or storage.Client()


def split_gcs(uri: str) -> tuple[str, str]:
    bucket, _, name = uri[len('gs://'):].partition('/')
    return bucket, name


def open_object(obj: AudioObject) -> BinaryIO:
    """A seekable binary stream of the object's bytes (read lazily, in chunks)."""
    if obj.uri.startswith('gs://') and obj.generation:
        from google.api_core import exceptions

        bucket, name = split_gcs(obj.uri)
        blob = storage_client().bucket(bucket).blob(name, generation=int(obj.generation))
        try:
            return blob.open('rb', chunk_size=READ_CHUNK)
        except exceptions.NotFound as e:
            raise ObjectGone(f'{obj.uri} generation {obj.generation} no longer exists '
                             '(deleted or overwritten before it was read)') from e
    try:
        return FileSystems.open(obj.uri, compression_type='uncompressed')
    except FileNotFoundError as e:
        raise ObjectGone(f'{obj.uri} no longer exists') from e
    except Exception as e:  # Beam wraps missing files in BeamIOError
        if 'No such file' in str(e) or 'Not found' in str(e) or '404' in str(e):
            raise ObjectGone(f'{obj.uri} no longer exists') from e
        raise


def gcs_generation(uri: str) -> Optional[str]:
    """The live generation of a gs:// object, or None if it is gone."""
    bucket, name = split_gcs(uri)
    blob = storage_client().bucket(bucket).get_blob(name)
    return str(blob.generation) if blob is not None else None


def local_generation(path: str) -> str:
    """Local files have no generation; the modification time (ns) plays its part."""
    return str(os.stat(path).st_mtime_ns)

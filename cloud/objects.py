"""Opening and describing input objects, local or in Cloud Storage.

Beam's ``FileSystems`` opens local paths and ``gs://`` URIs alike, but cannot
pin a Cloud Storage generation. When a notification names the generation, the
object is read through the storage client at exactly that generation, so an
object overwritten or deleted after its notification is reported as such
rather than silently read at its newer version (the stages' failure contract,
``transforms.failures.as_read_failure``, turns that 404 into ``ObjectGone``, wherever
it surfaces: on open or on the first read).
"""
from __future__ import annotations

import functools
import io
import os
from typing import BinaryIO, Optional

from apache_beam.io.filesystems import FileSystems

from audio.records import AudioObject
from cloud import emulators

READ_CHUNK = 8 * 1024 * 1024
# An object up to this size is downloaded whole in one request (a BlobReader spends three on a small file:
# the object's metadata, then a chunk, read again after the decoder seeks back to the start). Bigger
# objects are read in READ_CHUNK pieces, so memory stays bounded by the same figure either way.
WHOLE_OBJECT_BYTES = READ_CHUNK


@functools.lru_cache(maxsize=1)
def storage_client():
    """The process's Cloud Storage client (anonymous against the storage emulator)."""
    import google.cloud.storage as storage

    return emulators.anonymous_storage_client() or storage.Client()


def split_gcs(uri: str) -> tuple[str, str]:
    bucket, _, name = uri[len('gs://'):].partition('/')
    return bucket, name


def open_object(obj: AudioObject) -> BinaryIO:
    """A seekable binary stream of the object's bytes (read lazily, in chunks; whole when it is small).

    Errors propagate as the client raised them; the stage classifies them (transforms/failures.py).
    """
    if obj.uri.startswith('gs://') and obj.generation:
        bucket, name = split_gcs(obj.uri)
        blob = storage_client().bucket(bucket).blob(name, generation=int(obj.generation))
        if obj.size and obj.size <= WHOLE_OBJECT_BYTES:
            return io.BytesIO(blob.download_as_bytes())
        return blob.open('rb', chunk_size=READ_CHUNK)
    return FileSystems.open(obj.uri, compression_type='uncompressed')


class WatchedStream:
    """A binary stream that remembers the first error its underlying reads raised.

    Decoders catch their reader's exceptions and report a damaged file; when the read itself failed
    (Cloud Storage went away mid-file) that error, not the decoder's verdict, says what happened.
    """

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.error: Optional[BaseException] = None

    def _watched(self, method: str, *args):
        try:
            return getattr(self._stream, method)(*args)
        except Exception as e:
            if self.error is None:
                self.error = e
            raise

    def read(self, *args):
        return self._watched('read', *args)

    def readinto(self, buffer):
        return self._watched('readinto', buffer)

    def seek(self, *args):
        return self._watched('seek', *args)

    def tell(self):
        return self._watched('tell')

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def __getattr__(self, name):
        return getattr(self._stream, name)


def write_object(uri: str, data: bytes, content_type: str) -> None:
    """Writes ``data`` to ``uri`` (gs:// or a local path), replacing what is there.

    Cloud Storage: in one request. Beam's ``FileSystems.create`` always starts a resumable upload (one
    request to open the session, one per chunk), which for a spectrogram PNG (tens of KiB) doubles the
    round trips per file. The storage client sends an object of up to 8 MiB as one multipart upload and
    switches to a resumable one above that. The client does not retry an upload without a generation
    precondition; the caller's ``transforms.failures.Retrier`` does, and rewriting the same name with the
    same bytes leaves one object. Errors propagate as the client raised them.
    """
    if uri.startswith('gs://'):
        bucket, name = split_gcs(uri)
        storage_client().bucket(bucket).blob(name).upload_from_string(data, content_type=content_type)
        return
    with FileSystems.create(uri, mime_type=content_type) as f:
        f.write(data)


def gcs_generation(uri: str) -> Optional[str]:
    """The live generation of a gs:// object, or None if it is gone."""
    bucket, name = split_gcs(uri)
    blob = storage_client().bucket(bucket).get_blob(name)
    return str(blob.generation) if blob is not None else None


def local_generation(path: str) -> str:
    """Local files have no generation; the modification time (ns) plays its part."""
    return str(os.stat(path).st_mtime_ns)

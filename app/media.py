"""Reading a row's spectrogram and audio for the page: local files, or gs:// objects through the storage client.

The page is sent the bytes (Streamlit serves them from its own media endpoint),
so a ``gs://`` object is never exposed through a public URL and the browser
needs no Google credentials. Large files are refused with a clear message
rather than loaded into the server's memory.
"""
from __future__ import annotations

import mimetypes
import os
import posixpath

from cloud.objects import split_gcs, storage_client

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_AUDIO_BYTES = 64 * 1024 * 1024
# What browsers expect for the audio formats the pipeline reads (mimetypes lacks several).
AUDIO_MIME_TYPES = {
    'wav': 'audio/wav', 'wave': 'audio/wav', 'flac': 'audio/flac', 'ogg': 'audio/ogg', 'oga': 'audio/ogg',
    'opus': 'audio/ogg', 'mp3': 'audio/mpeg', 'm4a': 'audio/mp4', 'mp4': 'audio/mp4', 'aac': 'audio/aac',
    'aif': 'audio/aiff', 'aiff': 'audio/aiff', 'aifc': 'audio/aiff', 'webm': 'audio/webm', 'weba': 'audio/webm',
    'caf': 'audio/x-caf', 'au': 'audio/basic', 'snd': 'audio/basic', 'wma': 'audio/x-ms-wma', 'amr': 'audio/amr',
    '3gp': 'audio/3gpp', 'mka': 'audio/x-matroska',
}


class MediaUnavailable(Exception):
    """The file cannot be shown; the message says why (missing, too large, no access)."""


def local_path(uri: str) -> str:
    """A local path from a row's URI (``file://`` stripped); relative paths are relative to the working directory."""
    return uri[len('file://'):] if uri.startswith('file://') else uri


def read_media(uri: str, max_bytes: int) -> bytes:
    """The bytes of a local file or gs:// object, if it exists and is at most ``max_bytes``."""
    if not uri:
        raise MediaUnavailable('no file recorded')
    if uri.startswith('gs://'):
        return _read_gcs(uri, max_bytes)
    path = local_path(uri)
    if not os.path.isfile(path):
        raise MediaUnavailable(f'{path} does not exist (moved or deleted since it was processed?)')
    size = os.path.getsize(path)
    if size > max_bytes:
        raise MediaUnavailable(f'{path} is {size / 1e6:.1f} MB, more than the {max_bytes / 1e6:.0f} MB the page shows')
    with open(path, 'rb') as f:
        return f.read()


def _read_gcs(uri: str, max_bytes: int) -> bytes:
    from google.api_core import exceptions

    bucket, name = split_gcs(uri)
    try:
        blob = storage_client().bucket(bucket).get_blob(name)
        if blob is None:
            raise MediaUnavailable(f'{uri} does not exist (deleted since it was processed?)')
        if blob.size is not None and blob.size > max_bytes:
            raise MediaUnavailable(f'{uri} is {blob.size / 1e6:.1f} MB, more than the {max_bytes / 1e6:.0f} MB '
                                   'the page shows')
        return blob.download_as_bytes()
    except exceptions.Forbidden as e:
        raise MediaUnavailable(f'no read access to {uri}: {e.message}') from e


def audio_mime_type(uri: str) -> str:
    ext = posixpath.splitext(uri)[1].lower().lstrip('.')
    return AUDIO_MIME_TYPES.get(ext) or mimetypes.guess_type(uri)[0] or 'application/octet-stream'

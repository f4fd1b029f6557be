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

from app.units import MB, limit_text, size_text
from cloud.objects import split_gcs, storage_client

MAX_IMAGE_BYTES = 20 * MB
MAX_AUDIO_BYTES = 64 * MB
# What browsers expect for the audio formats the pipeline reads (mimetypes lacks several).
AUDIO_MIME_TYPES = {
    'wav': 'audio/wav', 'wave': 'audio/wav', 'flac': 'audio/flac', 'ogg': 'audio/ogg', 'oga': 'audio/ogg',
    'opus': 'audio/ogg', 'mp3': 'audio/mpeg', 'm4a': 'audio/mp4', 'mp4': 'audio/mp4', 'aac': 'audio/aac',
    'aif': 'audio/aiff', 'aiff': 'audio/aiff', 'aifc': 'audio/aiff', 'webm': 'audio/webm', 'weba': 'audio/webm',
    'caf': 'audio/x-caf', 'au': 'audio/basic', 'snd': 'audio/basic', 'wma': 'audio/x-ms-wma', 'amr': 'audio/amr',
    '3gp': 'audio/3gpp', 'mka': 'audio/x-matroska',
}


# What Chromium, Firefox and Safari play natively; anything else is sent as a WAV copy made on the server.
BROWSER_PLAYABLE = frozenset({'audio/wav', 'audio/flac', 'audio/ogg', 'audio/mpeg', 'audio/mp4', 'audio/aac',
                              'audio/webm'})
PLAYBACK_RATE = 22050  # for a copy decoded through FFmpeg (formats libsndfile does not read)


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
        raise MediaUnavailable(f'{path} is {size_text(size)}, more than the {limit_text(max_bytes)} the page shows')
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
            raise MediaUnavailable(f'{uri} is {size_text(blob.size)}, more than the {limit_text(max_bytes)} '
                                   'the page shows')
        return blob.download_as_bytes()
    except exceptions.Forbidden as e:
        raise MediaUnavailable(f'no read access to {uri}: {e.message}') from e


def audio_mime_type(uri: str) -> str:
    ext = posixpath.splitext(uri)[1].lower().lstrip('.')
    return AUDIO_MIME_TYPES.get(ext) or mimetypes.guess_type(uri)[0] or 'application/octet-stream'


def playable_audio(uri: str, data: bytes) -> tuple[bytes, str, str]:
    """(bytes, MIME type, note) a browser can play. AIFF, CAF, AU, WMA, AMR... are decoded here and sent as a
    16-bit WAV copy (the note says so); a file that cannot be decoded raises MediaUnavailable."""
    mime = audio_mime_type(uri)
    if mime in BROWSER_PLAYABLE:
        return data, mime, ''
    import io

    import numpy as np
    import soundfile

    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype='float32', always_2d=True)
    except Exception:  # not a libsndfile format: decode through FFmpeg (mono, at PLAYBACK_RATE)
        from audio.decode import DecodeError, decode

        try:
            mono, _ = decode(io.BytesIO(data), PLAYBACK_RATE, max_duration_s=4 * 3600, size=len(data))
        except DecodeError as e:
            raise MediaUnavailable(f'cannot be decoded for playback ({e})') from e
        samples, rate = np.asarray(mono, dtype=np.float32)[:, None], PLAYBACK_RATE
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format='WAV', subtype='PCM_16')
    kind = posixpath.splitext(uri)[1].lstrip('.').upper() or 'this format'
    return out.getvalue(), 'audio/wav', f'{kind} does not play in browsers: playing a WAV copy made on the server.'


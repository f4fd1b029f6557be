"""Files dropped on the page, into the pipeline's input: a local folder, or a gs:// bucket/prefix it watches.

Each file is checked on its own (audio extension, not empty, size limit) and
gets its own outcome message. The stored name is the sanitised base name of
what was dropped (no folders, no ``..``), so nothing lands outside the input
location, and an existing file is never overwritten: a second ``a.wav``
becomes ``a-1.wav``, because overwriting would replace audio that earlier
result rows point at. A local file appears under its final name only once it
is complete (written beside it, then hard-linked), so a watcher never reads
half a file.
"""
from __future__ import annotations

import os
import posixpath
import tempfile
import unicodedata
from dataclasses import dataclass

from app.media import audio_mime_type
from app.units import limit_text, size_text
from audio.naming import (AUDIO_EXTENSIONS, PARTIAL_UPLOAD_PREFIX, PARTIAL_UPLOAD_SUFFIX, is_audio_name,
                          safe_component)
from cloud.objects import split_gcs, storage_client

DEFAULT_MAX_UPLOAD_MB = 200
MAX_NAME_ATTEMPTS = 1000
UPLOAD_MODE = 0o644
# What the file picker offers (the browser filters by extension before anything is sent).
UPLOAD_TYPES = sorted(AUDIO_EXTENSIONS)


@dataclass(frozen=True)
class UploadOutcome:
    name: str             # as dropped
    saved_as: str = ''    # final local path or gs:// URI; empty when refused
    problem: str = ''     # why it was refused or failed

    @property
    def ok(self) -> bool:
        return not self.problem

    @property
    def message(self) -> str:
        return f'{self.name}: saved as {self.saved_as}' if self.ok else f'{self.name}: {self.problem}'


def check_upload(name: str, size: int, max_bytes: int) -> str:
    """Why this file may not be uploaded, or '' if it may."""
    if not is_audio_name(name):
        return f'not an audio file; allowed extensions: {", ".join(sorted(AUDIO_EXTENSIONS))}'
    if size == 0:
        return 'the file is empty'
    if size > max_bytes:
        return f'{size_text(size)} is over the {limit_text(max_bytes)} limit'
    return ''


# Linux and Cloud Storage allow 255 bytes per name (UTF-8); room is kept for "-999" and the extension.
MAX_STEM_BYTES = 200


def _cut_to_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, at a character boundary."""
    return text.encode('utf-8')[:limit].decode('utf-8', 'ignore')


def _symbol_names(text: str) -> str:
    """'🎵🎶' -> 'musical_note-multiple_musical_notes': a readable stem for a name made only of symbols."""
    names = [unicodedata.name(c, '').lower().replace(' ', '_') for c in text if not c.isspace()]
    return '-'.join(n for n in names if n)


def safe_name(name: str) -> str:
    """The dropped file's base name made safe: no folders, no leading dots or dashes, a lower-case extension,
    at most 255 bytes; a name of symbols only (emoji) is spelled out rather than collapsing to ``_``."""
    base = name.replace('\\', '/').rsplit('/', 1)[-1]
    stem, dot, ext = base.rpartition('.')  # the extension as is_audio_name reads it, so it survives
    if not dot:
        stem, ext = base, ''
    safe_stem = safe_component(stem)
    if not safe_stem.strip('_') and stem.strip('._- '):
        safe_stem = safe_component(_symbol_names(stem)) or safe_stem
    safe_stem = _cut_to_bytes(safe_stem, MAX_STEM_BYTES).rstrip('._') or '_'
    return f'{safe_stem}.{safe_component(ext).lower()}' if dot else safe_stem


def _candidates(name: str):
    stem, ext = posixpath.splitext(name)
    yield name
    for i in range(1, MAX_NAME_ATTEMPTS):
        yield f'{stem}-{i}{ext}'


def save_upload(destination: str, name: str, data: bytes, max_bytes: int,
                notify_topic: str | None = None) -> UploadOutcome:
    """Checks and stores one dropped file under ``destination``; never raises for a bad file.

    ``notify_topic``: the local stack only. Its storage emulator sends no notifications, so the
    OBJECT_FINALIZE that Cloud Storage would publish for the new object is published here.
    """
    problem = check_upload(name, len(data), max_bytes)
    if problem:
        return UploadOutcome(name, problem=problem)
    try:
        if destination.startswith('gs://'):
            blob = _save_gcs(destination, safe_name(name), data)
            saved = f'gs://{blob.bucket.name}/{blob.name}'
        else:
            saved = _save_local(destination, safe_name(name), data)
    except Exception as e:  # disk full, no permission, bucket missing: report it on the page
        return UploadOutcome(name, problem=f'could not be saved: {_reason(e)}')
    if notify_topic:
        try:
            _announce(notify_topic, blob, data)
        except Exception as e:
            return UploadOutcome(name, saved_as=saved, problem=f'saved as {saved}, but its notification could not be '
                                 f'published on {notify_topic} ({type(e).__name__}: {e}): the pipeline will not see it')
    return UploadOutcome(name, saved_as=saved)


def _reason(e: Exception) -> str:
    """What went wrong, without the server's paths (a temporary name means nothing to the person uploading)."""
    if isinstance(e, OSError) and e.strerror:
        return f'{e.strerror} ({type(e).__name__})'
    return f'{type(e).__name__}: {e}'


def _save_local(folder: str, name: str, data: bytes) -> str:
    os.makedirs(folder, exist_ok=True)
    # A hidden, non-audio temporary name: sources never read it while it is being written.
    fd, partial = tempfile.mkstemp(prefix=PARTIAL_UPLOAD_PREFIX, suffix=PARTIAL_UPLOAD_SUFFIX, dir=folder)
    try:
        # mkstemp makes it 0600; a pipeline running as another user must be able to read the upload.
        os.fchmod(fd, UPLOAD_MODE)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        for candidate in _candidates(name):
            target = os.path.join(folder, candidate)
            try:
                os.link(partial, target)  # fails if the name exists: no overwrite, no race
                return target
            except FileExistsError:
                continue
        raise FileExistsError(f'{MAX_NAME_ATTEMPTS} files named like {name} already exist')
    finally:
        os.unlink(partial)


def _save_gcs(prefix: str, name: str, data: bytes):
    from google.api_core import exceptions

    bucket_name, folder = split_gcs(prefix.rstrip('/') + '/')
    bucket = storage_client().bucket(bucket_name)
    for candidate in _candidates(name):
        blob = bucket.blob(folder + candidate)
        if blob.exists():  # the storage emulator ignores the precondition below; Cloud Storage enforces it
            continue
        try:
            # if_generation_match=0: create only; an object created meanwhile is a conflict, not an overwrite.
            blob.upload_from_string(data, content_type=audio_mime_type(candidate), if_generation_match=0)
            return blob
        except exceptions.PreconditionFailed:
            continue
    raise FileExistsError(f'{MAX_NAME_ATTEMPTS} objects named like {name} already exist')


def _announce(topic: str, blob, data: bytes) -> None:
    """Publishes the Cloud Storage notification for ``blob``, built as Cloud Storage builds it (cloud.notification)."""
    from cloud import notification
    from stack import clients, uploads

    message, attributes = notification.build_notification(notification.object_resource(blob._properties, data))
    uploads.publish(clients.publisher_client(), topic, message, attributes)

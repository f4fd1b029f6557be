"""Deterministic, safe output names for spectrograms, and which names count as audio.

Object names are user input: spaces, unicode, ``#``, ``?``, leading dashes,
nested folders and ``..`` all occur. The output path keeps the object's folder
structure (readable) but every component is sanitised, ``.``/``..`` are
dropped, and a hash of the full source URI and generation keeps two different
objects that sanitise alike apart. The result always lies under the output
location.
"""
from __future__ import annotations

import hashlib
import posixpath
import re
import unicodedata

from audio.records import AudioObject

AUDIO_EXTENSIONS = frozenset({
    'wav', 'wave', 'flac', 'ogg', 'oga', 'opus', 'mp3', 'm4a', 'aac', 'mp4', 'aif', 'aiff', 'aifc', 'webm', 'weba',
    'caf', 'au', 'snd', 'wma', 'amr', '3gp', 'mka'})
AUDIO_CONTENT_TYPE_PREFIXES = ('audio/', 'video/webm', 'video/mp4')
_UNSAFE = re.compile(r'[^\w.-]+', re.UNICODE)
_MAX_COMPONENT = 120  # UTF-8 bytes: with the generation, hash and .png a name stays under the 255-byte limit
_MAX_DEPTH = 16


# How the dashboard names an upload while it is being written (app/upload.py): sources never read one.
PARTIAL_UPLOAD_PREFIX = '.upload-'
PARTIAL_UPLOAD_SUFFIX = '.partial'


def is_partial_upload(path: str) -> bool:
    base = path.rsplit('/', 1)[-1]
    return base.startswith(PARTIAL_UPLOAD_PREFIX) and base.endswith(PARTIAL_UPLOAD_SUFFIX)


def is_audio_name(name: str, content_type: str | None = None) -> bool:
    """By extension, or failing that by a declared audio content type."""
    base = name.rsplit('/', 1)[-1]
    if '.' in base and base.rsplit('.', 1)[-1].lower() in AUDIO_EXTENSIONS:
        return True
    return bool(content_type and content_type.lower().startswith(AUDIO_CONTENT_TYPE_PREFIXES))


def safe_component(part: str) -> str:
    part = unicodedata.normalize('NFC', part)
    part = _UNSAFE.sub('_', part).strip('._') or '_'
    if part.startswith('-'):
        part = '_' + part[1:]  # never looks like a command-line flag
    # Cut by bytes, at a character boundary: 120 CJK characters are 360 bytes, too long for a file name.
    return part.encode('utf-8')[:_MAX_COMPONENT].decode('utf-8', 'ignore')


def spectrogram_relpath(source: AudioObject) -> str:
    """A relative path like ``folder/name.wav.<generation>.<hash>.png``; never absolute, never with ``..``."""
    parts = [p for p in source.name.replace('\\', '/').split('/') if p not in ('', '.', '..')]
    folders = [safe_component(p) for p in parts[:-1]][:_MAX_DEPTH]
    stem = safe_component(parts[-1]) if parts else 'audio'
    digest = hashlib.sha256(source.key.encode('utf-8')).hexdigest()[:12]
    generation = safe_component(source.generation)[:24] if source.generation else 'g0'
    return posixpath.join(*folders, f'{stem}.{generation}.{digest}.png')


def spectrogram_uri(location: str, source: AudioObject) -> str:
    """The spectrogram's URI under ``location`` (a folder or a gs:// prefix)."""
    relpath = spectrogram_relpath(source)
    if relpath.startswith('/') or '..' in relpath.split('/'):  # defence in depth; sanitising prevents it
        raise ValueError(f'unsafe spectrogram path {relpath!r}')
    return f"{location.rstrip('/')}/{relpath}"


def is_under(uri: str, location: str) -> bool:
    """Whether ``uri`` lies under ``location`` (used to never re-ingest our own outputs)."""
    base = location.rstrip('/') + '/'
    return uri.startswith(base)

"""Listing what a glob matches, locally or in Cloud Storage, with each file's version: watch mode's poll and the
dashboard's pending uploads.

Beam's own glob rules (``FileSystem.translate_pattern``: ``**`` recursive), so a
listing matches what a batch run's ``MatchFiles`` would; unlike Beam's match it
also returns each file's version (Cloud Storage generation, or local modification
time in ns, as result rows record it). Never listed: outputs to ignore and the
dashboard's uploads still being written.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Optional
from typing import Iterable

from apache_beam.io.filesystem import FileMetadata, FileSystem

from audio.naming import is_partial_upload, is_under


def static_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard, cut at a folder boundary."""
    cut = min([i for i, c in enumerate(pattern) if c in '*?['] or [len(pattern)])
    head = pattern[:cut]
    return head if cut == len(pattern) else head[:head.rfind('/') + 1]


@dataclass(frozen=True)
class Listed:
    """One file as a listing saw it."""
    path: str
    size: int
    generation: str       # Cloud Storage generation, or the local modification time in ns (as the rows record it)
    modified: float       # seconds since the epoch
    whole: bool = False   # a Cloud Storage object is finalized when listed; a local file may still be growing
    # When the watcher first listed this version (it sets it; not part of what a listing compares).
    first_seen: Optional[float] = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return self.path, self.generation

    def metadata(self) -> FileMetadata:
        return FileMetadata(self.path, self.size, self.modified)


class Lister:
    """Lists what ``pattern`` matches, with Beam's glob rules (``**`` recursive), minus what must not be read:
    the pipeline's own outputs (spectrograms, the SQLite results file and its journal) and uploads being saved."""

    def __init__(self, pattern: str, ignore: Iterable[str] = ()):
        self.pattern = pattern
        self._regex = re.compile(FileSystem.translate_pattern(pattern))
        self._root = static_prefix(pattern)
        self._ignore = [p for p in ignore if p]

    def _wanted(self, path: str) -> bool:
        return (bool(self._regex.match(path)) and not is_partial_upload(path)
                and not any(path == p or is_under(path, p) for p in self._ignore))

    def list(self) -> dict[str, Listed]:
        files = self._list_gcs() if self.pattern.startswith('gs://') else self._list_local()
        return {f.path: f for f in files if self._wanted(f.path)}

    def _list_local(self) -> Iterable[Listed]:
        root = self._root if os.path.isdir(self._root) else os.path.dirname(self._root)
        for folder, _, names in os.walk(root or '.'):
            for name in names:
                path = os.path.join(folder, name)
                try:
                    st = os.stat(path)
                except OSError:  # gone between the walk and the stat
                    continue
                yield Listed(path, st.st_size, str(st.st_mtime_ns), st.st_mtime)

    def _list_gcs(self) -> Iterable[Listed]:
        from cloud.objects import split_gcs, storage_client

        bucket, prefix = split_gcs(self._root)
        for blob in storage_client().list_blobs(bucket, prefix=prefix):
            path = f'gs://{bucket}/{blob.name}'
            updated = blob.updated.timestamp() if blob.updated else 0.0
            yield Listed(path, blob.size or 0, str(blob.generation), updated, whole=True)

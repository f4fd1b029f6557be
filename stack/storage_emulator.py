"""Runs ``gcp-storage-emulator`` with two answers made the way Cloud Storage gives them.

* A read of a generation that is gone. The emulator keeps only the live
  version of each object and ignores the ``generation`` parameter of reads, so
  reading generation 1 of an object since overwritten returns generation 2's
  bytes. Cloud Storage (without object versioning) answers 404 there, and the
  pipeline relies on it to turn an object overwritten or deleted before it was
  read into an error row rather than a row with another version's content.
* The object's ``mediaLink`` and ``selfLink``. The emulator puts the object
  name in them unescaped, so a name with ``#`` or ``?`` (which users upload)
  yields a download URL that is cut at that character (HTTP 501). Cloud Storage
  percent-encodes the name; the client library downloads from ``mediaLink``.

And one cost made O(1): the emulator rewrites its whole metadata file ``.meta`` (every object's resource)
after each write, so each upload costs time in proportion to the objects stored: with 3,000 objects that
was the bound of a streaming drain (~30 ms of the emulator's CPU per file, more than the pipeline's own).
Here a write that changes one object (an upload, a patch, a delete, a resumable upload's session) appends
that object's new resource, or its removal, as one line of ``.meta-journal``; reading the metadata (a
restart) loads ``.meta`` and replays the journal over it. Any other change (a bucket, IAM, a wipe) and a
journal grown past the number of objects write ``.meta`` whole (compact JSON, C encoder) and empty the
journal, so each write costs O(1) amortised. A line holds a value, not a delta: replaying it twice (a crash
between the snapshot and the journal's removal) changes nothing, and a last line cut short by a crash is
dropped, as the write it records never finished. (The emulator serves one request at a time: no locks.)

    python -m stack.storage_emulator --data-dir DIR start --host 127.0.0.1 --port 9023
"""
from __future__ import annotations

import functools
import json
import sys
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import quote

from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects


def _query(request, name: str):
    values = request.query.get(name)
    return values[0] if values else None


def live_generation_only(handler):
    """Wraps an object GET handler: a ``generation`` other than the live one is 404, as in Cloud Storage."""
    @functools.wraps(handler)
    def wrapped(request, response, storage, *args, **kwargs):
        wanted = _query(request, 'generation')
        soft_deleted = (_query(request, 'softDeleted') or '').lower() in ('1', 'true', 'yes')
        if wanted and not soft_deleted:
            try:
                live = storage.get_file_obj(request.params['bucket_name'], request.params['object_id'])
            except NotFound:
                live = None
            if live is None or str(live.get('generation')) != str(wanted):
                response.status = HTTPStatus.NOT_FOUND
                return None
        return handler(request, response, storage, *args, **kwargs)
    return wrapped


def escaped_links(make_resource):
    """Wraps the emulator's object-resource builder: the name in both links percent-encoded, as in Cloud Storage."""
    @functools.wraps(make_resource)
    def wrapped(base_url, bucket_name, object_name, *args, **kwargs):
        obj = make_resource(base_url, bucket_name, object_name, *args, **kwargs)
        escaped = quote(object_name, safe='')
        obj['selfLink'] = f'/storage/v1/b/{bucket_name}/o/{escaped}'
        obj['mediaLink'] = (f'{base_url}/download/storage/v1/b/{bucket_name}/o/{escaped}'
                            f'?generation={obj["generation"]}&alt=media')
        return obj
    return wrapped


SECTIONS = ('buckets', 'objects', 'resumable', 'bucket_iam_policies', 'soft_deleted')
META, JOURNAL = '.meta', '.meta-journal'
# A journal shorter than this is never folded into a snapshot, whatever the number of objects.
MIN_JOURNAL_LINES = 256


def write_metadata_compactly(storage) -> None:
    """``gcp_storage_emulator.storage.Storage._write_config_to_file`` with the same content, not pretty-printed."""
    data = {section: getattr(storage, section) for section in SECTIONS}
    storage._store.write_bytes(META, json.dumps(data, separators=(',', ':')).encode('utf-8'))


def _journal_path(storage):
    return None if storage._store._use_memory else storage._store._disk_path(JOURNAL)


def write_metadata(storage) -> None:
    """``Storage._write_config_to_file``: inside a one-object change (``journaled``) only noted; else a snapshot."""
    if getattr(storage, '_journal_depth', 0):
        storage._journal_changed = True
        return
    write_metadata_compactly(storage)
    path = _journal_path(storage)
    if path is not None and path.exists():
        path.unlink()
    storage._journal_lines = 0


def _entry(storage, path: tuple[str, ...]) -> dict:
    """One journal line: the value at ``path`` (section, key, ...) now, or its absence."""
    node = getattr(storage, path[0])
    for key in path[1:]:
        if not isinstance(node, dict) or key not in node:
            return {'path': list(path)}
        node = node[key]
    return {'path': list(path), 'value': node}


def _append(storage, paths: list[tuple[str, ...]]) -> None:
    journal = _journal_path(storage)
    objects = sum(len(names) for names in storage.objects.values())
    lines = getattr(storage, '_journal_lines', 0)
    if journal is None or lines + len(paths) > max(MIN_JOURNAL_LINES, objects):
        write_metadata(storage)
        return
    text = ''.join(json.dumps(_entry(storage, path), separators=(',', ':')) + '\n' for path in paths)
    with open(journal, 'a', encoding='utf-8') as f:
        f.write(text)
    storage._journal_lines = lines + len(paths)


def journaled(method, touched: Callable[..., list[tuple[str, ...]]]):
    """Wraps a ``Storage`` method that changes one object's metadata: its own metadata write becomes journal lines
    for the paths ``touched(*args, result=...)`` names (a snapshot if it raised after changing something)."""
    @functools.wraps(method)
    def wrapped(storage, *args, **kwargs):
        storage._journal_depth = getattr(storage, '_journal_depth', 0) + 1
        outcome: dict[str, Any] = {}
        try:
            outcome['result'] = method(storage, *args, **kwargs)
            return outcome['result']
        finally:
            storage._journal_depth -= 1
            if storage._journal_depth == 0 and getattr(storage, '_journal_changed', False):
                storage._journal_changed = False
                if 'result' in outcome:
                    _append(storage, touched(*args, result=outcome['result'], **kwargs))
                else:
                    write_metadata(storage)
    return wrapped


def read_metadata(read_snapshot):
    """Wraps ``Storage._read_config_from_file``: the snapshot, then the journal's lines over it."""
    @functools.wraps(read_snapshot)
    def wrapped(storage):
        read_snapshot(storage)
        storage._journal_lines = 0
        path = _journal_path(storage)
        if path is None or not path.exists():
            return
        for line in path.read_text(encoding='utf-8').splitlines():
            try:
                entry = json.loads(line)
            except ValueError:  # the last line, cut short by a crash: its write never finished
                continue
            section, *keys, last = entry['path']
            node = getattr(storage, section)
            for key in keys:
                node = node.setdefault(key, {})
            if 'value' in entry:
                node[last] = entry['value']
            else:
                node.pop(last, None)
            storage._journal_lines += 1
    return wrapped


def _object(bucket_name, file_name, *args, result=None, **kwargs) -> list[tuple[str, ...]]:
    return [('objects', bucket_name, file_name)]


def _created(bucket_name, file_name, content=None, file_obj=None, file_id=None, result=None):
    return [('objects', bucket_name, file_name)] + ([('resumable', file_id)] if file_id else [])


def _deleted(bucket_name, file_name, result=None):
    return [('objects', bucket_name, file_name), ('soft_deleted', bucket_name, file_name)]


def _session(bucket_name, file_name, file_obj, result=None):
    return [('resumable', result)]


def journal_metadata(storage_class) -> None:
    """Makes ``storage_class`` (``gcp_storage_emulator.storage.Storage``) keep its metadata as described above."""
    storage_class._write_config_to_file = write_metadata
    storage_class._read_config_from_file = read_metadata(storage_class._read_config_from_file)
    for name, touched in (('create_file', _created), ('patch_object', _object), ('delete_file', _deleted),
                          ('_hard_delete_file', _object), ('create_resumable_upload', _session)):
        setattr(storage_class, name, journaled(getattr(storage_class, name), touched))


if __name__ == '__main__':
    # Before the server module builds its routing table from these names.
    objects.get = live_generation_only(objects.get)
    objects.download = live_generation_only(objects.download)
    objects._make_object_resource = escaped_links(objects._make_object_resource)
    from gcp_storage_emulator.storage import Storage
    journal_metadata(Storage)
    from gcp_storage_emulator.__main__ import main
    main(sys.argv[1:])

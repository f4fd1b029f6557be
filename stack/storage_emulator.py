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

And one cost made smaller: the emulator rewrites its whole metadata file (every object's resource) after
each write. Pretty-printed (``indent=2``), Python's JSON encoder runs in pure Python: ~8 ms per write with
~500 objects in the stack, the bulk of each spectrogram upload of a streaming drain. The same file is
written compactly (C encoder, ~3 ms); the emulator reads it back the same way.

    python -m stack.storage_emulator --data-dir DIR start --host 127.0.0.1 --port 9023
"""
from __future__ import annotations

import functools
import json
import sys
from http import HTTPStatus
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


def write_metadata_compactly(storage) -> None:
    """``gcp_storage_emulator.storage.Storage._write_config_to_file`` with the same content, not pretty-printed."""
    data = {
        'buckets': storage.buckets,
        'objects': storage.objects,
        'resumable': storage.resumable,
        'bucket_iam_policies': storage.bucket_iam_policies,
        'soft_deleted': storage.soft_deleted,
    }
    storage._store.write_bytes('.meta', json.dumps(data, separators=(',', ':')).encode('utf-8'))


if __name__ == '__main__':
    # Before the server module builds its routing table from these names.
    objects.get = live_generation_only(objects.get)
    objects.download = live_generation_only(objects.download)
    objects._make_object_resource = escaped_links(objects._make_object_resource)
    from gcp_storage_emulator.storage import Storage
    Storage._write_config_to_file = write_metadata_compactly
    from gcp_storage_emulator.__main__ import main
    main(sys.argv[1:])

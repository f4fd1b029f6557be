"""Runs ``gcp-storage-emulator`` with Cloud Storage's answer to a read of a generation that is gone.

The emulator keeps only the live version of each object and ignores the
``generation`` parameter of reads, so reading generation 1 of an object since
overwritten returns generation 2's bytes. Cloud Storage (without object
versioning) answers 404 there, and the pipeline relies on it to turn an object
overwritten or deleted before it was read into an error row rather than a row
with another version's content. This launcher adds exactly that check.

    python -m stack.storage_emulator --data-dir DIR start --host 127.0.0.1 --port 9023
"""
from __future__ import annotations

import functools
import sys
from http import HTTPStatus

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


if __name__ == '__main__':
    # Before the server module builds its routing table from these names.
    objects.get = live_generation_only(objects.get)
    objects.download = live_generation_only(objects.download)
    from gcp_storage_emulator.__main__ import main
    main(sys.argv[1:])

"""A model directory on any Beam FileSystems path, as a local directory TensorFlow can load.

TensorFlow reads ``gs://`` through its own Cloud Storage client, which knows nothing of Beam's
credentials handling or of ``STORAGE_EMULATOR_HOST``: ``tf.saved_model.load('gs://...')`` against
the storage emulator goes to www.googleapis.com and fails. So every model is read through Beam's
``FileSystems`` (Cloud Storage, the storage emulator, local disk, any registered filesystem) and
copied to a local temporary directory, once per process and model directory, then loaded from
there. Local directories are loaded in place.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

_LOGGER = logging.getLogger(__name__)
_COPY_CHUNK_BYTES = 8 << 20

_lock = threading.Lock()
_copies: dict[str, str] = {}   # remote model directory -> its local copy, for this process


def is_local(path: str) -> bool:
    return FileSystems.get_scheme(path) in (None, 'file')


def local_model_dir(model_dir: str) -> str:
    """A local directory holding ``model_dir``'s files: itself if local, else a copy made once per process."""
    if is_local(model_dir):
        return model_dir
    key = model_dir.rstrip('/')
    with _lock:   # RunInference may load from several threads at once: one copy, made once
        local = _copies.get(key)
        if local is None or not os.path.isdir(local):
            local = _copy_tree(key)
            _copies[key] = local
        return local


def _copy_tree(model_dir: str) -> str:
    prefix = model_dir + '/'
    matched = FileSystems.match([prefix + '**'])[0].metadata_list
    files = [m for m in matched if m.path.startswith(prefix) and not m.path.endswith('/')]
    if not files:
        raise FileNotFoundError(f'no files under model directory {model_dir!r}')
    target = tempfile.mkdtemp(prefix='model-')
    try:
        for m in files:
            local = os.path.join(target, *m.path[len(prefix):].split('/'))
            os.makedirs(os.path.dirname(local), exist_ok=True)
            # UNCOMPRESSED: FileSystems would otherwise decompress a file by its extension.
            with FileSystems.open(m.path, compression_type=CompressionTypes.UNCOMPRESSED) as src, \
                    open(local, 'wb') as dst:
                shutil.copyfileobj(src, dst, _COPY_CHUNK_BYTES)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    _LOGGER.info('Copied model %s (%d files, %d bytes) to %s', model_dir, len(files),
                 sum(m.size_in_bytes for m in files), target)
    return target

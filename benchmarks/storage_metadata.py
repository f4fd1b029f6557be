"""The storage emulator's CPU per object write as the bucket grows: its own metadata rewrite against the journal.

    python -m benchmarks.storage_metadata [--objects 3000] [--step 1000] [--out FILE]

In one process, without HTTP: ``Storage.create_file`` of ``--objects`` spectrogram-sized object resources into
one bucket on a data directory, each way: ``rewrite`` (the whole metadata written compactly after each write, as
``stack/storage_emulator.py`` did before its journal) and ``journal`` (what it does now). Prints the CPU time
(``time.process_time``) per write over each ``--step`` objects: flat for the journal, growing with the objects
for the rewrite. A drain's per-file cost in the emulator adds the HTTP handling and the input upload.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

from gcp_storage_emulator.storage import Storage

from stack import storage_emulator

KINDS = ('rewrite', 'journal')


def _resource(i: int) -> dict:
    name = f'spectrograms/day/clip {i}.png'
    return {'kind': 'storage#object', 'name': name, 'bucket': 'b', 'generation': str(1_700_000_000_000_000 + i),
            'metageneration': '1', 'contentType': 'image/png', 'size': '20000', 'md5Hash': 'x' * 24,
            'crc32c': 'y' * 8, 'timeCreated': '2026-12-05T05:00:00.000Z', 'updated': '2026-12-05T05:00:00.000Z',
            'storageClass': 'STANDARD', 'selfLink': f'/storage/v1/b/b/o/{i}', 'id': f'b/{name}/{i}',
            'mediaLink': f'http://127.0.0.1:9023/download/storage/v1/b/b/o/{i}?generation=1&alt=media'}


def storage_class(kind: str) -> type:
    class Measured(Storage):
        pass

    if kind == 'journal':
        storage_emulator.journal_metadata(Measured)
    else:
        Measured._write_config_to_file = storage_emulator.write_metadata_compactly
    return Measured


def measure(kind: str, objects: int, step: int) -> list[float]:
    """Milliseconds of CPU per write over each ``step`` objects."""
    per_write = []
    with tempfile.TemporaryDirectory() as data_dir:
        storage = storage_class(kind)(data_dir=data_dir)
        storage.create_bucket('b', {'name': 'b', 'id': 'b'})
        began = time.process_time()
        for i in range(objects):
            resource = _resource(i)
            storage.create_file('b', resource['name'], b'p' * 2000, resource)
            if (i + 1) % step == 0 or i + 1 == objects:
                now = time.process_time()
                per_write.append(round(1000 * (now - began) / (step if (i + 1) % step == 0 else (i + 1) % step), 3))
                began = now
    return per_write


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--objects', type=int, default=3000)
    parser.add_argument('--step', type=int, default=1000)
    parser.add_argument('--out', help='also write the figures as JSON here')
    args = parser.parse_args(argv)
    figures = {'objects': args.objects, 'step': args.step,
               'cpu_ms_per_write': {kind: measure(kind, args.objects, args.step) for kind in KINDS}}
    for kind, values in figures['cpu_ms_per_write'].items():
        print(f'{kind:8s} ' + ', '.join(f'{v:.2f}' for v in values) + f' ms per write, per {args.step} objects')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(figures, f, indent=2)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

"""What the image must be able to do, checked while it is built (Dockerfile) and in the tests:
``python -m pipeline.worker_check [--read gs://BUCKET/OBJECT_OR_PATTERN]``.

1. import every module of the pipeline package, and each runtime library it imports lazily
   (TensorFlow, LiteRT, the Cloud clients): a package missing from requirements.txt fails the build,
   not the first job;
2. decode audio through both decoders (libsndfile for WAV/FLAC/MP3..., FFmpeg through PyAV for AAC),
   whose native libraries come inside the wheels, and render a spectrogram PNG;
3. with ``--read``, read an object through Beam's FileSystems from Cloud Storage (Cloud Build passes a
   path its service account can read, see templates/cloudbuild.yaml), as the workers read uploads and
   models.
Prints one line per check; exits non-zero on the first failure.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Optional, Sequence

PACKAGES = ('audio', 'cloud', 'model', 'results', 'transforms', 'pipeline')
# Imported lazily by the package (only where they are used), so walking the package does not reach them.
LAZY_IMPORTS = ('tensorflow', 'ai_edge_litert.interpreter', 'av', 'matplotlib', 'google.cloud.storage',
                'google.cloud.bigquery', 'google.cloud.pubsub_v1', 'google.cloud.aiplatform',
                'apache_beam.io.gcp.gcsfilesystem', 'apache_beam.io.gcp.bigquery', 'apache_beam.io.gcp.pubsub',
                'apache_beam.ml.inference.vertex_ai_inference')


def import_everything() -> int:
    names = list(LAZY_IMPORTS)
    for package in PACKAGES:
        module = importlib.import_module(package)
        names += [info.name for info in pkgutil.walk_packages(module.__path__, package + '.')]
    for name in names:
        importlib.import_module(name)
    return len(names)


def decode_and_render() -> str:
    import io

    import numpy as np

    from audio import encode, spectrogram, synth
    from audio.decode import decode

    rate = 16000
    samples = synth.make('tone', np.random.default_rng(0), 1.0, rate)
    kinds = ('wav', 'flac', 'mp3', 'm4a')   # libsndfile (3) and FFmpeg through PyAV (m4a)
    for kind in kinds:
        decoded, _ = decode(io.BytesIO(encode.encode(samples, rate, kind)), rate, 10.0)
        if not 0.9 * rate <= len(decoded) <= 1.1 * rate:
            raise RuntimeError(f'{kind}: decoded {len(decoded)} samples of a 1 s clip')
    png = spectrogram.render_png(samples, rate, 'worker check')
    if not png.startswith(b'\x89PNG'):
        raise RuntimeError('the spectrogram is not a PNG')
    return f'decoded {", ".join(kinds)}; rendered a {len(png)}-byte spectrogram PNG'


def read_cloud_storage(pattern: str) -> str:
    from apache_beam.io.filesystems import FileSystems

    matched = FileSystems.match([pattern])[0].metadata_list
    if not matched:
        raise FileNotFoundError(f'nothing matches {pattern}')
    with FileSystems.open(matched[0].path) as f:
        data = f.read(1024)
    return f'read {len(data)} bytes of {matched[0].path}'


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m pipeline.worker_check', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--read', metavar='GS_PATH', help='a gs:// object or pattern to read through FileSystems')
    args = parser.parse_args(argv)
    print(f'worker check: imported {import_everything()} modules', flush=True)
    print(f'worker check: {decode_and_render()}', flush=True)
    if args.read:
        print(f'worker check: {read_cloud_storage(args.read)}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())

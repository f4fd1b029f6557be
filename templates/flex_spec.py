"""Writes the workers' image into a Flex Template spec: ``python3 templates/flex_spec.py SPEC_FILE IMAGE``.

``gcloud dataflow flex-template build`` records the launcher image (``image``) and a default environment,
but has no flag for the workers' SDK container image, so a job launched from the Console, the REST API,
Cloud Scheduler or Airflow would start its workers on Beam's stock image (no TensorFlow, no pipeline
package) and fail. ``templates/build.sh`` prints the spec with ``--print-only`` and runs this on it, so
``defaultEnvironment.sdkContainerImage`` (a field of the Dataflow API's FlexTemplateRuntimeEnvironment)
names the same image, whatever launches the template. A launch may still override it.

Standard library only: it runs on the machine that runs build.sh, outside the project's virtualenv.
"""
from __future__ import annotations

import json
import sys


def with_worker_image(spec: dict, image: str) -> dict:
    """The spec with ``image`` as the workers' SDK container; the launcher image must be the same image."""
    if spec.get('image') != image:
        raise ValueError(f'the spec launches {spec.get("image")!r}, not {image!r}: one image serves both roles')
    environment = dict(spec.get('defaultEnvironment') or {})
    environment['sdkContainerImage'] = image
    return {**spec, 'defaultEnvironment': environment}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    path, image = argv
    with open(path, encoding='utf-8') as f:
        spec = json.load(f)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(with_worker_image(spec, image), f, indent=4, sort_keys=True)
        f.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

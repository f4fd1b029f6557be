"""Generates ``templates/metadata.json``, the Flex Template's parameters, from ``pipeline.options.OPTIONS``.

    python -m templates.generate_metadata          # (re)write templates/metadata.json
    python -m templates.generate_metadata --check  # exit 1 if the committed file is stale

Every option with ``in_template=True`` becomes a parameter with the same name, its help as
``helpText``, its regex, and ``isOptional`` unless a Dataflow job cannot start without it.
``gcloud dataflow flex-template build --metadata-file`` embeds the file in the template spec;
Dataflow then checks each launch's parameters against these regexes before starting anything.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pipeline.options import OPTIONS, SUBSCRIPTION_RE, Option
from results.tables import BQ_TABLE_RE
from templates.generated_file import REPO_ROOT, write_or_check

METADATA_PATH = REPO_ROOT / 'templates' / 'metadata.json'
TEMPLATE_NAME = 'Audio spectrogram classifier'
TEMPLATE_DESCRIPTION = (
    'Decodes each audio file that lands in Cloud Storage, writes its spectrogram PNG, classifies it with a '
    'TensorFlow SavedModel through batched RunInference and writes one BigQuery row per file (one error row per '
    'file that fails). Streaming from the bucket\'s Pub/Sub notifications (input_subscription), or a batch replay '
    'of a gs:// glob (input_pattern).')

# The options that validate() refuses to run on Dataflow without (a local run needs less:
# model_uri defaults to the demo model on local disk, which a Dataflow worker cannot read).
REQUIRED_ON_DATAFLOW = tuple(option.name for option in OPTIONS if option.required_on_dataflow)


def template_options() -> list[Option]:
    return [option for option in OPTIONS if option.in_template]


def param_type(option: Option) -> str:
    """The console's input widget: a picker for subscriptions and tables, a checkbox, a number field."""
    if option.is_flag:
        return 'BOOLEAN'
    if option.type in (int, float):
        return 'NUMBER'
    if option.regex == SUBSCRIPTION_RE:
        return 'PUBSUB_SUBSCRIPTION'
    if option.regex == BQ_TABLE_RE:
        return 'BIGQUERY_TABLE'
    return 'TEXT'


def parameter(option: Option) -> dict[str, Any]:
    entry: dict[str, Any] = {
        'name': option.name,
        'label': option.template_label,
        'helpText': option.help,
        'isOptional': option.name not in REQUIRED_ON_DATAFLOW,
        'paramType': param_type(option),
    }
    if option.regex:
        entry['regexes'] = [option.regex]
    # Flags get no default: the console would send "false", and absent already means false.
    if entry['isOptional'] and option.default is not None and not option.is_flag:
        entry['defaultValue'] = str(option.default)
    return entry


def metadata() -> dict[str, Any]:
    return {
        'name': TEMPLATE_NAME,
        'description': TEMPLATE_DESCRIPTION,
        'parameters': [parameter(option) for option in template_options()],
    }


def metadata_json() -> str:
    return json.dumps(metadata(), indent=2) + '\n'


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true', help='exit 1 if templates/metadata.json is stale')
    args = parser.parse_args(argv)
    return write_or_check({METADATA_PATH: metadata_json()}, args.check)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

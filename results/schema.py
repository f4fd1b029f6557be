"""The result and error tables: the one definition of their columns.

BigQuery sinks, ``templates/provision.sh`` (via ``python -m results.schema``),
the SQLite store and the dashboard all read these lists.

    python -m results.schema processed   # BigQuery JSON schema of the results table
    python -m results.schema errors      # ... of the error table
    python -m results.schema events      # ... of the events table (``<output_table>_events``)
    python -m results.schema reviews     # ... of the reviews table (``<output_table>_reviews``)

The BigQuery view ``<table>_latest`` (``latest_view_sql``) is generated here too:
one row per (audio_file, generation), the newest result, else the newest error.
Streaming inserts are at-least-once and ``--reprocess`` appends, so the tables
may hold duplicates; readers (the dashboard) read the view, where they cannot.
So is ``<table>_reviews_latest`` (``reviews_view_query``): the newest verdict per detection.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass
from typing import Any

from audio.records import AudioObject, Classification, Event, FailedAudio, ProcessedAudio

PROCESSED_FIELDS: list[dict[str, Any]] = [
    {'name': 'audio_file', 'type': 'STRING', 'mode': 'REQUIRED',
     'description': 'gs:// URI or local path of the audio file'},
    {'name': 'generation', 'type': 'STRING', 'mode': 'REQUIRED',
     'description': 'Cloud Storage object generation (local files: mtime in ns)'},
    {'name': 'spectrogram_image', 'type': 'STRING', 'mode': 'NULLABLE',
     'description': 'URI of the spectrogram PNG'},
    {'name': 'label', 'type': 'STRING', 'mode': 'NULLABLE', 'description': 'Predicted label'},
    {'name': 'confidence', 'type': 'FLOAT', 'mode': 'NULLABLE', 'description': 'Score of the predicted label'},
    {'name': 'scores', 'type': 'RECORD', 'mode': 'REPEATED', 'description': 'Score of every label',
     'fields': [{'name': 'label', 'type': 'STRING', 'mode': 'NULLABLE'},
                {'name': 'score', 'type': 'FLOAT', 'mode': 'NULLABLE'}]},
    {'name': 'model_version', 'type': 'STRING', 'mode': 'NULLABLE', 'description': 'Model that produced the row'},
    {'name': 'event_count', 'type': 'INTEGER', 'mode': 'NULLABLE',
     'description': 'How many rows the events table holds for this file (NULL when events were not computed)'},
    {'name': 'duration_seconds', 'type': 'FLOAT', 'mode': 'NULLABLE', 'description': 'Audio duration'},
    {'name': 'sample_rate_hz', 'type': 'INTEGER', 'mode': 'NULLABLE', 'description': 'Original sample rate'},
    {'name': 'channels', 'type': 'INTEGER', 'mode': 'NULLABLE', 'description': 'Original channel count'},
    {'name': 'event_time', 'type': 'TIMESTAMP', 'mode': 'NULLABLE',
     'description': 'When the object was finalized (notification event time)'},
    {'name': 'processed_at', 'type': 'TIMESTAMP', 'mode': 'REQUIRED', 'description': 'When the row was produced'},
    # Last, and NULLABLE: added to tables made before it (bq update and SQLite's ALTER TABLE append columns).
    {'name': 'seen_at', 'type': 'TIMESTAMP', 'mode': 'NULLABLE',
     'description': 'When the pipeline first saw the file: the event time of its notification, or when the '
                    'listing (watch mode) or match (batch run) found it. Latency is processed_at - seen_at'},
]

ERROR_FIELDS: list[dict[str, Any]] = [
    {'name': 'audio_file', 'type': 'STRING', 'mode': 'REQUIRED', 'description': 'gs:// URI or local path'},
    {'name': 'generation', 'type': 'STRING', 'mode': 'NULLABLE', 'description': 'Object generation, when known'},
    {'name': 'stage', 'type': 'STRING', 'mode': 'REQUIRED',
     'description': 'Stage that failed: read, parse, decode, spectrogram, inference or write'},
    {'name': 'error_type', 'type': 'STRING', 'mode': 'REQUIRED', 'description': 'Short error class, e.g. TooLong'},
    {'name': 'message', 'type': 'STRING', 'mode': 'NULLABLE', 'description': 'What went wrong (truncated)'},
    {'name': 'failed_at', 'type': 'TIMESTAMP', 'mode': 'REQUIRED', 'description': 'When the failure was recorded'},
    # NULLABLE so that they can be added to tables provisioned before them (bq update adds NULLABLE columns only).
    {'name': 'retryable', 'type': 'BOOLEAN', 'mode': 'NULLABLE',
     'description': 'True: a transient failure (outage, lock) outlasted the retries; a batch replay retries the '
                    'file. False: the input itself is bad'},
    {'name': 'attempts', 'type': 'INTEGER', 'mode': 'NULLABLE',
     'description': 'How many times the stage tried the file before giving up'},
]

# One row per detected event (audio.events): a run of windows with the same label (not background) whose
# probability is at least --event_min_confidence; with a multi-label model (BirdNET) several labels may be
# detected in the same windows, so a file's events are keyed by start and label (EVENT_KEY_COLUMNS).
EVENT_FIELDS: list[dict[str, Any]] = [
    {'name': 'audio_file', 'type': 'STRING', 'mode': 'REQUIRED', 'description': 'gs:// URI or local path'},
    {'name': 'generation', 'type': 'STRING', 'mode': 'REQUIRED', 'description': 'Object generation'},
    {'name': 'start_seconds', 'type': 'FLOAT', 'mode': 'REQUIRED',
     'description': 'Seconds from the start of the file: the middle hop of the first window (0 for the first); '
                    'with --merge_consecutive N > 0 (BirdNET) the start of the first window'},
    {'name': 'end_seconds', 'type': 'FLOAT', 'mode': 'REQUIRED',
     'description': 'Seconds: the middle hop of the last window ends (the file duration for the last window); '
                    'with --merge_consecutive N > 0 (BirdNET) the end of the last window'},
    {'name': 'label', 'type': 'STRING', 'mode': 'REQUIRED', 'description': 'Label of every window of the event'},
    {'name': 'confidence', 'type': 'FLOAT', 'mode': 'REQUIRED',
     'description': 'Mean probability of the label over the windows of the event (--merge_consecutive N > 0: '
                    'over its 3 most confident windows)'},
    {'name': 'model_version', 'type': 'STRING', 'mode': 'NULLABLE', 'description': 'Model that produced it'},
    {'name': 'processed_at', 'type': 'TIMESTAMP', 'mode': 'REQUIRED',
     'description': 'When the row was produced (the same as the file\'s result row)'},
]

# One row per verdict a person gave a detection (an event row) on the dashboard's Review page (results.reviews).
# A detection is REVIEW_KEY: reviewing it again replaces the verdict (SQLite's primary key; in BigQuery each
# review is a row and <output_table>_reviews_latest shows the newest per detection). Pipeline runs never write
# or delete these rows.
REVIEW_FIELDS: list[dict[str, Any]] = [
    {'name': 'audio_file', 'type': 'STRING', 'mode': 'REQUIRED', 'description': 'gs:// URI or local path'},
    {'name': 'generation', 'type': 'STRING', 'mode': 'REQUIRED', 'description': 'Object generation reviewed'},
    {'name': 'start_seconds', 'type': 'FLOAT', 'mode': 'REQUIRED', 'description': 'The event\'s start'},
    {'name': 'end_seconds', 'type': 'FLOAT', 'mode': 'REQUIRED', 'description': 'The event\'s end'},
    {'name': 'label', 'type': 'STRING', 'mode': 'REQUIRED', 'description': 'The label the model gave it'},
    {'name': 'confidence', 'type': 'FLOAT', 'mode': 'REQUIRED', 'description': 'The event\'s confidence'},
    {'name': 'model_version', 'type': 'STRING', 'mode': 'NULLABLE', 'description': 'Model that produced it'},
    {'name': 'verdict', 'type': 'STRING', 'mode': 'REQUIRED',
     'description': 'correct: the label is right; wrong: it is not'},
    {'name': 'reviewer', 'type': 'STRING', 'mode': 'NULLABLE', 'description': 'Who reviewed (free text)'},
    {'name': 'reviewed_at', 'type': 'TIMESTAMP', 'mode': 'REQUIRED', 'description': 'When the verdict was given'},
]
REVIEW_KEY = ('audio_file', 'generation', 'start_seconds', 'end_seconds', 'label')

# Results are partitioned by day of processing and clustered by label, errors by day of failure and
# clustered by stage and error type (provision.sh creates them so; the sinks create them so if missing).
PARTITION_FIELD = 'processed_at'
CLUSTER_FIELDS = ('label',)
ERRORS_PARTITION_FIELD = 'failed_at'
ERRORS_CLUSTER_FIELDS = ('stage', 'error_type')
EVENTS_PARTITION_FIELD = 'processed_at'
EVENTS_CLUSTER_FIELDS = ('label',)
REVIEWS_PARTITION_FIELD = 'reviewed_at'
REVIEWS_CLUSTER_FIELDS = ('label',)
KEY_COLUMNS = ('audio_file', 'generation')
# An event row's identity: several labels can be detected in the same windows (multi-label models).
EVENT_KEY_COLUMNS = (*KEY_COLUMNS, 'start_seconds', 'label')


@dataclass(frozen=True)
class Table:
    """One table of the result store, declared once: every store creates, writes and reads it from this.

    ``name`` is the table's name in the SQLite file and its kind everywhere else (``python -m results.schema
    NAME``, ``templates/schema/NAME.json``); ``suffix`` places it in BigQuery, as ``<output_table><suffix>``.
    ``key``: the columns that identify a row (SQLite's primary key; a rewrite of the same key replaces it).
    """
    name: str
    fields: list[dict[str, Any]]
    key: tuple[str, ...]
    partition: str
    cluster: tuple[str, ...]
    suffix: str

    @property
    def columns(self) -> list[str]:
        return [f['name'] for f in self.fields]


PROCESSED = 'processed'
ERRORS = 'errors'
EVENTS = 'events'
REVIEWS = 'reviews'
TABLES: dict[str, Table] = {t.name: t for t in (
    Table(PROCESSED, PROCESSED_FIELDS, KEY_COLUMNS, PARTITION_FIELD, CLUSTER_FIELDS, ''),
    Table(ERRORS, ERROR_FIELDS, KEY_COLUMNS, ERRORS_PARTITION_FIELD, ERRORS_CLUSTER_FIELDS, '_errors'),
    Table(EVENTS, EVENT_FIELDS, EVENT_KEY_COLUMNS, EVENTS_PARTITION_FIELD, EVENTS_CLUSTER_FIELDS, '_events'),
    Table(REVIEWS, REVIEW_FIELDS, REVIEW_KEY, REVIEWS_PARTITION_FIELD, REVIEWS_CLUSTER_FIELDS, '_reviews'),
)}
MAX_MESSAGE_CHARS = 1024
LATEST_VIEW_SUFFIX = '_latest'
# The view's first column: which table the row came from.
OUTCOME_COLUMN, RESULT_OUTCOME, ERROR_OUTCOME = 'outcome', 'result', 'error'
_STANDARD_SQL_TYPES = {'STRING': 'STRING', 'FLOAT': 'FLOAT64', 'INTEGER': 'INT64', 'BOOLEAN': 'BOOL',
                       'TIMESTAMP': 'TIMESTAMP'}
# A result row on its way to the sink carries its file's event rows under this key; the sinks split them off
# (SQLite writes both in one transaction; BigQuery writes them to the events table).
ROW_EVENTS_KEY = '_events'


def bigquery_schema(table: str) -> dict[str, Any]:
    """The schema in the form WriteToBigQuery and ``bq mk --schema`` accept."""
    return {'fields': TABLES[table].fields}


def timestamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


def processed_row(item: ProcessedAudio, result: Classification, processed_at: float) -> dict[str, Any]:
    return {
        'audio_file': item.source.uri,
        'generation': item.source.generation,
        'spectrogram_image': item.spectrogram_uri,
        'label': result.label,
        'confidence': float(result.confidence),
        'scores': [{'label': label, 'score': float(score)} for label, score in result.scores],
        'model_version': result.model_version,
        'event_count': len(result.events) if result.events is not None else None,
        'duration_seconds': float(item.info.duration_seconds),
        'sample_rate_hz': int(item.info.sample_rate_hz),
        'channels': int(item.info.channels),
        'event_time': timestamp(item.source.event_time) if item.source.event_time is not None else None,
        'processed_at': timestamp(processed_at),
        'seen_at': timestamp(item.source.seen_at) if item.source.seen_at is not None else None,
    }


def event_row(item: ProcessedAudio, event: Event, model_version: str, processed_at: float) -> dict[str, Any]:
    return {
        'audio_file': item.source.uri,
        'generation': item.source.generation,
        'start_seconds': float(event.start_seconds),
        'end_seconds': float(event.end_seconds),
        'label': event.label,
        'confidence': float(event.confidence),
        'model_version': model_version,
        'processed_at': timestamp(processed_at),
    }


def processed_row_with_events(item: ProcessedAudio, result: Classification, processed_at: float) -> dict[str, Any]:
    """The result row, carrying its event rows under ``ROW_EVENTS_KEY`` when events were computed."""
    row = processed_row(item, result, processed_at)
    if result.events is not None:
        row[ROW_EVENTS_KEY] = [event_row(item, e, result.model_version, processed_at) for e in result.events]
    return row


def split_events(row: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """(the result row as the table stores it, its event rows or None when events were not computed)."""
    if ROW_EVENTS_KEY not in row:
        return row, None
    row = dict(row)
    return row, row.pop(ROW_EVENTS_KEY)


def error_row(failure: FailedAudio, failed_at: float) -> dict[str, Any]:
    message = failure.message
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS - 3] + '...'
    return {
        'audio_file': failure.source.uri,
        'generation': failure.source.generation,
        'stage': failure.stage,
        'error_type': failure.error_type,
        'message': message,
        'failed_at': timestamp(failed_at),
        'retryable': bool(failure.retryable),
        'attempts': int(failure.attempts),
    }


def latest_view_name(output_table: str) -> str:
    """``<output_table>_latest``, in the same notation as the table name."""
    return output_table + LATEST_VIEW_SUFFIX


def _sql_type(field: dict[str, Any]) -> str:
    if field['type'] == 'RECORD':
        inner = ', '.join(f"{f['name']} {_sql_type(f)}" for f in field['fields'])
        kind = f'STRUCT<{inner}>'
    else:
        kind = _STANDARD_SQL_TYPES[field['type']]
    return f'ARRAY<{kind}>' if field.get('mode') == 'REPEATED' else kind


def latest_view_columns() -> list[str]:
    """The view's columns: outcome, the key, the result columns, then the error columns."""
    names = [OUTCOME_COLUMN, *KEY_COLUMNS]
    for field in PROCESSED_FIELDS + ERROR_FIELDS:
        if field['name'] not in names:
            names.append(field['name'])
    return names


def _branch(table: str, outcome: str, own: list[dict[str, Any]]) -> str:
    fields = {f['name']: f for f in PROCESSED_FIELDS + ERROR_FIELDS}
    own_names = {f['name'] for f in own}
    columns = [f"'{outcome}' AS {OUTCOME_COLUMN}"]
    for name in latest_view_columns()[1:]:
        columns.append(name if name in own_names else f'CAST(NULL AS {_sql_type(fields[name])}) AS {name}')
    return f'SELECT {", ".join(columns)}\n  FROM `{table}`'


def latest_view_query(results_table_id: str, errors_table_id: str) -> str:
    """Standard SQL: per (audio_file, generation) the newest result row, else the newest error row.

    ``results_table_id`` / ``errors_table_id`` are ``PROJECT.DATASET.TABLE``. ``WHERE TRUE`` is there
    because BigQuery has required a WHERE, GROUP BY or HAVING next to QUALIFY; the same text runs on
    the local emulator (tests/results/test_latest_view.py runs it there on duplicated rows).
    """
    order = (f"CASE WHEN {OUTCOME_COLUMN} = '{RESULT_OUTCOME}' THEN 0 ELSE 1 END, "
             f'COALESCE({PARTITION_FIELD}, {ERRORS_PARTITION_FIELD}) DESC')
    return (f'SELECT {", ".join(latest_view_columns())}\nFROM (\n'
            f'  {_branch(results_table_id, RESULT_OUTCOME, PROCESSED_FIELDS)}\n'
            f'  UNION ALL\n  {_branch(errors_table_id, ERROR_OUTCOME, ERROR_FIELDS)}\n)\n'
            f'WHERE TRUE\nQUALIFY ROW_NUMBER() OVER (PARTITION BY {", ".join(KEY_COLUMNS)} ORDER BY {order}) = 1\n')


def reviews_view_name(output_table: str) -> str:
    """``<output_table>_reviews_latest``: the newest verdict per detection."""
    return output_table + TABLES[REVIEWS].suffix + LATEST_VIEW_SUFFIX


def reviews_view_query(reviews_table_id: str) -> str:
    """Standard SQL: per detection (``REVIEW_KEY``) its newest review row (``reviews_table_id``:
    ``PROJECT.DATASET.TABLE``). ``WHERE TRUE``: see ``latest_view_query``."""
    columns = ', '.join(f['name'] for f in REVIEW_FIELDS)
    # A window's PARTITION BY may not hold floating-point values: the seconds are partitioned on as text.
    types = {f['name']: f['type'] for f in REVIEW_FIELDS}
    key = ', '.join(f'CAST({c} AS STRING)' if types[c] == 'FLOAT' else c for c in REVIEW_KEY)
    return (f'SELECT {columns}\nFROM `{reviews_table_id}`\nWHERE TRUE\n'
            f'QUALIFY ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY reviewed_at DESC) = 1\n')


def source_of(row: dict[str, Any]) -> AudioObject:
    """The object a (result or error) row is about: to turn a failed write into an error row."""
    uri = row.get('audio_file') or ''
    return AudioObject(uri=uri, name=uri, generation=row.get('generation') or '')


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in TABLES:
        print(f'usage: python -m results.schema {{{"|".join(TABLES)}}}', file=sys.stderr)
        return 2
    json.dump(TABLES[argv[0]].fields, sys.stdout, indent=2)
    print()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

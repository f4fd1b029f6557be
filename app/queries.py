"""The dashboard's SQL, written once for both backends: pure functions returning ``(sql, params)``.

Every query reads only what the page shows: one page of rows (``LIMIT``/``OFFSET``
over ``processed_at``, which the SQLite store indexes), aggregates computed by
the database, and the full row (scores, spectrogram) of the one file inspected.
The few places where SQLite and BigQuery differ (parameter markers, timestamp
arithmetic, substring search) are the methods of a ``Dialect``. Table names come
from the backend as ``{processed}`` / ``{errors}`` / ``{events}`` placeholders.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from results.schema import PROCESSED_FIELDS

# The list view's columns: what a table row shows, not the scores or the image (those are read per file).
PAGE_COLUMNS = ('audio_file', 'generation', 'label', 'confidence', 'model_version', 'duration_seconds',
                'event_count', 'event_time', 'processed_at')
# A file's event list's columns.
EVENT_LIST_COLUMNS = ('start_seconds', 'end_seconds', 'label', 'confidence')
DETAIL_COLUMNS = tuple(f['name'] for f in PROCESSED_FIELDS)
# The error list's columns.
ERROR_LIST_COLUMNS = ('audio_file', 'generation', 'stage', 'error_type', 'message', 'failed_at', 'retryable',
                      'attempts')
# The CSV export: every column of the list and the opened file's metadata, for every matching row (bounded: a
# spreadsheet, not a backup); the per-label scores are spread into one column per label by the page.
EXPORT_COLUMNS = ('processed_at', 'audio_file', 'generation', 'label', 'confidence', 'scores', 'event_count',
                  'duration_seconds', 'sample_rate_hz', 'channels', 'model_version', 'event_time', 'seen_at',
                  'spectrogram_image')
EXPORT_LIMIT = 100_000
# Latency starts when the pipeline first saw the file (seen_at); rows written before that column existed have only
# the file's own time (notification event time, or modification time), the best start they carry.
LATENCY_START = 'COALESCE(seen_at, event_time)'
# Latency-over-time buckets: the smallest step giving at most MAX_POINTS points over the time span shown.
BUCKET_STEPS = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)
MAX_POINTS = 60


@dataclass(frozen=True)
class Filters:
    """What the person narrowed the view to. Labels and confidence apply to results; time and name to both tables."""
    labels: tuple[str, ...] = ()
    min_confidence: float = 0.0
    max_confidence: float = 1.0
    since: dt.datetime | None = None   # processed_at / failed_at >= since (UTC-aware)
    until: dt.datetime | None = None   # ... < until
    name: str = ''                     # case-insensitive substring of the audio file URI
    event_label: str = ''              # only files with at least one event of this label

    @property
    def confidence_is_limited(self) -> bool:
        return self.min_confidence > 0.0 or self.max_confidence < 1.0

    @property
    def results_only(self) -> bool:
        """Whether a filter applies that error rows cannot match (they have no label, confidence or events)."""
        return bool(self.labels) or self.confidence_is_limited or bool(self.event_label)

    def shared(self) -> 'Filters':
        """The filters that apply to results and errors alike (time and name)."""
        return Filters(since=self.since, until=self.until, name=self.name)


@dataclass(frozen=True)
class Query:
    sql: str
    params: dict[str, Any] = field(default_factory=dict)


class SqliteDialect:
    """Timestamps are ISO-8601 UTC text in one fixed format, so they compare (and index) as strings."""
    name = 'sqlite'
    # Ties on processed_at are broken by rowid, which the processed_at index holds: a page deep in 100,000 rows
    # is then a walk along the index, where a tie-break on other columns would sort every row first.
    tie_break = 'rowid DESC'

    def param(self, name: str) -> str:
        return f':{name}'

    def contains(self, column: str, param: str) -> str:
        return f'instr(lower({column}), lower({param})) > 0'

    def seconds_between(self, start: str, end: str) -> str:
        return f'((julianday({end}) - julianday({start})) * 86400.0)'

    def epoch_bucket(self, column: str, seconds_param: str) -> str:
        return f'(CAST((julianday({column}) - 2440587.5) * 86400.0 / {seconds_param} AS INTEGER) * {seconds_param})'

    def listed_before(self, at: str, audio_file: str, generation: str) -> str:
        """Rows the list shows before the row (``at``, ``audio_file``, ``generation``): newer, or as new and
        first in the tie-break. Written as a range on processed_at, so SQLite walks the index from there."""
        return (f'processed_at >= {at} AND (processed_at > {at} OR rowid > (SELECT rowid FROM {{processed}} '
                f'WHERE audio_file = {audio_file} AND generation = {generation}))')

    def has_event(self, label_param: str) -> str:
        # A row value IN: SQLite looks the keys up through the events table's label index.
        return (f'(audio_file, generation) IN '
                f'(SELECT audio_file, generation FROM {{events}} WHERE label = {label_param})')


class BigQueryDialect:
    name = 'bigquery'
    tie_break = 'audio_file, generation'

    def param(self, name: str) -> str:
        return f'@{name}'

    def contains(self, column: str, param: str) -> str:
        return f'STRPOS(LOWER({column}), LOWER({param})) > 0'

    def seconds_between(self, start: str, end: str) -> str:
        return f'(TIMESTAMP_DIFF({end}, {start}, MILLISECOND) / 1000.0)'

    def epoch_bucket(self, column: str, seconds_param: str) -> str:
        return f'(DIV(UNIX_SECONDS({column}), {seconds_param}) * {seconds_param})'

    def listed_before(self, at: str, audio_file: str, generation: str) -> str:
        return (f'processed_at >= {at} AND (processed_at > {at} OR audio_file < {audio_file} OR '
                f'(audio_file = {audio_file} AND generation < {generation}))')

    def has_event(self, label_param: str) -> str:
        # The events table is clustered by label: the subquery reads that label's blocks only.
        return (f"CONCAT(audio_file, '#', generation) IN (SELECT CONCAT(audio_file, '#', generation) "
                f'FROM {{events}} WHERE label = {label_param})')


SQLITE = SqliteDialect()
BIGQUERY = BigQueryDialect()
Dialect = SqliteDialect | BigQueryDialect


def _where(d: Dialect, filters: Filters, time_column: str, results: bool) -> tuple[str, dict[str, Any]]:
    """The WHERE clause for one table; ``results`` adds the label and confidence conditions."""
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if filters.since is not None:
        conditions.append(f'{time_column} >= {d.param("since")}')
        params['since'] = filters.since
    if filters.until is not None:
        conditions.append(f'{time_column} < {d.param("until")}')
        params['until'] = filters.until
    if filters.name.strip():
        conditions.append(d.contains('audio_file', d.param('name')))
        params['name'] = filters.name.strip()
    if results and filters.labels:
        # One parameter per label: the same SQL in SQLite (no array parameters) and BigQuery.
        names = [f'label{i}' for i in range(len(filters.labels))]
        conditions.append(f'label IN ({", ".join(d.param(n) for n in names)})')
        params.update(zip(names, filters.labels))
    if results and filters.event_label:
        conditions.append(d.has_event(d.param('event_label')))
        params['event_label'] = filters.event_label
    if results and filters.confidence_is_limited:
        conditions.append(f'confidence BETWEEN {d.param("min_confidence")} AND {d.param("max_confidence")}')
        params['min_confidence'] = float(filters.min_confidence)
        params['max_confidence'] = float(filters.max_confidence)
    return ('WHERE ' + ' AND '.join(conditions)) if conditions else '', params


def results_summary(d: Dialect, filters: Filters) -> Query:
    where, params = _where(d, filters, 'processed_at', results=True)
    latency = d.seconds_between(LATENCY_START, 'processed_at')
    return Query(
        f'SELECT COUNT(*) AS files, AVG(confidence) AS mean_confidence, AVG({latency}) AS mean_latency_seconds, '
        f'MAX({latency}) AS max_latency_seconds, MIN(processed_at) AS first_processed_at, '
        f'MAX(processed_at) AS last_processed_at FROM {{processed}} {where}', params)


def errors_summary(d: Dialect, filters: Filters) -> Query:
    where, params = _where(d, filters, 'failed_at', results=False)
    return Query(f'SELECT COUNT(*) AS failed, MAX(failed_at) AS last_failed_at FROM {{errors}} {where}', params)


def label_counts(d: Dialect, filters: Filters) -> Query:
    where, params = _where(d, filters, 'processed_at', results=True)
    return Query(f'SELECT label, COUNT(*) AS files FROM {{processed}} {where} GROUP BY label '
                 f'ORDER BY files DESC, label', params)


def bucket_seconds(span_seconds: float) -> int:
    """The latency chart's bucket: the smallest step giving at most MAX_POINTS points over ``span_seconds``."""
    for step in BUCKET_STEPS:
        if span_seconds / step <= MAX_POINTS:
            return step
    return BUCKET_STEPS[-1]


def latency_over_time(d: Dialect, filters: Filters, bucket: int) -> Query:
    """Mean and max latency per time bucket (rows without a start time left out)."""
    where, params = _where(d, filters, 'processed_at', results=True)
    known = f'{LATENCY_START} IS NOT NULL'
    where = f'{where} AND {known}' if where else f'WHERE {known}'
    latency = d.seconds_between(LATENCY_START, 'processed_at')
    bucket_expr = d.epoch_bucket('processed_at', d.param('bucket'))
    params['bucket'] = int(bucket)
    return Query(f'SELECT {bucket_expr} AS bucket_start, COUNT(*) AS files, AVG({latency}) AS mean_latency_seconds, '
                 f'MAX({latency}) AS max_latency_seconds FROM {{processed}} {where} '
                 f'GROUP BY bucket_start ORDER BY bucket_start', params)


def results_page(d: Dialect, filters: Filters, limit: int, offset: int) -> Query:
    """One page of results, newest first; ties broken in a fixed order so pages never overlap."""
    where, params = _where(d, filters, 'processed_at', results=True)
    params.update(limit=int(limit), offset=int(offset))
    return Query(f'SELECT {", ".join(PAGE_COLUMNS)} FROM {{processed}} {where} '
                 f'ORDER BY processed_at DESC, {d.tie_break} '
                 f'LIMIT {d.param("limit")} OFFSET {d.param("offset")}', params)


def list_position(d: Dialect, filters: Filters, audio_file: str, generation: str, processed_at: Any) -> Query:
    """How many rows the filtered list shows before this one (its 0-based index in the list)."""
    where, params = _where(d, filters, 'processed_at', results=True)
    before = d.listed_before(d.param('at'), d.param('audio_file'), d.param('generation'))
    params.update(at=processed_at, audio_file=audio_file, generation=generation)
    return Query(f'SELECT COUNT(*) AS position FROM {{processed}} '
                 f'{where + " AND " if where else "WHERE "}{before}', params)


def row_matches(d: Dialect, filters: Filters, audio_file: str, generation: str) -> Query:
    """Whether this row is in the filtered list (a look-up by the key)."""
    where, params = _where(d, filters, 'processed_at', results=True)
    key = f'audio_file = {d.param("audio_file")} AND generation = {d.param("generation")}'
    params.update(audio_file=audio_file, generation=generation)
    return Query(f'SELECT COUNT(*) AS matches FROM {{processed}} {where + " AND " if where else "WHERE "}{key}',
                 params)


def result_row(d: Dialect, audio_file: str, generation: str) -> Query:
    return Query(f'SELECT {", ".join(DETAIL_COLUMNS)} FROM {{processed}} '
                 f'WHERE audio_file = {d.param("audio_file")} AND generation = {d.param("generation")} LIMIT 1',
                 {'audio_file': audio_file, 'generation': generation})


def recent_errors(d: Dialect, filters: Filters, limit: int) -> Query:
    where, params = _where(d, filters, 'failed_at', results=False)
    params['limit'] = int(limit)
    return Query(f'SELECT {", ".join(ERROR_LIST_COLUMNS)} FROM {{errors}} {where} '
                 f'ORDER BY failed_at DESC, audio_file LIMIT {d.param("limit")}', params)


def errors_by_stage(d: Dialect, filters: Filters) -> Query:
    where, params = _where(d, filters, 'failed_at', results=False)
    return Query(f'SELECT stage, error_type, COUNT(*) AS files FROM {{errors}} {where} '
                 f'GROUP BY stage, error_type ORDER BY files DESC, stage, error_type', params)


def distinct_labels(d: Dialect) -> Query:
    return Query('SELECT DISTINCT label FROM {processed} WHERE label IS NOT NULL ORDER BY label')


def results_export(d: Dialect, filters: Filters, limit: int = EXPORT_LIMIT) -> Query:
    """Every matching result (up to ``limit``), newest first: the list as a CSV file."""
    where, params = _where(d, filters, 'processed_at', results=True)
    params['limit'] = int(limit)
    return Query(f'SELECT {", ".join(EXPORT_COLUMNS)} FROM {{processed}} {where} '
                 f'ORDER BY processed_at DESC, {d.tie_break} LIMIT {d.param("limit")}', params)


def keys_with_rows(d: Dialect, audio_files: list[str]) -> Query:
    """(audio_file, generation) of the result and error rows of these files: what is not pending."""
    names = [f'f{i}' for i in range(len(audio_files))]
    marks = ', '.join(d.param(n) for n in names) or 'NULL'
    return Query(f'SELECT audio_file, generation FROM {{processed}} WHERE audio_file IN ({marks}) UNION DISTINCT '
                 f'SELECT audio_file, generation FROM {{errors}} WHERE audio_file IN ({marks})'
                 if d.name == 'bigquery' else
                 f'SELECT audio_file, generation FROM {{processed}} WHERE audio_file IN ({marks}) UNION '
                 f'SELECT audio_file, generation FROM {{errors}} WHERE audio_file IN ({marks})',
                 dict(zip(names, audio_files)))


def file_events(d: Dialect, audio_file: str, generation: str, processed_at: Any) -> Query:
    """The events of one result row, in time order (at the same start, the most confident first, as BirdNET lists
    a window's species): those written with it (the same ``processed_at``).

    A ``--reprocess`` run appends new events in BigQuery; the row's own ``processed_at`` picks its run's.
    DISTINCT drops the duplicates an at-least-once streaming insert can leave.
    """
    return Query(f'SELECT DISTINCT {", ".join(EVENT_LIST_COLUMNS)} FROM {{events}} '
                 f'WHERE audio_file = {d.param("audio_file")} AND generation = {d.param("generation")} '
                 f'AND processed_at = {d.param("processed_at")} ORDER BY start_seconds, confidence DESC, label',
                 {'audio_file': audio_file, 'generation': generation, 'processed_at': processed_at})


def event_labels(d: Dialect) -> Query:
    return Query('SELECT DISTINCT label FROM {events} ORDER BY label')

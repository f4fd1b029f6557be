"""What the dashboard shows, read the same way from either backend.

``DashboardData`` runs the queries of ``app.queries`` on a backend and shapes
the answers: timestamps become UTC datetimes, ``scores`` becomes a list of
``{'label', 'score'}`` whether it was SQLite's JSON text or BigQuery's repeated
record.
"""
from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any, Optional

from app import queries
from app.backends import Backend, ResultsUnavailable, open_backend
from app.queries import Filters
from results.schema import ERROR_FIELDS, PROCESSED_FIELDS

TIMESTAMP_COLUMNS = frozenset(
    [f['name'] for f in PROCESSED_FIELDS + ERROR_FIELDS if f['type'] == 'TIMESTAMP']
    + ['first_processed_at', 'last_processed_at', 'last_failed_at'])


@dataclass(frozen=True)
class Summary:
    files: int          # results matching every filter
    failed: int         # errors matching the filters errors can match (time, name)
    files_all: int      # results matching those same filters: the failure rate's other half
    mean_confidence: Optional[float]
    mean_latency_seconds: Optional[float]
    max_latency_seconds: Optional[float]
    first_processed_at: Optional[dt.datetime]
    last_processed_at: Optional[dt.datetime]
    last_failed_at: Optional[dt.datetime]

    @property
    def failure_rate(self) -> Optional[float]:
        """Failed / (processed + failed), both under the same filters: errors have no label or confidence,
        so a label or confidence filter narrows the list but not the rate."""
        total = self.files_all + self.failed
        return self.failed / total if total else None


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    number: int        # 1-based, clamped to the pages there are
    count: int         # pages matching the filters (at least 1)
    size: int


class DashboardData:

    def __init__(self, backend: Backend):
        self.backend = backend
        self.dialect = backend.dialect

    def _rows(self, query: queries.Query) -> list[dict[str, Any]]:
        return [normalise(row) for row in self.backend.rows(query)]

    def summary(self, filters: Filters) -> Summary:
        results = self._rows(queries.results_summary(self.dialect, filters))[0]
        errors = self._rows(queries.errors_summary(self.dialect, filters))[0]
        files = int(results['files'] or 0)
        if filters.results_only:
            files_all = int(self._rows(queries.results_summary(self.dialect, filters.shared()))[0]['files'] or 0)
        else:
            files_all = files
        return Summary(files=files, failed=int(errors['failed'] or 0), files_all=files_all,
                       mean_confidence=results['mean_confidence'],
                       mean_latency_seconds=results['mean_latency_seconds'],
                       max_latency_seconds=results['max_latency_seconds'],
                       first_processed_at=results['first_processed_at'],
                       last_processed_at=results['last_processed_at'],
                       last_failed_at=errors['last_failed_at'])

    def labels(self) -> list[str]:
        return [row['label'] for row in self._rows(queries.distinct_labels(self.dialect))]

    def label_counts(self, filters: Filters) -> list[dict[str, Any]]:
        return self._rows(queries.label_counts(self.dialect, filters))

    def latency_over_time(self, filters: Filters, summary: Summary) -> list[dict[str, Any]]:
        """Per-bucket latency; the bucket is sized from the time span the summary found."""
        if summary.first_processed_at is None or summary.last_processed_at is None:
            return []
        span = (summary.last_processed_at - summary.first_processed_at).total_seconds()
        bucket = queries.bucket_seconds(span)
        rows = self._rows(queries.latency_over_time(self.dialect, filters, bucket))
        for row in rows:
            row['bucket_start'] = dt.datetime.fromtimestamp(int(row['bucket_start']), dt.timezone.utc)
        return rows

    def page(self, filters: Filters, number: int, size: int, total: int) -> Page:
        """Page ``number`` (1-based) of ``total`` matching rows, newest first."""
        count = max(1, math.ceil(total / size))
        number = min(max(1, number), count)
        rows = self._rows(queries.results_page(self.dialect, filters, size, (number - 1) * size))
        return Page(rows=rows, number=number, count=count, size=size)

    def position(self, filters: Filters, row: dict[str, Any]) -> Optional[int]:
        """The row's 0-based index in the filtered list, newest first; None when the filters leave it out."""
        key = row['audio_file'], row['generation']
        if not self._rows(queries.row_matches(self.dialect, filters, *key))[0]['matches']:
            return None
        return int(self._rows(queries.list_position(self.dialect, filters, *key, row['processed_at']))[0]['position'])

    def at(self, filters: Filters, index: int) -> Optional[dict[str, Any]]:
        """The row at 0-based ``index`` of the filtered list (the list's columns), if there is one."""
        if index < 0:
            return None
        rows = self._rows(queries.results_page(self.dialect, filters, 1, index))
        return rows[0] if rows else None

    def result(self, audio_file: str, generation: str) -> Optional[dict[str, Any]]:
        rows = self._rows(queries.result_row(self.dialect, audio_file, generation))
        return rows[0] if rows else None

    def events(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """The events of one result row (empty for results written before events existed)."""
        try:
            return self._rows(queries.file_events(self.dialect, row['audio_file'], row['generation'],
                                                  row['processed_at']))
        except ResultsUnavailable:   # no events table yet: a results file from before events
            return []

    def event_labels(self) -> list[str]:
        try:
            return [row['label'] for row in self._rows(queries.event_labels(self.dialect))]
        except ResultsUnavailable:
            return []

    def recent_errors(self, filters: Filters, limit: int = 20) -> list[dict[str, Any]]:
        return self._rows(queries.recent_errors(self.dialect, filters, limit))

    def errors_by_stage(self, filters: Filters) -> list[dict[str, Any]]:
        return self._rows(queries.errors_by_stage(self.dialect, filters))

    def export_rows(self, filters: Filters, limit: int = queries.EXPORT_LIMIT) -> list[dict[str, Any]]:
        return self._rows(queries.results_export(self.dialect, filters, limit))

    def keys_with_rows(self, audio_files: list[str], chunk: int = 400) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        for i in range(0, len(audio_files), chunk):
            rows = self.backend.rows(queries.keys_with_rows(self.dialect, audio_files[i:i + chunk]))
            found |= {(r['audio_file'], str(r['generation'])) for r in rows}
        return found


def open_data(results: str, error_table: str | None = None) -> DashboardData:
    return DashboardData(open_backend(results, error_table))


def normalise(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for column, value in row.items():
        if column in TIMESTAMP_COLUMNS:
            out[column] = to_datetime(value)
        elif column == 'scores':
            out[column] = to_scores(value)
    return out


def to_datetime(value: Any) -> Optional[dt.datetime]:
    """SQLite's ISO text or BigQuery's datetime -> an aware UTC datetime."""
    if value is None or value == '':
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc) if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    parsed = dt.datetime.fromisoformat(str(value).replace('Z', '+00:00'))
    return parsed.astimezone(dt.timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def to_scores(value: Any) -> list[dict[str, Any]]:
    """SQLite's JSON text or BigQuery's repeated record -> ``[{'label': str, 'score': float}, ...]``."""
    if value is None or value == '':
        return []
    items = json.loads(value) if isinstance(value, str) else value
    return [{'label': str(item['label']), 'score': float(item['score'])} for item in items]

"""The CSV export: every file the filters match, with the page's column names and one column per label's score.

The file's name says what was filtered (``audio-results-label-tone-name-park.csv``), from the same
query parameters as the page's URL, so two exports of different views never share a name.
"""
from __future__ import annotations

import io
import re
from typing import Any, Sequence

import pandas as pd

from app import urlstate

# Column -> header: the names the page uses for the same values (the list and the opened file's metadata).
HEADERS = {
    'processed_at': 'Processed (UTC)', 'audio_file': 'Audio file', 'generation': 'Generation', 'label': 'Label',
    'confidence': 'Confidence', 'event_count': 'Events', 'duration_seconds': 'Duration (s)',
    'sample_rate_hz': 'Sample rate (Hz)', 'channels': 'Channels', 'model_version': 'Model',
    'event_time': 'Uploaded (UTC)', 'seen_at': 'First seen (UTC)', 'spectrogram_image': 'Spectrogram',
}
SCORE_HEADER = 'Score: {}'
_UNSAFE = re.compile(r'[^A-Za-z0-9._-]+')


def csv_bytes(rows: Sequence[dict[str, Any]]) -> bytes:
    """The rows (``DashboardData.export_rows``) as UTF-8 CSV: timestamps in ISO 8601, scores spread per label."""
    labels = sorted({s['label'] for row in rows for s in row.get('scores') or []})
    records = []
    for row in rows:
        record = {}
        for column, header in HEADERS.items():
            value = row.get(column)
            record[header] = value.isoformat() if hasattr(value, 'isoformat') else value
        scores = {s['label']: s['score'] for s in row.get('scores') or []}
        record.update({SCORE_HEADER.format(label): scores.get(label) for label in labels})
        records.append(record)
    frame = pd.DataFrame(records, columns=[*HEADERS.values(), *(SCORE_HEADER.format(x) for x in labels)])
    if 'Events' in frame:
        frame['Events'] = frame['Events'].astype('Int64')  # a count, not 3.0 (NULL stays empty)
    out = io.StringIO()
    frame.to_csv(out, index=False)
    return out.getvalue().encode('utf-8')


def file_name(view: urlstate.ViewState) -> str:
    """``audio-results[-<filter>-<value>...].csv``: the view's filters as the URL writes them."""
    params = urlstate.to_params(view, default_page_size=0, default_refresh=0)
    parts = ['audio-results']
    for key in ('label', 'conf', 'time', 'from', 'to', 'name', 'event'):
        values = params.get(key)
        if values is None:
            continue
        for value in values if isinstance(values, list) else [values]:
            parts.append(f'{key}-{_UNSAFE.sub("_", str(value)).strip("_") or "_"}')
    return '-'.join(parts)[:200] + '.csv'

"""The review queue's data: which detections to review, in which order, and each label's precision curve.

Pure functions over plain rows (the page, ``app.review``, draws them), so the order and the curve are tested
without a browser.

The queue is every detection (event row of a file's current result) of the chosen label and confidence range,
in a fixed order, and the reviewer's place in it is a number (kept in the URL): a reload shows the same
detection. Two orders:

- ``in order``: file by file, in time order within a file (how a person listens through a recording);
- ``even``: evenly across ``BINS`` confidence bins of the chosen range, round robin (one from each bin in turn,
  in a fixed pseudo-random order within a bin), so that the first N reviews cover the whole range and the
  precision curve fitted from them is not biased toward the most confident (most numerous) detections.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from app.queries import Dialect, Query

IN_ORDER, EVEN = 'in order', 'even'
MODES = {IN_ORDER: 'File by file', EVEN: 'Even across confidence bins'}
BINS = 10
# The queue is built from at most this many detections (the newest results first): a page, not a batch job.
QUEUE_LIMIT = 20_000
DETECTION_COLUMNS = ('audio_file', 'generation', 'start_seconds', 'end_seconds', 'label', 'confidence',
                     'model_version')


@dataclass(frozen=True)
class QueueSpec:
    label: str = ''           # '' = every label
    low: float = 0.0
    high: float = 1.0
    mode: str = EVEN


def detections_query(d: Dialect, spec: QueueSpec, limit: int = QUEUE_LIMIT) -> Query:
    """The detections of the current results (events written with each file's result row) that match ``spec``.

    Joining on the result row's ``processed_at`` keeps only the run the file's row comes from (BigQuery keeps the
    events of earlier ``--reprocess`` runs); DISTINCT drops the duplicates a streaming insert can leave.
    """
    conditions = [f'e.confidence BETWEEN {d.param("low")} AND {d.param("high")}']
    params: dict[str, Any] = {'low': float(spec.low), 'high': float(spec.high), 'limit': int(limit)}
    if spec.label:
        conditions.append(f'e.label = {d.param("label")}')
        params['label'] = spec.label
    columns = ', '.join(f'e.{c} AS {c}' for c in DETECTION_COLUMNS)
    return Query(f'SELECT DISTINCT {columns}, p.processed_at AS processed_at, p.duration_seconds AS duration_seconds '
                 f'FROM {{events}} e JOIN {{processed}} p ON e.audio_file = p.audio_file '
                 f'AND e.generation = p.generation AND e.processed_at = p.processed_at '
                 f'WHERE {" AND ".join(conditions)} '
                 f'ORDER BY processed_at DESC, audio_file, start_seconds, label LIMIT {d.param("limit")}', params)


def detection_key(row: dict[str, Any]) -> tuple:
    """What identifies a detection (``results.schema.REVIEW_KEY``)."""
    return (row['audio_file'], str(row['generation']), float(row['start_seconds']), float(row['end_seconds']),
            row['label'])


def _shuffle_key(row: dict[str, Any]) -> str:
    """A fixed pseudo-random rank: the same detections always come in the same order (a reload, another day)."""
    return hashlib.sha1(repr(detection_key(row)).encode('utf-8')).hexdigest()


def confidence_bin(confidence: float, low: float, high: float, bins: int = BINS) -> int:
    if high <= low:
        return 0
    return min(bins - 1, max(0, int((confidence - low) / (high - low) * bins)))


def order_queue(rows: Sequence[dict[str, Any]], spec: QueueSpec, bins: int = BINS) -> list[dict[str, Any]]:
    """The detections in review order (see the module doc)."""
    if spec.mode != EVEN:
        return sorted(rows, key=lambda r: (r['audio_file'], str(r['generation']), r['start_seconds'], r['label']))
    by_bin: list[list[dict[str, Any]]] = [[] for _ in range(bins)]
    for row in rows:
        by_bin[confidence_bin(float(row['confidence']), spec.low, spec.high, bins)].append(row)
    for members in by_bin:
        members.sort(key=_shuffle_key)
    queue = []
    for i in range(max((len(m) for m in by_bin), default=0)):
        queue.extend(m[i] for m in by_bin if i < len(m))
    return queue


def clip_span(start: float, end: float, duration: Optional[float], context: float) -> tuple[float, float]:
    """The stretch a detection's clip plays: its seconds plus ``context`` on each side, within the file."""
    first = max(0.0, start - context)
    last = end + context
    return first, (min(last, duration) if duration else last)


def curve_points(fit, low: float = 0.0, high: float = 1.0, steps: int = 101) -> list[dict[str, float]]:
    """P(correct) along the confidence axis, for the chart (``results.thresholds.LabelFit``)."""
    xs = [low + (high - low) * i / (steps - 1) for i in range(steps)]
    return [{'confidence': x, 'p_correct': float(fit.probability(x))} for x in xs]

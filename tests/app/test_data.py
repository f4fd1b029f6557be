"""The dashboard's data access gives the same answers from SQLite and from BigQuery (its emulator).

Every test runs on both backends over the same rows, and checks the answers
against the rows themselves, filtered and sorted in Python.
"""
from __future__ import annotations

import collections
import datetime as dt
import math
import sqlite3

import pytest

from app.backends import BigQueryBackend, NoResultsYet, SqliteBackend
from app.data import DashboardData, to_datetime
from app.queries import Filters
from results import bigquery_store, schema, sqlite_store
from tests.app import sample_results
from tests.app.emulators import BQ_PROJECT, bigquery_client, bigquery_emulator

START = sample_results.START


def make_rows() -> tuple[list[dict], list[dict]]:
    rows = sample_results.bulk_rows(240)
    rows[10]['processed_at'] = rows[11]['processed_at']   # a tie: the page order must still be total
    rows[12]['event_time'] = None                          # batch replays of local files carry no event time
    rows[13]['audio_file'] = 'gs://uploads/day/Park Bench.WAV'
    # Copied in with its hour-old modification time, seen by the pipeline 2 s before its row: latency is 2 s.
    t = to_datetime(rows[30]['processed_at']).timestamp()
    rows[30].update(event_time=schema.timestamp(t - 3600), seen_at=schema.timestamp(t - 2))
    errors = [{'audio_file': f'gs://uploads/day/bad-{i}.mp3', 'generation': str(i), 'stage': stage,
               'error_type': kind, 'message': f'reason {i}',
               'failed_at': schema.timestamp(START.timestamp() + 30 * i)}
              for i, (stage, kind) in enumerate([('decode', 'Corrupt'), ('read', 'ObjectGone'), ('decode', 'Corrupt'),
                                                 ('decode', 'TooLong'), ('inference', 'ModelError')])]
    return rows, errors


ROWS, ERRORS = make_rows()
# Every seventh file heard a whistle somewhere (a label no file is labelled with); the event rows share the
# result row's processed_at, as the pipeline writes them.
EVENTS = [{'audio_file': r['audio_file'], 'generation': r['generation'], 'start_seconds': 0.5, 'end_seconds': 1.25,
           'label': 'whistle', 'confidence': 0.75, 'model_version': r['model_version'],
           'processed_at': r['processed_at']} for r in ROWS[::7]]


def matches(row: dict, f: Filters, time_column: str = 'processed_at', results: bool = True) -> bool:
    t = to_datetime(row[time_column])
    if f.since and t < f.since or f.until and t >= f.until:
        return False
    if f.name and f.name.lower() not in row['audio_file'].lower():
        return False
    if results and f.labels and row['label'] not in f.labels:
        return False
    if results and f.confidence_is_limited and not f.min_confidence <= row['confidence'] <= f.max_confidence:
        return False
    if results and f.event_label and not any(e['label'] == f.event_label and e['audio_file'] == row['audio_file']
                                             and e['generation'] == row['generation'] for e in EVENTS):
        return False
    return True


def latency_start(row: dict) -> dt.datetime | None:
    """When the pipeline first saw the file; rows from before that column have only the file's own time."""
    return to_datetime(row.get('seen_at')) or to_datetime(row['event_time'])


def keys(rows: list[dict]) -> list[tuple[str, str]]:
    return [(r['audio_file'], r['generation']) for r in rows]


def times(rows: list[dict]) -> list[dt.datetime]:
    return [to_datetime(r['processed_at']) for r in rows]


def newest_first(rows: list[dict]) -> list[dict]:
    # Rows processed at the same instant may come in either order: each backend fixes its own tie-break.
    return sorted(rows, key=lambda r: r['processed_at'], reverse=True)


@pytest.fixture(scope='module')
def sqlite_data(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('sqlite') / 'results.db')
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_processed(conn, ROWS)
        sqlite_store.write_events(conn, [(r, [e for e in EVENTS if e['audio_file'] == r['audio_file']])
                                         for r in ROWS])
        sqlite_store.write_errors(conn, ERRORS)
    return DashboardData(SqliteBackend(path))


@pytest.fixture(scope='module')
def bigquery_data(tmp_path_factory):
    log = str(tmp_path_factory.mktemp('bq') / 'bqemulator.log')
    with bigquery_emulator(log) as endpoint:
        client = bigquery_client(endpoint)
        results, errors = bigquery_store.ensure_tables(f'{BQ_PROJECT}:audio.results', bq=client)
        # Duplicates as streaming inserts (at-least-once) and --reprocess leave them: every result twice, and a
        # retryable error row for a file that later got its result. The dashboard reads the _latest view, so
        # the expected figures below are still those of ROWS and ERRORS.
        repaired = dict(ERRORS[0], audio_file=ROWS[0]['audio_file'], generation=ROWS[0]['generation'],
                        retryable=True, attempts=5)
        assert client.insert_rows_json(results, ROWS + ROWS) == []
        assert client.insert_rows_json(errors, ERRORS + [repaired]) == []
        # Events inserted twice (at-least-once), and an earlier run's event of the first file (--reprocess).
        earlier = dict(EVENTS[0], start_seconds=9.0, processed_at=schema.timestamp(START.timestamp() - 3600))
        events_table = bigquery_store.table_id(f'{BQ_PROJECT}:audio.results_events', client.project)
        assert client.insert_rows_json(events_table, EVENTS + EVENTS + [earlier]) == []
        yield DashboardData(BigQueryBackend(f'{BQ_PROJECT}:audio.results', client=client))


@pytest.fixture(params=['sqlite', pytest.param('bigquery', marks=pytest.mark.e2e)])
def data(request) -> DashboardData:
    return request.getfixturevalue(f'{request.param}_data')


FILTERS = [
    Filters(),
    Filters(labels=('hum', 'chirp')),
    Filters(min_confidence=0.5, max_confidence=0.8),
    Filters(since=START + dt.timedelta(seconds=60), until=START + dt.timedelta(seconds=150)),
    Filters(name='PARK'),
    Filters(name='clip-0001'),
    Filters(labels=('tone',), min_confidence=0.3, since=START + dt.timedelta(seconds=20), name='clip'),
    Filters(labels=('no-such-label',)),
    Filters(event_label='whistle'),
    Filters(event_label='whistle', labels=('hum',), name='clip'),
    Filters(event_label='no-such-label'),
]


@pytest.mark.parametrize('f', FILTERS, ids=range(len(FILTERS)))
def test_summary_and_first_page_match_the_filters(data, f):
    expected = [r for r in ROWS if matches(r, f)]
    summary = data.summary(f)
    assert summary.files == len(expected)
    assert summary.failed == len([e for e in ERRORS if matches(e, f, 'failed_at', results=False)])
    if expected:
        assert summary.mean_confidence == pytest.approx(sum(r['confidence'] for r in expected) / len(expected))
        latencies = [(to_datetime(r['processed_at']) - latency_start(r)).total_seconds()
                     for r in expected if latency_start(r)]
        assert summary.mean_latency_seconds == pytest.approx(sum(latencies) / len(latencies), abs=2e-3)
        assert summary.last_processed_at == max(to_datetime(r['processed_at']) for r in expected)
    page = data.page(f, 1, 25, summary.files)
    assert times(page.rows) == times(newest_first(expected)[:25])
    assert set(keys(page.rows)) <= set(keys(expected))


def test_pages_cover_every_row_once_newest_first(data):
    f = Filters(min_confidence=0.3)
    total = data.summary(f).files
    size = 37
    shown = []
    for number in range(1, math.ceil(total / size) + 1):
        page = data.page(f, number, size, total)
        assert page.number == number and page.count == math.ceil(total / size)
        shown += page.rows
    expected = [r for r in ROWS if matches(r, f)]
    assert sorted(keys(shown)) == sorted(keys(expected))  # every row, none twice
    assert times(shown) == times(newest_first(expected))
    assert keys(shown) == keys(data.page(f, 1, total, total).rows)  # the tie is broken the same way every time


@pytest.mark.parametrize('f', [Filters(), Filters(min_confidence=0.3), Filters(name='clip-00')], ids=range(3))
def test_a_rows_position_is_its_index_in_the_list_across_pages(data, f):
    total = data.summary(f).files
    listed = keys(data.page(f, 1, total, total).rows)
    for i in sorted({0, 1, 10, 11, 12, total // 2, total - 1}):   # 10 and 11: processed at the same instant
        row = data.result(*listed[i])
        assert data.position(f, row) == i
        assert (data.at(f, i)['audio_file'], data.at(f, i)['generation']) == listed[i]
    assert data.at(f, total) is None and data.at(f, -1) is None
    left_out = next(r for r in ROWS if not matches(r, Filters(labels=('hum',))))
    assert data.position(Filters(labels=('hum',)), data.result(left_out['audio_file'], left_out['generation'])) \
        is None


def test_a_page_past_the_end_shows_the_last_page(data):
    total = data.summary(Filters()).files
    page = data.page(Filters(), 10_000, 50, total)
    assert page.number == page.count == math.ceil(total / 50)
    assert len(page.rows) == total - 50 * (page.count - 1)


def test_page_rows_carry_only_the_list_columns(data):
    row = data.page(Filters(), 1, 1, 1).rows[0]
    assert 'scores' not in row and 'spectrogram_image' not in row  # read per inspected file, not per page
    assert isinstance(row['processed_at'], dt.datetime) and row['processed_at'].tzinfo == dt.timezone.utc


def test_label_distribution(data):
    f = Filters(min_confidence=0.6)
    expected = collections.Counter(r['label'] for r in ROWS if matches(r, f))
    assert {r['label']: r['files'] for r in data.label_counts(f)} == expected
    assert data.labels() == sorted({r['label'] for r in ROWS})


def test_latency_over_time_buckets(data):
    f = Filters(labels=('hum',))
    series = data.latency_over_time(f, data.summary(f))
    with_start = [r for r in ROWS if matches(r, f) and latency_start(r)]
    assert sum(point['files'] for point in series) == len(with_start)
    assert [p['bucket_start'] for p in series] == sorted(p['bucket_start'] for p in series)
    assert all(p['bucket_start'].timestamp() % 60 == 0 for p in series)  # 240 rows over 4 minutes: 1-minute buckets
    assert all(0 < p['mean_latency_seconds'] <= p['max_latency_seconds'] < 5 for p in series)


def test_one_result_with_its_scores(data):
    row = ROWS[42]
    found = data.result(row['audio_file'], row['generation'])
    assert found['scores'] == row['scores'] and found['label'] == row['label']
    assert found['processed_at'] == to_datetime(row['processed_at'])
    assert data.result(row['audio_file'], 'no-such-generation') is None


def test_a_files_events_are_those_of_its_result_row_once_each(data):
    for row in ROWS[:15]:
        found = data.events(data.result(row['audio_file'], row['generation']))
        expected = [e for e in EVENTS if e['audio_file'] == row['audio_file']]
        assert [(e['start_seconds'], e['end_seconds'], e['label'], e['confidence']) for e in found] == [
            (e['start_seconds'], e['end_seconds'], e['label'], e['confidence']) for e in expected]
    assert data.event_labels() == ['whistle']


def test_recent_errors_newest_first_with_stage_and_reason(data):
    errors = data.recent_errors(Filters(), limit=3)
    assert [e['audio_file'] for e in errors] == [f'gs://uploads/day/bad-{i}.mp3' for i in (4, 3, 2)]
    assert (errors[0]['stage'], errors[0]['error_type'], errors[0]['message']) == ('inference', 'ModelError',
                                                                                   'reason 4')
    # Label and confidence filters are about results; errors have neither.
    assert len(data.recent_errors(Filters(labels=('hum',), min_confidence=0.9))) == len(ERRORS)
    assert [e['audio_file'] for e in data.recent_errors(Filters(name='BAD-1'))] == ['gs://uploads/day/bad-1.mp3']
    by_stage = {(e['stage'], e['error_type']): e['files'] for e in data.errors_by_stage(Filters())}
    assert by_stage == {('decode', 'Corrupt'): 2, ('read', 'ObjectGone'): 1, ('decode', 'TooLong'): 1,
                        ('inference', 'ModelError'): 1}


def test_no_results_yet_is_explained(tmp_path):
    # NoResultsYet (a ResultsUnavailable): the page adds how rows come, which depends on how it was started.
    with pytest.raises(NoResultsYet, match='No results database at .*missing.db yet'):
        DashboardData(SqliteBackend(str(tmp_path / 'missing.db'))).summary(Filters())
    other = tmp_path / 'other.db'
    sqlite3.connect(other).execute('CREATE TABLE t (x)').connection.commit()
    with pytest.raises(NoResultsYet, match='no results tables'):
        DashboardData(SqliteBackend(str(other))).labels()


def test_the_review_queue_holds_each_current_detection_once(data):
    """Duplicated and earlier-run events (BigQuery) are left out, as for the file's own event list."""
    from app.review_queue import QueueSpec, detection_key, detections_query

    store = data.backend.store
    query = detections_query(data.dialect, QueueSpec())
    found = sorted(detection_key(r) for r in store.query(query.sql, query.params))
    assert found == sorted(detection_key(e) for e in EVENTS)

"""The dashboard's SQL: one text for both dialects, and pages that stay cheap at 100,000 rows.

"Cheap" is measured without a clock: the query plan must walk the
``processed_at`` index (no full sort), and SQLite's own count of virtual-machine
steps for a page must be a small fraction of one full pass over the table.
"""
from __future__ import annotations

import datetime as dt
import re
import sqlite3

import pytest

from app import queries
from app.backends import SqliteBackend
from app.data import DashboardData
from app.queries import BIGQUERY, SQLITE, Filters
from results import sqlite_store, tables
from results.store import sqlite_value as _sqlite_value
from tests.app import sample_results

ROWS_AT_SCALE = 100_000
PAGE = 20
EVERY_FILTER = Filters(labels=('hum', 'tone'), min_confidence=0.2, max_confidence=0.9,
                       since=dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc),
                       until=dt.datetime(2026, 3, 3, tzinfo=dt.timezone.utc), name='clip')


def all_queries(d, f: Filters) -> list[queries.Query]:
    return [queries.results_summary(d, f), queries.errors_summary(d, f), queries.label_counts(d, f),
            queries.latency_over_time(d, f, 60), queries.results_page(d, f, 20, 40), queries.result_row(d, 'a', 'g'),
            queries.recent_errors(d, f, 20), queries.errors_by_stage(d, f), queries.distinct_labels(d),
            queries.list_position(d, f, 'a', 'g', dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)),
            queries.row_matches(d, f, 'a', 'g')]


@pytest.mark.parametrize('d', [SQLITE, BIGQUERY], ids=['sqlite', 'bigquery'])
def test_every_parameter_is_bound_and_values_never_enter_the_sql(d):
    marker = ':' if d is SQLITE else '@'
    for q in all_queries(d, EVERY_FILTER):
        used = set(re.findall(rf'{marker}(\w+)', q.sql))
        assert used == set(q.params), q.sql
        assert 'clip' not in q.sql and 'hum' not in q.sql
        assert '{processed}' in q.sql or '{errors}' in q.sql


def test_unfiltered_queries_have_no_where_clause():
    q = queries.results_page(SQLITE, Filters(), 20, 0)
    assert 'WHERE' not in q.sql and q.params == {'limit': 20, 'offset': 0}


def test_timestamps_bind_as_the_stores_own_text():
    # Same fixed format as the stored values, so comparing text compares time, and the index applies.
    assert _sqlite_value(dt.datetime(2026, 3, 2, 8, 0, 5, 120000, tzinfo=dt.timezone.utc)) == \
        '2026-03-02T08:00:05.120000Z'


@pytest.mark.parametrize('span, bucket', [(0, 60), (3600, 60), (6 * 3600, 900), (86400, 3600), (30 * 86400, 86400),
                                          (10 * 365 * 86400, 30 * 86400)])
def test_latency_bucket_gives_a_readable_number_of_points(span, bucket):
    assert queries.bucket_seconds(span) == bucket
    assert span / bucket <= queries.MAX_POINTS or bucket == queries.BUCKET_STEPS[-1]


@pytest.fixture(scope='module')
def big_db(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('scale') / 'results.db')
    with sqlite_store.connect(path) as conn:
        sqlite_store.write_processed(conn, sample_results.bulk_rows(ROWS_AT_SCALE))
    return path


def plan(path: str, q: queries.Query) -> str:
    sql = q.sql.format(processed=tables.PROCESSED, errors=tables.ERRORS)
    with sqlite3.connect(path) as conn:
        params = {k: _sqlite_value(v) for k, v in q.params.items()}
        return '\n'.join(row[-1] for row in conn.execute(f'EXPLAIN QUERY PLAN {sql}', params))


def vm_steps(path: str, sql: str, params: dict) -> int:
    """SQLite virtual-machine instructions one query executes (counted in units of 100)."""
    steps = 0

    def tick():
        nonlocal steps
        steps += 1
        return 0

    with sqlite3.connect(path) as conn:
        conn.set_progress_handler(tick, 100)
        conn.execute(sql, params).fetchall()
    return steps


def test_a_page_walks_the_time_index_instead_of_sorting_the_table(big_db):
    for f in (Filters(), Filters(labels=('hum',), min_confidence=0.5), Filters(name='clip-09')):
        text = plan(big_db, queries.results_page(SQLITE, f, PAGE, 0))
        # One label: its (label, processed_at) index is already in page order.
        assert ('label_idx' if f.labels else 'processed_at_idx') in text, text
        assert 'TEMP B-TREE' not in text, text  # no sort: the index gives the page order, ties included
    text = plan(big_db, queries.results_page(SQLITE, Filters(since=sample_results.START), PAGE, 0))
    assert 'processed_at_idx (processed_at>?)' in text, text


def test_a_page_reads_a_sliver_of_100k_rows(big_db):
    page = queries.results_page(SQLITE, Filters(labels=('hum',)), PAGE, 0)
    page_steps = vm_steps(big_db, page.sql.format(processed='processed'), page.params)
    full_pass = vm_steps(big_db, 'SELECT COUNT(*) FROM processed WHERE instr(lower(audio_file), :s) > 0', {'s': 'x'})
    assert page_steps * 100 < full_pass


def test_the_last_of_5000_pages_holds_the_oldest_rows(big_db):
    data = DashboardData(SqliteBackend(big_db))
    summary = data.summary(Filters())
    assert summary.files == ROWS_AT_SCALE
    last = data.page(Filters(), number=ROWS_AT_SCALE // PAGE, size=PAGE, total=summary.files)
    assert last.count == ROWS_AT_SCALE // PAGE
    assert [r['audio_file'] for r in last.rows] == [f'gs://uploads/day/clip-{i:06d}.wav' for i in range(PAGE - 1, -1,
                                                                                                       -1)]
    first = data.page(Filters(name='CLIP-09999'), 1, PAGE, data.summary(Filters(name='CLIP-09999')).files)
    assert [r['audio_file'] for r in first.rows] == [f'gs://uploads/day/clip-{i:06d}.wav' for i in range(99999, 99989,
                                                                                                        -1)]


def test_the_opened_files_place_in_100k_rows_is_a_walk_of_the_rows_before_it(big_db):
    data = DashboardData(SqliteBackend(big_db))
    row = data.result(*(lambda r: (r['audio_file'], r['generation']))(data.at(Filters(), 30)))
    assert data.position(Filters(), row) == 30
    q = queries.list_position(SQLITE, Filters(), row['audio_file'], row['generation'], row['processed_at'])
    steps = vm_steps(big_db, q.sql.format(processed='processed'), {k: _sqlite_value(v) for k, v in q.params.items()})
    full_pass = vm_steps(big_db, 'SELECT COUNT(*) FROM processed WHERE instr(lower(audio_file), :s) > 0', {'s': 'x'})
    assert steps * 100 < full_pass

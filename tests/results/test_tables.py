"""results.tables: which store a table name means, the default tables, and the states a replay decides on."""
from __future__ import annotations

from results import tables


def test_is_sqlite_path():
    assert tables.is_sqlite_path('out/results.db')
    assert not tables.is_sqlite_path('project:dataset.table')


def test_is_bigquery_table():
    assert tables.is_bigquery_table('my-project:dataset.table')
    assert tables.is_bigquery_table('dataset.table')
    assert not tables.is_bigquery_table('out/results.db')


def test_default_error_table():
    assert tables.default_error_table('p:d.results') == 'p:d.results_errors'
    assert tables.default_error_table('/x/r.db') == '/x/r.db'


def test_done_states_skip_a_permanent_error_unless_retry_failed():
    assert tables.done_states() == {tables.RESULT, tables.PERMANENT_ERROR}
    assert tables.done_states(retry_failed=True) == {tables.RESULT}


def test_default_events_table():
    assert tables.default_events_table('p:d.results') == 'p:d.results_events'
    assert tables.default_events_table('/x/r.db') == '/x/r.db'

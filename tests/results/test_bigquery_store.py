"""results.bigquery_store and cloud.emulators' BigQuery client against the real BigQuery emulator (bqemulator).

Also Beam's WriteToBigQuery through that client.

Only the emulator is started here (no Pub/Sub), on a free port, stopped by pid afterwards.
"""
from __future__ import annotations

import pickle
import threading

import apache_beam as beam
import pytest
from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery
from apache_beam.io.gcp.bigquery_tools import RetryStrategy
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to

from cloud import emulators
from cloud.emulators import row_problem
from results import bigquery_store, schema
from results.bigquery_store import table_id


def _row(generation: str, **changes) -> dict:
    row = {'audio_file': 'gs://b/a.wav', 'generation': generation, 'spectrogram_image': 'gs://b/s.png',
           'label': 'tone', 'confidence': 0.5, 'scores': [{'label': 'tone', 'score': 0.5}], 'model_version': 'v1',
           'duration_seconds': 1.0, 'sample_rate_hz': 16000, 'channels': 1, 'event_time': None,
           'processed_at': '2026-11-26T07:00:00.000000Z'}
    row.update(changes)
    return row


def test_table_specs(monkeypatch):
    monkeypatch.delenv('GOOGLE_CLOUD_PROJECT', raising=False)
    monkeypatch.delenv('BIGQUERY_EMULATOR_HOST', raising=False)
    assert table_id('p-1:d.t') == table_id('p-1.d.t') == 'p-1.d.t'
    assert table_id('d.t', project='p-2') == 'p-2.d.t'
    with pytest.raises(ValueError):
        table_id('d.t')  # no project anywhere
    monkeypatch.setenv('BIGQUERY_EMULATOR_HOST', '127.0.0.1:1')
    assert table_id('d.t') == 'local-project.d.t'


def test_beam_test_client_only_with_the_emulator(monkeypatch):
    monkeypatch.delenv('BIGQUERY_EMULATOR_HOST', raising=False)
    assert emulators.beam_test_client() is None
    monkeypatch.setenv('BIGQUERY_EMULATOR_HOST', '127.0.0.1:9')
    client = pickle.loads(pickle.dumps(emulators.beam_test_client()))
    assert client.endpoint == 'http://127.0.0.1:9' and client.project == 'local-project'


def test_rows_real_bigquery_would_refuse_by_field_names():
    fields = schema.PROCESSED_FIELDS
    assert row_problem(_row('1'), fields) == ''
    assert row_problem(_row('1', extra=1), fields) == 'no such field: extra'
    assert row_problem(_row('1', extra=1), fields, ignore_unknown_values=True) == ''
    assert row_problem(_row(None), fields) == 'missing required field(s): generation'


@pytest.mark.e2e
def test_tables_keys_and_counts(bigquery_emulator):
    assert bigquery_store.existing_keys('local-project:audio.processed') == set()
    assert bigquery_store.counts('local-project:audio.processed') == (0, 0)
    ids = bigquery_store.ensure_tables('local-project:audio.processed')
    assert ids == ('local-project.audio.processed', 'local-project.audio.processed_errors')
    assert bigquery_store.ensure_tables('audio.processed') == ids  # idempotent, default project
    table = bigquery_store.client().get_table(ids[0])
    assert table.time_partitioning.field == schema.PARTITION_FIELD
    assert table.clustering_fields == list(schema.CLUSTER_FIELDS)
    events = bigquery_store.client().get_table('local-project.audio.processed_events')
    assert [f.name for f in events.schema] == [f['name'] for f in schema.EVENT_FIELDS]
    assert events.time_partitioning.field == schema.EVENTS_PARTITION_FIELD
    assert events.clustering_fields == list(schema.EVENTS_CLUSTER_FIELDS)

    client = emulators.beam_test_client()
    assert client.insert_rows_json(ids[0], [_row('1'), _row('2'), _row('2')]) == []
    assert bigquery_store.existing_keys('audio.processed') == {('gs://b/a.wav', '1'), ('gs://b/a.wav', '2')}
    assert bigquery_store.counts('audio.processed') == (3, 0)


@pytest.mark.e2e
def test_per_row_errors_as_real_bigquery_reports_them(bigquery_emulator):
    table, _ = bigquery_store.ensure_tables('audio.processed')
    client = emulators.beam_test_client()
    rows = [_row('1'), _row('2', confidence='not a number'), _row('3', unknown='x'), _row(None), _row('5')]
    errors = client.insert_rows_json(table, rows, row_ids=[f'id{i}' for i in range(5)])
    assert [(e['index'], e['errors'][0]['reason']) for e in errors] == [(1, 'invalid'), (2, 'invalid'),
                                                                         (3, 'invalid')]
    # The good rows of the request went in once each (the emulator's refusal is all-or-nothing per request).
    assert sorted(bigquery_store.existing_keys(table)) == [('gs://b/a.wav', '1'), ('gs://b/a.wav', '5')]
    assert bigquery_store.counts(table) == (2, 0)


@pytest.mark.e2e
def test_inserts_wait_out_an_outage(bigquery_emulator):
    from cloud.emulators import BIGQUERY

    table, _ = bigquery_store.ensure_tables('audio.processed')
    client = emulators.beam_test_client()
    client._table_fields(table)  # as after the first write of a running pipeline
    bigquery_emulator.stop_service(BIGQUERY)
    outcome = {}
    writer = threading.Thread(target=lambda: outcome.update(errors=client.insert_rows_json(table, [_row('7')])))
    writer.start()
    bigquery_emulator.start_service(BIGQUERY)
    writer.join(timeout=emulators.OUTAGE_DEADLINE_SECONDS)
    assert outcome == {'errors': []}
    assert bigquery_store.existing_keys(table) == {('gs://b/a.wav', '7')}


@pytest.mark.e2e
def test_write_to_bigquery_through_the_test_client_returns_refused_rows(bigquery_emulator):
    table, _ = bigquery_store.ensure_tables('audio.processed')
    rows = [_row('1'), _row('2', sample_rate_hz='fast'), _row('3')]
    with beam.Pipeline(runner=FnApiRunner()) as p:
        result = (p | beam.Create(rows) | WriteToBigQuery(
            table.replace('.', ':', 1), schema=schema.bigquery_schema('processed'),
            method=WriteToBigQuery.Method.STREAMING_INSERTS, create_disposition=BigQueryDisposition.CREATE_NEVER,
            insert_retry_strategy=RetryStrategy.RETRY_ON_TRANSIENT_ERROR,
            test_client=emulators.beam_test_client()))
        refused = result.failed_rows_with_errors | beam.MapTuple(
            lambda _, row, errors: (row['generation'], errors[0]['reason']))
        assert_that(refused, equal_to([('2', 'invalid')]))
    assert sorted(bigquery_store.existing_keys(table)) == [('gs://b/a.wav', '1'), ('gs://b/a.wav', '3')]

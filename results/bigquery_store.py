"""BigQuery access for the sinks, tools and tests: table ids, creating the tables, reading rows back.

The same calls reach the local emulator when ``BIGQUERY_EMULATOR_HOST`` is set
(``cloud.emulators``, which also holds the ``test_client`` Beam's sink needs there).
"""
from __future__ import annotations

from typing import Any, Optional

from google.api_core import exceptions as api_exceptions
from google.cloud import bigquery

from cloud import emulators
from results.schema import (EVENT_KEY_COLUMNS, KEY_COLUMNS, REVIEWS, TABLES, Table,
                            latest_view_name, latest_view_query, reviews_view_name, reviews_view_query)
from results.tables import (ERRORS, EVENTS, PERMANENT_ERROR, PROCESSED, RESULT, RESULT_WITHOUT_EVENTS,
                            RETRYABLE_ERROR, default_error_table, default_table)


def default_project() -> Optional[str]:
    return emulators.default_project(emulators.BIGQUERY)


def client(project: Optional[str] = None) -> bigquery.Client:
    """A BigQuery client: the emulator's (anonymous) when BIGQUERY_EMULATOR_HOST is set."""
    return emulators.bigquery_client(project) or bigquery.Client(project=project or default_project())


def table_id(table_spec: str, project: Optional[str] = None) -> str:
    """``PROJECT.DATASET.TABLE`` from ``PROJECT:DATASET.TABLE``, ``PROJECT.DATASET.TABLE`` or ``DATASET.TABLE``."""
    head, _, table = table_spec.replace(':', '.').rpartition('.')
    named, _, dataset = head.rpartition('.')
    proj = named or project or default_project()
    if not (proj and dataset and table):
        raise ValueError(f'not a BigQuery table (PROJECT:DATASET.TABLE or DATASET.TABLE): {table_spec!r}')
    return f'{proj}.{dataset}.{table}'


def ensure_tables(output_table: str, error_table: Optional[str] = None,
                  bq: Optional[bigquery.Client] = None) -> tuple[str, str]:
    """Creates the dataset(s), every table of ``results.schema.TABLES`` and the ``_latest`` view if missing;
    returns the ids of the result and error tables. (``templates/provision.sh`` does the same on Google Cloud.)

    The error table is ``error_table`` if given; every other table is ``<output_table><suffix>``.
    """
    bq = bq or client()
    ids = {}
    for table in TABLES.values():
        spec = (error_table or default_error_table(output_table)) if table.name == ERRORS else \
            default_table(output_table, table.name)
        full_id = table_id(spec, bq.project)
        project, dataset, _ = full_id.split('.')
        bq.create_dataset(f'{project}.{dataset}', exists_ok=True)
        created = bigquery.Table(full_id, schema=[bigquery.SchemaField.from_api_repr(f) for f in table.fields])
        created.time_partitioning = bigquery.TimePartitioning(field=table.partition)
        created.clustering_fields = list(table.cluster)
        bq.create_table(created, exists_ok=True)
        ids[table.name] = full_id
    ensure_latest_view(output_table, ids[PROCESSED], ids[ERRORS], bq)
    ensure_view(reviews_view_name(output_table), reviews_view_query(ids[REVIEWS]), bq)
    return ids[PROCESSED], ids[ERRORS]


def ensure_latest_view(output_table: str, results_id: str, errors_id: str, bq: bigquery.Client) -> str:
    """Creates ``<output_table>_latest`` (results/schema.py's query), or brings its query up to date."""
    return ensure_view(latest_view_name(output_table), latest_view_query(results_id, errors_id), bq)


def ensure_view(name: str, query: str, bq: bigquery.Client) -> str:
    """Creates the view ``name`` with ``query``, or brings its query up to date."""
    view = bigquery.Table(table_id(name, bq.project))
    view.view_query = query
    existing = bq.create_table(view, exists_ok=True)
    if existing.view_query != view.view_query:
        existing.view_query = view.view_query
        bq.update_table(existing, ['view_query'])
    return str(view.reference)


def read_rows(table_spec: str, bq: Optional[bigquery.Client] = None) -> list[dict[str, Any]]:
    """Every row of a table as plain dicts: for tests, tools and small tables only."""
    bq = bq or client()
    return [dict(row) for row in bq.query(f'SELECT * FROM `{table_id(table_spec, bq.project)}`').result()]


def existing_keys(table_spec: str, bq: Optional[bigquery.Client] = None) -> set[tuple[str, str]]:
    """(audio_file, generation) of every row of a results table; empty when the table does not exist."""
    bq = bq or client()
    query = f'SELECT DISTINCT audio_file, generation FROM `{table_id(table_spec, bq.project)}`'
    try:
        return {(row['audio_file'], row['generation']) for row in bq.query(query).result()}
    except api_exceptions.NotFound:
        return set()


def key_states(output_table: str, error_table: Optional[str] = None,
               bq: Optional[bigquery.Client] = None) -> dict[tuple[str, str], str]:
    """(audio_file, generation) -> RESULT, PERMANENT_ERROR or RETRYABLE_ERROR (``results.tables``).

    Streaming inserts and ``--reprocess`` may leave several rows per key: a result wins (RESULT_WITHOUT_EVENTS
    when its events are not all there: ``result_states``); otherwise the key is RETRYABLE_ERROR only when every
    error row of it is retryable (a missing table has no keys).
    """
    bq = bq or client()
    states: dict[tuple[str, str], str] = {}
    errors = table_id(error_table or default_error_table(output_table), bq.project)
    query = (f'SELECT audio_file, generation, LOGICAL_AND(IFNULL(retryable, FALSE)) AS retryable '
             f'FROM `{errors}` GROUP BY audio_file, generation')
    try:
        for row in bq.query(query).result():
            states[(row['audio_file'], row['generation'])] = RETRYABLE_ERROR if row['retryable'] else PERMANENT_ERROR
    except api_exceptions.NotFound:
        pass
    states.update(result_states(output_table, bq))
    return states


# An event row carries its result row's processed_at: which run (attempt) of the file wrote it.
RUN = 'processed_at'


def result_states(output_table: str, bq: bigquery.Client) -> dict[tuple[str, str], str]:
    """(audio_file, generation) -> RESULT, or RESULT_WITHOUT_EVENTS when the key's newest result row (the one
    the ``_latest`` view shows) has fewer distinct event rows written with it (same ``processed_at``) than its
    ``event_count`` says: a streaming insert of the result landed and the events' did not (or not all).

    Duplicated event rows (an insert delivered twice) count once, as readers show them (DISTINCT). Without an
    events table every result counts as done.
    """
    key = ', '.join(KEY_COLUMNS)
    on = ' AND '.join(f'r.{c} = e.{c}' for c in (*KEY_COLUMNS, RUN))
    query = (f'SELECT r.audio_file, r.generation, '
             f'(r.event_count IS NULL OR r.event_count <= IFNULL(e.written, 0)) AS complete\n'
             f'FROM (SELECT {key}, {RUN}, event_count FROM `{table_id(output_table, bq.project)}` '
             f'WHERE TRUE QUALIFY ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {RUN} DESC) = 1) AS r\n'
             f'LEFT JOIN (SELECT {key}, {RUN}, COUNT(*) AS written FROM (SELECT DISTINCT '
             f'{", ".join((*EVENT_KEY_COLUMNS, RUN))} '
             f'FROM `{table_id(default_table(output_table, EVENTS), bq.project)}`) '
             f'GROUP BY {key}, {RUN}) AS e\nON {on}')
    try:
        return {(row['audio_file'], row['generation']): RESULT if row['complete'] else RESULT_WITHOUT_EVENTS
                for row in bq.query(query).result()}
    except api_exceptions.NotFound:  # no events table (or no result table: then no keys either way)
        return {key: RESULT for key in existing_keys(output_table, bq)}


def count_rows(table_spec: str, bq: Optional[bigquery.Client] = None) -> int:
    bq = bq or client()
    try:
        rows = bq.query(f'SELECT COUNT(*) AS n FROM `{table_id(table_spec, bq.project)}`').result()
    except api_exceptions.NotFound:
        return 0
    return int(next(iter(rows))['n'])


def counts(output_table: str, error_table: Optional[str] = None,
           bq: Optional[bigquery.Client] = None) -> tuple[int, int]:
    """(result rows, error rows)."""
    bq = bq or client()
    return count_rows(output_table, bq), count_rows(error_table or default_error_table(output_table), bq)


def write_rows(rows, table_spec: str, table: Table, streaming: bool, outage_deadline_s: float):
    """Beam: ``rows`` into one BigQuery table (created if missing, partitioned and clustered as declared).

    Streaming inserts when streaming (failed rows come back in the result's ``failed_rows_with_errors``),
    load jobs at the end of a batch run (a job succeeds or fails as a whole).
    """
    from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery
    from apache_beam.io.gcp.bigquery_tools import RetryStrategy

    extra = {'timePartitioning': {'type': 'DAY', 'field': table.partition},
             'clustering': {'fields': list(table.cluster)}}
    return rows | 'ToBigQuery' >> WriteToBigQuery(
        table_spec,
        schema={'fields': table.fields},
        method=WriteToBigQuery.Method.STREAMING_INSERTS if streaming else WriteToBigQuery.Method.FILE_LOADS,
        create_disposition=BigQueryDisposition.CREATE_IF_NEEDED,
        write_disposition=BigQueryDisposition.WRITE_APPEND,
        insert_retry_strategy=RetryStrategy.RETRY_ON_TRANSIENT_ERROR,
        additional_bq_parameters=extra,
        # None on Google Cloud. On the emulator, an outage is waited out for the retry budget; longer, the
        # bundle fails and the runner retries it (as google-cloud-bigquery's own 600 s deadline does).
        test_client=emulators.beam_test_client(outage_deadline=outage_deadline_s))

"""BigQuery access for the sinks, tools and tests, honouring ``BIGQUERY_EMULATOR_HOST``.

With the variable unset everything talks to real BigQuery with the default
credentials. With it set (``python -m stack start`` prints it) the same calls go
to the local emulator anonymously, so a pipeline runs unchanged against either.

Beam has no option that redirects its BigQuery endpoint, but
``WriteToBigQuery(test_client=...)`` takes one object that Beam uses both as the
apitools ``BigqueryV2`` client (table lookups) and for ``insert_rows_json``
(streaming inserts). ``beam_test_client()`` returns such an object for the
emulator, or None for real BigQuery. It also papers over two emulator gaps so
the pipeline's failed-row handling sees what real BigQuery would answer:

* a wrong-typed value makes the emulator answer HTTP 500 for the whole request
  instead of a per-row ``invalid`` error: the rows are then retried one by one
  and the ones still refused are reported ``invalid`` (the others are inserted,
  as with ``skipInvalidRows``);
* the emulator accepts unknown fields and missing REQUIRED ones: such rows are
  reported ``invalid`` before the request is sent.

The emulator also ignores insert ids (real BigQuery dedupes on them, best
effort), so exactly-once rows must come from the pipeline, never from the sink.
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Optional

from google.api_core import exceptions as api_exceptions
from google.api_core import retry as api_retry
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from pipeline.options import default_error_table
from results.schema import (CLUSTER_FIELDS, ERROR_FIELDS, ERRORS_CLUSTER_FIELDS, ERRORS_PARTITION_FIELD,
                            PARTITION_FIELD, PROCESSED_FIELDS, latest_view_name, latest_view_query)

EMULATOR_HOST_ENV = 'BIGQUERY_EMULATOR_HOST'
# Which project a DATASET.TABLE spec means when no project is given.
PROJECT_ENV = 'GOOGLE_CLOUD_PROJECT'
EMULATOR_DEFAULT_PROJECT = 'local-project'
# While the emulator is down (a restart, a fault test) inserts wait for it this long before failing the bundle;
# real BigQuery clients wait as long (google-cloud-bigquery's default deadline).
OUTAGE_DEADLINE_SECONDS = 600.0
REQUEST_TIMEOUT_SECONDS = 60.0


def emulator_endpoint() -> Optional[str]:
    """``http://host:port`` of the BigQuery emulator, or None for real BigQuery."""
    host = os.environ.get(EMULATOR_HOST_ENV, '').strip().rstrip('/')
    if not host:
        return None
    return host if host.startswith(('http://', 'https://')) else f'http://{host}'


def default_project() -> Optional[str]:
    return os.environ.get(PROJECT_ENV) or (EMULATOR_DEFAULT_PROJECT if emulator_endpoint() else None)


def client(project: Optional[str] = None) -> bigquery.Client:
    """A BigQuery client: the emulator's (anonymous) when BIGQUERY_EMULATOR_HOST is set."""
    endpoint = emulator_endpoint()
    if endpoint is None:
        return bigquery.Client(project=project or default_project())
    return bigquery.Client(project=project or default_project(), credentials=AnonymousCredentials(),
                           client_options=ClientOptions(api_endpoint=endpoint))


def table_id(table_spec: str, project: Optional[str] = None) -> str:
    """``PROJECT.DATASET.TABLE`` from ``PROJECT:DATASET.TABLE``, ``PROJECT.DATASET.TABLE`` or ``DATASET.TABLE``."""
    head, _, table = table_spec.replace(':', '.').rpartition('.')
    proj, _, dataset = head.rpartition('.')
    proj = proj or project or default_project()
    if not (proj and dataset and table):
        raise ValueError(f'not a BigQuery table (PROJECT:DATASET.TABLE or DATASET.TABLE): {table_spec!r}')
    return f'{proj}.{dataset}.{table}'


def ensure_tables(output_table: str, error_table: Optional[str] = None,
                  bq: Optional[bigquery.Client] = None) -> tuple[str, str]:
    """Creates the dataset(s), the result and error tables and the ``_latest`` view if missing; returns the
    tables' ids. (``templates/provision.sh`` does the same on Google Cloud.)"""
    bq = bq or client()
    ids = []
    for spec, fields, partition, cluster in (
            (output_table, PROCESSED_FIELDS, PARTITION_FIELD, CLUSTER_FIELDS),
            (error_table or default_error_table(output_table), ERROR_FIELDS, ERRORS_PARTITION_FIELD,
             ERRORS_CLUSTER_FIELDS)):
        full_id = table_id(spec, bq.project)
        project, dataset, _ = full_id.split('.')
        bq.create_dataset(f'{project}.{dataset}', exists_ok=True)
        table = bigquery.Table(full_id, schema=[bigquery.SchemaField.from_api_repr(f) for f in fields])
        table.time_partitioning = bigquery.TimePartitioning(field=partition)
        table.clustering_fields = list(cluster)
        bq.create_table(table, exists_ok=True)
        ids.append(full_id)
    ensure_latest_view(output_table, ids[0], ids[1], bq)
    return ids[0], ids[1]


def ensure_latest_view(output_table: str, results_id: str, errors_id: str, bq: bigquery.Client) -> str:
    """Creates ``<output_table>_latest`` (results/schema.py's query), or brings its query up to date."""
    view = bigquery.Table(table_id(latest_view_name(output_table), bq.project))
    view.view_query = latest_view_query(results_id, errors_id)
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
    """(audio_file, generation) -> RESULT, PERMANENT_ERROR or RETRYABLE_ERROR, like ``sqlite_store.key_states``.

    Streaming inserts and ``--reprocess`` may leave several rows per key: a result wins; otherwise the key is
    RETRYABLE_ERROR only when every error row of it is retryable (a missing table has no keys).
    """
    from results.sqlite_store import PERMANENT_ERROR, RESULT, RETRYABLE_ERROR

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
    states.update({key: RESULT for key in existing_keys(output_table, bq)})
    return states


def count_rows(table_spec: str, bq: Optional[bigquery.Client] = None) -> int:
    bq = bq or client()
    try:
        rows = bq.query(f'SELECT COUNT(*) AS n FROM `{table_id(table_spec, bq.project)}`').result()
    except api_exceptions.NotFound:
        return 0
    return int(next(iter(rows))['n'])


def counts(output_table: str, error_table: Optional[str] = None,
           bq: Optional[bigquery.Client] = None) -> tuple[int, int]:
    """(result rows, error rows), like ``results.sqlite_store.counts``."""
    bq = bq or client()
    return count_rows(output_table, bq), count_rows(error_table or default_error_table(output_table), bq)


def _is_outage(exc: BaseException) -> bool:
    """The emulator is not answering at all (stopped or restarting), as opposed to refusing a request."""
    import requests
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError,
                            api_exceptions.ServiceUnavailable, api_exceptions.BadGateway))


class EmulatorBigQueryClient:
    """What Beam's ``WriteToBigQuery(test_client=...)`` needs, pointed at the emulator.

    Pickled into the pipeline's DoFns, so it holds only the endpoint and project
    and builds its clients lazily in the process that uses them.
    """

    def __init__(self, endpoint: str, project: str):
        self.endpoint = endpoint
        self.project = project
        self._apitools = None
        self._bq = None
        self._fields: dict[str, list[dict[str, Any]]] = {}

    def __getstate__(self):
        return {'endpoint': self.endpoint, 'project': self.project}

    def __setstate__(self, state):
        self.__init__(state['endpoint'], state['project'])

    # Beam's BigQueryWrapper calls client.tables.Get(...), client.datasets.Insert(...), and so on.
    def _apitools_client(self):
        if self._apitools is None:
            import httplib2
            from apache_beam.io.gcp.internal.clients import bigquery as apitools_bigquery
            self._apitools = apitools_bigquery.BigqueryV2(
                url=f'{self.endpoint}/bigquery/v2/', get_credentials=False, response_encoding='utf8',
                http=httplib2.Http(timeout=REQUEST_TIMEOUT_SECONDS))
        return self._apitools

    tables = property(lambda self: self._apitools_client().tables)
    datasets = property(lambda self: self._apitools_client().datasets)
    jobs = property(lambda self: self._apitools_client().jobs)
    tabledata = property(lambda self: self._apitools_client().tabledata)

    def _client(self) -> bigquery.Client:
        if self._bq is None:
            self._bq = bigquery.Client(project=self.project, credentials=AnonymousCredentials(),
                                       client_options=ClientOptions(api_endpoint=self.endpoint))
        return self._bq

    def _table_fields(self, table: str) -> list[dict[str, Any]]:
        if table not in self._fields:
            self._fields[table] = [f.to_api_repr() for f in self._client().get_table(table).schema]
        return self._fields[table]

    def _insert(self, table: str, rows: list[dict], row_ids: Optional[list], ignore_unknown_values: bool):
        # Waits out an outage; a refusal (HTTP 500 for a wrong-typed value) comes back at once.
        wait_for_outage = api_retry.Retry(predicate=_is_outage, initial=0.5, maximum=5.0,
                                          timeout=OUTAGE_DEADLINE_SECONDS)
        return self._client().insert_rows_json(table, rows, row_ids=row_ids, retry=wait_for_outage,
                                               ignore_unknown_values=ignore_unknown_values,
                                               timeout=REQUEST_TIMEOUT_SECONDS)

    def insert_rows_json(self, table, json_rows: Iterable[dict], row_ids=None, skip_invalid_rows: bool = False,
                         ignore_unknown_values: bool = False, timeout=None, **_ignored) -> list[dict]:
        """``bigquery.Client.insert_rows_json`` with real BigQuery's per-row errors (see the module doc)."""
        table = str(table)
        rows = list(json_rows)
        ids = list(row_ids) if row_ids is not None else [None] * len(rows)
        fields = self._table_fields(table)
        errors, valid = [], []
        for index, row in enumerate(rows):
            problem = row_problem(row, fields, ignore_unknown_values)
            if problem:
                errors.append({'index': index, 'errors': [{'reason': 'invalid', 'message': problem}]})
            else:
                valid.append(index)
        if not valid:
            return errors
        try:
            errors += self._insert(table, [rows[i] for i in valid], [ids[i] for i in valid], ignore_unknown_values)
        except api_exceptions.InternalServerError as exc:
            for index in valid:
                try:
                    self._insert(table, [rows[index]], [ids[index]], ignore_unknown_values)
                except api_exceptions.InternalServerError:
                    errors.append({'index': index, 'errors': [{'reason': 'invalid', 'message': str(exc)}]})
        return sorted(errors, key=lambda e: e['index'])


def row_problem(row: dict[str, Any], fields: list[dict[str, Any]], ignore_unknown_values: bool = False) -> str:
    """Why real BigQuery would refuse this row by its field names alone ('' when it would not)."""
    names = {f['name'] for f in fields}
    unknown = sorted(set(row) - names)
    if unknown and not ignore_unknown_values:
        return f'no such field: {", ".join(unknown)}'
    missing = [f['name'] for f in fields if f.get('mode') == 'REQUIRED' and row.get(f['name']) is None]
    if missing:
        return f'missing required field(s): {", ".join(missing)}'
    return ''


def beam_test_client(project: Optional[str] = None) -> Optional[EmulatorBigQueryClient]:
    """The ``test_client`` for ``WriteToBigQuery`` when BIGQUERY_EMULATOR_HOST is set, else None."""
    endpoint = emulator_endpoint()
    if endpoint is None:
        return None
    return EmulatorBigQueryClient(endpoint, project or default_project())

"""The one seam for the local emulators: which services an ``*_EMULATOR_HOST`` variable redirects, and their clients.

With no such variable set, everything talks to Google Cloud with the default
credentials. With one set (``python -m stack start`` prints them) the same calls go
to the local emulator anonymously, so a pipeline runs unchanged against either.
Production code asks here, and nowhere else, whether a service is emulated.

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

PUBSUB, STORAGE, BIGQUERY = 'pubsub', 'storage', 'bigquery'
# The variable each client library (and so the pipeline) reads to find its emulator.
ENV_VARS = {PUBSUB: 'PUBSUB_EMULATOR_HOST', STORAGE: 'STORAGE_EMULATOR_HOST', BIGQUERY: 'BIGQUERY_EMULATOR_HOST'}
# Which project a DATASET.TABLE spec (and an emulator client) means when no project is given.
PROJECT_ENV = 'GOOGLE_CLOUD_PROJECT'
EMULATOR_DEFAULT_PROJECT = 'local-project'
# While the emulator is down (a restart, an outage) inserts wait for it this long before failing the bundle, as
# real BigQuery clients do (google-cloud-bigquery's default deadline). The sinks pass their
# --transient_retry_seconds instead: a run's retry budget is the one it was given.
OUTAGE_DEADLINE_SECONDS = 600.0
REQUEST_TIMEOUT_SECONDS = 60.0


def endpoint(service: str) -> Optional[str]:
    """``http://host:port`` of the service's emulator, or None for Google Cloud itself."""
    host = os.environ.get(ENV_VARS[service], '').strip().rstrip('/')
    if not host:
        return None
    return host if host.startswith(('http://', 'https://')) else f'http://{host}'


def emulated(service: str) -> bool:
    return endpoint(service) is not None


def default_project(service: str) -> Optional[str]:
    """GOOGLE_CLOUD_PROJECT; else the stack's project when ``service`` is emulated; else None (the library decides)."""
    return os.environ.get(PROJECT_ENV) or (EMULATOR_DEFAULT_PROJECT if emulated(service) else None)


def anonymous_storage_client():
    """A Cloud Storage client for the emulator, or None for Cloud Storage itself.

    The emulator needs no credentials; looking them up would stall with none configured.
    """
    if not emulated(STORAGE):
        return None
    import google.cloud.storage as storage

    return storage.Client.create_anonymous_client()


def bigquery_client(project: Optional[str] = None) -> Optional[bigquery.Client]:
    """An anonymous BigQuery client for the emulator, or None for BigQuery itself."""
    url = endpoint(BIGQUERY)
    if url is None:
        return None
    return bigquery.Client(project=project or default_project(BIGQUERY), credentials=AnonymousCredentials(),
                           client_options=ClientOptions(api_endpoint=url))


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

    def __init__(self, endpoint: str, project: str, outage_deadline: float = OUTAGE_DEADLINE_SECONDS):
        self._start(endpoint, project, outage_deadline)

    def _start(self, endpoint: str, project: str, outage_deadline: float) -> None:
        self.endpoint = endpoint
        self.project = project
        self.outage_deadline = outage_deadline
        self._apitools: Any = None
        self._bq: Optional[bigquery.Client] = None
        self._fields: dict[str, list[dict[str, Any]]] = {}

    def __getstate__(self):
        return {'endpoint': self.endpoint, 'project': self.project, 'outage_deadline': self.outage_deadline}

    def __setstate__(self, state):
        self._start(state['endpoint'], state['project'], state.get('outage_deadline', OUTAGE_DEADLINE_SECONDS))

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

    def _wait_for_outage(self) -> api_retry.Retry:
        """Waits out an outage for ``outage_deadline``, then RetryError; a refusal comes back at once."""
        return api_retry.Retry(predicate=_is_outage, initial=0.5, maximum=5.0, timeout=self.outage_deadline)

    def _table_fields(self, table: str) -> list[dict[str, Any]]:
        if table not in self._fields:
            got = self._client().get_table(table, retry=self._wait_for_outage(), timeout=REQUEST_TIMEOUT_SECONDS)
            self._fields[table] = [f.to_api_repr() for f in got.schema]
        return self._fields[table]

    def _insert(self, table: str, rows: list[dict], row_ids: Optional[list], ignore_unknown_values: bool):
        # (A refusal, HTTP 500 for a wrong-typed value, is not an outage: it comes back at once.)
        return self._client().insert_rows_json(table, rows, row_ids=row_ids, retry=self._wait_for_outage(),
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


def beam_test_client(project: Optional[str] = None,
                     outage_deadline: float = OUTAGE_DEADLINE_SECONDS) -> Optional[EmulatorBigQueryClient]:
    """The ``test_client`` for ``WriteToBigQuery`` when BIGQUERY_EMULATOR_HOST is set, else None."""
    url = endpoint(BIGQUERY)
    if url is None:
        return None
    return EmulatorBigQueryClient(url, project or os.environ.get(PROJECT_ENV) or EMULATOR_DEFAULT_PROJECT,
                                  outage_deadline)

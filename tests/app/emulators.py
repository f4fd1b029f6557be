"""The Cloud Storage and BigQuery emulators alone, as real processes on free localhost ports.

The dashboard tests need only these two, in memory; they are started with the
local stack's own launchers and process handling (``stack/``), which also skip
bqemulator's DuckDB spatial-extension download (nothing may be downloaded here).
"""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator

from stack.emulators import child_env
from stack.processes import free_port, http_ready, spawn, stop, wait_until_ready

BQ_PROJECT = 'dashboard-test'


@contextlib.contextmanager
def _process(name: str, command: list[str], port: int, ready_url: str, log_path: str) -> Iterator[None]:
    proc = spawn(command, log_path, env=child_env(), append=False)
    try:
        wait_until_ready(name, proc.pid, http_ready(ready_url), log_path, port=port)   # this one, not a squatter
        yield
    finally:
        stop(proc.pid)


@contextlib.contextmanager
def storage_emulator(log_path: str) -> Iterator[str]:
    """gcp-storage-emulator in memory; yields its host:port (what STORAGE_EMULATOR_HOST takes, with http://)."""
    port = free_port()
    with _process('storage', [sys.executable, '-m', 'stack.storage_emulator', 'start', '--host', '127.0.0.1',
                              '--port', str(port), '--in-memory', '--quiet'],
                  port, f'http://127.0.0.1:{port}/storage/v1/b', log_path):
        yield f'http://127.0.0.1:{port}'


@contextlib.contextmanager
def bigquery_emulator(log_path: str) -> Iterator[str]:
    """bqemulator, in memory; yields its REST endpoint."""
    rest, grpc = free_port(), free_port()
    endpoint = f'http://127.0.0.1:{rest}'
    with _process('bigquery', [sys.executable, '-m', 'stack.bqemulator_offline', 'start', '--rest-host', '127.0.0.1',
                               '--rest-port', str(rest), '--grpc-host', '127.0.0.1', '--grpc-port', str(grpc),
                               '--project', BQ_PROJECT, '--log-level', 'warning'],
                  rest, f'{endpoint}/bigquery/v2/projects/{BQ_PROJECT}/datasets', log_path):
        yield endpoint


def bigquery_client(endpoint: str):
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(project=BQ_PROJECT, credentials=AnonymousCredentials(),
                           client_options=ClientOptions(api_endpoint=endpoint))

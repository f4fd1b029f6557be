"""The Cloud Storage and BigQuery emulators, started as real processes on free localhost ports.

bqemulator insists on DuckDB's spatial extension (GEOGRAPHY), which it downloads
at start-up; nothing may be downloaded here and the dashboard uses no GEOGRAPHY,
so the runner below starts it with that one step skipped.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Iterator

from tests.app.browser import free_port

START_TIMEOUT_S = 60
BQ_PROJECT = 'dashboard-test'
_BQ_RUNNER = '''
import sys
from bqemulator.storage import engine
engine.DuckDBEngine._load_spatial = lambda self: None  # downloads at start-up; unused by these tests
from bqemulator.cli import main
sys.argv = ["bqemulator"] + sys.argv[1:]
main()
'''


@contextlib.contextmanager
def _process(command: list[str], ready_url: str, log_path: str) -> Iterator[None]:
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f'{command[:3]} exited with {proc.returncode}:\n{open(log_path).read()}')
            try:
                with urllib.request.urlopen(ready_url, timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # it answers: it is up
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f'{command[:3]} not up after {START_TIMEOUT_S} s:\n{open(log_path).read()}')
                time.sleep(0.3)
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@contextlib.contextmanager
def storage_emulator(log_path: str) -> Iterator[str]:
    """gcp-storage-emulator in memory; yields its host:port (what STORAGE_EMULATOR_HOST takes, with http://)."""
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), 'gcp-storage-emulator')
    with _process([exe, 'start', '--host', '127.0.0.1', '--port', str(port), '--in-memory', '-q'],
                  f'http://127.0.0.1:{port}/storage/v1/b', log_path):
        yield f'http://127.0.0.1:{port}'


@contextlib.contextmanager
def bigquery_emulator(log_path: str) -> Iterator[str]:
    """bqemulator, in memory; yields its REST endpoint."""
    rest, grpc = free_port(), free_port()
    endpoint = f'http://127.0.0.1:{rest}'
    with _process([sys.executable, '-c', _BQ_RUNNER, 'start', '--rest-port', str(rest), '--grpc-port', str(grpc),
                   '--project', BQ_PROJECT, '--log-level', 'warning'],
                  f'{endpoint}/bigquery/v2/projects/{BQ_PROJECT}/datasets', log_path):
        yield endpoint


def bigquery_client(endpoint: str):
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(project=BQ_PROJECT, credentials=AnonymousCredentials(),
                           client_options=ClientOptions(api_endpoint=endpoint))

"""The BigQuery emulator for the results tests: only it (no Pub/Sub), on a free port, stopped by pid afterwards."""
from __future__ import annotations

import pytest


@pytest.fixture
def bigquery_emulator(tmp_path, monkeypatch):
    from cloud.emulators import BIGQUERY
    from stack.config import StackConfig
    from stack.emulators import LocalStack

    stack = LocalStack(str(tmp_path / 'stack'), StackConfig().with_free_ports())
    stack.start_service(BIGQUERY)
    monkeypatch.setenv('BIGQUERY_EMULATOR_HOST', f'http://127.0.0.1:{stack.services[BIGQUERY].port}')
    monkeypatch.setenv('GOOGLE_CLOUD_PROJECT', 'local-project')
    try:
        yield stack
    finally:
        stack.stop()

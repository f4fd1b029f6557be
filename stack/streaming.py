"""The streaming pipeline as a process of the stack, and watching its rows arrive in the BigQuery emulator."""
from __future__ import annotations

import os
import sys
import time
from typing import Callable, Optional, Sequence

from stack import processes
from stack.emulators import PIPELINE, LocalStack, Service, child_env

# Rows are compared by these columns; the rest (scores, timestamps) is only shown.
WATCHED_RESULT_COLUMNS = 'audio_file, generation, label, confidence'
WATCHED_ERROR_COLUMNS = 'audio_file, generation, stage, error_type, message'


def pipeline_env(stack: LocalStack) -> dict[str, str]:
    """The environment of a pipeline process against the stack: this one plus the emulator variables."""
    env = child_env()
    env.update(stack.env())
    env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    env['PYTHONUNBUFFERED'] = '1'
    return env


def start_pipeline(stack: LocalStack, model_uri: Optional[str] = None, extra_args: Sequence[str] = ()) -> Service:
    """Starts ``python -m pipeline.main`` in streaming mode against the stack, in the background."""
    if PIPELINE in stack.services and processes.is_alive(stack.services[PIPELINE].pid):
        raise processes.StackError(f'a pipeline is already running (pid {stack.services[PIPELINE].pid})')
    args = stack.config.pipeline_args() + (['--model_uri', model_uri] if model_uri else []) + list(extra_args)
    env = pipeline_env(stack)
    log = os.path.join(stack.state_dir, 'pipeline.log')
    proc = processes.spawn([sys.executable, '-m', 'pipeline.main', *args], log, env, append=False)
    service = Service(PIPELINE, proc.pid, 0, log, '')
    stack.services[PIPELINE] = service
    stack.save()
    return service


def stop_pipeline(stack: LocalStack, timeout: float = processes.STOP_TIMEOUT_S) -> bool:
    """Stops the pipeline by its pid; True when it ended on SIGTERM, False when it had to be killed."""
    service = stack.services.pop(PIPELINE, None)
    if not service:
        return True
    ended = processes.stop(service.pid, timeout)
    stack.save()
    return ended


class RowWatcher:
    """Polls the result and error tables and returns the rows not seen before."""

    def __init__(self, output_table: str, error_table: str, bq=None):
        from results import bigquery_store

        self._bq = bq or bigquery_store.client()
        self._tables = {'ok': (bigquery_store.table_id(output_table, self._bq.project), WATCHED_RESULT_COLUMNS),
                        'error': (bigquery_store.table_id(error_table, self._bq.project), WATCHED_ERROR_COLUMNS)}
        self._seen: dict[str, set] = {'ok': set(), 'error': set()}

    def poll(self) -> list[tuple[str, dict]]:
        new = []
        for kind, (table, columns) in self._tables.items():
            for row in self._bq.query(f'SELECT {columns} FROM `{table}`').result():
                row = dict(row)
                key = (row['audio_file'], row['generation'])
                if key not in self._seen[kind]:
                    self._seen[kind].add(key)
                    new.append((kind, row))
        return new

    @property
    def counts(self) -> tuple[int, int]:
        return len(self._seen['ok']), len(self._seen['error'])


def describe(kind: str, row: dict) -> str:
    if kind == 'ok':
        return f"  row    {row['audio_file']} (generation {row['generation']}): {row['label']} {row['confidence']:.2f}"
    return (f"  error  {row['audio_file']} (generation {row['generation']}): {row['stage']}/{row['error_type']}: "
            f"{(row['message'] or '')[:100]}")


def watch(watcher: RowWatcher, until: Callable[[], bool] = lambda: False, interval: float = 2.0,
          timeout: Optional[float] = None, out=sys.stdout) -> bool:
    """Prints rows as they arrive until ``until()`` holds (True) or ``timeout`` passes (False)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        for kind, row in watcher.poll():
            print(describe(kind, row), file=out, flush=True)
        if until():
            return True
        if deadline is not None and time.monotonic() > deadline:
            return False
        time.sleep(interval)

"""Start the dashboard: ``python -m app.serve --results R [--input I] [--watch] [--host H] [--port P] [--refresh S]``.

``--watch`` is the whole local loop (``make ui``): the dashboard and, beside it, the
pipeline in watch mode over the ``--input`` folder (or gs:// prefix) writing to
``--results``, so an upload on the page becomes a row on the page within seconds.
Both run as children of this process and stop together, on Ctrl-C or SIGTERM; if
either ends, the other is stopped too.

``--stack [STATE_DIR]`` serves it over the running local stack (``python -m stack
start``): the stack's results table, upload bucket and notification topic, with
its emulator variables in the environment; later arguments still override. With
``--watch`` it also starts the stack's streaming pipeline if none is running (and
stops it on exit).

Without ``--watch`` it replaces itself with ``streamlit run`` (same process id, so
whoever started it can stop it by that id). Binds to 127.0.0.1 unless ``--host``
says otherwise.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from typing import Optional

from app.settings import DEFAULT_HOST, DEFAULT_PORT, parse, streamlit_command

STACK_REFRESH_SECONDS = '5'
LOOP_REFRESH_SECONDS = '5'   # the local loop follows new rows without a click
STOP_TIMEOUT_S = 30.0


def stack_arguments(state_dir: str) -> tuple[dict[str, str], list[str]]:
    """The local stack's emulator variables, and the dashboard arguments that point at its resources."""
    from stack.emulators import LocalStack

    stack = LocalStack.load(state_dir)
    config = stack.config
    return stack.env(), ['--results', config.output_table, '--error_table', config.error_table,
                         '--input', f'gs://{config.upload_bucket}/', '--notify_topic', config.topic_path,
                         '--refresh', STACK_REFRESH_SECONDS]


def watch_command(results: str, input_location: str, spectrograms: Optional[str] = None,
                  extra: tuple[str, ...] = ()) -> list[str]:
    """The watch-mode pipeline over the dashboard's upload location, writing where the dashboard reads."""
    if not spectrograms:
        if not _is_local(results):
            raise SystemExit('--watch with BigQuery results needs --spectrograms gs://BUCKET/PREFIX')
        spectrograms = os.path.join(os.path.dirname(os.path.abspath(results)), 'spectrograms')
    pattern = input_location.rstrip('/') + '/**'
    return [sys.executable, '-m', 'pipeline.main', '--input_pattern', pattern, '--watch', '--output_table', results,
            '--spectrogram_location', spectrograms, *extra]


def _is_local(results: str) -> bool:
    """Whether ``results`` names a store on this machine (then spectrograms can default to a folder beside it)."""
    from results.store import ResultsUnavailable, open_results

    try:
        return open_results(results).local
    except ResultsUnavailable:
        return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def supervise(children: dict[str, subprocess.Popen]) -> int:
    """Waits until a signal or until one child ends; then stops the others. The exit status of the first to end."""
    stopping = []

    def _on_signal(signum, _frame):
        stopping.append(signum)

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    status = 0
    while not stopping:
        ended = [(name, p) for name, p in children.items() if p.poll() is not None]
        if ended:
            name, proc = ended[0]
            print(f'{name} ended (exit {proc.returncode}); stopping the rest', file=sys.stderr, flush=True)
            status = proc.returncode
            break
        time.sleep(0.3)
    for proc in children.values():
        _stop(proc)
    return status


def main(argv: list[str]) -> int:
    from stack.config import DEFAULT_STATE_DIR

    server = argparse.ArgumentParser(add_help=False)
    server.add_argument('--host', default=DEFAULT_HOST)
    server.add_argument('--port', type=int, default=DEFAULT_PORT)
    server.add_argument('--stack', nargs='?', const=DEFAULT_STATE_DIR, default=None)
    server.add_argument('--watch', action='store_true')
    server.add_argument('--spectrograms', default=None)
    server.add_argument('--model_uri', default=None)
    known, dashboard_args = server.parse_known_args(argv)
    if known.stack:
        env, defaults = stack_arguments(known.stack)
        os.environ.update(env)
        dashboard_args = defaults + dashboard_args  # argparse keeps the last value: the user's win
    elif known.watch:
        dashboard_args = ['--refresh', LOOP_REFRESH_SECONDS] + dashboard_args
    if known.model_uri:
        dashboard_args += ['--model_uri', known.model_uri]  # the page names the model's species too
    if known.watch:
        dashboard_args += ['--pipeline_running']  # the page says uploads are picked up, and shows them pending
    command = streamlit_command(dashboard_args, known.host, known.port)
    print(f'Dashboard on http://{known.host}:{known.port}', flush=True)
    if not known.watch:
        os.execv(command[0], command)

    settings = parse(dashboard_args)
    children: dict[str, subprocess.Popen] = {}
    stack_pipeline = None
    if known.stack:
        from stack import processes, streaming
        from stack.emulators import LocalStack

        stack = LocalStack.load(known.stack)
        running = streaming.PIPELINE in stack.services and processes.is_alive(stack.services[streaming.PIPELINE].pid)
        if not running:
            stack_pipeline = streaming.start_pipeline(stack, known.model_uri)
            print(f'Streaming pipeline started (pid {stack_pipeline.pid}), log {stack_pipeline.log}', flush=True)
    else:
        if not settings.input_location:
            raise SystemExit('--watch needs --input (the folder the pipeline watches and uploads go to)')
        pipeline = watch_command(settings.results, settings.input_location, known.spectrograms,
                                 ('--model_uri', known.model_uri) if known.model_uri else ())
        # Own process groups: Ctrl-C reaches this supervisor, which stops each child once, in order.
        children['pipeline'] = subprocess.Popen(pipeline, start_new_session=True)
    children['dashboard'] = subprocess.Popen(command, start_new_session=True)
    try:
        return supervise(children)
    finally:
        if stack_pipeline is not None:
            streaming.stop_pipeline(stack)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

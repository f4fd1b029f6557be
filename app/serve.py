"""Start the dashboard: ``python -m app.serve --results R [--input I] [--host H] [--port P] [--refresh S]``.

``--stack [STATE_DIR]`` serves it over the running local stack (``python -m stack
start``): the stack's results table, upload bucket and notification topic, with
its emulator variables in the environment; later arguments still override.

Replaces itself with ``streamlit run`` (same process id, so whoever started it
can stop it by that id). Binds to 127.0.0.1 unless ``--host`` says otherwise.
"""
from __future__ import annotations

import argparse
import os
import sys

from app.settings import DEFAULT_HOST, DEFAULT_PORT, streamlit_command

STACK_REFRESH_SECONDS = '5'


def stack_arguments(state_dir: str) -> tuple[dict[str, str], list[str]]:
    """The local stack's emulator variables, and the dashboard arguments that point at its resources."""
    from stack.emulators import LocalStack

    stack = LocalStack.load(state_dir)
    config = stack.config
    return stack.env(), ['--results', config.output_table, '--error_table', config.error_table,
                         '--input', f'gs://{config.upload_bucket}/', '--notify_topic', config.topic_path,
                         '--refresh', STACK_REFRESH_SECONDS]


def main(argv: list[str]) -> None:
    from stack.config import DEFAULT_STATE_DIR

    server = argparse.ArgumentParser(add_help=False)
    server.add_argument('--host', default=DEFAULT_HOST)
    server.add_argument('--port', type=int, default=DEFAULT_PORT)
    server.add_argument('--stack', nargs='?', const=DEFAULT_STATE_DIR, default=None)
    known, dashboard_args = server.parse_known_args(argv)
    if known.stack:
        env, defaults = stack_arguments(known.stack)
        os.environ.update(env)
        dashboard_args = defaults + dashboard_args  # argparse keeps the last value: the user's win
    command = streamlit_command(dashboard_args, known.host, known.port)
    print(f'Dashboard on http://{known.host}:{known.port}', flush=True)
    os.execv(command[0], command)


if __name__ == '__main__':
    main(sys.argv[1:])

"""Start the dashboard: ``python -m app.serve --results R [--input I] [--host H] [--port P] [--refresh S]``.

Replaces itself with ``streamlit run`` (same process id, so whoever started it
can stop it by that id). Binds to 127.0.0.1 unless ``--host`` says otherwise.
"""
from __future__ import annotations

import argparse
import os
import sys

from app.settings import DEFAULT_HOST, DEFAULT_PORT, streamlit_command


def main(argv: list[str]) -> None:
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument('--host', default=DEFAULT_HOST)
    server.add_argument('--port', type=int, default=DEFAULT_PORT)
    known, dashboard_args = server.parse_known_args(argv)
    command = streamlit_command(dashboard_args, known.host, known.port)
    print(f'Dashboard on http://{known.host}:{known.port}', flush=True)
    os.execv(command[0], command)


if __name__ == '__main__':
    main(sys.argv[1:])

"""The dashboard's command line, and the ``streamlit run`` command that serves it.

    python -m app.serve --results demo/output/results.db --input demo/input [--port 8501]
    python -m app.serve --results my-project:audio.results --input gs://my-bucket/uploads/

``app.serve`` turns these into a ``streamlit run app/dashboard.py ... -- <args>``
bound to 127.0.0.1, headless, with usage statistics off; the page reads the
same arguments back with ``parse``.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Optional

from app.upload import DEFAULT_MAX_UPLOAD_MB

DASHBOARD_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'dashboard.py')
DEFAULT_HOST = '127.0.0.1'
DEFAULT_PORT = 8501
REFRESH_CHOICES = (0, 5, 15, 30, 60, 300)  # seconds; 0 is off


@dataclass(frozen=True)
class Settings:
    results: str                  # SQLite file (*.db) or BigQuery PROJECT:DATASET.TABLE
    error_table: Optional[str]    # BigQuery only; defaults to <results>_errors
    input_location: Optional[str]  # where uploads go: a folder or gs://bucket/prefix; None disables upload
    notify_topic: Optional[str]   # local stack: publish each upload's Cloud Storage notification here
    refresh_seconds: int
    max_upload_mb: int
    page_size: int
    pipeline_running: bool = False  # app.serve --watch started a pipeline over input_location beside the page
    model_uri: Optional[str] = None  # the model the results come from: its labels' common and scientific names


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m app.serve', description='Serve the results dashboard.',
                                epilog=f'Server: --host (default {DEFAULT_HOST}: this machine only), '
                                       f'--port (default {DEFAULT_PORT}). --watch: also run the pipeline in watch mode '
                                       'over --input, writing --results (the whole local loop, `make ui`; '
                                       '--spectrograms DIR, --model_uri DIR for it); Ctrl-C stops both. '
                                       '--stack [STATE_DIR]: serve over the '
                                       'running local stack (python -m stack start): its results, upload bucket and '
                                       'notification topic, its emulator variables, refresh every 5 s; with --watch '
                                       'it also starts the stack\'s streaming pipeline if none runs.')
    p.add_argument('--results', default=os.environ.get('DASHBOARD_RESULTS'),
                   help='results to show: a SQLite file ending in .db, or a BigQuery table PROJECT:DATASET.TABLE '
                        '(the pipeline\'s --output_table). Env: DASHBOARD_RESULTS')
    p.add_argument('--error_table', default=os.environ.get('DASHBOARD_ERROR_TABLE'),
                   help='BigQuery error table (default: <results>_errors; SQLite keeps errors in the same file)')
    p.add_argument('--input', dest='input_location', default=os.environ.get('DASHBOARD_INPUT'),
                   help='where uploaded files go: the pipeline\'s input folder, or the watched gs://BUCKET/PREFIX. '
                        'Without it the page has no upload. Env: DASHBOARD_INPUT')
    p.add_argument('--notify_topic', default=os.environ.get('DASHBOARD_NOTIFY_TOPIC'),
                   help='local stack only (its storage emulator sends no notifications): publish the Cloud Storage '
                        'OBJECT_FINALIZE notification of each upload to a gs:// --input on this topic, '
                        'projects/P/topics/T. Real Cloud Storage does this itself.')
    p.add_argument('--refresh', dest='refresh_seconds', type=int, default=0, choices=REFRESH_CHOICES,
                   help='initial auto-refresh interval in seconds (0: off); the page has a control for it')
    p.add_argument('--max_upload_mb', type=int, default=DEFAULT_MAX_UPLOAD_MB,
                   help='largest file one may upload, in MB of 1,000,000 bytes (as the upload box counts them)')
    p.add_argument('--page_size', type=int, default=20, help='files per page in the list')
    p.add_argument('--model_uri', default=os.environ.get('DASHBOARD_MODEL_URI'),
                   help='the model directory the results come from (the pipeline\'s --model_uri): species show '
                        'with their common and scientific names when its labels carry both (BirdNET). '
                        'Env: DASHBOARD_MODEL_URI')
    p.add_argument('--pipeline_running', action='store_true',
                   help='set by app.serve --watch: a pipeline watches --input, so uploads are processed as they come')
    return p


def parse(argv: list[str]) -> Settings:
    args = _parser().parse_args(argv)
    if not args.results:
        _parser().error('--results is required (a .db file or a BigQuery table)')
    if args.notify_topic and not (args.input_location or '').startswith('gs://'):
        _parser().error('--notify_topic needs a gs:// --input (it announces objects, not local files)')
    if args.max_upload_mb <= 0 or args.page_size <= 0:
        _parser().error('--max_upload_mb and --page_size must be positive')
    return Settings(**vars(args))


def streamlit_command(argv: list[str], host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> list[str]:
    """The ``streamlit run`` command serving the dashboard with ``argv`` (checked here, before starting)."""
    parse(argv)  # fail here, with usage, rather than in the page
    return [sys.executable, '-m', 'streamlit', 'run', DASHBOARD_SCRIPT,
            '--server.address', host, '--server.port', str(port), '--server.headless', 'true',
            '--browser.gatherUsageStats', 'false', '--client.toolbarMode', 'viewer',
            '--server.fileWatcherType', 'none', '--global.developmentMode', 'false',
            '--', *argv]

"""Entry point: ``python -m pipeline.main [options]`` (also the Flex Template's FLEX_TEMPLATE_PYTHON_PY_FILE).

Batch replay:  --input_pattern 'DIR/**' --output_table results.db --spectrogram_location images/
Streaming:     --input_subscription projects/P/subscriptions/S --output_table P:D.T
               --spectrogram_location gs://B/spectrograms --runner DataflowRunner ...
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from typing import Optional, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, SetupOptions, StandardOptions

from pipeline.graph import build_pipeline
from pipeline.options import AudioPipelineOptions, OptionsError, PipelineConfig, validate
from results import sqlite_store

_LOG = logging.getLogger('pipeline')
EMULATOR_VARS = ('PUBSUB_EMULATOR_HOST', 'STORAGE_EMULATOR_HOST', 'BIGQUERY_EMULATOR_HOST')


def _is_direct(options: PipelineOptions) -> bool:
    runner = options.view_as(StandardOptions).runner
    return runner is None or str(runner) in ('DirectRunner', 'direct')


def _needs_google_credentials(config: PipelineConfig) -> bool:
    """Whether any I/O goes to real Google Cloud (not a local path, not an emulator)."""
    paths = [config.input_pattern, config.spectrogram_location, config.model_uri, config.model_watch_pattern]
    if any(p and p.startswith('gs://') for p in paths) and not os.environ.get('STORAGE_EMULATOR_HOST'):
        return True
    if config.input_subscription and not os.environ.get('PUBSUB_EMULATOR_HOST'):
        return True
    if not config.uses_sqlite and not os.environ.get('BIGQUERY_EMULATOR_HOST'):
        return True
    return bool(config.model_endpoint)


def _has_configured_credentials() -> bool:
    adc = os.path.join(os.path.expanduser('~'), '.config', 'gcloud', 'application_default_credentials.json')
    return bool(os.environ.get('GOOGLE_APPLICATION_CREDENTIALS')) or os.path.exists(adc)


def skip_credential_lookup() -> None:
    """Tells Beam, in this process, that there are no credentials to find: connect anonymously.

    With none configured, Beam's lookup (google.auth.default, retried with back-off) takes ~30 s before
    it falls back to anonymous access, and ``--no_auth`` does not reach its Cloud Storage client. The
    emulators need no credentials, so the answer is known in advance.
    """
    from apache_beam.internal.gcp import auth

    with auth._Credentials._credentials_lock:
        auth._Credentials._credentials = None
        auth._Credentials._credentials_init = True


# Each worker process imports Beam and TensorFlow and loads the model (~5 s of CPU and ~750 MiB each);
# on this project's benchmark (2 cores) threads beat processes up to roughly 6,000 files.
PROCESSES_FROM_FILES = 5000


def configure_runner(options: PipelineOptions, config: PipelineConfig,
                     expected_files: Optional[int] = None) -> Optional[object]:
    """Local runs: pick the local runner that works offline and use every core.

    Beam's DirectRunner first tries the Prism runner, which it would download; offline that
    fails (with an error in the log) before it falls back. So choose directly: the FnApiRunner
    (all cores) for batch, the BundleBasedDirectRunner for streaming. Batch runs use threads (one
    TensorFlow, fast start; decoding, FFTs, PNG encoding and inference release the GIL) unless a
    local backlog is big enough to repay a process per core. Against the emulators with no
    credentials configured, Beam is told up front to connect anonymously; that answer lives in this
    process, so such a run always uses threads. ``--direct_running_mode`` overrides the choice.
    """
    if not _is_direct(options):
        return None
    anonymous = not _needs_google_credentials(config) and not _has_configured_credentials()
    if anonymous:
        skip_credential_lookup()
    if config.streaming:
        options.view_as(StandardOptions).streaming = True
        from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner
        return BundleBasedDirectRunner()
    direct = options.view_as(DirectOptions)
    if not direct.direct_num_workers:
        direct.direct_num_workers = os.cpu_count() or 1
    if direct.direct_num_workers > 1 and direct.direct_running_mode == 'in_memory':
        touches_gcs = any(p and p.startswith('gs://') for p in (config.input_pattern, config.spectrogram_location,
                                                                config.model_uri))
        big_backlog = (expected_files or 0) >= PROCESSES_FROM_FILES
        processes = big_backlog and not (anonymous and touches_gcs)
        direct.direct_running_mode = 'multi_processing' if processes else 'multi_threading'
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    return FnApiRunner()


def _absolute_local(path: Optional[str]) -> Optional[str]:
    return path if not path or path.startswith('gs://') else os.path.abspath(path)


def parse(argv: Sequence[str]) -> tuple[PipelineOptions, PipelineConfig]:
    options = PipelineOptions(list(argv))
    audio = options.view_as(AudioPipelineOptions)
    # Rows and the dashboard refer to files by absolute path, whatever the working directory.
    for name in ('input_pattern', 'spectrogram_location', 'model_uri', 'model_watch_pattern'):
        setattr(audio, name, _absolute_local(getattr(audio, name)))
    for name in ('output_table', 'error_table'):
        value = getattr(audio, name)
        if value and sqlite_store.is_sqlite_path(value):
            setattr(audio, name, os.path.abspath(value))
    config = validate(options)
    if config.streaming:
        options.view_as(StandardOptions).streaming = True
    # Workers import the pipeline package installed in their image (Dockerfile) or from setup.py.
    options.view_as(SetupOptions).save_main_session = False
    return options, config


class _Progress:
    """Prints row counts from the SQLite file while a local batch run goes on."""

    def __init__(self, config: PipelineConfig, expected: int):
        self._path = config.output_table
        self._expected = expected
        self._start = sqlite_store.counts(self._path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._began = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def delta(self) -> tuple[int, int]:
        ok, failed = sqlite_store.counts(self._path)
        return ok - self._start[0], failed - self._start[1]

    def _run(self):
        while not self._stop.wait(2.0):
            try:
                ok, failed = self.delta()
            except Exception:  # the file may be mid-creation; try again next tick
                continue
            of = f' of {self._expected}' if self._expected else ''
            print(f'  ... {ok + failed}{of} files done ({ok} ok, {failed} failed), '
                  f'{time.monotonic() - self._began:.0f} s', file=sys.stderr, flush=True)


def _summary(config: PipelineConfig, progress: _Progress, result, seconds: float) -> str:
    ok, failed = progress.delta()
    skipped = _counter(result, 'files_skipped_already_processed')
    total_ok, total_failed = sqlite_store.counts(config.output_table)
    lines = [
        f'Done in {seconds:.1f} s: {ok} files ok, {failed} failed'
        + (f', {skipped} skipped (already processed; --reprocess to redo them)' if skipped else '') + '.',
        f'  results:      {config.output_table}  (table "processed": {total_ok} rows, '
        f'"errors": {total_failed} rows)',
        f'  spectrograms: {config.spectrogram_location}',
    ]
    return '\n'.join(lines)


def _counter(result, name: str) -> int:
    try:
        from apache_beam.metrics.metric import MetricsFilter

        counters = result.metrics().query(MetricsFilter().with_name(name))['counters']
        return int(sum(c.committed or 0 for c in counters))
    except Exception:  # metrics are informative only
        return 0


def print_help() -> None:
    parser = argparse.ArgumentParser(
        prog='python -m pipeline.main', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Beam and Dataflow options (--runner, --project, --region, --temp_location, --num_workers, '
               '--max_num_workers, --direct_num_workers, ...) are accepted as usual.')
    AudioPipelineOptions._add_argparse_args(parser)
    parser.print_help()


def run(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(argv if argv is not None else sys.argv[1:])
    if '--help' in argv or '-h' in argv:
        print_help()
        return 0
    try:
        options, config = parse(argv)
    except OptionsError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    expected = None
    if config.input_pattern and not config.input_pattern.startswith('gs://'):
        from transforms.sources import count_local_matches
        expected = count_local_matches(config.input_pattern)
    runner = configure_runner(options, config, expected)
    show_progress = config.progress and config.uses_sqlite and not config.streaming
    if show_progress:
        print(f'Processing {expected or "the"} files matching {config.input_pattern} ...', file=sys.stderr,
              flush=True)
    started = time.monotonic()
    pipeline = beam.Pipeline(runner=runner, options=options)
    build_pipeline(pipeline, config)
    if not show_progress:
        result = pipeline.run()
        if runner is not None:
            # Local runs finish here. On Dataflow the launcher (a Flex Template's, too) submits and
            # returns; blocking on a streaming job would never end.
            result.wait_until_finish()
        return 0
    with _Progress(config, expected or 0) as progress:
        result = pipeline.run()
        result.wait_until_finish()
    print(_summary(config, progress, result, time.monotonic() - started), flush=True)
    return 0


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    logging.getLogger('pipeline').setLevel(logging.INFO)
    sys.exit(run())


if __name__ == '__main__':
    main()

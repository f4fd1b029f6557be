"""Entry point: ``python -m pipeline.main [options]`` (also the Flex Template's FLEX_TEMPLATE_PYTHON_PY_FILE).

Batch replay:  --input_pattern 'DIR/**' --output_table results.db --spectrogram_location images/
Watch mode:    --input_pattern 'DIR/**' --watch --output_table results.db --spectrogram_location images/
Streaming:     --input_subscription projects/P/subscriptions/S --output_table P:D.T
               --spectrogram_location gs://B/spectrograms --runner DataflowRunner ...
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
import time
from typing import Optional, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions

from pipeline.graph import build_pipeline
from pipeline.local_runner import configure_runner
from pipeline.options import AudioPipelineOptions, OptionsError, PipelineConfig, validate, with_absolute_paths
from results import sqlite_store

_LOG = logging.getLogger('pipeline')


def parse(argv: Sequence[str]) -> tuple[PipelineOptions, PipelineConfig]:
    """Beam's options, and the validated config with its local paths made absolute."""
    options = PipelineOptions(list(argv))
    config = with_absolute_paths(validate(options))
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
        (f'  results:      {config.output_table}  (table "processed": {total_ok} rows, '
         f'"errors": {total_failed} rows)'),
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
    if config.watch:
        from pipeline.watch import run_watch
        return run_watch(options, config)
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
    with _Progress(config, expected or 0) if show_progress else contextlib.nullcontext() as progress:
        result = pipeline.run()
        if runner is not None or progress is not None:
            # Local runs finish here. On Dataflow the launcher (a Flex Template's, too) submits and
            # returns; blocking on a streaming job would never end.
            result.wait_until_finish()
    if progress is not None:
        print(_summary(config, progress, result, time.monotonic() - started), flush=True)
    return 0


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    logging.getLogger('pipeline').setLevel(logging.INFO)
    sys.exit(run())


if __name__ == '__main__':
    main()

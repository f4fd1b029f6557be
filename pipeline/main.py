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
import os
import sys
import threading
import time
from typing import Optional, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions

from pipeline.graph import build_pipeline, done_states, key_states_reader
from pipeline.local_runner import configure_runner
from pipeline.options import (OptionsError, PipelineConfig, add_help_arguments, check_known_options,
                              check_local_paths, plain_text, validate, with_absolute_paths)
from results.tables import RESULT

_LOG = logging.getLogger('pipeline')


def parse(argv: Sequence[str]) -> tuple[PipelineOptions, PipelineConfig]:
    """Beam's options, and the validated config with its local paths made absolute.

    Raises OptionsError for an option neither this pipeline nor Beam knows, or a bad value or combination.
    """
    check_known_options(argv)
    options = PipelineOptions(list(argv))
    config = with_absolute_paths(validate(options))
    if config.streaming:
        options.view_as(StandardOptions).streaming = True
    # Workers import the pipeline package installed in their image (Dockerfile) or from setup.py.
    options.view_as(SetupOptions).save_main_session = False
    return options, config


class _KnownNoise(logging.Filter):
    """Drops Beam's known noise, also as relayed from worker processes ("Worker: severity: WARN ... message: ..."):

    - "Resource module is not available": Beam 2.77 sets ``resource`` to None when its ModelManager cannot
      import torch (not used here), then warns at every memory check of RunInference;
    - "No semi_persistent_directory found": a worker process started by the local runner has none; the
      pipeline registers no objects that need it (its coders travel inside the pipeline).
    """
    KNOWN = ('Resource module is not available', 'No semi_persistent_directory found')

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(known in message for known in self.KNOWN)


def quiet_startup(verbose: bool) -> None:
    """Keeps third-party start-up chatter out of the progress lines, unless ``--verbose``.

    TensorFlow reads TF_CPP_MIN_LOG_LEVEL (worker processes inherit it); its C++ INFO lines that ignore the
    variable are dropped while it loads (``model.native_logs``); Beam's known noise is filtered from the log.
    """
    if verbose:
        os.environ['TF_CPP_MIN_LOG_LEVEL'] = '0'
        return
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _KnownNoise) for f in handler.filters):
            handler.addFilter(_KnownNoise())


class _Progress:
    """Prints row counts from a local store while a local batch run goes on."""

    def __init__(self, config: PipelineConfig, expected: int):
        self._store = config.store
        self._expected = expected
        self._start = self._store.counts()
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
        ok, failed = self._store.counts()
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


class _Repairs:
    """What a batch replay retried and repaired: the rows' states read before and after the run."""

    def __init__(self, config: PipelineConfig):
        self._read = key_states_reader(config)
        self._retry: set[tuple[str, str]] = set()
        if self._read is not None:
            done = done_states(config)
            self._retry = {key for key, state in self._read().items() if state not in done}

    def counts(self, result) -> tuple[int, int]:
        """(files retried, files repaired) by the run that gave ``result``."""
        if self._read is None:
            return 0, 0
        after = self._read()
        return (_counter(result, 'files_retried'),
                len([key for key in self._retry if after.get(key) == RESULT]))

    @staticmethod
    def line(retried: int, repaired: int) -> str:
        return (f'{retried} files retried (only error rows before: retryable ones, or any with --retry_failed), '
                f'{repaired} repaired (now have a result).')


def _summary(config: PipelineConfig, progress: _Progress, result, seconds: float,
             repairs: Optional[tuple[int, int]]) -> str:
    ok, failed = progress.delta()
    # A retried file's error row is replaced (still failing) or removed (repaired): count it as processed.
    retried = repairs[0] if repairs else 0
    failed += retried
    skipped = _counter(result, 'files_skipped_already_processed')
    without_events = _counter(result, 'files_missing_events')
    total_ok, total_failed = config.store.counts()
    lines = [
        f'Done in {seconds:.1f} s: {ok} files ok, {failed} failed'
        + (f', {skipped} skipped (already processed; --reprocess to redo them)' if skipped else '') + '.',
        *([f'  replay: {_Repairs.line(*repairs)}'] if repairs and retried else []),
        *([f'  replay: {without_events} files had a result row without all its event rows (processed again).']
          if without_events else []),
        (f'  results:      {config.output_table}  (table "processed": {total_ok} rows, '
         f'"errors": {total_failed} rows)'),
        f'  spectrograms: {config.spectrogram_location}',
    ]
    return '\n'.join(lines)


def _reconcile_line(config: PipelineConfig, result) -> str:
    """A finished --reconcile run's summary: the counters of the skip (transforms.dedupe.tally_line)."""
    from transforms.dedupe import DONE, MISSING, NO_EVENTS, RETRIED, tally_line

    return tally_line(config.input_pattern or '', {
        MISSING: _counter(result, 'files_reconciled'), RETRIED: _counter(result, 'files_retried'),
        NO_EVENTS: _counter(result, 'files_missing_events'),
        DONE: _counter(result, 'files_skipped_already_processed')})


def _counter(result, name: str) -> int:
    return _counter_total(result, name) or 0


def _counter_total(result, name: str) -> Optional[int]:
    """A counter's committed total, or None when the runner cannot say."""
    try:
        from apache_beam.metrics.metric import MetricsFilter

        counters = result.metrics().query(MetricsFilter().with_name(name))['counters']
        return int(sum(c.committed or 0 for c in counters))
    except Exception:  # metrics are informative only
        return None


def no_match(pattern: str) -> str:
    return f'No file matched --input_pattern {pattern}: nothing to do.'


def print_help() -> None:
    parser = argparse.ArgumentParser(
        prog='python -m pipeline.main', usage='%(prog)s [options]', description=plain_text(__doc__ or ''),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Beam and Dataflow options (--runner, --project, --region, --temp_location, --num_workers, '
               '--max_num_workers, --direct_num_workers, ...) are accepted as usual. Local runs use every core '
               '(--direct_num_workers N to use fewer).')
    add_help_arguments(parser)
    parser.print_help()


def run(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(argv if argv is not None else sys.argv[1:])
    if '--help' in argv or '-h' in argv:
        print_help()
        return 0
    try:
        options, config = parse(argv)
        check_local_paths(config)
    except OptionsError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    quiet_startup(config.verbose)
    if config.watch:
        from pipeline.watch import run_watch
        return run_watch(options, config)
    expected = None
    if config.input_pattern and not config.streaming and not config.input_pattern.startswith('gs://'):
        from transforms.sources import count_local_matches
        expected = count_local_matches(config.input_pattern)
        if expected == 0:
            print(no_match(config.input_pattern), file=sys.stderr, flush=True)
            return 0
    runner = configure_runner(options, config, expected)
    show_progress = config.progress and config.store.local and not config.streaming
    if show_progress:
        print(f'Processing {expected or "the"} files matching {config.input_pattern} ...', file=sys.stderr,
              flush=True)
    started = time.monotonic()
    # A local batch replay says what it retried and repaired (on Dataflow the launcher does not wait).
    repairs = _Repairs(config) if runner is not None and not config.streaming else None
    pipeline = beam.Pipeline(runner=runner, options=options)
    try:
        build_pipeline(pipeline, config)
    except OptionsError as e:   # found while building: what only the model tells (a Vertex request too small for
        # its window, labels a species list names), or a file an option names (thresholds, species list)
        print(f'error: {e}', file=sys.stderr)
        return 2
    with _Progress(config, expected or 0) if show_progress else contextlib.nullcontext() as progress:
        result = pipeline.run()
        if runner is not None or progress is not None:
            # Local runs finish here. On Dataflow the launcher (a Flex Template's, too) submits and
            # returns; blocking on a streaming job would never end.
            result.wait_until_finish()
    if runner is not None and config.input_pattern and _counter_total(result, 'files_matched') == 0:
        print(no_match(config.input_pattern), file=sys.stderr, flush=True)
    counts = repairs.counts(result) if repairs is not None else None
    if progress is not None:
        print(_summary(config, progress, result, time.monotonic() - started, counts), flush=True)
    elif counts is not None:
        print(f'Replay: {_Repairs.line(*counts)}', file=sys.stderr, flush=True)
    if config.reconcile and not config.streaming and (runner is not None or progress is not None):
        print(_reconcile_line(config, result), flush=True)
    return 0


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    logging.getLogger('pipeline').setLevel(logging.INFO)
    sys.exit(run())


if __name__ == '__main__':
    main()

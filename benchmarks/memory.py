"""Memory: the pipeline's peak for one long file (1 hour, several hours) and for many short files.

    python -m benchmarks.memory [--hours 1,3] [--workers 1,2] [--counts 100,2500,10000] [--input DIR]
    python -m benchmarks.memory --hours 1 --counts '' --workers 1 --events-cost 2   # events on vs off, twice each

Each run is the whole pipeline (``pipeline.main``) in a fresh process tree,
sampled every 50 ms (``benchmarks.treemem``): the sum of RSS over the tree
(what the targets are stated in), the sum of PSS (shared library pages
counted once: the tree's real footprint), and the largest single process.
With one worker the runner works in-process; with more, each worker is its
own process holding its own TensorFlow and model, and the long file is in
one of them. ``--events-cost N`` runs each long-file case N times with events
(the default) and N times with ``--events=false``, alternating, to show what
finding and writing events costs. Long files are 44.1 kHz stereo FLAC (a typical upload),
generated once and kept under artifacts/benchmarks/inputs/. File counts
beyond what the input folder holds reuse its files under other names.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from typing import Optional, Sequence

from benchmarks import report
from benchmarks.inputs import repeated_folder, require_model, resolve_input, write_long_file
from benchmarks.pipeline_run import run_pipeline
from pipeline.options import DEFAULT_MODEL_URI

GIB = 1024.0


def long_file_folder(hours: float, cache: str) -> str:
    """A folder holding one ``hours``-long file (made on first use)."""
    folder = os.path.join(cache, f'long-{hours:g}h')
    path = os.path.join(folder, f'recording-{hours:g}h.flac')
    if not os.path.exists(path):
        print(f'  writing a {hours:g}-hour test file (once) ...', flush=True)
        write_long_file(path + '.part', hours)
        os.replace(path + '.part', path)
    return folder


def _record(label: str, workers: int, run, files: int, events: bool = True) -> dict:
    return {'case': label, 'workers': workers, 'files': files, 'events': events, 'seconds': run.seconds,
            'cpu_seconds': run.cpu_seconds, 'ok_rows': run.ok_rows, 'error_rows': run.error_rows,
            **run.memory.as_dict()}


def _event_count(out: str) -> Optional[int]:
    from results.store import open_store
    from results.tables import PROCESSED

    rows = open_store(os.path.join(out, 'results.db')).read_rows(PROCESSED)
    return rows[0].get('event_count') if rows else None


def measure(hours: list[float], counts: list[int], workers: list[int], model_dir: str, cache: str,
            short_folder: Optional[str], scratch: str, log=print, events_cost: int = 0) -> list[dict]:
    runs = []
    out = os.path.join(scratch, 'out')
    # Events on (the default) and off, alternating, so that a change of machine load hits both alike.
    modes = [True, False] * events_cost or [True]
    for h in hours:
        folder = long_file_folder(h, cache)
        for n in workers:
            for events in modes:
                log(f'{h:g}-hour file, {n} worker(s), events {"on" if events else "off"} ...')
                extra = ['--max_duration_seconds', str(h * 3600 + 60)] + ([] if events else ['--events=false'])
                run = run_pipeline(folder, model_dir, n, out, extra=extra)
                if run.ok_rows != 1:
                    raise RuntimeError(f'the {h:g}-hour file was not processed (error rows: {run.error_rows})')
                record = _record(f'{h:g}-hour file', n, run, 1, events)
                record['event_count'] = _event_count(out)
                runs.append(record)
                shutil.rmtree(out, ignore_errors=True)
    for count in counts:
        subset = repeated_folder(short_folder, count, os.path.join(scratch, f'n{count}'))
        for n in workers:
            log(f'{count} short files, {n} worker(s) ...')
            run = run_pipeline(subset, model_dir, n, out)
            if run.ok_rows + run.error_rows != count:
                raise RuntimeError(f'{run.ok_rows} + {run.error_rows} rows for {count} files')
            runs.append(_record(f'{count} short files', n, run, count))
            shutil.rmtree(out, ignore_errors=True)
    return runs


def render(runs: list[dict]) -> str:
    rows = [[r['case'], r['workers'], 'on' if r.get('events', True) else 'off',
             '–' if r.get('event_count') is None else r['event_count'], report.fmt(r['seconds']),
             report.fmt(r.get('cpu_seconds')),
             report.fmt(r['peak_rss_mib']), report.fmt(r['peak_pss_mib']), report.fmt(r['max_process_hwm_mib']),
             r['max_processes'], 'yes' if r['max_process_hwm_mib'] < GIB else 'no']
            for r in runs]
    return report.table(['case', 'workers', 'events', 'event rows', 'wall s', 'CPU s', 'tree RSS MiB', 'tree PSS MiB',
                         'largest process MiB', 'processes', 'process < 1 GiB'], rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.memory', description=__doc__.split('\n')[0])
    parser.add_argument('--hours', type=report.float_list, default=[1.0, 3.0],
                        help='lengths of the long files, comma-separated (default 1,3)')
    parser.add_argument('--workers', type=report.int_list, default=[1, 2])
    parser.add_argument('--counts', type=report.int_list, default=[100, 2500, 10000],
                        help='short-file counts (default 100,2500,10000; empty for none)')
    parser.add_argument('--input', help='folder of short files (default as for benchmarks.throughput)')
    parser.add_argument('--model', default=DEFAULT_MODEL_URI)
    parser.add_argument('--cache', default=report.INPUTS_DIR, help='where generated audio is kept between runs')
    parser.add_argument('--events-cost', type=int, default=0, metavar='N',
                        help='run each long-file case N times with events and N times with --events=false')
    parser.add_argument('--out', help=f'JSON file (default: {report.RESULTS_DIR}/memory.json)')
    args = parser.parse_args(argv)

    model_dir = require_model(args.model)
    short_folder, description = (None, '')
    if args.counts:
        short_folder, description = resolve_input(args.input, args.cache)
    before = report.machine()
    print(f'Memory: long files {args.hours} h, short files {args.counts} ({description or "none"}), workers '
          f'{args.workers}; load average {before["load_average"][0]:.1f}', flush=True)
    scratch = tempfile.mkdtemp(prefix='bench-memory-')
    try:
        runs = measure(args.hours, args.counts, args.workers, model_dir, args.cache, short_folder, scratch,
                       log=lambda m: print('  ' + m, flush=True), events_cost=args.events_cost)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print()
    print(render(runs))
    path = report.save('memory', {'short_input': description, 'machine_before': before, 'runs': runs}, args.out)
    print(f'\nwrote {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

"""Scaling: the pipeline's throughput with 1 and 2 workers, and with 100, 500 and 2,500 files.

    python -m benchmarks.scaling [--input DIR] [--counts 100,500,2500] [--workers 1,2,2t] [--repeats 2]

Each run is the whole pipeline (``pipeline.main``) on a spread subset of the
input. A straight line through wall time against file count separates the
fixed start-up cost (the intercept: worker processes, imports, the model)
from the cost of one more file (the slope), which should not grow with the
number of files; nor should peak memory. ``--workers`` entries are worker
counts in the pipeline's own running mode (one worker: in the runner's
process; more: the pipeline's choice), or with ``t`` (``2t``) that many threads in
one process, Beam's ``--direct_running_mode multi_threading``, or with ``p`` (``2p``) one process each.
Cores is CPU seconds / wall seconds of the whole run; the steady columns are the rate and the cores between
the moments 10% and 90% of the rows were written (``benchmarks.pipeline_run.steady_state``).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from typing import Optional, Sequence

import numpy as np

from benchmarks import report
from benchmarks.inputs import list_audio, pipeline_folder, require_model, resolve_input, spread_subset
from benchmarks.pipeline_run import run_pipeline, worker_spec
from pipeline.options import DEFAULT_MODEL_URI


def fit(counts: Sequence[int], seconds: Sequence[float]) -> dict[str, float]:
    """Least-squares ``seconds = fixed + count * per_file``."""
    slope, intercept = np.polyfit(np.asarray(counts, float), np.asarray(seconds, float), 1)
    return {'fixed_seconds': float(intercept), 'ms_per_file': 1000 * float(slope),
            'marginal_files_per_second': 1 / float(slope) if slope > 0 else None}  # None: too noisy to tell


def measure(folder: str, counts: list[int], workers: list[str], repeats: int, model_dir: str, scratch: str,
            log=print) -> list[dict]:
    every = list_audio(folder)
    runs = []
    for repeat in range(repeats):
        for count in counts:
            files = spread_subset(every, count)
            subset = pipeline_folder(folder, files, os.path.join(scratch, f'n{count}'))
            for spec in workers:
                log(f'repeat {repeat + 1}/{repeats}: {len(files)} files, workers {spec} ...')
                out = os.path.join(scratch, 'out')
                n, mode = worker_spec(spec)
                run = run_pipeline(subset, model_dir, n, out, running_mode=mode)
                shutil.rmtree(out, ignore_errors=True)
                runs.append({'files': len(files), 'workers': spec, 'seconds': run.seconds,
                             'files_per_second': len(files) / run.seconds, 'cpu_seconds': run.cpu_seconds,
                             'cores': run.cores, 'steady_files_per_second': run.steady_files_per_second,
                             'steady_cores': run.steady_cores,
                             'rows': run.ok_rows + run.error_rows, **run.memory.as_dict()})
    return runs


def summarise(runs: list[dict]) -> dict:
    groups: dict[tuple[str, int], list[dict]] = {}
    for run in runs:
        groups.setdefault((run['workers'], run['files']), []).append(run)
    cells = {f'workers {w}, {n} files': {'workers': w, 'files': n,
                                        **{m: report.summary([r[m] for r in rs])
                                           for m in ('seconds', 'files_per_second', 'cpu_seconds', 'peak_rss_mib',
                                                     'peak_pss_mib', 'cores')},
                                        **{m: report.summary([r[m] for r in rs if r.get(m)] or [0])
                                           for m in ('steady_files_per_second', 'steady_cores')}}
             for (w, n), rs in groups.items()}
    fits = {}
    for w in dict.fromkeys(r['workers'] for r in runs):
        mine = [r for r in runs if r['workers'] == w]
        if len({r['files'] for r in mine}) > 1:
            fits[f'workers {w}'] = fit([r['files'] for r in mine], [r['seconds'] for r in mine])
    return {'cells': cells, 'fits': fits}


def render(summary: dict) -> str:
    rows = [[f"{c['workers']}", f"{c['files']}", report.fmt(c['seconds']['median']),
             report.fmt(c['files_per_second']['median']), report.spread_text(c['files_per_second']),
             report.fmt(1000 * c['seconds']['median'] / c['files']),
             report.fmt(1000 * c['cpu_seconds']['median'] / c['files']), report.fmt(c['cores']['median']),
             report.fmt(c['steady_files_per_second']['median'] or None),
             report.fmt(c['steady_cores']['median'] or None), report.fmt(c['peak_rss_mib']['median'])]
            for c in sorted(summary['cells'].values(), key=lambda c: (c['workers'], c['files']))]
    out = report.table(['workers', 'files', 'wall s', 'files/s', 'spread', 'wall ms/file', 'CPU ms/file', 'cores',
                        'steady files/s', 'steady cores', 'peak RSS MiB'], rows)
    if summary['fits']:
        out += '\n\n' + report.table(
            ['fit: wall = fixed + files x per-file', 'fixed s', 'ms per extra file', 'marginal files/s'],
            [[name, report.fmt(f['fixed_seconds']), report.fmt(f['ms_per_file']),
              report.fmt(f['marginal_files_per_second'])] for name, f in summary['fits'].items()])
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.scaling', description=__doc__.split('\n')[0])
    parser.add_argument('--input', help='folder of audio files (default as for benchmarks.throughput)')
    parser.add_argument('--counts', type=report.int_list, default=[100, 500, 2500], help='file counts, comma-separated')
    parser.add_argument('--workers', type=lambda t: [w.strip() for w in t.split(',') if w.strip()],
                        default=['1', '2'],
                        help='worker counts, comma-separated; 2t: 2 threads in one process, 2p: 2 processes')
    parser.add_argument('--repeats', type=int, default=2)
    parser.add_argument('--model', default=DEFAULT_MODEL_URI)
    parser.add_argument('--out', help=f'JSON file (default: {report.RESULTS_DIR}/scaling.json)')
    args = parser.parse_args(argv)

    model_dir = require_model(args.model)
    folder, description = resolve_input(args.input, report.INPUTS_DIR, max(args.counts))
    available = len(list_audio(folder))
    if max(args.counts) > available:
        raise SystemExit(f'{folder} has {available} audio files; --counts asks for up to {max(args.counts)}')
    before = report.machine()
    print(f'Scaling: {description}; counts {args.counts}, workers {args.workers}, {args.repeats} repeats; '
          f'load average {before["load_average"][0]:.1f} on {before["cpus"]} cores', flush=True)
    scratch = tempfile.mkdtemp(prefix='bench-scaling-')
    try:
        runs = measure(folder, args.counts, args.workers, args.repeats, model_dir, scratch,
                       log=lambda m: print('  ' + m, flush=True))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary = summarise(runs)
    print()
    print(render(summary))
    path = report.save('scaling', {'input': description, 'machine_before': before, 'runs': runs, **summary},
                       args.out)
    print(f'\nwrote {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

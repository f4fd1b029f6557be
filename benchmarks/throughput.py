"""Throughput, side by side in one run: the pipeline, the original per-file design, and a bare loop.

    python -m benchmarks.throughput [--input DIR] [--files N] [--repeats 3] [--workers N]

(a) the pipeline in batch on the embedded default (``pipeline.main``: match, decode, spectrogram PNG,
    RunInference, SQLite rows), end to end: from the start of the run to the last row, so its start-up
    (worker processes, TensorFlow, the model) is counted;
(b) the original per-file design (``benchmarks.original``), timed on the work alone, start-up excluded;
(c) the same work as the pipeline in a plain loop, no Beam (``benchmarks.bare``): end to end like (a),
    and on the work alone (the practical limit);
(a') with ``--threads-too``: the pipeline again, its workers as threads in one process
    (Beam's ``--direct_running_mode multi_threading``) instead of one process each.

All three get the same cores: (b) and (c) run in as many processes as the pipeline has workers. The
repeats are interleaved (a, c, b, a, c, b, ...) so that a change in the machine's load hits all three.
(b) is slow, so by default it runs on every 10th file of the same set (``--original-every 1`` for all):
its cost is the same for every file, so its rate does not depend on how many it is given.
"""
from __future__ import annotations

import argparse
import functools
import os
import shutil
import tempfile
from typing import Optional, Sequence

from benchmarks import report
from benchmarks.bare import BareLoop
from benchmarks.inputs import list_audio, pipeline_folder, require_model, resolve_input, spread_subset
from benchmarks.original import OriginalDesign
from benchmarks.pipeline_run import run_pipeline
from benchmarks.workers import run_loop
from model.metadata import load_metadata
from pipeline.options import DEFAULT_MODEL_URI

CONTENDERS = {
    'a': '(a) pipeline, end to end',
    'a_threads': "(a') pipeline, threads, end to end",
    'b': '(b) original design, work only',
    'c': '(c) bare loop, end to end',
    'c_work': '(c) bare loop, work only',
}


def measure(folder: str, files: list[str], model_dir: str, workers: int, repeats: int, original_every: int,
            scratch: str, threads_too: bool = False, log=print) -> dict:
    metadata = load_metadata(model_dir)
    input_folder = pipeline_folder(folder, files, scratch)
    original_files = files[::original_every]
    runs: dict[str, list[dict]] = {key: [] for key in CONTENDERS if threads_too or key != 'a_threads'}
    steps: dict[str, list[dict]] = {'b': [], 'c': []}
    for repeat in range(repeats):
        out = os.path.join(scratch, f'run{repeat}')
        log(f'repeat {repeat + 1}/{repeats}: (a) pipeline on {len(files)} files ...')
        a = run_pipeline(input_folder, model_dir, workers, os.path.join(out, 'a'))
        if a.ok_rows + a.error_rows != len(files):
            raise RuntimeError(f'the pipeline wrote {a.ok_rows} + {a.error_rows} rows for {len(files)} files')
        runs['a'].append(_rates(len(files), a.seconds, a.cpu_seconds, None))
        runs['a'][-1].update(peak_rss_mib=a.memory.peak_rss_mib, error_rows=a.error_rows)
        if threads_too:
            log(f'repeat {repeat + 1}/{repeats}: (a\') pipeline, {workers} threads in one process ...')
            t = run_pipeline(input_folder, model_dir, workers, os.path.join(out, 'a_threads'),
                             running_mode='multi_threading')
            runs['a_threads'].append(_rates(len(files), t.seconds, t.cpu_seconds, None))
            runs['a_threads'][-1].update(peak_rss_mib=t.memory.peak_rss_mib)

        log(f'repeat {repeat + 1}/{repeats}: (c) bare loop on {len(files)} files ...')
        c = run_loop(functools.partial(BareLoop, model_dir, metadata, os.path.join(out, 'c', 'spectrograms'),
                                       os.path.join(out, 'c', 'results.db'), root=folder), files, workers, files[0])
        runs['c'].append(_rates(c.files, c.launch_seconds, c.launch_cpu_seconds, c.audio_seconds))
        runs['c_work'].append(_rates(c.files, c.seconds, c.cpu_seconds, c.audio_seconds))
        steps['c'].append({k: v / c.files for k, v in c.steps.items()})

        log(f'repeat {repeat + 1}/{repeats}: (b) original design on {len(original_files)} files ...')
        b = run_loop(functools.partial(OriginalDesign, model_dir, metadata, os.path.join(out, 'b', 'images'),
                                       os.path.join(out, 'b', 'results.db')), original_files, workers, files[0])
        runs['b'].append(_rates(b.files, b.seconds, b.cpu_seconds, b.audio_seconds))
        steps['b'].append({k: v / b.files for k, v in b.steps.items()})
        shutil.rmtree(out, ignore_errors=True)

    # The pipeline reports no audio duration of its own; the bare loop decoded the very same files.
    audio_seconds = runs['c'][0]['audio_seconds']
    for run in runs['a'] + runs.get('a_threads', []):
        run['audio_seconds'] = audio_seconds
        run['audio_seconds_per_second'] = audio_seconds / run['seconds']
    return {'runs': runs, 'steps_seconds_per_file': steps, 'files': len(files), 'original_files': len(original_files),
            'workers': workers, 'audio_seconds': audio_seconds}


def _rates(files: int, seconds: float, cpu_seconds: float, audio_seconds: Optional[float]) -> dict:
    return {'files': files, 'seconds': seconds, 'files_per_second': files / seconds, 'cpu_seconds': cpu_seconds,
            'cpu_ms_per_file': 1000 * cpu_seconds / files, 'audio_seconds': audio_seconds,
            'audio_seconds_per_second': audio_seconds / seconds if audio_seconds is not None else None}


def summarise(result: dict) -> dict:
    runs = result['runs']
    stats = {key: {metric: report.summary([r[metric] for r in runs[key]])
                   for metric in ('files_per_second', 'audio_seconds_per_second', 'cpu_ms_per_file', 'seconds')}
             for key in runs}
    # Ratios of each repeat's paired runs, then their median: a slow moment hits both sides of a pair.
    pairs = {'a/b': ('a', 'b'), 'a/c': ('a', 'c'), 'a/c (work only)': ('a', 'c_work')}
    ratios = {name: report.summary([x['files_per_second'] / y['files_per_second']
                                    for x, y in zip(runs[num], runs[den])]) for name, (num, den) in pairs.items()}
    if 'a_threads' in runs:
        ratios["a'/b"] = report.summary([x['files_per_second'] / y['files_per_second']
                                         for x, y in zip(runs['a_threads'], runs['b'])])
    ratios['CPU per file, b/a'] = report.summary([y['cpu_ms_per_file'] / x['cpu_ms_per_file']
                                                   for x, y in zip(runs['a'], runs['b'])])
    return {'stats': stats, 'ratios': ratios}


def render(result: dict, summary: dict) -> str:
    rows = []
    for key, label in CONTENDERS.items():
        if key not in summary['stats']:
            continue
        s = summary['stats'][key]
        files = result['original_files'] if key == 'b' else result['files']
        rows.append([label, files, report.fmt(s['seconds']['median']), report.fmt(s['files_per_second']['median']),
                     report.spread_text(s['files_per_second']), report.fmt(s['audio_seconds_per_second']['median']),
                     report.fmt(s['cpu_ms_per_file']['median'])])
    lines = [report.table(['contender', 'files', 'wall s', 'files/s', 'spread', 'audio s/s', 'CPU ms/file'], rows),
             '', report.table(['ratio (median of paired runs)', 'value', 'spread'],
                              [[name, f"{report.fmt(s['median'])}x", report.spread_text(s)]
                               for name, s in summary['ratios'].items()])]
    for key, title in (('c', 'bare loop'), ('b', 'original design')):
        per_step = result['steps_seconds_per_file'][key]
        names = sorted(per_step[0], key=lambda n: -per_step[0][n])
        lines += ['', report.table([f'{title}: step', 'ms per file (median)'],
                                   [[n, report.fmt(1000 * report.summary([s[n] for s in per_step])['median'])]
                                    for n in names])]
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.throughput', description=__doc__.split('\n')[0])
    parser.add_argument('--input', help='folder of audio files (default: ../shared/datasets/fsdd/recordings when '
                                        'present, else 2,500 generated clips)')
    parser.add_argument('--files', type=int, default=0, help='use this many files, spread over the folder (0: all)')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1,
                        help='pipeline workers, and processes for (b) and (c) (default: all cores)')
    parser.add_argument('--original-every', type=int, default=10,
                        help='(b) processes every Nth file of the set (default 10; 1 for all)')
    parser.add_argument('--threads-too', action='store_true',
                        help="also run the pipeline with its workers as threads in one process (a')")
    parser.add_argument('--model', default=DEFAULT_MODEL_URI, help='exported model directory (default: `make model`)')
    parser.add_argument('--out', help=f'JSON file (default: {report.RESULTS_DIR}/throughput.json)')
    args = parser.parse_args(argv)

    model_dir = require_model(args.model)
    folder, description = resolve_input(args.input, report.INPUTS_DIR)
    files = spread_subset(list_audio(folder), args.files)
    if not files:
        raise SystemExit(f'no audio files under {folder}')
    before = report.machine()
    print(f'Throughput: {len(files)} files from {description}, {args.workers} workers, {args.repeats} repeats; '
          f'load average {before["load_average"][0]:.1f} on {before["cpus"]} cores', flush=True)
    scratch = tempfile.mkdtemp(prefix='bench-throughput-')
    try:
        result = measure(folder, files, model_dir, args.workers, args.repeats, args.original_every, scratch,
                         args.threads_too, log=lambda m: print('  ' + m, flush=True))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary = summarise(result)
    print()
    print(render(result, summary))
    path = report.save('throughput', {'input': description, 'machine_before': before, **result, **summary},
                       args.out)
    print(f'\nwrote {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

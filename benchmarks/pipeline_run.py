"""Runs the real pipeline (``pipeline.main``) on a folder in a fresh process, timed and memory-sampled.

The child process imports the pipeline, then times ``pipeline.main.run`` from
the start of the run to the last row written: that includes starting Beam's
worker processes and loading the model in each (the pipeline's fixed cost),
but not the parent's own imports. Peak memory covers the whole process tree.

    python -m benchmarks.pipeline_run -- --input_pattern 'DIR/**' --output_table T.db ...   (the child side)
"""
from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Optional, Sequence

from benchmarks.inputs import ROOT
from benchmarks.treemem import TreeMemory, run_measured
from results import sqlite_store

_MARK = 'PIPELINE_RUN_SECONDS='


@dataclass
class PipelineRun:
    seconds: float           # inside the child: pipeline.main.run, start to finish
    process_seconds: float   # the whole child process, imports included
    cpu_seconds: float       # CPU of the whole process tree (runner and workers), imports included
    ok_rows: int
    error_rows: int
    memory: TreeMemory


def child_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''),
               TF_CPP_MIN_LOG_LEVEL='2')
    env.pop('PYTHONSTARTUP', None)
    return env


def worker_spec(text: str) -> tuple[int, Optional[str]]:
    """``2`` -> (2 workers, the pipeline's own choice of running mode); ``2t`` -> (2, threads in one process)."""
    text = text.strip()
    return (int(text[:-1]), 'multi_threading') if text.endswith('t') else (int(text), None)


def run_pipeline(input_folder: str, model_dir: str, workers: Optional[int], out_dir: Optional[str] = None,
                 extra: Sequence[str] = (), running_mode: Optional[str] = None) -> PipelineRun:
    """One batch run over every file under ``input_folder``, into a new SQLite file and image folder.

    ``running_mode`` (Beam's --direct_running_mode) is left to the pipeline unless given.
    """
    out_dir = out_dir or tempfile.mkdtemp(prefix='pipeline-run-')
    table = os.path.join(out_dir, 'results.db')
    args = ['--input_pattern', os.path.join(input_folder, '**'), '--output_table', table,
            '--spectrogram_location', os.path.join(out_dir, 'spectrograms'), '--model_uri', model_dir,
            *(['--direct_num_workers', str(workers)] if workers else []),
            *(['--direct_running_mode', running_mode] if running_mode else []), *extra]
    result, memory, process_seconds, cpu_seconds = run_measured(
        [sys.executable, '-m', 'benchmarks.pipeline_run', '--', *args], env=child_env(), cwd=ROOT)
    marked = [line for line in result.stdout.splitlines() if line.startswith(_MARK)]
    if result.returncode != 0 or not marked:
        raise RuntimeError(f'the pipeline failed (exit {result.returncode}):\n{result.stderr[-3000:]}')
    ok, failed = sqlite_store.counts(table)
    return PipelineRun(seconds=float(marked[-1][len(_MARK):]), process_seconds=process_seconds,
                       cpu_seconds=cpu_seconds, ok_rows=ok, error_rows=failed, memory=memory)


def _child(argv: list[str]) -> int:
    import logging
    import time

    logging.basicConfig(level=logging.WARNING)
    from pipeline.main import run

    started = time.perf_counter()
    code = run(argv)
    print(f'{_MARK}{time.perf_counter() - started:.4f}', flush=True)
    return code


if __name__ == '__main__':
    arguments = sys.argv[1:]
    sys.exit(_child(arguments[1:] if arguments[:1] == ['--'] else arguments))

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
from benchmarks.treemem import TreeMemory, cores_between, run_measured
from pipeline.options import DEFAULT_MODEL_URI
from results.store import open_store
from results.tables import PROCESSED

# The steady state: from the time the first STEADY_FROM of the rows were written to the time STEADY_TO were,
# which leaves out start-up (imports, model load, matching) and the tail where one worker finishes alone.
STEADY_FROM, STEADY_TO = 0.1, 0.9

_MARK = 'PIPELINE_RUN_SECONDS='


@dataclass
class PipelineRun:
    seconds: float           # inside the child: pipeline.main.run, start to finish
    process_seconds: float   # the whole child process, imports included
    cpu_seconds: float       # CPU of the whole process tree (runner and workers), imports included
    ok_rows: int
    error_rows: int
    memory: TreeMemory
    steady_files_per_second: Optional[float] = None   # rows written per second in the steady state
    steady_cores: Optional[float] = None              # CPU seconds / wall seconds of the tree in the steady state
    argv: tuple[str, ...] = ()                        # the pipeline's command line (python -m pipeline.main ...)

    @property
    def cores(self) -> float:
        """CPU seconds / wall seconds over the whole child process, imports included."""
        return self.cpu_seconds / self.process_seconds


def steady_state(table: str, timeline) -> tuple[Optional[float], Optional[float]]:
    """(rows per second, cores) between the rows at STEADY_FROM and STEADY_TO of the run, by their processed_at."""
    import datetime as dt

    stamps = sorted(dt.datetime.strptime(row['processed_at'], '%Y-%m-%dT%H:%M:%S.%fZ').replace(tzinfo=dt.timezone.utc)
                    .timestamp() for row in open_store(table).read_rows(PROCESSED))
    if len(stamps) < 20:
        return None, None
    first, last = int(STEADY_FROM * (len(stamps) - 1)), int(STEADY_TO * (len(stamps) - 1))
    start, end = stamps[first], stamps[last]
    if end <= start:
        return None, None
    return (last - first) / (end - start), cores_between(timeline, start, end)


def child_env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''),
               TF_CPP_MIN_LOG_LEVEL='2')
    env.pop('PYTHONSTARTUP', None)
    return env


def worker_spec(text: str) -> tuple[int, Optional[str]]:
    """``2`` -> (2 workers, the pipeline's own choice of running mode); ``2t`` -> (2, threads in one process);
    ``2p`` -> (2, one process each)."""
    text = text.strip()
    modes = {'t': 'multi_threading', 'p': 'multi_processing'}
    return (int(text[:-1]), modes[text[-1]]) if text[-1:] in modes else (int(text), None)


def pipeline_args(input_folder: str, model_dir: str, out_dir: str, workers: Optional[int] = None,
                  running_mode: Optional[str] = None, extra: Sequence[str] = ()) -> list[str]:
    """The command line of one run: a user's (``make run``'s options), plus only the flags asked for."""
    return ['--input_pattern', os.path.join(input_folder, '**'), '--output_table', os.path.join(out_dir, 'results.db'),
            '--spectrogram_location', os.path.join(out_dir, 'spectrograms'),
            *(['--model_uri', model_dir] if os.path.abspath(model_dir) != DEFAULT_MODEL_URI else []),
            *(['--direct_num_workers', str(workers)] if workers else []),
            *(['--direct_running_mode', running_mode] if running_mode else []), *extra]


def run_pipeline(input_folder: str, model_dir: str, workers: Optional[int], out_dir: Optional[str] = None,
                 extra: Sequence[str] = (), running_mode: Optional[str] = None) -> PipelineRun:
    """One batch run over every file under ``input_folder``, into a new SQLite file and image folder.

    ``workers`` (Beam's --direct_num_workers) and ``running_mode`` (--direct_running_mode) are left to the
    pipeline unless given, as when a user runs it: every core, its own choice of threads or processes.
    """
    out_dir = out_dir or tempfile.mkdtemp(prefix='pipeline-run-')
    table = os.path.join(out_dir, 'results.db')
    args = pipeline_args(input_folder, model_dir, out_dir, workers, running_mode, extra)
    timeline: list[tuple[float, float]] = []
    result, memory, process_seconds, cpu_seconds = run_measured(
        [sys.executable, '-m', 'benchmarks.pipeline_run', '--', *args], env=child_env(), cwd=ROOT, timeline=timeline)
    marked = [line for line in result.stdout.splitlines() if line.startswith(_MARK)]
    if result.returncode != 0 or not marked:
        raise RuntimeError(f'the pipeline failed (exit {result.returncode}):\n{result.stderr[-3000:]}')
    ok, failed = open_store(table).counts()
    steady_rate, steady_cores = steady_state(table, timeline)
    return PipelineRun(seconds=float(marked[-1][len(_MARK):]), process_seconds=process_seconds,
                       cpu_seconds=cpu_seconds, ok_rows=ok, error_rows=failed, memory=memory,
                       steady_files_per_second=steady_rate, steady_cores=steady_cores, argv=tuple(args))


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

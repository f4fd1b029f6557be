"""Watch mode: file written -> row visible, one file at a time, and what an idle watcher costs.

    python -m benchmarks.watch [--files 20] [--gap 3] [--idle 30] [--backlog 1000] [--out F.json]

Starts ``python -m pipeline.main --watch`` (the demo model unless --model_uri) over a fresh folder,
writes ``--files`` 2 s WAV clips ``--gap`` seconds apart, and times each from the end of its write to
its row in the SQLite file (polled every 0.1 s). Then ``--backlog`` more files are processed, and
the watcher's CPU time over ``--idle`` seconds with nothing new is read from /proc.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from audio import encode, synth
from benchmarks.inputs import ROOT


def _rows(db: str) -> dict[str, str]:
    if not os.path.exists(db):
        return {}
    conn = sqlite3.connect(f'file:{db}?mode=ro', uri=True, timeout=30)
    try:
        return dict(conn.execute('SELECT audio_file, processed_at FROM processed UNION ALL '
                                 'SELECT audio_file, failed_at FROM errors'))
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()


def _cpu_seconds(pid: int) -> float:
    fields = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def _wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def run(args) -> dict:
    wav = encode.encode(synth.make('chirp', np.random.default_rng(0), 2.0, 16000), 16000, 'wav')
    with tempfile.TemporaryDirectory() as root:
        folder, db = os.path.join(root, 'in'), os.path.join(root, 'results.db')
        os.makedirs(folder)
        command = [sys.executable, '-m', 'pipeline.main', '--input_pattern', f'{folder}/**', '--watch',
                   '--output_table', db, '--spectrogram_location', os.path.join(root, 'img')]
        if args.model_uri:
            command += ['--model_uri', args.model_uri]
        log = open(os.path.join(root, 'watch.log'), 'w')
        proc = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            _wait(lambda: 'Watching' in open(log.name).read(), 180)
            time.sleep(2)
            load_before = os.getloadavg()
            latencies = []
            for i in range(args.files):
                path = os.path.join(folder, f'clip-{i:03d}.wav')
                with open(path, 'wb') as f:
                    f.write(wav)
                written = time.monotonic()
                if not _wait(lambda path=path: path in _rows(db), 120):
                    raise RuntimeError(f'no row for {path}:\n' + open(log.name).read()[-3000:])
                latencies.append(time.monotonic() - written)
                time.sleep(max(0.0, args.gap - latencies[-1]))
            os.makedirs(os.path.join(folder, 'backlog'))
            for i in range(args.backlog):
                with open(os.path.join(folder, 'backlog', f'{i:05d}.wav'), 'wb') as f:
                    f.write(wav)
            started = time.monotonic()
            _wait(lambda: len(_rows(db)) == args.files + args.backlog, 1800)
            backlog_seconds = time.monotonic() - started
            time.sleep(2 * 2.0)
            cpu0, t0 = _cpu_seconds(proc.pid), time.monotonic()
            time.sleep(args.idle)
            idle_cpu = (_cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        return {
            'files': args.files, 'gap_seconds': args.gap, 'latency_seconds': latencies,
            'latency_p50': statistics.median(latencies), 'latency_max': max(latencies),
            'backlog_files': args.backlog, 'backlog_seconds': backlog_seconds,
            'idle_cpu_fraction_of_one_core': idle_cpu, 'idle_files_listed': args.files + args.backlog,
            'load_before': load_before, 'load_after': os.getloadavg(), 'cores': os.cpu_count(),
        }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--files', type=int, default=20)
    parser.add_argument('--gap', type=float, default=3.0, help='seconds between one file and the next')
    parser.add_argument('--backlog', type=int, default=1000, help='files dropped at once after the timed ones')
    parser.add_argument('--idle', type=float, default=30.0, help='seconds of idle CPU measurement')
    parser.add_argument('--model_uri', default=None)
    parser.add_argument('--out', default=os.path.join(ROOT, 'artifacts', 'benchmarks', 'watch.json'))
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps({k: v for k, v in result.items() if k != 'latency_seconds'}, indent=2))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())

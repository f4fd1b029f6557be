"""Inference on the local Vertex AI endpoint against in-worker inference: speed, CPU, request sizes, a 429 burst.

    python -m benchmarks.vertex [--files 40] [--burst 5] [--model_uri artifacts/models/demo]   (make bench-vertex)

Generates ``--files`` mono 16 kHz clips (1-3 s, the demo classes), starts the local endpoint
(``stack/vertex_endpoint.py``) as its own process serving the model, and runs the batch pipeline three times
over the same files, each in a fresh process (``benchmarks.pipeline_run``): in-worker (the pipeline's default
runtime), through the endpoint, and through the endpoint with a burst of ``--burst`` 429s at the start. CPU is
counted for the pipeline's process tree and for the endpoint's process apart, per file. Request sizes are the
HTTP bodies the endpoint received. Parity: the Vertex rows against the in-worker rows (labels, confidences).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.inputs import ROOT, generate_clips, require_model
from benchmarks.pipeline_run import child_env, run_pipeline
from benchmarks.report import fmt, machine, save, table
from results.store import open_store
from results.tables import PROCESSED
from stack.processes import free_port, http_ready, stop, wait_until_ready
from stack.vertex_endpoint import get, post

ENDPOINT = 'projects/local-project/locations/us-central1/endpoints/1'


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (``/proc/PID/stat``)."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def warm_up(url: str, model_dir: str) -> None:
    """One prediction first: the endpoint loads TensorFlow and the model then, which no run should be charged."""
    from model.metadata import load_metadata

    post(url, f'/v1/{ENDPOINT}:predict', {'instances': [[0.0] * load_metadata(model_dir).window_samples]})


def measure(folder: str, model_dir: str, scratch: str, mode: str, url: str, server_pid: int,
            burst: int = 0) -> dict[str, Any]:
    extra = [] if mode == 'in-worker' else ['--model_endpoint', ENDPOINT, '--vertex_api_endpoint', url]
    post(url, '/local/reset', {})
    if burst:
        post(url, '/local/faults', {'throttle': burst})
    server_cpu = process_cpu_seconds(server_pid)
    out_dir = os.path.join(scratch, mode.replace(' ', '-'))
    run = run_pipeline(folder, model_dir, None, out_dir, extra)
    server_cpu = process_cpu_seconds(server_pid) - server_cpu
    stats = get(url, '/local/stats')
    sizes = stats['predict_bytes']
    files = run.ok_rows + run.error_rows
    return {'mode': mode, 'files': files, 'ok_rows': run.ok_rows, 'error_rows': run.error_rows,
            'seconds': run.seconds, 'files_per_second': files / run.seconds,
            'pipeline_cpu_ms_per_file': 1000 * run.cpu_seconds / files,
            'endpoint_cpu_ms_per_file': 1000 * server_cpu / files if mode != 'in-worker' else 0.0,
            'requests': len(sizes), 'answers': stats['answers'], 'windows': stats['instances'],
            'request_kb_mean': sum(sizes) / len(sizes) / 1000 if sizes else None,
            'request_kb_max': max(sizes) / 1000 if sizes else None,
            'table': os.path.join(out_dir, 'results.db')}


def parity(local_table: str, remote_table: str) -> dict[str, Any]:
    local = {r['audio_file']: r for r in open_store(local_table).read_rows(PROCESSED)}
    remote = {r['audio_file']: r for r in open_store(remote_table).read_rows(PROCESSED)}
    both = sorted(set(local) & set(remote))
    return {'files_compared': len(both), 'same_files': set(local) == set(remote),
            'labels_equal': sum(local[f]['label'] == remote[f]['label'] for f in both),
            'max_confidence_diff': max((abs(local[f]['confidence'] - remote[f]['confidence']) for f in both),
                                       default=None)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--files', type=int, default=40)
    parser.add_argument('--burst', type=int, default=5, help='429s answered at the start of the burst run')
    parser.add_argument('--model_uri', default=os.path.join(ROOT, 'artifacts', 'models', 'demo'))
    parser.add_argument('--out', help='where the JSON goes (default artifacts/benchmarks/vertex.json)')
    args = parser.parse_args(argv)
    model_dir = require_model(args.model_uri)
    scratch = tempfile.mkdtemp(prefix='bench-vertex-')
    folder = os.path.join(scratch, 'clips')
    generate_clips(folder, args.files, min_s=1.0, max_s=3.0, rate=16000)
    load_before = machine()['load_average']

    port = free_port()
    log_path = os.path.join(scratch, 'vertex.log')
    with open(log_path, 'wb') as log:
        server = subprocess.Popen([sys.executable, '-m', 'stack.vertex_endpoint', 'serve', '--port', str(port),
                                   '--model', model_dir], stdout=log, stderr=subprocess.STDOUT, env=child_env(),
                                  cwd=ROOT, start_new_session=True)
    url = f'http://127.0.0.1:{port}'
    try:
        wait_until_ready('vertex', server.pid, http_ready(url + '/local/health'), log_path)
        warm_up(url, model_dir)
        started = time.monotonic()
        runs = [measure(folder, model_dir, scratch, mode, url, server.pid, burst)
                for mode, burst in (('in-worker', 0), ('vertex', 0), ('vertex 429 burst', args.burst))]
    finally:
        stop(server.pid)
    check = parity(runs[0]['table'], runs[1]['table'])
    print(table(['mode', 'files', 'rows ok/err', 'wall s', 'files/s', 'pipeline CPU ms/file',
                 'endpoint CPU ms/file', 'requests', 'windows', '429s', 'request kB mean/max'],
                [[r['mode'], r['files'], f"{r['ok_rows']}/{r['error_rows']}", fmt(r['seconds']),
                  fmt(r['files_per_second']), fmt(r['pipeline_cpu_ms_per_file']),
                  fmt(r['endpoint_cpu_ms_per_file']), r['requests'], r['windows'], r['answers'].get('429', 0),
                  f"{fmt(r['request_kb_mean'])}/{fmt(r['request_kb_max'])}" if r['requests'] else '-']
                 for r in runs]))
    print(f'parity (demo model, vertex vs in-worker): {json.dumps(check)}')
    print(f'load average before {load_before}, after {machine()["load_average"]}; '
          f'{time.monotonic() - started:.0f} s of runs')
    path = save('vertex', {'files': args.files, 'model_uri': model_dir, 'load_before': load_before,
                           'runs': runs, 'parity': check}, args.out)
    print(f'wrote {path}')
    burst = runs[2]
    return 0 if check['same_files'] and burst['error_rows'] == 0 and burst['ok_rows'] == args.files else 1


if __name__ == '__main__':
    sys.exit(main())

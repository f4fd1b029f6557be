"""Streaming bulk drain on the local stack: a backlog of notifications at once, how fast the rows arrive.

    python -m benchmarks.drain [--files 240] [--duplicates 0.3] [--seconds 2] [-- PIPELINE OPTIONS]

Starts its own emulator stack and the streaming pipeline (as ``make run-streaming``), processes one warm-up
file (start-up is reported apart), then uploads ``--files`` clips and publishes their OBJECT_FINALIZE
notifications all at once, a ``--duplicates`` fraction of them twice (Pub/Sub delivers at least once).
Drain rate: files / (last row visible in the BigQuery emulator - first publish). Exactly once: every file
must get exactly one row, none twice (counted in the tables), or the run exits 1. Memory: the pipeline
process's RSS, sampled every 0.5 s: its peak while the first 1,000 rows arrived against its peak over the
whole drain (how much a longer drain grows it).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from benchmarks.latency import warmed_stream
from benchmarks.treemem import TreeSampler, peak_between
from stack import streaming
from stack.config import StackConfig
from stack.emulators import LocalStack


RSS_SAMPLE_S = 0.5
RSS_MARK = 1000   # peak RSS while the first 1,000 rows arrived, against the peak over the whole drain


def measure(stack: LocalStack, args) -> dict:
    rng = np.random.default_rng(0)
    twice = set(rng.choice(np.arange(1, args.files + 1), int(args.duplicates * args.files), replace=False).tolist())
    with warmed_stream(stack, args, 'drain', args.files) as warm:
        uploader, objects, keys, arrivals, startup = (warm.uploader, warm.objects, warm.keys, warm.arrivals,
                                                      warm.startup_seconds)
        cpu_before = _tree_cpu(stack)
        services_before = _services_cpu(stack)
        sampler = TreeSampler(stack.services[streaming.PIPELINE].pid, interval_s=RSS_SAMPLE_S)
        with sampler:
            start = time.monotonic()
            for i, resource in enumerate(objects[1:], start=1):
                uploader.announce(resource)
                if i in twice:
                    uploader.announce(resource)
            publish_seconds = time.monotonic() - start
            drained = arrivals.wait_for(keys[1:], args.drain_timeout)
        arrived = sorted(arrivals.seen.get(k, time.monotonic()) - start for k in keys[1:])
        last = start + arrived[-1]
        cpu_used = _tree_cpu(stack) - cpu_before
        services = {name: round(cpu - services_before.get(name, 0.0), 1) for name, cpu in _services_cpu(stack).items()}
        time.sleep(3 * args.poll + 2)   # would a duplicate row still turn up?
        rows_total = arrivals.rows_total
    ended_cleanly = streaming.stop_pipeline(stack)
    seconds = last - start
    rss = sampler.rss_timeline
    # Peak RSS of the pipeline while its first RSS_MARK rows arrived, and over the whole drain.
    mark = start + arrived[min(RSS_MARK, len(arrived)) - 1]
    peak_to_mark, peak = peak_between(rss, start, mark), peak_between(rss, start, last)
    return {
        'pipeline_rss_mib_at_first_publish': round(rss[0][1], 1) if rss else None,
        f'pipeline_peak_rss_mib_to_{RSS_MARK}_rows': round(peak_to_mark, 1) if peak_to_mark else None,
        'pipeline_peak_rss_mib_to_last_row': round(peak, 1) if peak else None,
        f'peak_rss_growth_pct_{RSS_MARK}_to_all': (round(100 * (peak / peak_to_mark - 1), 1)
                                                  if peak and peak_to_mark else None),
        'files': args.files, 'notifications': args.files + len(twice), 'duplicated': len(twice),
        'clip_seconds': args.seconds, 'pipeline_args': args.pipeline_args,
        'startup_to_first_row_s': round(startup, 1), 'publish_seconds': round(publish_seconds, 1),
        'all_rows_arrived': drained, 'drain_seconds': round(seconds, 2),
        # when the first row, and 25/50/75% of the rows, were visible (s after the first publish; poll resolution)
        'rows_visible_at_s': [round(arrived[int(q * (len(arrived) - 1))], 1) for q in (0, 0.25, 0.5, 0.75)],
        'files_per_second': round(args.files / seconds, 2), 'pipeline_cpu_seconds': round(cpu_used, 1),
        'pipeline_cores': round(cpu_used / seconds, 2),
        'cpu_seconds_by_service': services,   # the emulators share the machine with the pipeline
        'rows_in_tables_incl_warmup': rows_total, 'expected_rows_incl_warmup': args.files + 1,
        'pipeline_stopped_on_sigterm': ended_cleanly, 'cpus': os.cpu_count(),
        'load_average_1m_at_end': round(os.getloadavg()[0], 1),
    }


def _tree_cpu(stack: LocalStack, name: str = streaming.PIPELINE) -> float:
    from benchmarks.treemem import _cpu_seconds, tree_pids

    return sum(_cpu_seconds(pid) for pid in tree_pids(stack.services[name].pid))


def _services_cpu(stack: LocalStack) -> dict[str, float]:
    return {name: _tree_cpu(stack, name) for name in stack.services}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--files', type=int, default=240)
    parser.add_argument('--duplicates', type=float, default=0.3, help='fraction of notifications published twice')
    parser.add_argument('--seconds', type=float, default=2.0, help='length of each audio clip')
    parser.add_argument('--poll', type=float, default=0.5, help='seconds between BigQuery polls')
    parser.add_argument('--model_uri', default=None, help='default: the pipeline\'s (the demo model)')
    parser.add_argument('--startup_timeout', type=float, default=180.0)
    parser.add_argument('--drain_timeout', type=float, default=600.0)
    parser.add_argument('--out', help='also write the figures as JSON here')
    parser.add_argument('pipeline_args', nargs=argparse.REMAINDER, help='more pipeline options, after --')
    args = parser.parse_args(argv)
    args.pipeline_args = [a for a in args.pipeline_args if a != '--']
    state_dir = tempfile.mkdtemp(prefix='drain-stack-')
    stack = LocalStack(state_dir, StackConfig().with_free_ports())
    stack.start()
    try:
        with stack.activated():
            result = measure(stack, args)
    finally:
        stack.stop()
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
    exactly_once = result['rows_in_tables_incl_warmup'] == result['expected_rows_incl_warmup']
    return 0 if result['all_rows_arrived'] and exactly_once else 1


if __name__ == '__main__':
    sys.exit(main())

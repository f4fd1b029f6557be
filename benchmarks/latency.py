"""Streaming latency on the local stack: publish notifications at a steady rate, time each row's arrival.

    python -m benchmarks.latency [--rate 1.0] [--duration 60] [--model_uri artifacts/models/demo]

Starts its own emulator stack (free ports, temporary state) and the streaming
pipeline against it, exactly as ``make run-streaming`` does. The audio objects
are uploaded first; then one OBJECT_FINALIZE notification is published every
1/rate seconds for ``duration`` seconds (``--upload_at_publish``: each clip is
uploaded at its turn, just before its notification, the soak's way). Latency is
from the publish call (or the upload) to the moment the file's row (result or
error) is visible in the BigQuery emulator, polled every ``--poll`` seconds (so figures carry that resolution).
One warm-up file is processed before timing starts, so start-up (TensorFlow,
model load) is reported apart. Prints p50/p95/p99 and rows versus uploads.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import threading
import time

import numpy as np

from audio import encode, synth
from stack import streaming
from stack.config import StackConfig
from stack.emulators import LocalStack
from stack.uploads import Uploader
from benchmarks.treemem import TreeSampler, peak_between

RSS_SAMPLE_S = 2.0
WINDOW_S = 300   # a soak's figures per 5 minutes: flat or not


def make_clip(index: int, seconds: float) -> bytes:
    labels = tuple(synth.DEMO_CLASSES)
    label = labels[index % len(labels)]
    return encode.encode(synth.make(label, np.random.default_rng(index), seconds, 16000), 16000, 'wav')


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float('nan')


class Arrivals:
    """Polls both tables in the background and records when each (audio_file, generation) first appears."""

    def __init__(self, stack: LocalStack, poll: float):
        from results import bigquery_store

        self._bq = bigquery_store.client()
        self._tables = [bigquery_store.table_id(t, self._bq.project)
                        for t in (stack.config.output_table, stack.config.error_table)]
        self._poll = poll
        self.seen: dict[tuple[str, str], float] = {}
        self.rows_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            started = time.monotonic()
            total = 0
            for table in self._tables:
                for row in self._bq.query(f'SELECT audio_file, generation FROM `{table}`').result():
                    total += 1
                    self.seen.setdefault((row['audio_file'], row['generation']), time.monotonic())
            self.rows_total = total
            self._stop.wait(max(0.0, self._poll - (time.monotonic() - started)))

    def wait_for(self, keys, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(k in self.seen for k in keys):
                return True
            time.sleep(0.2)
        return all(k in self.seen for k in keys)


def run(args) -> dict:
    state_dir = tempfile.mkdtemp(prefix='latency-stack-')
    stack = LocalStack(state_dir, StackConfig().with_free_ports())
    stack.start()
    try:
        with stack.activated():
            return measure(stack, args)
    finally:
        stack.stop()


@contextlib.contextmanager
def warmed_stream(stack: LocalStack, args, prefix: str, count: int):
    """Starts the streaming pipeline on a bucket holding one clip, waits for that clip's row, then uploads
    ``count`` more.

    The stack starts its pipeline with ``--reconcile`` (stack/config.py): its start-up listing finds the
    warm-up clip alone and processes it, so start-up (imports, model load, the listing, the first bundle) is
    measured apart; the other ``count`` objects are uploaded after it and are not yet announced when this
    yields a WarmStream.
    """
    bucket = stack.config.upload_bucket
    uploader = Uploader(stack.config.topic_path)
    objects = [uploader.write(bucket, f'{prefix}/clip {0:04d}.wav', make_clip(0, args.seconds))[0]]
    began = time.monotonic()
    streaming.start_pipeline(stack, args.model_uri, args.pipeline_args)
    with Arrivals(stack, args.poll) as arrivals:
        warm_up = [(f'gs://{bucket}/{objects[0]["name"]}', objects[0]['generation'])]
        if not arrivals.wait_for(warm_up, args.startup_timeout):
            raise SystemExit(f'warm-up row did not arrive; see {stack.services["pipeline"].log}')
        startup = time.monotonic() - began
        objects += [uploader.write(bucket, f'{prefix}/clip {i:04d}.wav', make_clip(i, args.seconds))[0]
                    for i in range(1, count + 1)]
        keys = [(f'gs://{bucket}/{o["name"]}', o['generation']) for o in objects]
        yield WarmStream(uploader, objects, keys, arrivals, startup)


@dataclasses.dataclass
class WarmStream:
    uploader: Uploader
    objects: list[dict]
    keys: list[tuple[str, str]]
    arrivals: Arrivals
    startup_seconds: float


def measure(stack: LocalStack, args) -> dict:
    count = int(round(args.rate * args.duration))
    bucket = stack.config.upload_bucket
    # --upload_at_publish: each clip is uploaded at its turn and timed from the upload's start (a soak would
    # otherwise spend many minutes uploading its clips before the first publish).
    with warmed_stream(stack, args, 'bench', 0 if args.upload_at_publish else count) as warm:
        uploader, objects, keys, arrivals, startup = (warm.uploader, warm.objects, warm.keys, warm.arrivals,
                                                      warm.startup_seconds)
        published: dict[tuple[str, str], float] = {}
        sampler = TreeSampler(stack.services[streaming.PIPELINE].pid, interval_s=RSS_SAMPLE_S)
        with sampler:
            start = time.monotonic()
            for i in range(count):
                time.sleep(max(0.0, start + i / args.rate - time.monotonic()))  # steady rate, no drift
                began = time.monotonic()
                if args.upload_at_publish:
                    resource = uploader.write(bucket, f'bench/clip {i + 1:04d}.wav', make_clip(i + 1, args.seconds))[0]
                    key = (f'gs://{bucket}/{resource["name"]}', resource['generation'])
                else:
                    resource, key = objects[i + 1], keys[i + 1]
                published[key] = began
                uploader.announce(resource)
            publish_seconds = time.monotonic() - start
            arrivals.wait_for(list(published), args.drain_timeout)
        by_key = {k: arrivals.seen[k] - t for k, t in published.items() if k in arrivals.seen}
        latencies = sorted(by_key.values())
        # When the slow ones were published shows whether delays come in bursts (a stalled bundle) or alone.
        slowest = sorted(((round(v, 1), round(published[k] - start, 1)) for k, v in by_key.items()), reverse=True)
        rows_total = arrivals.rows_total
    ended_cleanly = streaming.stop_pipeline(stack)
    rss = sampler.rss_timeline
    windows = int(args.duration // WINDOW_S) if args.duration >= 2 * WINDOW_S else 0
    return {
        # RSS of the pipeline process at the first publish, the last sample, the peak, and per window
        'pipeline_rss_mib_start': round(rss[0][1], 1) if rss else None,
        'pipeline_rss_mib_end': round(rss[-1][1], 1) if rss else None,
        'pipeline_rss_mib_peak': round(max(v for _, v in rss), 1) if rss else None,
        f'pipeline_rss_mib_peak_per_{WINDOW_S}s': [
            _rounded(peak_between(rss, start + w * WINDOW_S, start + (w + 1) * WINDOW_S)) for w in range(windows)],
        f'p95_s_per_{WINDOW_S}s_of_publishing': [
            round(percentile([v for k, v in by_key.items() if w <= (published[k] - start) // WINDOW_S < w + 1], 95), 2)
            for w in range(windows)],
        'timed_from': 'upload' if args.upload_at_publish else 'publish',
        'rate_per_s': args.rate, 'duration_s': args.duration, 'clip_seconds': args.seconds, 'poll_s': args.poll,
        'pipeline_args': args.pipeline_args, 'startup_to_first_row_s': round(startup, 1),
        'published': len(published), 'publish_seconds': round(publish_seconds, 1),
        'rows_for_published': len(latencies), 'rows_in_tables_incl_warmup': rows_total,
        'p50_s': round(percentile(latencies, 50), 2), 'p95_s': round(percentile(latencies, 95), 2),
        'p99_s': round(percentile(latencies, 99), 2), 'max_s': round(max(latencies), 2) if latencies else None,
        'slowest_latency_s_and_publish_offset_s': slowest[:8],
        'pipeline_stopped_on_sigterm': ended_cleanly, 'cpus': os.cpu_count(),
        'load_average_1m_at_end': round(os.getloadavg()[0], 1),
    }


def _rounded(value):
    return None if value is None else round(value, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rate', type=float, default=1.0, help='notifications per second')
    parser.add_argument('--duration', type=float, default=60.0, help='seconds of publishing')
    parser.add_argument('--seconds', type=float, default=2.0, help='length of each audio clip')
    parser.add_argument('--poll', type=float, default=0.5, help='seconds between BigQuery polls')
    parser.add_argument('--model_uri', default=None, help='default: the pipeline\'s (the demo model)')
    parser.add_argument('--startup_timeout', type=float, default=180.0)
    parser.add_argument('--drain_timeout', type=float, default=300.0, help='wait for late rows after publishing')
    parser.add_argument('--upload_at_publish', action='store_true',
                        help='upload each clip at its turn (timed from the upload) instead of all beforehand')
    parser.add_argument('--out', help='also write the figures as JSON here')
    parser.add_argument('pipeline_args', nargs=argparse.REMAINDER, help='more pipeline options, after --')
    args = parser.parse_args(argv)
    args.pipeline_args = [a for a in args.pipeline_args if a != '--']
    result = run(args)
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
    return 0 if result['rows_for_published'] == result['published'] else 1


if __name__ == '__main__':
    sys.exit(main())

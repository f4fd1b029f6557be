"""How a local run executes: which Beam runner, how many workers, and no credential stall.

Only local runs are configured here; on Dataflow (or any other runner) Beam decides.
"""
from __future__ import annotations

import argparse
import logging
import os
from typing import Optional

from apache_beam.options.pipeline_options import DebugOptions, DirectOptions, PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineRunner

from cloud import emulators
from model.litert import usable_cores
from pipeline.options import PipelineConfig


def _is_direct(options: PipelineOptions) -> bool:
    runner = options.view_as(StandardOptions).runner
    return runner is None or str(runner) in ('DirectRunner', 'direct')


def _needs_google_credentials(config: PipelineConfig) -> bool:
    """Whether any I/O goes to real Google Cloud (not a local path, not an emulator)."""
    paths = [config.input_pattern, config.spectrogram_location, config.model_uri, config.model_watch_pattern]
    if any(p and p.startswith('gs://') for p in paths) and not emulators.emulated(emulators.STORAGE):
        return True
    if config.input_subscription and not emulators.emulated(emulators.PUBSUB):
        return True
    if config.store.needs_google_cloud():
        return True
    # A local Vertex AI endpoint (http://127.0.0.1:PORT) is reached anonymously, like the emulators.
    return bool(config.model_endpoint) and not (config.vertex_api_endpoint or '').startswith('http://')


def _has_configured_credentials() -> bool:
    adc = os.path.join(os.path.expanduser('~'), '.config', 'gcloud', 'application_default_credentials.json')
    return bool(os.environ.get('GOOGLE_APPLICATION_CREDENTIALS')) or os.path.exists(adc)


def skip_credential_lookup() -> None:
    """Tells Beam, in this process, that there are no credentials to find: connect anonymously.

    With none configured, Beam's lookup (google.auth.default, retried with back-off) takes ~30 s before
    it falls back to anonymous access, and ``--no_auth`` does not reach its Cloud Storage client. The
    emulators need no credentials, so the answer is known in advance.
    """
    from apache_beam.internal.gcp import auth

    with auth._Credentials._credentials_lock:
        auth._Credentials._credentials = None
        auth._Credentials._credentials_init = True


# Notifications the local streaming runner takes per Pub/Sub pull, i.e. per bundle. Beam's DirectRunner asks
# for 10; each bundle then pays the runner's per-bundle costs (DoFn set-up and introspection, a BigQuery
# insert call, a pull and an acknowledge round trip) for 10 files. Measured on a bulk drain
# (benchmarks/drain.py, 240 files): see docs/benchmarks.md.
STREAMING_PULL_MESSAGES = 100
# How long one pull may wait for a notification (its gRPC deadline). Beam asks for 30 s. The local runner
# executes one thing at a time on one thread, and it pulls whenever nothing else is runnable -- also while
# elements wait in a stateful step for a processing-time timer (RunInference's batching timer, the dedupe
# TTL): an empty subscription then held every row of the last batch back for ~30 s (benchmarks/drain.py:
# 30 of a 49-s drain). With 2 s the runner is back within ~2 s to fire the timer; an idle pipeline makes
# one cheap pull every 1-2 s. An empty pull that reaches the deadline is an empty answer, not an error.
STREAMING_PULL_WAIT_SECONDS = 2.0


class _LargerPulls:
    """A Pub/Sub subscriber client whose ``pull`` asks for up to ``max_messages`` and waits ``wait_s`` at most."""

    def __init__(self, client, max_messages: int, wait_s: float = STREAMING_PULL_WAIT_SECONDS):
        self._client = client
        self._max_messages = max_messages
        self._wait_s = wait_s

    def pull(self, *args, **kwargs):
        from google.api_core import exceptions as api_exceptions
        from google.pubsub_v1 import PullResponse

        kwargs['max_messages'] = max(self._max_messages, kwargs.get('max_messages') or 0)
        kwargs['timeout'] = min(self._wait_s, kwargs.get('timeout') or self._wait_s)
        try:
            return self._client.pull(*args, **kwargs)
        except api_exceptions.DeadlineExceeded:   # nothing arrived in time: nothing was delivered either
            return PullResponse()

    def __getattr__(self, name):
        return getattr(self._client, name)


def larger_streaming_pulls(max_messages: int = STREAMING_PULL_MESSAGES) -> None:
    """Makes the local streaming runner pull up to ``max_messages`` notifications per bundle (Beam: 10),
    waiting at most ``STREAMING_PULL_WAIT_SECONDS`` for them (Beam: 30 s).

    Beam 2.77's ``_PubSubReadEvaluator`` hard-codes ``max_messages=10``; this wraps the subscriber client
    it gets, in this process only. Nothing else changes: the runner still acknowledges what it pulled on
    receipt, and every later step (dedupe, inference batching, the sinks) sees the same elements, in
    bigger bundles. If Beam's internals move, the runner keeps its own pull size (logged).
    """
    try:
        from apache_beam.runners.direct.transform_evaluator import _PubSubReadEvaluator
        original = _PubSubReadEvaluator.__dict__['_get_subscriber_client'].__func__
    except (ImportError, KeyError, AttributeError) as e:
        logging.getLogger(__name__).warning('Pub/Sub pull size left at Beam\'s default: %s', e)
        return
    if getattr(original, 'larger_pulls', False):
        return

    def get_subscriber_client(cls, transform):
        return _LargerPulls(original(cls, transform), max_messages)

    get_subscriber_client.larger_pulls = True  # type: ignore[attr-defined]
    _PubSubReadEvaluator._get_subscriber_client = classmethod(get_subscriber_client)  # type: ignore[method-assign,assignment]


def skip_empty_bundles() -> None:
    """Makes the local streaming runner pass on only output bundles that hold elements.

    Beam 2.77's evaluators commit a bundle for every output of every step, also an empty one, and the
    runner then runs every step downstream of it: each such step pickles its DoFn, inspects its signature,
    sets it up and tears it down, for nothing. The failure outputs of the stages are empty almost always,
    so every pulled bundle set off ~10 empty runs of the error sink's steps (~45 per step in a 240-file
    drain, ~10% of its time; docs/benchmarks.md). An empty bundle carries no elements, so dropping it
    changes no output; watermarks advance as they would once it had been run. If Beam's internals move,
    the runner keeps its empty bundles (logged).
    """
    try:
        from apache_beam.runners.direct.evaluation_context import EvaluationContext
        original = EvaluationContext.__dict__['_commit_bundles']
    except (ImportError, KeyError) as e:
        logging.getLogger(__name__).warning('empty bundles left to Beam\'s runner: %s', e)
        return
    if getattr(original, 'skips_empty', False):
        return

    def commit_bundles(self, uncommitted_bundles, unprocessed_bundles):
        committed, unprocessed = original(self, uncommitted_bundles, unprocessed_bundles)
        return tuple(b for b in committed if b.has_elements()), unprocessed

    commit_bundles.skips_empty = True  # type: ignore[attr-defined]
    EvaluationContext._commit_bundles = commit_bundles  # type: ignore[method-assign]


# Batch runs use threads in one process unless the local backlog is many files. A worker process imports Beam
# and loads the model (with LiteRT: ~1.5 s of CPU and ~250 MiB each), ~3-4 s more wall time per run on 2 cores.
# What it buys is a faster steady state where Beam's per-element Python work (GIL-bound in threads) weighs
# most, i.e. on short files: 2,500 spoken digits ran at 448 files/s in processes against 337 in threads (same
# run, load ~4), which repays the start from about 4,000 files; on 5-s clips the two steady states were equal
# (114 and 118 files/s). Figures: docs/benchmarks.md, "Threads or processes".
PROCESSES_FROM_FILES = 5000


# Beam's default for --direct_num_workers: one worker, which would leave every other core idle.
BEAM_DEFAULT_NUM_WORKERS = 1


def workers_chosen(options: PipelineOptions) -> bool:
    """Whether the user chose ``--direct_num_workers`` (on the command line, or a value other than Beam's default
    in code); if not, a local run uses every core. Beam's parsed value cannot tell an explicit 1 from its default,
    so the command line is read again for the flag itself."""
    if options.view_as(DirectOptions).direct_num_workers != BEAM_DEFAULT_NUM_WORKERS:
        return True
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument('--direct_num_workers')
    given, _ = parser.parse_known_args(list(getattr(options, '_flags', None) or []))
    return given.direct_num_workers is not None


def configure_runner(options: PipelineOptions, config: PipelineConfig,
                     expected_files: Optional[int] = None) -> Optional[PipelineRunner]:
    """Local runs: pick the local runner that works offline and use every core.

    Beam's DirectRunner first tries the Prism runner, which it would download; offline that
    fails (with an error in the log) before it falls back. So choose directly: the FnApiRunner for batch, the
    BundleBasedDirectRunner for streaming. Batch runs use every core this process may run on (its CPU affinity:
    what a container or ``taskset`` grants) unless ``--direct_num_workers`` says how many (Beam's own default
    is one): a thread per core in one process, or a process per core for a local backlog of
    ``PROCESSES_FROM_FILES`` or more (see above); ``--direct_running_mode`` overrides that. Against
    the emulators with no credentials configured, Beam is told up front to connect anonymously; that answer
    lives in this process, so such a run keeps to threads.
    """
    if not _is_direct(options):
        return None
    anonymous = not _needs_google_credentials(config) and not _has_configured_credentials()
    if anonymous:
        skip_credential_lookup()
    if config.streaming:  # pipeline.main.parse has set --streaming
        larger_streaming_pulls()
        skip_empty_bundles()
        from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner
        return BundleBasedDirectRunner()
    direct = options.view_as(DirectOptions)
    if not direct.direct_num_workers or not workers_chosen(options):
        direct.direct_num_workers = usable_cores()
    if direct.direct_num_workers > 1 and direct.direct_running_mode == 'in_memory':
        touches_gcs = any(p and p.startswith('gs://') for p in (config.input_pattern, config.spectrogram_location,
                                                                config.model_uri))
        processes = (expected_files or 0) >= PROCESSES_FROM_FILES and not (anonymous and touches_gcs)
        direct.direct_running_mode = 'multi_processing' if processes else 'multi_threading'
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    return FnApiRunner()


# Dataflow starts one SDK process per vCPU of a worker VM, unless this experiment asks for one process per VM.
ONE_SDK_PROCESS_PER_VM = 'no_use_multiple_sdk_containers'


def scoring_threads(options: PipelineOptions, config: PipelineConfig) -> int:
    """How many threads of one worker process score a model's windows at once (the in-worker handlers'
    ``scoring_threads``): the cores the runner gives that process, so that one long file's windows use all of
    them while a fleet is never given more threads than cores. 0: every core the worker process may use,
    resolved there (``model.litert.pool_size``, which also never exceeds them).

    - local batch, worker threads in one process (the default): one per worker (``--direct_num_workers``, every
      core unless chosen); with one worker (``--direct_num_workers 1``): 1;
    - local batch, a process per worker (``--direct_running_mode multi_processing``): the machine's cores shared
      out between the processes (1 when there are as many processes as cores);
    - local streaming (one process, threads): 0;
    - Dataflow: 1, as each vCPU has its own SDK process; 0 with ``--experiments=no_use_multiple_sdk_containers``
      (one process for the VM's vCPUs);
    - any other runner: 1 (its share of the cores is unknown: never more than one thread's worth).

    Read before or after ``configure_runner`` alike (watch mode builds its handler first): unchosen workers are
    every core. A watch listing of ``PROCESSES_FROM_FILES`` or more runs in processes that each keep this count.
    """
    cores = usable_cores()
    if _is_direct(options):
        if config.streaming:
            return 0
        direct = options.view_as(DirectOptions)
        workers = (direct.direct_num_workers or 1) if workers_chosen(options) else cores
        if workers <= 1:
            return 1
        if direct.direct_running_mode == 'multi_processing':
            return max(1, cores // workers)
        return workers
    if str(options.view_as(StandardOptions).runner) in ('DataflowRunner', 'dataflow'):
        experiments = options.view_as(DebugOptions).experiments or []
        return 0 if ONE_SDK_PROCESS_PER_VM in experiments else 1
    return 1

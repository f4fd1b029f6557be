"""How a local run executes: which Beam runner, how many workers, and no credential stall.

Only local runs are configured here; on Dataflow (or any other runner) Beam decides.
"""
from __future__ import annotations

import os
from typing import Optional

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineRunner

from cloud import emulators
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
    if not config.uses_sqlite and not emulators.emulated(emulators.BIGQUERY):
        return True
    return bool(config.model_endpoint)


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


# Each worker process imports Beam and TensorFlow and loads the model (~5 s of CPU and ~750 MiB each);
# on this project's benchmark (2 cores) threads beat processes up to roughly 6,000 files.
PROCESSES_FROM_FILES = 5000


def configure_runner(options: PipelineOptions, config: PipelineConfig,
                     expected_files: Optional[int] = None) -> Optional[PipelineRunner]:
    """Local runs: pick the local runner that works offline and use every core.

    Beam's DirectRunner first tries the Prism runner, which it would download; offline that
    fails (with an error in the log) before it falls back. So choose directly: the FnApiRunner
    (all cores) for batch, the BundleBasedDirectRunner for streaming. Batch runs use threads (one
    TensorFlow, fast start; decoding, FFTs, PNG encoding and inference release the GIL) unless a
    local backlog is big enough to repay a process per core. Against the emulators with no
    credentials configured, Beam is told up front to connect anonymously; that answer lives in this
    process, so such a run always uses threads. ``--direct_running_mode`` overrides the choice.
    """
    if not _is_direct(options):
        return None
    anonymous = not _needs_google_credentials(config) and not _has_configured_credentials()
    if anonymous:
        skip_credential_lookup()
    if config.streaming:  # pipeline.main.parse has set --streaming
        from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner
        return BundleBasedDirectRunner()
    direct = options.view_as(DirectOptions)
    if not direct.direct_num_workers:
        direct.direct_num_workers = os.cpu_count() or 1
    if direct.direct_num_workers > 1 and direct.direct_running_mode == 'in_memory':
        touches_gcs = any(p and p.startswith('gs://') for p in (config.input_pattern, config.spectrogram_location,
                                                                config.model_uri))
        big_backlog = (expected_files or 0) >= PROCESSES_FROM_FILES
        processes = big_backlog and not (anonymous and touches_gcs)
        direct.direct_running_mode = 'multi_processing' if processes else 'multi_threading'
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner
    return FnApiRunner()
